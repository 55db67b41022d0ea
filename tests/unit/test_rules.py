"""Binary-compatibility rules (docs/design.md): each source, precedence, lookup, and every
kind of malformed file, both through the library and through `wheelfarm tags` as a user runs it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from wf_cli import OS_RELEASE, clean_env, run, run_in_process

from wheelfarm import osrelease, rules
from wheelfarm.errors import ConfigError

ROCKY = osrelease.read_file(OS_RELEASE / "rocky-9.3")  # host rocky_9_3, default build rocky_9
HOST = "linux_x86_64_rocky_9_3"
DEFAULT = "linux_x86_64_rocky_9"


def write_rules(path: Path, entries: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2))
    return path


def entry(build: str, *install: str) -> dict[str, object]:
    return {"build": f"linux_x86_64_{build}", "install": [f"linux_x86_64_{t}" for t in install]}


@pytest.fixture
def no_venv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An active virtualenv (an empty directory) with no rules file, so that the real
    interpreter's own venv never leaks into a test."""
    venv = tmp_path / "empty-venv"
    venv.mkdir()
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    return venv


def machine(tmp_path: Path, rule_files: list[Path] | None = None) -> rules.TagSet:
    sources = rules.machine_sources(rule_files or [], system_path=tmp_path / "no-system.cfg")
    return rules.tag_set(ROCKY, "x86_64", sources)


# --- each source on its own --------------------------------------------------------------------


def test_defaults_decide_when_nothing_else_speaks(tmp_path: Path, no_venv: Path) -> None:
    result = machine(tmp_path)
    assert result.decision is not None
    assert result.decision.source.kind == "defaults"
    assert result.decision.key == DEFAULT
    assert result.build == "linux_x86_64_rhel_9"


def test_rules_flag(tmp_path: Path, no_venv: Path) -> None:
    given = write_rules(tmp_path / "given.cfg", {DEFAULT: entry("el_9", "el_9")})
    result = machine(tmp_path, [given])
    assert result.decision is not None
    assert (result.decision.source.kind, result.decision.source.origin) == ("--rules", str(given))
    assert result.build == "linux_x86_64_el_9"
    assert list(result.install) == [HOST, DEFAULT, "linux_x86_64_el_9", "linux_x86_64"]


def test_virtualenv_from_virtual_env_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    write_rules(venv / rules.FILE_NAME, {HOST: entry("venv_9")})
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    result = machine(tmp_path)
    assert result.decision is not None
    assert result.decision.source.kind == "virtualenv"
    assert result.build == "linux_x86_64_venv_9"


def test_virtualenv_without_the_variable_is_the_running_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    in_venv = sys.prefix != sys.base_prefix
    assert rules.active_virtualenv() == (Path(sys.prefix) if in_venv else None)


def test_system_file(tmp_path: Path, no_venv: Path) -> None:
    system = write_rules(tmp_path / "etc-python.cfg", {DEFAULT: entry("system_9")})
    sources = rules.machine_sources([], system_path=system)
    result = rules.tag_set(ROCKY, "x86_64", sources)
    assert result.decision is not None
    assert result.decision.source.kind == "system"
    assert result.build == "linux_x86_64_system_9"


def test_image_text(tmp_path: Path) -> None:
    text = json.dumps({HOST: entry("image_9")})
    result = rules.tag_set(ROCKY, "x86_64", rules.image_sources([], image_rules=text))
    assert result.decision is not None
    assert result.decision.source.kind == "image"
    assert result.build == "linux_x86_64_image_9"


# --- precedence and lookup ---------------------------------------------------------------------


def test_virtualenv_default_build_entry_beats_system_host_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    write_rules(venv / rules.FILE_NAME, {DEFAULT: entry("from_venv")})
    system = write_rules(tmp_path / "system.cfg", {HOST: entry("from_system")})
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    result = rules.tag_set(ROCKY, "x86_64", rules.machine_sources([], system_path=system))
    assert result.build == "linux_x86_64_from_venv"
    assert result.decision is not None
    assert (result.decision.source.kind, result.decision.key) == ("virtualenv", DEFAULT)
    assert "linux_x86_64_from_system" not in result.install


def test_rules_flag_beats_virtualenv_and_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    write_rules(venv / rules.FILE_NAME, {HOST: entry("from_venv")})
    system = write_rules(tmp_path / "system.cfg", {HOST: entry("from_system")})
    given = write_rules(tmp_path / "given.cfg", {DEFAULT: entry("from_flag")})
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    sources = rules.machine_sources([given], system_path=system)
    assert [s.kind for s in sources] == ["--rules", "virtualenv", "system", "defaults"]
    assert rules.tag_set(ROCKY, "x86_64", sources).build == "linux_x86_64_from_flag"


def test_rules_flag_beats_image_which_beats_defaults(tmp_path: Path) -> None:
    image = json.dumps({DEFAULT: entry("from_image")})
    assert (
        rules.tag_set(ROCKY, "x86_64", rules.image_sources([], image_rules=image)).build
        == "linux_x86_64_from_image"
    )
    given = write_rules(tmp_path / "given.cfg", {DEFAULT: entry("from_flag")})
    sources = rules.image_sources([given], image_rules=image)
    assert [s.kind for s in sources] == ["--rules", "image", "defaults"]
    assert rules.tag_set(ROCKY, "x86_64", sources).build == "linux_x86_64_from_flag"


def test_describing_an_image_ignores_this_machines_virtualenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    write_rules(venv / rules.FILE_NAME, {HOST: entry("from_venv")})
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    assert [s.kind for s in rules.image_sources([])] == ["defaults"]
    result = run(
        "tags",
        "--os-release",
        str(OS_RELEASE / "rocky-9.3"),
        "--arch",
        "x86_64",
        "--json",
        env=clean_env(VIRTUAL_ENV=str(venv)),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["build"] == "linux_x86_64_rhel_9"


def test_last_rules_flag_wins(tmp_path: Path, no_venv: Path) -> None:
    first = write_rules(tmp_path / "first.cfg", {HOST: entry("first")})
    last = write_rules(tmp_path / "last.cfg", {DEFAULT: entry("last")})
    assert machine(tmp_path, [first, last]).build == "linux_x86_64_last"
    assert machine(tmp_path, [last, first]).build == "linux_x86_64_first"


def test_host_tag_first_within_one_source(tmp_path: Path, no_venv: Path) -> None:
    given = write_rules(
        tmp_path / "both.cfg", {DEFAULT: entry("by_default"), HOST: entry("by_host")}
    )
    result = machine(tmp_path, [given])
    assert result.decision is not None
    assert result.decision.key == HOST
    assert result.build == "linux_x86_64_by_host"


def test_entries_are_never_merged_across_sources(tmp_path: Path, no_venv: Path) -> None:
    # The winning entry has no build: the build tag is the default one, not the defaults' rhel_9.
    given = write_rules(tmp_path / "install-only.cfg", {DEFAULT: {"install": ["linux_x86_64_x"]}})
    result = machine(tmp_path, [given])
    assert result.build == DEFAULT
    assert list(result.install) == [HOST, DEFAULT, "linux_x86_64_x", "linux_x86_64"]
    assert "linux_x86_64_rhel_9" not in result.install


def test_install_lists_are_not_transitive(tmp_path: Path, no_venv: Path) -> None:
    given = write_rules(
        tmp_path / "chain.cfg",
        {
            DEFAULT: entry("rhel_9", "alma_9"),
            "linux_x86_64_alma_9": entry("rhel_9", "centos_9"),
            "linux_x86_64_rhel_9": entry("rhel_9", "fedora_34"),
        },
    )
    result = machine(tmp_path, [given])
    assert list(result.install) == [
        HOST,
        DEFAULT,
        "linux_x86_64_rhel_9",
        "linux_x86_64_alma_9",
        "linux_x86_64",
    ]


def test_shipped_defaults_cover_both_arches_for_el() -> None:
    entries = rules.defaults().entries
    for arch in ("x86_64", "aarch64"):
        for distro, major in [("centos", 7), ("rocky", 8), ("rocky", 9), ("almalinux", 8)]:
            rule = entries[f"linux_{arch}_{distro}_{major}"]
            assert rule.build == f"linux_{arch}_rhel_{major}"
            assert rule.install == (f"linux_{arch}_rhel_{major}",)
            assert rule.why
        assert entries[f"linux_{arch}_almalinux_9"].build == f"linux_{arch}_rhel_9"


# --- malformed files: exit 2, the file and the key named, nothing on stdout --------------------

MALFORMED: list[tuple[str, str, str | None, str]] = [
    ("bad-json", '{"linux_x86_64_rocky_9": {', None, "not valid JSON"),
    ("empty", "", None, "not valid JSON"),
    ("array", '[{"build": "linux_x86_64_rhel_9"}]', None, "got array"),
    ("entry-not-object", '{"linux_x86_64_rocky_9": "linux_x86_64_rhel_9"}', DEFAULT, "object"),
    ("build-number", '{"linux_x86_64_rocky_9": {"build": 9}}', DEFAULT, "got number"),
    ("build-null", '{"linux_x86_64_rocky_9": {"build": null}}', DEFAULT, "got null"),
    ("install-string", '{"linux_x86_64_rocky_9": {"install": "x"}}', DEFAULT, "got string"),
    ("install-entry", '{"linux_x86_64_rocky_9": {"install": [1]}}', DEFAULT, "got number"),
    ("why-list", '{"linux_x86_64_rocky_9": {"why": ["a"]}}', DEFAULT, "why must be a string"),
    (
        "unknown-field",
        '{"linux_x86_64_rocky_9": {"bulid": "x"}}',
        DEFAULT,
        "unknown field(s) bulid",
    ),
    ("key-no-linux", '{"debian_12": {}}', "debian_12", "linux_<arch>_<distro>"),
    ("key-plain", '{"linux_x86_64": {}}', "linux_x86_64", "linux_<arch>_<distro>"),
    ("key-arch", '{"linux_sparc_debian_12": {}}', "linux_sparc_debian_12", "linux_<arch>"),
    ("key-case", '{"linux_x86_64_Debian_12": {}}', "linux_x86_64_Debian_12", "linux_<arch>"),
    (
        "build-manylinux",
        '{"linux_x86_64_rocky_9": {"build": "manylinux_2_28_x86_64"}}',
        DEFAULT,
        "'manylinux_2_28_x86_64' is not a tag",
    ),
    (
        "build-other-arch",
        '{"linux_x86_64_rocky_9": {"build": "linux_aarch64_rhel_9"}}',
        DEFAULT,
        "is for aarch64",
    ),
    (
        "install-bad-tag",
        '{"linux_x86_64_rocky_9": {"install": ["linux_x86_64_rhel_9", "rhel-9"]}}',
        DEFAULT,
        "'rhel-9' is not a tag",
    ),
    (
        "duplicate-key",
        '{"linux_x86_64_rocky_9": {}, "linux_x86_64_rocky_9": {"build": "linux_x86_64_x"}}',
        DEFAULT,
        "appears twice",
    ),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_rules_file(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, str, str | None, str],
) -> None:
    name, text, key, problem = case
    bad = tmp_path / f"{name}.cfg"
    bad.write_text(text)
    # The malformed file fails as a whole even though a good file, given later, would decide.
    good = write_rules(tmp_path / "good.cfg", {HOST: entry("good")})
    result = run_in_process(
        capsys,
        monkeypatch,
        "tags",
        "--os-release",
        str(OS_RELEASE / "rocky-9.3"),
        "--arch",
        "x86_64",
        "--rules",
        str(bad),
        "--rules",
        str(good),
        "--json",
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert str(bad) in result.stderr
    if key is not None:
        assert f"key {key!r}" in result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_virtualenv_file_fails_describing_this_machine(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / rules.FILE_NAME).write_text('{"linux_x86_64_debian_12": {"build": 12}}')
    result = run("tags", "--json", env=clean_env(VIRTUAL_ENV=str(venv)))
    assert result.returncode == 2
    assert result.stdout == ""
    assert str(venv / rules.FILE_NAME) in result.stderr
    assert "key 'linux_x86_64_debian_12'" in result.stderr


def test_malformed_image_text_names_its_origin() -> None:
    with pytest.raises(ConfigError, match=r"image rocky-9: key 'linux_x86_64_x_1'"):
        rules.image_sources(
            [], image_rules='{"linux_x86_64_x_1": {"why": 1}}', image_origin="image rocky-9"
        )


def test_missing_rules_file_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing.cfg"
    result = run_in_process(capsys, monkeypatch, "tags", "--rules", str(missing), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"rules file {missing} does not exist" in result.stderr
