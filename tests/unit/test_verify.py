"""verify and probe, the parts that need no engine: which cells apply and why, what a wheel asks
for, what gets staged, what an error shows, the cache key, the reports, and the rules a probe
proposes from its attempts."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from wf_cli import OS_RELEASE, run_in_process
from wf_wheels import make_wheel

from wheelfarm import imagefacts, probe, recipes, rules, targets, verify, verifyplan, wheelname
from wheelfarm.recipes import Recipe

GLIBC = {"debian-11": "2.31", "debian-12": "2.36", "debian-13": "2.41", "rockylinux-9": "2.34"}
FULL = {"3.9": "3.9.2", "3.11": "3.11.2", "3.12": "3.12.5", "3.13": "3.13.5"}
OS_FILE = {
    "debian-11": "debian-11",
    "debian-12": "debian-12",
    "debian-13": "debian-13",
    "rockylinux-9": "rocky-9.3",
}


def facts(name: str, *, image_rules: str | None = None, arch: str = "x86_64") -> dict[str, Any]:
    target = targets.get(name)
    return {
        "os_release": (OS_RELEASE / OS_FILE[name]).read_text(encoding="utf-8"),
        "rules": image_rules,
        "arch": arch,
        "pythons": {
            p.version: {"version": FULL[p.version], "libc": ["glibc", GLIBC[name]]}
            for p in target.pythons
        },
    }


def image(image_id: str, data: dict[str, Any]) -> imagefacts.ImageFacts:
    """What the image facts script would have said about such an image."""
    pythons = {v: {**p, "tools": {}} for v, p in data["pythons"].items()}
    return imagefacts.ImageFacts.from_json(
        {**data, "image": "wheelfarm/test:runtime", "image_id": image_id, "pythons": pythons}
    )


def view(name: str, rule_files: list[Path] | None = None, **kw: Any) -> verifyplan.TargetView:
    """The x86_64 unit of a target (the wheels here are x86_64's), named debian-12-x86_64."""
    return verifyplan.target_view(
        targets.get(name).with_arch("x86_64"),
        image(f"sha256:{name}", facts(name, **kw)),
        rule_files or [],
    )


def wheel(filename: str) -> wheelname.WheelName:
    return wheelname.parse(filename)


# ------------------------------------------------------------------ applicability


def test_python_abis_of_cpython_311() -> None:
    pairs = verifyplan.python_abis("3.11")
    for expected in [("cp311", "cp311"), ("cp311", "abi3"), ("cp39", "abi3"), ("cp32", "abi3"),
                     ("cp311", "none"), ("py3", "none"), ("py311", "none")]:  # fmt: skip
        assert expected in pairs
    for refused in [("cp39", "cp39"), ("cp312", "abi3"), ("cp312", "cp312"), ("py2", "none")]:
        assert refused not in pairs


def test_a_wheel_applies_on_its_own_target() -> None:
    verdict = verifyplan.applicability(
        wheel("pyyaml-6.0.2-cp311-cp311-linux_x86_64_debian_12.whl"), view("debian-12")
    )
    assert verdict.applicable and verdict.accepted
    assert verdict.python is not None and verdict.python.full_version == "3.11.2"


def test_another_release_tag_is_not_applicable_and_says_why() -> None:
    verdict = verifyplan.applicability(
        wheel("x-1.0-cp39-abi3-linux_x86_64_debian_11.whl"), view("debian-12")
    )
    assert not verdict.applicable
    assert verdict.kind == "tag"
    assert verdict.reason is not None
    assert "linux_x86_64_debian_11" in verdict.reason and "linux_x86_64_debian_12" in verdict.reason


def test_a_wheel_for_another_python_is_not_applicable_and_says_why() -> None:
    verdict = verifyplan.applicability(
        wheel("x-1.0-cp39-cp39-linux_x86_64_debian_12.whl"), view("debian-12")
    )
    assert (verdict.applicable, verdict.kind, verdict.accepted) == (False, "python", True)
    assert verdict.reason is not None and "cp39-cp39" in verdict.reason
    assert "3.11.2" in verdict.reason


def test_stable_abi_loads_on_newer_pythons_only() -> None:
    assert verifyplan.applicability(
        wheel("x-1.0-cp39-abi3-linux_x86_64_debian_12.whl"), view("debian-12")
    ).applicable
    newer = verifyplan.applicability(
        wheel("x-1.0-cp313-abi3-linux_x86_64_debian_12.whl"), view("debian-12")
    )
    assert (newer.applicable, newer.kind) == (False, "python")


def test_pure_and_plain_wheels_apply_everywhere_their_python_fits() -> None:
    for name in ("debian-11", "debian-13"):
        assert verifyplan.applicability(wheel("x-1.0-py3-none-any.whl"), view(name)).applicable
    plain = verifyplan.applicability(wheel("x-1.0-cp313-cp313-linux_x86_64.whl"), view("debian-13"))
    assert plain.applicable and plain.accepted


def test_another_cpu_is_never_applicable_even_for_probe() -> None:
    name = wheel("x-1.0-cp311-cp311-linux_aarch64_debian_12.whl")
    for ignore in (False, True):
        verdict = verifyplan.applicability(name, view("debian-12"), ignore_rules=ignore)
        assert (verdict.applicable, verdict.kind) == (False, "arch")


def test_probe_ignores_the_rules_but_not_the_python() -> None:
    name = wheel("x-1.0-cp39-abi3-linux_x86_64_debian_11.whl")
    verdict = verifyplan.applicability(name, view("debian-13"), ignore_rules=True)
    assert verdict.applicable and not verdict.accepted
    old = wheel("x-1.0-cp39-cp39-linux_x86_64_debian_11.whl")
    assert verifyplan.applicability(old, view("debian-13"), ignore_rules=True).kind == "python"


def test_rules_given_and_the_images_own_rules_file_decide(tmp_path: Path) -> None:
    name = wheel("x-1.0-cp39-abi3-linux_x86_64_debian_11.whl")
    entry = {"linux_x86_64_debian_12": {"install": ["linux_x86_64_debian_11"]}}
    given = tmp_path / "binary-compatibility.cfg"
    given.write_text(json.dumps(entry), encoding="utf-8")
    assert verifyplan.applicability(name, view("debian-12", [given])).applicable
    own = view("debian-12", image_rules=json.dumps(entry))
    assert verifyplan.applicability(name, own).applicable
    assert own.tagset.decision is not None and own.tagset.decision.source.kind == "image"


def test_the_shipped_defaults_apply_to_a_rocky_image() -> None:
    rocky = view("rockylinux-9")
    assert rocky.tagset.build == "linux_x86_64_rhel_9"
    verdict = verifyplan.applicability(wheel("x-1.0-cp312-cp312-linux_x86_64_rhel_9.whl"), rocky)
    assert verdict.applicable
    assert verdict.python is not None and verdict.python.version == "3.12"


def test_the_os_release_comes_from_the_image_not_the_catalogue() -> None:
    """A target whose image turns out to be Debian 13 accepts Debian 13 wheels only."""
    target = targets.get("debian-12")
    shown = verifyplan.target_view(target, image("sha256:x", facts("debian-13")), [])
    assert shown.tagset.default_build == "linux_x86_64_debian_13"
    verdict = verifyplan.applicability(wheel("x-1.0-cp311-cp311-linux_x86_64_debian_12.whl"), shown)
    assert verdict.kind == "tag"


def test_a_python_missing_from_the_image_is_not_offered() -> None:
    data = facts("rockylinux-9")
    del data["pythons"]["3.12"]
    shown = verifyplan.target_view(targets.get("rockylinux-9"), image("sha256:x", data), [])
    assert [p.version for p in shown.pythons] == ["3.9", "3.11"]
    verdict = verifyplan.applicability(wheel("x-1.0-cp312-cp312-linux_x86_64_rhel_9.whl"), shown)
    assert verdict.kind == "python"


# ------------------------------------------------------------------ what a wheel asks for


def test_default_imports_from_top_level_txt_first() -> None:
    record = ["yaml/__init__.py", "_yaml/__init__.py", "a/__init__.py"]
    assert verifyplan.default_imports(record, "yaml\n_yaml\n\n") == ("yaml", "_yaml")


def test_a_top_level_txt_name_the_wheel_does_not_hold_is_not_imported() -> None:
    """setuptools lists pynacl's extension as `_sodium` though it is nacl/_sodium.abi3.so."""
    record = ["nacl/__init__.py", "nacl/_sodium.abi3.so", "pynacl-1.6.2.dist-info/METADATA"]
    assert verifyplan.default_imports(record, "_sodium\nnacl\n") == ("nacl",)
    assert verifyplan.default_imports(record, "_sodium\n") == ("nacl",)  # RECORD's, then


def test_default_imports_from_record() -> None:
    record = [
        "pkg/__init__.py",
        "pkg/sub/mod.py",
        "single.py",
        "_speedups.cpython-311-x86_64-linux-gnu.so",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.data/scripts/tool",
        "__pycache__/single.cpython-311.pyc",
        "README.txt",
        "not-an-identifier/x.py",
    ]
    assert verifyplan.default_imports(record, None) == ("_speedups", "pkg", "single")


def test_read_wheel(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", "1.0", "cp311-cp311-linux_x86_64_debian_12")
    with zipfile.ZipFile(path, "a") as archive:
        info = "demo-1.0.dist-info/METADATA"
        data = archive.read(info)
    text = data.decode().replace(
        "\n\n",
        "\nRequires-External: libpq5\nRequires-External: libxml2 (>=2.9)\n"
        'Requires-Dist: six>=1.0\nRequires-Dist: tomli; python_version < "3.11"\n\n',
        1,
    )
    rewritten = tmp_path / "out" / path.name
    rewritten.parent.mkdir()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for item in source.infolist():
            target.writestr(item, text.encode() if item.filename == info else source.read(item))
    found = verifyplan.read_wheel(rewritten)
    assert found.requires_external == ("libpq5", "libxml2 (>=2.9)")
    assert found.requires_dist == ("six>=1.0", 'tomli; python_version < "3.11"')
    assert found.top_level == ("demo",)
    assert found.plain_name == "demo-1.0-cp311-cp311-linux_x86_64.whl"
    assert len(found.sha256) == 64
    assert verifyplan.package_names(found.requires_external) == ["libpq5", "libxml2"]


def test_needed_requirements_are_judged_for_the_target() -> None:
    requires = [
        "six>=1.0",
        'tomli>=1; python_version < "3.11"',
        'pytest; extra == "test"',
        'pywin32; sys_platform == "win32"',
        'uvloop; platform_machine == "x86_64"',
    ]
    py39 = verifyplan.PythonFacts("3.9", "3.9.2", "/usr/bin/python3.9", ("glibc", "2.31"))
    py311 = replace(py39, version="3.11", full_version="3.11.2")
    on_39 = verifyplan.needed_requirements(requires, verifyplan.marker_environment(py39, "x86_64"))
    assert on_39 == ["six>=1.0", "tomli>=1", "uvloop"]
    on_311 = verifyplan.needed_requirements(
        requires, verifyplan.marker_environment(py311, "aarch64")
    )
    assert on_311 == ["six>=1.0"]


def test_download_platforms_for_glibc_and_musl() -> None:
    glibc = verifyplan.download_platforms("x86_64", ("glibc", "2.36"))
    # The wheelhouse's own (plain-named) builds first, then the index's, best first.
    assert glibc[:2] == ["linux_x86_64", "manylinux_2_36_x86_64"]
    assert glibc.index("manylinux_2_17_x86_64") < glibc.index("manylinux2014_x86_64")
    for legacy in ("manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"):
        assert legacy in glibc
    assert "manylinux_2_37_x86_64" not in glibc
    arm = verifyplan.download_platforms("aarch64", ("glibc", "2.31"))
    assert "manylinux2014_aarch64" in arm and "manylinux1_aarch64" not in arm
    assert verifyplan.download_platforms("x86_64", ("musl", "1.2")) == [
        "linux_x86_64",
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
    ]
    assert verifyplan.download_platforms("x86_64", ("", "")) == ["linux_x86_64"]


# ------------------------------------------------------------------ errors, keys, reports


def test_useful_lines_prefer_the_imports_own_verdict() -> None:
    lines = [
        "imported psycopg2",
        "FAILED import psycopg2._psycopg: ImportError: libpq.so.5: cannot open shared object file",
        "Traceback (most recent call last):",
        '  File "<string>", line 6, in <module>',
        "ImportError: libpq.so.5: cannot open shared object file: No such file or directory",
    ]
    assert verify.useful_lines(lines) == (
        "import psycopg2._psycopg: ImportError: libpq.so.5: cannot open shared object file",
    )


def test_useful_lines_pick_error_lines_in_order() -> None:
    lines = [
        "Looking in links: /wf/stage",
        "Processing ./x-1.0-cp311-cp311-linux_x86_64.whl",
        "ERROR: x-1.0-cp311-cp311-linux_x86_64.whl is not a supported wheel on this platform.",
    ]
    assert verify.useful_lines(lines) == (lines[2],)
    assert verify.useful_lines(["all quiet", "then the end"]) == ("all quiet", "then the end")


def test_cell_key_changes_with_each_input() -> None:
    base = verifyplan.cell_key("w", "i", "r", "p")
    assert base == verifyplan.cell_key("w", "i", "r", "p")
    others = {
        verifyplan.cell_key("W", "i", "r", "p"),
        verifyplan.cell_key("w", "I", "r", "p"),
        verifyplan.cell_key("w", "i", "R", "p"),
        verifyplan.cell_key("w", "i", "r", "P"),
    }
    assert base not in others and len(others) == 4


def test_recipe_digest_ignores_build_settings() -> None:
    plain = Recipe("x", imports=("x",), test="python -c 1")
    built = replace(plain, build_packages=(("apt", ("libfoo-dev",)),))
    assert verifyplan.recipe_digest(plain) == verifyplan.recipe_digest(built)
    assert verifyplan.recipe_digest(plain) != verifyplan.recipe_digest(replace(plain, test=None))


def test_cell_json_round_trip() -> None:
    cell = verifyplan.Cell(
        "w.whl", "debian-12", verifyplan.FAIL, reason="r", error=("a", "b"), log="l"
    )
    assert verifyplan.Cell.from_json(json.loads(json.dumps(cell.as_json()))) == replace(cell)


def _wheel_info(filename: str) -> verifyplan.WheelInfo:
    return verifyplan.WheelInfo(Path(filename), wheelname.parse(filename), "0" * 64, (), (), ("x",))


def _report(
    wheels: list[str], names: list[str], results: dict[tuple[str, str], str]
) -> verifyplan.Report:
    shown = [view(n) for n in names]
    cells = []
    for w in wheels:
        for name, t in zip(names, shown, strict=True):
            status = results.get((w, name))
            if status is None:
                cells.append(
                    verifyplan.Cell(w, t.name, verifyplan.NA, kind="python", reason="python")
                )
            else:
                error = ("import x: ImportError: GLIBC_2.36 not found",) if status == "fail" else ()
                cells.append(
                    verifyplan.Cell(
                        w, t.name, status, reason="import x", error=error, step="import x"
                    )
                )
    return verifyplan.Report(
        Path("/wh"), tuple(_wheel_info(w) for w in wheels), tuple(shown), tuple(cells), 1.0, 0
    )


def test_markdown_report_is_a_matrix_with_failures_and_reasons() -> None:
    report = _report(
        ["a-1.0-cp311-cp311-linux_x86_64_debian_12.whl"],
        ["debian-11", "debian-12"],
        {("a-1.0-cp311-cp311-linux_x86_64_debian_12.whl", "debian-12"): "fail"},
    )
    text = verify.markdown(report)
    assert "| wheel | debian-11-x86_64 | debian-12-x86_64 |" in text
    assert "| `a-1.0-cp311-cp311-linux_x86_64_debian_12.whl` | n/a (python) | ❌ **fail** |" in text
    assert "GLIBC_2.36 not found" in text
    assert "## Not applicable" in text


# ------------------------------------------------------------------ probe proposals

W11 = "x-1.0-cp39-abi3-linux_x86_64_debian_11.whl"
W12 = "x-1.0-cp39-abi3-linux_x86_64_debian_12.whl"
W13 = "x-1.0-cp39-abi3-linux_x86_64_debian_13.whl"
DEBIANS = ["debian-11", "debian-12", "debian-13"]


def _all(status: dict[tuple[str, str], str] | None = None) -> dict[tuple[str, str], str]:
    found = {(w, t): "pass" for w in (W11, W12, W13) for t in DEBIANS}
    found.update(status or {})
    return found


def test_probe_proposes_exactly_the_pairs_that_held() -> None:
    # Newer glibc symbols: the Debian 12 and 13 wheels fail on Debian 11.
    results = _all({(W12, "debian-11"): "fail", (W13, "debian-11"): "fail"})
    report = _report([W11, W12, W13], DEBIANS, results)
    proposal = probe.propose(report)
    assert sorted(proposal) == ["linux_x86_64_debian_12", "linux_x86_64_debian_13"]
    assert proposal["linux_x86_64_debian_12"]["install"] == [
        "linux_x86_64_debian_11",
        "linux_x86_64_debian_13",
    ]
    assert proposal["linux_x86_64_debian_13"]["install"] == [
        "linux_x86_64_debian_11",
        "linux_x86_64_debian_12",
    ]
    why = proposal["linux_x86_64_debian_13"]["why"]
    assert W11 in why and W12 in why and "debian-13" in why
    assert "build" not in proposal["linux_x86_64_debian_13"]
    found = {(p.consumer, p.producer): p.verdict for p in probe.pairs(report)}
    assert found[("linux_x86_64_debian_11", "linux_x86_64_debian_12")] == "rejected"
    assert found[("linux_x86_64_debian_11", "linux_x86_64_debian_11")] == "own tag"
    # The proposal is a rules file wheelfarm reads.
    parsed = rules.parse_rules(json.dumps(proposal), "proposal")
    assert parsed["linux_x86_64_debian_12"].install == (
        "linux_x86_64_debian_11",
        "linux_x86_64_debian_13",
    )


def test_probe_counts_attempts_across_tags() -> None:
    report = _report([W11, W12, W13], DEBIANS, _all())
    found = probe.ProbeReport(report, tuple(probe.pairs(report)), probe.propose(report))
    assert found.attempts == 9
    assert found.cross_attempts == 6


def test_one_failure_among_several_wheels_rejects_the_pair() -> None:
    other = "y-2.0-cp39-abi3-linux_x86_64_debian_11.whl"
    results = _all({(other, t): "pass" for t in DEBIANS})
    results[(other, "debian-13")] = "fail"
    report = _report([W11, other, W12, W13], DEBIANS, results)
    proposal = probe.propose(report)
    assert proposal["linux_x86_64_debian_13"]["install"] == ["linux_x86_64_debian_12"]
    assert "linux_x86_64_debian_11" in proposal["linux_x86_64_debian_12"]["install"]


def test_a_pair_never_tried_is_never_proposed() -> None:
    # Only the diagonal was tried (e.g. no Python could load the others).
    results = {(W11, "debian-11"): "pass", (W12, "debian-12"): "pass"}
    report = _report([W11, W12], ["debian-11", "debian-12"], results)
    assert probe.propose(report) == {}


def test_a_rule_built_consumer_keeps_its_build_tag() -> None:
    wheel_name = "x-1.0-cp39-abi3-linux_x86_64_debian_12.whl"
    report = _report([wheel_name], ["rockylinux-9"], {(wheel_name, "rockylinux-9"): "pass"})
    entry = probe.propose(report)["linux_x86_64_rocky_9"]
    assert entry["build"] == "linux_x86_64_rhel_9"
    assert entry["install"] == ["linux_x86_64_debian_12"]
    assert "replaces" in entry["why"]


def test_probe_skips_wheels_without_a_distro_tag() -> None:
    assert probe.producer_tag(_wheel_info("x-1.0-py3-none-any.whl")) is None
    assert probe.producer_tag(_wheel_info("x-1.0-cp311-cp311-linux_x86_64.whl")) is None
    assert probe.producer_tag(_wheel_info(W11)) == "linux_x86_64_debian_11"


@pytest.mark.parametrize("name", ["debian-11", "debian-12", "debian-13"])
def test_plan_cells_marks_each_cell(name: str) -> None:
    wheels = [_wheel_info(W11), _wheel_info("x-1.0-cp313-cp313-linux_x86_64_debian_13.whl")]
    catalogue = {t.unit: t for t in targets.per_arch(targets.TARGETS, ["x86_64"])}
    plan = verifyplan.plan_cells(wheels, [view(name)], Recipe, catalogue)
    applicable = {(j.wheel.filename, j.target.name) for j in plan.jobs}
    expected = {
        "debian-11": {(W11, "debian-11-x86_64")},
        "debian-12": set(),
        "debian-13": {("x-1.0-cp313-cp313-linux_x86_64_debian_13.whl", "debian-13-x86_64")},
    }[name]
    assert applicable == expected
    assert len(plan.order) == 2
    assert {(c.wheel, c.target) for c in plan.decided} | applicable == set(plan.order)


# ------------------------------------------------------------------ bad input: exit 2, no engine


def test_bad_inputs_exit_2_before_any_container(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no engine is touched
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    filled = tmp_path / "filled"
    filled.mkdir()
    make_wheel(filled, "demo", "1.0", "cp311-cp311-linux_x86_64_debian_12")
    bad_rules = tmp_path / "bad.cfg"
    bad_rules.write_text('{"linux_x86_64_debian_12": {"install": "oops"}}')
    cases = [
        (("verify", str(tmp_path / "missing")), "does not exist"),
        (("verify", str(empty)), "no wheels in"),
        (("verify", str(filled), "--rules", str(bad_rules)), "install must be a list"),
        (("verify", str(filled), "--target", "debian-99"), "unknown target"),
        (("probe", str(empty)), "nothing to probe"),
        (("probe", str(tmp_path / "missing")), "does not exist"),
    ]
    pure = tmp_path / "pure"
    pure.mkdir()
    make_wheel(pure, "demo", "1.0", "py3-none-any")
    cases.append((("probe", str(pure)), "nothing to probe"))
    for args, message in cases:
        result = run_in_process(capsys, monkeypatch, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert result.stdout == ""
    assert not (filled / ".wheelfarm").exists()


def test_the_imports_read_off_the_wheel_are_part_of_the_cell_key() -> None:
    plain = recipes.Recipe(project="pynacl")
    assert verifyplan.recipe_digest(plain, ("nacl",)) != verifyplan.recipe_digest(
        plain, ("_sodium", "nacl")
    )
    named = replace(plain, imports=("nacl",))
    assert verifyplan.recipe_digest(named, ("x",)) == verifyplan.recipe_digest(named)


# ------------------------------------------------------------------ the import check's own words

IMPORT_CHECK = Path(verify.__file__).parent / "data" / "import_check.py"


def _extension_module() -> Path:
    """A real extension module of this interpreter (from lib-dynload) to copy into a package."""
    dynload = Path(sysconfig.get_config_var("DESTSHARED") or "")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    found = sorted(dynload.glob(f"*{suffix}"))
    assert found, dynload
    return found[0]


def _run_import_check(root: Path, *names: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, str(IMPORT_CHECK), *names]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def _refusing_package(root: Path, extension: bytes) -> None:
    package = root / "refuses"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('import the other package first')\n")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (package / f"_speedups{suffix}").write_bytes(extension)


def test_a_package_that_refuses_to_import_but_links_is_told_apart(tmp_path: Path) -> None:
    _refusing_package(tmp_path, _extension_module().read_bytes())
    done = _run_import_check(tmp_path, "refuses")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert "FAILED import refuses: ImportError: import the other package first" in lines
    assert "compiled modules load: 1 of 1 under refuses" in lines
    hint = verify._own_code_hint(lines)
    assert hint is not None and "[verify] imports" in hint and "1 of 1" in hint


def test_a_compiled_module_that_does_not_load_is_said_and_gets_no_own_code_hint(
    tmp_path: Path,
) -> None:
    _refusing_package(tmp_path, b"\x7fELF not really")
    done = _run_import_check(tmp_path, "refuses")
    lines = done.stdout.splitlines()
    assert done.returncode == 1
    assert any(line.startswith("compiled module does not load: ") for line in lines), lines
    assert verify._own_code_hint(lines) is None


def test_a_module_that_imports_needs_no_linking_check(tmp_path: Path) -> None:
    (tmp_path / "fine.py").write_text("")
    done = _run_import_check(tmp_path, "fine")
    assert (done.returncode, done.stdout.splitlines()) == (0, ["imported fine"])
