"""`wheelfarm verify` and `wheelfarm probe` for real on debian-11, -12 and -13: fresh runtime
containers, Requires-External installed, network cut, the target's stock pip installing the
plain-named wheel, imports and the recipe's test.

One session build (its own XDG_CACHE_HOME, so verification really runs) makes PyYAML (links the
distro's libyaml, which the runtime images lack) and a small stable-ABI C extension
(tests/data/projects/wf-abi3-probe: built on glibc >= 2.36 it needs GLIBC_2.36) on each Debian;
`wheelfarm build` verifies them itself. The other tests start from that wheelhouse and cache."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from wheel.wheelfile import WheelFile

from wheelfarm import container, retag, targets
from wheelfarm.targets import Target

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ABI3_PROJECT = REPO / "tests" / "data" / "projects" / "wf-abi3-probe"
DEBIANS = ("debian-11", "debian-12", "debian-13")
CP = {"debian-11": "cp39", "debian-12": "cp311", "debian-13": "cp313"}


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    pid: int

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data


def wheelfarm(*args: str, cache: Path, timeout: float = 1800) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env["XDG_CACHE_HOME"] = str(cache)
    env["COLUMNS"] = "200"
    child = subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = child.communicate(timeout=timeout)
    assert container.leftover_containers(child.pid) == [], "containers left behind"
    return Run(child.returncode, stdout, stderr, child.pid)


def targets_args(names: tuple[str, ...] = DEBIANS) -> list[str]:
    return [arg for name in names for arg in ("--target", name)]


def cells(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["wheel"], c["target"]): c for c in report["results"]}


def wheel_of(wheelhouse: Path, prefix: str, target: str) -> Path:
    (found,) = wheelhouse.glob(f"{prefix}-*-linux_x86_64_{target.replace('-', '_')}.whl")
    return found


def fresh_wheelhouse(root: Path, wheels: list[Path]) -> Path:
    root.mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, root / wheel.name)
    return root


@dataclass(frozen=True)
class Session:
    run: Run
    wheelhouse: Path
    cache: Path


@pytest.fixture(scope="session")
def session(debian_targets: dict[str, Target], tmp_path_factory: pytest.TempPathFactory) -> Session:
    root = tmp_path_factory.mktemp("verify")
    project = root / "wf-abi3-probe"
    shutil.copytree(ABI3_PROJECT, project)
    wheelhouse, cache = root / "wheelhouse", root / "cache"
    run = wheelfarm(
        "build",
        "pyyaml==6.0.2",
        str(project),
        *targets_args(),
        "--wheelhouse",
        str(wheelhouse),
        "--json",
        cache=cache,
    )
    return Session(run, wheelhouse, cache)


def session_report(session: Session) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (session.wheelhouse / ".wheelfarm" / "verify.json").read_text()
    )
    return data


def test_build_verifies_each_wheel_on_its_own_target(session: Session) -> None:
    assert session.run.code == 0, session.run.stderr[-4000:]
    report = session_report(session)
    assert report["ok"] is True
    assert report["containers_started"] >= 6  # a fresh container per applicable cell
    found = cells(report)
    for target in DEBIANS:
        for prefix in ("pyyaml", "wf_abi3_probe"):
            wheel = wheel_of(session.wheelhouse, prefix, target).name
            for other in DEBIANS:
                cell = found[(wheel, other)]
                if other == target:
                    assert cell["status"] == "pass", cell
                    assert cell["cached"] is False
                    log = (session.wheelhouse / cell["log"]).read_text()
                    assert "network cut" in log
                    assert f"{wheel.split('-linux_')[0]}-linux_x86_64.whl" in log  # plain name
                else:
                    # Default rules: no Debian release installs another's wheels.
                    assert (cell["status"], cell["kind"]) == ("n/a", "tag"), cell
    # PyYAML's Requires-External (libyaml-0-2) was installed by the distro's package manager.
    pyyaml = wheel_of(session.wheelhouse, "pyyaml", "debian-12").name
    log = (session.wheelhouse / found[(pyyaml, "debian-12")]["log"]).read_text()
    assert "Requires-External: libyaml-0-2; not yet installed: libyaml-0-2" in log
    assert "yaml._yaml" in log
    markdown = (session.wheelhouse / ".wheelfarm" / "verify.md").read_text()
    assert f"| `{pyyaml}` | n/a (tag) | ✅ pass | n/a (tag) |" in markdown
    # --json: one document, the build's results and what it verified; "ok" covers both.
    printed = session.run.json()
    assert printed["ok"] is True
    verified = printed["verify"]
    assert verified["ok"] is True
    assert verified["counts"] == report["counts"] == {"pass": 6, "fail": 0, "n/a": 12}
    assert verified["reports"]["json"] == str(session.wheelhouse / ".wheelfarm" / "verify.json")
    assert cells(verified) == found


def make_pure_wheel(directory: Path, name: str) -> Path:
    module = name.replace("-", "_")
    path = directory / f"{module}-1.0-py3-none-any.whl"
    with WheelFile(path, "w") as wheel:
        wheel.writestr(f"{module}/__init__.py", "VALUE = 1\n")
        wheel.writestr(
            f"{module}-1.0.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        )
        wheel.writestr(
            f"{module}-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: wf-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    return path


def test_build_report_covers_the_wheelhouse_and_its_json_what_it_verified(
    session: Session, tmp_path: Path
) -> None:
    """A build into a wheelhouse holding other wheels: verify.json still covers them all (cached
    cells, or `not run`), a corrupt .whl is skipped and listed, the build's JSON holds only what
    it verified; nothing runs again, no container starts."""
    house = fresh_wheelhouse(tmp_path / "house", sorted(session.wheelhouse.glob("*.whl")))
    for sdist in session.wheelhouse.glob("*.tar.gz"):
        shutil.copy2(sdist, house / sdist.name)
    other = make_pure_wheel(house, "wf-test-other")
    (house / "wf_test_junk-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    run = wheelfarm(
        "build", "pyyaml==6.0.2", "--target", "debian-12", "--wheelhouse", str(house), "--json",
        cache=session.cache,
    )  # fmt: skip
    assert run.code == 0, run.stderr[-3000:]
    printed = run.json()
    assert printed["ok"] is True
    assert printed["containers_started"] == 0
    pyyaml = wheel_of(house, "pyyaml", "debian-12").name
    abi3 = wheel_of(house, "wf_abi3_probe", "debian-12").name
    verified = printed["verify"]
    assert [w["file"] for w in verified["wheels"]] == [pyyaml]
    assert [(c["wheel"], c["target"], c["status"]) for c in verified["results"]] == [
        (pyyaml, "debian-12", "pass")
    ]
    assert verified["containers_started"] == 0
    report = json.loads((house / ".wheelfarm" / "verify.json").read_text())
    found = cells(report)
    assert {w["file"] for w in report["wheels"]} == {p.name for p in house.glob("*.whl")} - {
        "wf_test_junk-1.0-py3-none-any.whl"
    }
    assert found[(abi3, "debian-12")]["status"] == "pass"
    assert found[(abi3, "debian-12")]["cached"] is True
    assert (
        found[(other.name, "debian-12")]["status"],
        found[(other.name, "debian-12")]["kind"],
    ) == (
        "n/a",
        "not run",
    )
    (skipped,) = report["skipped"]
    assert skipped["file"] == "wf_test_junk-1.0-py3-none-any.whl"
    assert "not a readable wheel" in skipped["reason"]
    assert "warning: skipped wf_test_junk-1.0-py3-none-any.whl" in run.stderr
    markdown = (house / ".wheelfarm" / "verify.md").read_text()
    assert "## Skipped files" in markdown and "wf_test_junk" in markdown
    assert f"| `{other.name}` | n/a (not run) |" in markdown


def test_unchanged_build_rerun_verifies_nothing_again(session: Session) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in session.wheelhouse.glob("*.whl")}
    run = wheelfarm(
        "build",
        "pyyaml==6.0.2",
        str(session.wheelhouse.parent / "wf-abi3-probe"),
        *targets_args(),
        "--wheelhouse",
        str(session.wheelhouse),
        "--json",
        cache=session.cache,
    )
    assert run.code == 0, run.stderr[-3000:]
    assert run.json()["containers_started"] == 0
    report = session_report(session)
    assert report["containers_started"] == 0
    applicable = [c for c in report["results"] if c["status"] != "n/a"]
    assert len(applicable) == 6
    assert all(c["cached"] and c["status"] == "pass" for c in applicable)
    after = {p.name: p.stat().st_mtime_ns for p in session.wheelhouse.glob("*.whl")}
    assert after == before


def digests(wheelhouse: Path) -> dict[str, str]:
    """Every file of a wheelhouse outside its .wheelfarm/ reports."""
    return {
        str(p.relative_to(wheelhouse)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(wheelhouse.rglob("*"))
        if p.is_file() and ".wheelfarm" not in p.relative_to(wheelhouse).parts
    }


def test_verify_command_json_matches_its_report_and_leaves_the_wheels_alone(
    session: Session,
) -> None:
    before = digests(session.wheelhouse)
    run = wheelfarm("verify", str(session.wheelhouse), "--json", cache=session.cache)
    assert run.code == 0, run.stderr[-3000:]
    printed = run.json()
    assert printed == session_report(session)
    assert printed["counts"] == {"pass": 6, "fail": 0, "n/a": 12}
    assert printed["containers_started"] == 0
    assert {t["target"] for t in printed["targets"]} >= set(DEBIANS)
    assert digests(session.wheelhouse) == before


def test_missing_library_fails_clearly_without_requires_external(
    session: Session, tmp_path: Path
) -> None:
    wheelhouse = fresh_wheelhouse(
        tmp_path / "wh", [wheel_of(session.wheelhouse, "pyyaml", t) for t in DEBIANS]
    )
    for wheel in wheelhouse.glob("*.whl"):
        retag.set_requires_external(wheel, [])
    run = wheelfarm("verify", str(wheelhouse), *targets_args(), "--json", cache=session.cache)
    assert run.code == 1, run.stderr[-3000:]
    report = run.json()
    assert report["counts"]["fail"] == 3
    assert report["containers_started"] == 3
    for cell in report["results"]:
        if cell["status"] == "n/a":
            continue
        assert cell["status"] == "fail"
        assert cell["step"] == "import yaml yaml._yaml"
        assert any("libyaml-0.so.2: cannot open shared object file" in e for e in cell["error"])
        assert "Requires-External names no distro package" in cell["hint"]
        assert "libyaml-0-2" in cell["hint"]  # the recipe's runtime package
        assert (wheelhouse / cell["log"]).is_file()
        assert cell["log"] in run.stderr
    assert "verification(s) failed" in run.stderr

    # The same wheels with their Requires-External pass (the session verified them for real).
    intact = fresh_wheelhouse(
        tmp_path / "intact", [wheel_of(session.wheelhouse, "pyyaml", t) for t in DEBIANS]
    )
    run = wheelfarm("verify", str(intact), *targets_args(), "--json", cache=session.cache)
    assert run.code == 0, run.stderr[-3000:]
    assert run.json()["counts"]["pass"] == 3


def write_broken_wheel(directory: Path) -> Path:
    """A pure wheel whose module raises when imported."""
    path = directory / "wf_test_broken_import-1.0-py3-none-any.whl"
    with WheelFile(path, "w") as wheel:
        wheel.writestr(
            "wf_test_broken_import/__init__.py",
            'raise RuntimeError("broken on purpose by wheelfarm\'s tests")\n',
        )
        info = "wf_test_broken_import-1.0.dist-info"
        wheel.writestr(
            f"{info}/METADATA",
            "Metadata-Version: 2.1\nName: wf-test-broken-import\nVersion: 1.0\n",
        )
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: wf-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    return path


def test_a_wheel_that_raises_on_import_fails_with_its_error(
    session: Session, tmp_path: Path
) -> None:
    wheelhouse = tmp_path / "wh"
    wheelhouse.mkdir()
    broken = write_broken_wheel(wheelhouse)
    run = wheelfarm(
        "verify", str(wheelhouse), "--target", "debian-12", "--json", cache=session.cache
    )
    assert run.code == 1, run.stderr[-3000:]
    ((key, cell),) = cells(run.json()).items()
    assert key == (broken.name, "debian-12")
    assert cell["status"] == "fail"
    assert cell["error"] == [
        "import wf_test_broken_import: RuntimeError: broken on purpose by wheelfarm's tests"
    ]
    assert "broken on purpose" in run.stderr
    shown = (wheelhouse / ".wheelfarm" / "verify.md").read_text()
    assert "❌ **fail**" in shown and "broken on purpose" in shown


def test_dependencies_come_from_the_wheelhouse_then_the_index(
    session: Session, tmp_path: Path
) -> None:
    """A pure wheel needing PyYAML (built by wheelfarm, in the wheelhouse) and six (only on the
    index): both are staged on the host, PyYAML's own Requires-External is installed too, and
    the offline install takes the wheelhouse's PyYAML under its plain name."""
    pyyaml = wheel_of(session.wheelhouse, "pyyaml", "debian-12")
    wheelhouse = fresh_wheelhouse(tmp_path / "wh", [pyyaml])
    path = wheelhouse / "wf_test_needs_deps-1.0-py3-none-any.whl"
    with WheelFile(path, "w") as wheel:
        wheel.writestr(
            "wf_test_needs_deps/__init__.py",
            "import six\nimport yaml._yaml\nassert yaml.__with_libyaml__\n",
        )
        info = "wf_test_needs_deps-1.0.dist-info"
        wheel.writestr(
            f"{info}/METADATA",
            "Metadata-Version: 2.1\nName: wf-test-needs-deps\nVersion: 1.0\n"
            "Requires-Dist: pyyaml==6.0.2\nRequires-Dist: six\n"
            'Requires-Dist: tomli; python_version < "3.11"\n',
        )
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: wf-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    run = wheelfarm(
        "verify", str(wheelhouse), "--target", "debian-12", "--json", cache=session.cache
    )
    assert run.code == 0, run.stderr[-3000:]
    cell = cells(run.json())[(path.name, "debian-12")]
    assert cell["status"] == "pass" and cell["cached"] is False
    log = (wheelhouse / cell["log"]).read_text()
    unit = f"debian-12-{targets.host_arch()}"
    assert f"dependencies for {unit}: pyyaml==6.0.2, six" in log  # tomli: not for 3.11
    assert f"staged dependency {pyyaml.name.replace('_debian_12', '')}" in log
    assert "staged dependency six-" in log
    assert "Requires-External: libyaml-0-2; not yet installed: libyaml-0-2" in log


def glibc_needed(wheel: Path) -> tuple[int, int]:
    """The newest GLIBC_x.y symbol version the wheel's extension needs, read from its ELF."""
    newest = (2, 0)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if not name.endswith(".so"):
                continue
            with archive.open(name) as stream:
                elf = ELFFile(io.BytesIO(stream.read()))
                for section in elf.iter_sections():
                    if not isinstance(section, GNUVerNeedSection):
                        continue
                    for _need, auxiliaries in section.iter_versions():
                        for aux in auxiliaries:
                            if aux.name.startswith("GLIBC_2."):
                                minor = int(aux.name.split(".")[1])
                                newest = max(newest, (2, minor))
    return newest


def glibc_of(target: Target) -> tuple[int, int]:
    shown = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--name",
         f"wf-test-glibc-{target.name}-{os.getpid()}", target.runtime_image,
         target.python.executable, "-c",
         "import os; print(os.confstr('CS_GNU_LIBC_VERSION').split()[1])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    major, minor = shown.split(".")[:2]
    return int(major), int(minor)


def test_probe_proposes_exactly_the_rules_that_held(
    session: Session, debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    produced = {t: wheel_of(session.wheelhouse, "wf_abi3_probe", t) for t in DEBIANS}
    wheelhouse = fresh_wheelhouse(tmp_path / "wh", list(produced.values()))
    proposed_file = tmp_path / "proposed.cfg"
    run = wheelfarm(
        "probe", str(wheelhouse), *targets_args(), "--write", str(proposed_file),
        cache=session.cache,
    )  # fmt: skip
    assert run.code == 0, run.stderr[-3000:]
    proposal = run.json()
    assert json.loads(proposed_file.read_text()) == proposal

    report = json.loads((wheelhouse / ".wheelfarm" / "probe.json").read_text())
    # It really tried the cross-release installs: each wheel on the two other releases.
    assert report["cross_attempts"] == 6
    assert report["outside_rules_attempts"] == 6
    assert report["attempts"] == 9

    # What really holds, from the ELF files and the images' own glibc, not from wheelfarm.
    needs = {t: glibc_needed(w) for t, w in produced.items()}
    has = {t: glibc_of(debian_targets[t]) for t in DEBIANS}
    assert needs["debian-11"] < has["debian-11"] < needs["debian-12"], (needs, has)
    expected: dict[str, list[str]] = {}
    for consumer in DEBIANS:
        holding = [
            f"linux_x86_64_{producer.replace('-', '_')}"
            for producer in DEBIANS
            if producer != consumer and needs[producer] <= has[consumer]
        ]
        if holding:
            expected[f"linux_x86_64_{consumer.replace('-', '_')}"] = holding
    assert {key: entry["install"] for key, entry in proposal.items()} == expected
    for entry in proposal.values():
        for producer in entry["install"]:
            source = produced["debian-" + producer.rsplit("_", 1)[1]].name
            assert source in entry["why"]

    # The pairs that did not hold failed for the reason they should.
    results = cells(report)
    for producer in ("debian-12", "debian-13"):
        cell = results[(produced[producer].name, "debian-11")]
        assert cell["status"] == "fail"
        assert any("GLIBC_2.36' not found" in line for line in cell["error"]), cell
        assert "newer glibc" in cell["hint"]

    # Applied as rules, the proposal makes verify try (and pass) the measured pairs.
    run = wheelfarm(
        "verify", str(wheelhouse), *targets_args(), "--rules", str(proposed_file), "--json",
        cache=session.cache,
    )  # fmt: skip
    assert run.code == 0, run.stderr[-3000:]
    verified = run.json()
    assert verified["counts"] == {"pass": 7, "fail": 0, "n/a": 2}
    assert verified["containers_started"] == 0  # every cell was measured by the probe already


def all_running_the_test(pid: int) -> bool:
    """Three containers of this verify, each running the recipe's slow test."""
    names = container.leftover_containers(pid)
    if len(names) != 3:
        return False
    for name in names:
        shown = subprocess.run(["docker", "top", name], capture_output=True, text=True, check=False)
        if "sleep 600" not in shown.stdout:
            return False
    return True


@pytest.fixture(params=[signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def interrupted(
    session: Session, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[int, Path, dict[str, str]]]:
    """A verification interrupted (Ctrl-C, or SIGTERM as a cancelled CI job sends) while its
    containers run a slow recipe test."""
    wheelhouse = tmp_path / "wh"
    wheelhouse.mkdir()
    path = wheelhouse / "wf_test_slow_verify-1.0-py3-none-any.whl"
    with WheelFile(path, "w") as wheel:
        wheel.writestr("wf_test_slow_verify/__init__.py", "")
        info = "wf_test_slow_verify-1.0.dist-info"
        wheel.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: wf-test-slow-verify\nVersion: 1.0\n"
        )
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: wf-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "wf-test-slow-verify.toml").write_text('[verify]\ntest = "sleep 600"\n')
    before = digests(wheelhouse)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env["XDG_CACHE_HOME"] = str(session.cache)
    child = subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", "verify", str(wheelhouse), *targets_args(),
         "--recipes", str(recipes), "--jobs", "3"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not all_running_the_test(child.pid):
            time.sleep(0.5)
        assert all_running_the_test(child.pid), "verify never got to the recipe's test"
        child.send_signal(request.param)
        child.communicate(timeout=120)
        yield child.returncode, wheelhouse, before
    finally:
        if child.poll() is None:
            child.kill()
        for name in container.leftover_containers(child.pid):
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def test_ctrl_c_leaves_no_container_and_no_partial_file(
    interrupted: tuple[int, Path, dict[str, str]], request: pytest.FixtureRequest
) -> None:
    code, wheelhouse, before = interrupted
    assert code == 128 + request.node.callspec.params["interrupted"]
    partial = [p for p in wheelhouse.rglob("*") if p.name.startswith(".tmp")]
    assert partial == []
    assert not (wheelhouse / ".wheelfarm" / "verify.json").exists()
    assert digests(wheelhouse) == before


def test_missing_runtime_image_exits_3_with_the_command(session: Session, tmp_path: Path) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(
        "[[tool.wheelfarm.extra-targets]]\n"
        'name = "wf-test-never-built"\nbase = "debian:12"\nfamily = "apt"\npython = "3.11"\n'
    )
    wheelhouse = tmp_path / "wh"
    wheelhouse.mkdir()
    write_broken_wheel(wheelhouse)
    run = wheelfarm(
        "verify", str(wheelhouse), "--target", "wf-test-never-built", "--config", str(config),
        cache=session.cache,
    )  # fmt: skip
    assert run.code == 3, run.stderr
    assert "wheelfarm/wf-test-never-built:runtime" in run.stderr
    assert "wheelfarm images build wf-test-never-built" in run.stderr
    assert not (wheelhouse / ".wheelfarm").exists()
