"""Configuration: one precedence (CLI > WHEELFARM_<KEY> > pyproject.toml > default), env lists,
strict keys and types, extra targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelfarm import config, targets
from wheelfarm.errors import EXIT_BAD_INPUT, BadInput, ConfigError


def write_project(directory: Path, body: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text('[project]\nname = "demo"\n\n[tool.wheelfarm]\n' + body, encoding="utf-8")
    return path


FULL = """\
specs = ["pyyaml==6.0.2"]
requirements = ["requirements/wheels.txt"]
targets = ["debian-12", "alpine-3.20"]
python = "3.12"
recipes = "my-recipes"
wheelhouse = "out/wheels"
jobs = 3
scratch-memory = 2048
rules = ["compat.cfg"]
"""


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    settings = config.resolve({}, env={}, cwd=tmp_path)
    assert settings == config.Settings(origins=settings.origins)
    assert settings.config_file is None
    assert set(settings.origins.values()) == {"default"}
    assert settings.wheelhouse == Path("wheelhouse")
    assert settings.catalogue == targets.TARGETS


def test_pyproject_values_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = write_project(tmp_path, FULL)
    settings = config.resolve({}, env={}, config_file=path)
    assert settings.specs == ("pyyaml==6.0.2",)
    assert settings.requirements == (tmp_path / "requirements/wheels.txt",)
    assert settings.targets == ("debian-12", "alpine-3.20")
    assert settings.python == "3.12"
    assert settings.recipes == tmp_path / "my-recipes"
    assert settings.wheelhouse == tmp_path / "out/wheels"
    assert settings.jobs == 3
    assert settings.rules == (tmp_path / "compat.cfg",)
    assert settings.origins["jobs"] == str(path)


LEVEL_CASES = [
    # field, CLI value, env var, env value, expected from CLI, from env, raw value in FULL
    ("targets", ["ubuntu-24.04"], "WHEELFARM_TARGETS", "debian-11, debian-13",
     ("ubuntu-24.04",), ("debian-11", "debian-13"), ("debian-12", "alpine-3.20")),
    ("python", "3.11", "WHEELFARM_PYTHON", "3.13", "3.11", "3.13", "3.12"),
    ("jobs", 7, "WHEELFARM_JOBS", "5", 7, 5, 3),
    ("scratch_memory", 512, "WHEELFARM_SCRATCH_MEMORY", "1024", 512, 1024, 2048),
    ("wheelhouse", Path("cli-wh"), "WHEELFARM_WHEELHOUSE", "env-wh",
     Path("cli-wh"), Path("env-wh"), "out/wheels"),
    ("recipes", Path("cli-r"), "WHEELFARM_RECIPES", "env-r",
     Path("cli-r"), Path("env-r"), "my-recipes"),
]  # fmt: skip


@pytest.mark.parametrize("case", LEVEL_CASES, ids=[c[0] for c in LEVEL_CASES])
def test_each_level_beats_the_next(tmp_path: Path, case: tuple[object, ...]) -> None:
    field, cli_value, env_name, env_value, expected_cli, expected_env, file_value = case
    assert isinstance(field, str) and isinstance(env_name, str) and isinstance(env_value, str)
    path = write_project(tmp_path, FULL)
    env = {env_name: env_value}

    cli_wins = config.resolve({field: cli_value}, env=env, config_file=path)
    assert getattr(cli_wins, field) == expected_cli
    assert cli_wins.origins[field].startswith("-")

    env_wins = config.resolve({field: None}, env=env, config_file=path)
    assert getattr(env_wins, field) == expected_env
    assert env_wins.origins[field] == env_name

    file_wins = config.resolve({field: None}, env={}, config_file=path)
    value = getattr(file_wins, field)
    if isinstance(value, Path):  # paths in the file are relative to the file
        file_value = tmp_path / str(file_value)
    elif isinstance(value, tuple) and isinstance(value[0], Path):
        assert isinstance(file_value, tuple)
        file_value = tuple(tmp_path / v for v in file_value)
    assert value == file_value
    assert file_wins.origins[field] == str(path)

    default = config.resolve({field: None}, env={}, config_file=write_project(tmp_path, ""))
    assert getattr(default, field) == getattr(config.Settings(), field)
    assert default.origins[field] == "default"


def test_rule_files_of_every_level_stack_the_last_highest(tmp_path: Path) -> None:
    """Rules are the exception to "the level that sets a key sets all of it": they are the top
    tier of the rules' own precedence, project's, then WHEELFARM_RULES's, then --rules's."""
    path = write_project(tmp_path, FULL)
    env = {"WHEELFARM_RULES": "c.cfg,d.cfg"}
    every = config.resolve({"rules": [Path("a.cfg"), Path("b.cfg")]}, env=env, config_file=path)
    assert every.rules == (
        tmp_path / "compat.cfg", Path("c.cfg"), Path("d.cfg"), Path("a.cfg"), Path("b.cfg")
    )  # fmt: skip
    assert every.rule_labels == ("project", *["WHEELFARM_RULES"] * 2, *["--rules"] * 2)
    assert every.origins["rules"] == "--rules"

    no_cli = config.resolve({"rules": None}, env=env, config_file=path)
    assert no_cli.rules == (tmp_path / "compat.cfg", Path("c.cfg"), Path("d.cfg"))
    assert no_cli.origins["rules"] == "WHEELFARM_RULES"

    file_only = config.resolve({"rules": None}, env={}, config_file=path)
    assert (file_only.rules, file_only.rule_labels) == ((tmp_path / "compat.cfg",), ("project",))
    assert file_only.origins["rules"] == str(path)

    default = config.resolve({}, env={}, config_file=write_project(tmp_path, ""))
    assert (default.rules, default.rule_labels, default.origins["rules"]) == ((), (), "default")


def test_empty_cli_lists_and_empty_env_values_mean_not_given(tmp_path: Path) -> None:
    path = write_project(tmp_path, FULL)
    settings = config.resolve(
        {"targets": [], "rules": None}, env={"WHEELFARM_TARGETS": " ", "WHEELFARM_JOBS": ""},
        config_file=path,
    )  # fmt: skip
    assert settings.targets == ("debian-12", "alpine-3.20")
    assert settings.jobs == 3


def test_specs_and_requirements_come_from_one_level(tmp_path: Path) -> None:
    path = write_project(tmp_path, FULL)
    only_cli_spec = config.resolve({"specs": ["lxml==5.3.0"]}, env={}, config_file=path)
    assert only_cli_spec.specs == ("lxml==5.3.0",)
    assert only_cli_spec.requirements == ()  # the file's requirements do not sneak in

    only_env_requirements = config.resolve(
        {}, env={"WHEELFARM_REQUIREMENTS": "a.txt,b.txt"}, config_file=path
    )
    assert only_env_requirements.specs == ()
    assert only_env_requirements.requirements == (Path("a.txt"), Path("b.txt"))
    assert only_env_requirements.origins["specs"] == "default"

    from_file = config.resolve({}, env={}, config_file=path)
    assert from_file.specs and from_file.requirements


@pytest.mark.parametrize(
    ("raw", "items"),
    [
        ("debian-12,alpine-3.20", ["debian-12", "alpine-3.20"]),
        (" debian-12 ,  alpine-3.20 ,", ["debian-12", "alpine-3.20"]),
        ("", []),
        (",,", []),
        ("one", ["one"]),
        ("requests[socks,security]==2.32.3,pyyaml==6.0.2",
         ["requests[socks,security]==2.32.3", "pyyaml==6.0.2"]),
        ('pyyaml==6.0.2 ; python_version < "3.13"', ['pyyaml==6.0.2 ; python_version < "3.13"']),
    ],
)  # fmt: skip
def test_env_lists_are_comma_separated(raw: str, items: list[str]) -> None:
    assert config.split_list(raw) == items


def test_env_specs_keep_extras_whole(tmp_path: Path) -> None:
    settings = config.resolve(
        {}, env={"WHEELFARM_SPECS": "requests[socks,security]==2.32.3, pyyaml==6.0.2"},
        cwd=tmp_path,
    )  # fmt: skip
    assert settings.specs == ("requests[socks,security]==2.32.3", "pyyaml==6.0.2")


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    path = write_project(tmp_path, 'target = ["debian-12"]\nwheel-house = "x"\njobs = 2\n')
    with pytest.raises(ConfigError) as caught:
        config.resolve({}, env={}, config_file=path)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "'target'" in caught.value.message
    assert "'wheel-house'" in caught.value.message
    assert str(path) in caught.value.message
    assert caught.value.hint is not None and "targets" in caught.value.hint


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('targets = "debian-12"\n', "targets"),
        ("targets = [12]\n", "targets"),
        ('jobs = "4"\n', "jobs"),
        ("jobs = true\n", "jobs"),
        ("jobs = 0\n", "jobs"),
        ("scratch-memory = 0\n", "scratch-memory"),
        ('scratch-memory = "1G"\n', "scratch-memory"),
        ("python = 3.12\n", "python"),
        ('python = "three"\n', "python"),
        ("wheelhouse = 1\n", "wheelhouse"),
        ('rules = "a.cfg"\n', "rules"),
        ("extra-targets = 3\n", "extra-targets"),
    ],
)
def test_wrong_types_name_key_and_file(tmp_path: Path, body: str, key: str) -> None:
    path = write_project(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        config.resolve({}, env={}, config_file=path)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert str(path) in caught.value.message
    assert repr(key) in caught.value.message or f" {key} " in caught.value.message


@pytest.mark.parametrize(
    ("name", "value"), [("WHEELFARM_JOBS", "many"), ("WHEELFARM_PYTHON", "python3")]
)
def test_bad_env_values_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.resolve({}, env={name: value}, cwd=tmp_path)
    assert name in caught.value.message
    assert repr(value) in caught.value.message


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.wheelfarm\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        config.resolve({}, env={}, config_file=path)
    assert str(path) in caught.value.message


def test_missing_config_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.resolve({}, env={}, config_file=tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="WHEELFARM_CONFIG"):
        config.resolve({}, env={"WHEELFARM_CONFIG": str(tmp_path / "nope.toml")}, cwd=tmp_path)


def test_config_flag_beats_config_env(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_project(tmp_path / "a", "jobs = 1\n")
    b = write_project(tmp_path / "b", "jobs = 2\n")
    assert config.resolve({}, env={"WHEELFARM_CONFIG": str(b)}, config_file=a).jobs == 1
    assert config.resolve({}, env={"WHEELFARM_CONFIG": str(b)}, cwd=tmp_path).jobs == 2


def test_discovery_walks_up_to_the_repository_root(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    nested = root / "pkg" / "src"
    nested.mkdir(parents=True)
    (root / ".git").mkdir()
    write_project(root, "jobs = 2\n")
    # A pyproject.toml without [tool.wheelfarm] on the way up does not stop the search.
    (root / "pkg" / "pyproject.toml").write_text('[project]\nname = "pkg"\n', encoding="utf-8")
    found = config.resolve({}, env={}, cwd=nested)
    assert found.config_file == (root / "pyproject.toml").resolve()
    assert found.jobs == 2

    # Nothing above the repository root is read.
    write_project(tmp_path, "jobs = 9\n")
    (root / "pyproject.toml").unlink()
    assert config.resolve({}, env={}, cwd=nested).config_file is None


EXTRA_ARRAY = """\
targets = ["fedora-40"]

[[tool.wheelfarm.extra-targets]]
name = "fedora-40"
base = "fedora:40"
family = "dnf"
python = "3.12"

[[tool.wheelfarm.extra-targets]]
name = "debian-12-slim"
base = "registry.example:5000/mirror/debian:12-slim"
family = "apt"
python = "3.11"
python-executable = "/usr/local/bin/python3.11"
distro = "debian"
version = "12"
"""


def test_extra_targets_join_the_catalogue(tmp_path: Path) -> None:
    path = write_project(tmp_path, EXTRA_ARRAY)
    settings = config.resolve({}, env={}, config_file=path)
    fedora, slim = settings.extra_targets
    assert fedora == targets.Target(
        name="fedora-40",
        distro="fedora",
        version="40",
        base="fedora:40",
        family="dnf",
        pythons=(targets.Python("3.12", "/usr/bin/python3.12"),),
        note=f"extra target from {path}",
        release_known=False,  # guessed from "fedora:40": for listings only
    )
    assert slim.release_known  # declared
    assert fedora.build_image == f"wheelfarm/fedora-40:build-{targets.host_arch()}"
    assert slim.python.executable == "/usr/local/bin/python3.11"
    assert (slim.distro, slim.version) == ("debian", "12")
    assert settings.catalogue[-2:] == (fedora, slim)
    assert settings.selected_targets() == [fedora]
    assert targets.get("debian-12-slim", settings.catalogue) is slim


def test_extra_targets_as_a_table_keyed_by_name(tmp_path: Path) -> None:
    path = write_project(
        tmp_path,
        '[tool.wheelfarm.extra-targets.alpine-edge]\nbase = "alpine:edge"\nfamily = "apk"\n'
        'python = "3.12"\n',
    )
    (target,) = config.resolve({}, env={}, config_file=path).extra_targets
    assert (target.name, target.distro, target.version) == ("alpine-edge", "alpine", "edge")


def test_unknown_target_lists_extra_targets_too(tmp_path: Path) -> None:
    path = write_project(tmp_path, EXTRA_ARRAY)
    settings = config.resolve({"targets": ["fedora-41"]}, env={}, config_file=path)
    with pytest.raises(BadInput) as caught:
        settings.selected_targets()
    assert caught.value.hint is not None and "fedora-40" in caught.value.hint


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "x"\nbase = "x:1"\nfamily = "apt"\npython = "3.11"\npythn = "3"\n',
         "unknown key 'pythn'"),
        ('name = "x"\nbase = "x:1"\nfamily = "pacman"\npython = "3.11"\n', "'pacman'"),
        ('name = "x"\nfamily = "apt"\n', "missing keys base, python"),
        ('name = "Fedora 40"\nbase = "x:1"\nfamily = "apt"\npython = "3.11"\n', "cannot name"),
        ('name = "debian-12"\nbase = "x:1"\nfamily = "apt"\npython = "3.11"\n', "shipped"),
        ('name = "x"\nbase = "x:1"\nfamily = "apt"\npython = 3.11\n', "'python'"),
        ('name = "x"\nbase = "x:1"\nfamily = "apt"\npython = "3.11"\n'
         'python-executable = "python3"\n', "absolute"),
    ],
)  # fmt: skip
def test_bad_extra_targets_are_named(tmp_path: Path, entry: str, message: str) -> None:
    path = write_project(tmp_path, "[[tool.wheelfarm.extra-targets]]\n" + entry)
    with pytest.raises(ConfigError) as caught:
        config.resolve({}, env={}, config_file=path)
    assert message in caught.value.message
    assert str(path) in caught.value.message
    assert "extra-targets" in caught.value.message


def test_extra_target_declared_twice(tmp_path: Path) -> None:
    entry = 'name = "x"\nbase = "x:1"\nfamily = "apt"\npython = "3.11"\n'
    path = write_project(tmp_path, ("[[tool.wheelfarm.extra-targets]]\n" + entry) * 2)
    with pytest.raises(ConfigError, match="declared twice"):
        config.resolve({}, env={}, config_file=path)


def test_the_catalogue_of_settings_is_frozen() -> None:
    settings = config.Settings()
    with pytest.raises(AttributeError):
        settings.jobs = 3  # type: ignore[misc]


def test_unknown_cli_field_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="target"):
        config.resolve({"target": ["debian-12"]}, env={})


# ------------------------------------------------------------------ architectures and engines


def test_archs_and_engines_follow_the_one_precedence(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[tool.wheelfarm]\narchs = ["arm64", "x86_64"]\n'
        '[tool.wheelfarm.engines]\naarch64 = "ssh://builder@arm-host"\n'
    )
    from_file = config.resolve({}, env={}, config_file=path)
    assert from_file.archs == ("aarch64", "x86_64")
    assert from_file.engines == (("aarch64", "ssh://builder@arm-host"),)
    assert [t.unit for t in from_file.catalogue if t.name == "debian-12"] == [
        "debian-12-aarch64",
        "debian-12-x86_64",
    ]
    env = {"WHEELFARM_ARCHS": "x86_64", "WHEELFARM_ENGINES": "aarch64=tcp://arm:2376"}
    from_env = config.resolve({}, env=env, config_file=path)
    assert (from_env.archs, from_env.engines) == (("x86_64",), (("aarch64", "tcp://arm:2376"),))
    from_cli = config.resolve(
        {"archs": ["amd64"], "engines": ["arm64=unix:///run/arm.sock"]}, env=env, config_file=path
    )
    assert from_cli.archs == ("x86_64",)
    assert from_cli.engines == (("aarch64", "unix:///run/arm.sock"),)
    assert from_cli.origins["engines"] == "--engine"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / ".git").mkdir(parents=True)  # a repository of its own, without configuration
    default = config.resolve({}, env={}, cwd=elsewhere)
    assert default.archs == () and default.engines == ()
    assert {t.arch for t in default.catalogue} == {targets.host_arch()}


@pytest.mark.parametrize(
    ("cli", "said"),
    [
        ({"archs": ["sparc"]}, "--arch: unknown architecture 'sparc'"),
        ({"engines": ["aarch64"]}, "--engine: 'aarch64' is not ARCH=URL"),
        ({"engines": ["aarch64=http://host"]}, "is not ARCH=URL with a unix://, tcp:// or ssh://"),
        ({"engines": ["mips=ssh://host"]}, "--engine: unknown architecture 'mips'"),
    ],
)
def test_bad_archs_and_engines_exit_2_naming_the_flag(
    tmp_path: Path, cli: dict[str, list[str]], said: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config.resolve(cli, env={}, cwd=tmp_path)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert said in caught.value.message


def test_engines_in_the_file_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.wheelfarm]\nengines = ["aarch64=ssh://h"]\n')
    with pytest.raises(ConfigError) as caught:
        config.resolve({}, env={}, config_file=path)
    assert "key 'engines': expected a table of architecture = URL" in caught.value.message
