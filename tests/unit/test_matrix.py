"""`wheelfarm matrix`: the build plan as a CI matrix, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import wf_index

from wheelfarm import targets

# What the real index pages say of the releases these tests plan (data-requires-python).
PAGES = {
    "pyyaml": [("PyYAML-6.0.2.tar.gz", ">=3.8")],
    "markupsafe": [("markupsafe-3.0.2.tar.gz", ">=3.9")],
    "tomli": [("tomli-2.0.1.tar.gz", ">=3.7")],
    "lxml": [("lxml-5.3.0.tar.gz", ">=3.6")],
    "numpy": [("numpy-2.1.3.tar.gz", ">=3.10")],
}


@pytest.fixture(autouse=True)
def index(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """matrix asks the index for Requires-Python: every run here reads a local one, as the host's
    pip configuration would name it (PIP_INDEX_URL, no config files)."""
    with wf_index.serve(tmp_path_factory.mktemp("index"), PAGES) as url:
        monkeypatch.setenv("PIP_INDEX_URL", url)
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        yield url


EXTRA = """
[[tool.wheelfarm.extra-targets]]
name = "fedora-40"
base = "fedora:40"
family = "dnf"
python = "3.12"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty repository root: configuration discovery stops here."""
    (tmp_path / ".git").mkdir()
    return tmp_path


def wheelfarm(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", "matrix", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_defaults_to_every_known_target(project: Path) -> None:
    result = wheelfarm(project, "pyyaml==6.0.2", "markupsafe==3.0.2")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["include"]
    assert [e["target"] for e in data["include"]] == targets.names()
    by_target = {e["target"]: e for e in data["include"]}
    arch = targets.host_arch()  # no --arch: this machine's
    assert by_target["debian-12"] == {
        "target": "debian-12",
        "arch": arch,
        "image": f"wheelfarm/debian-12:build-{arch}",
        "python": "3.11",
        "specs": "pyyaml==6.0.2 markupsafe==3.0.2",
        "runner": "ubuntu-latest",
    }
    assert by_target["centos-7"]["python"] == "3.8"
    # markupsafe 3.0.2 requires Python >=3.9: left out where the build would skip it.
    assert by_target["centos-7"]["specs"] == "pyyaml==6.0.2"
    assert "skipped: markupsafe 3.0.2 requires Python >=3.9; centos-7 builds for 3.8" in (
        result.stderr
    )
    assert result.stdout.startswith("{\n  ")  # pretty for people


def test_github_format_is_one_output_line_with_the_same_plan(project: Path) -> None:
    pretty = wheelfarm(project, "pyyaml==6.0.2", "--target", "debian-12", "--target", "alpine-3.20")
    github = wheelfarm(
        project, "pyyaml==6.0.2", "--target", "debian-12", "--target", "alpine-3.20",
        "--format", "github",
    )  # fmt: skip
    assert github.returncode == 0, github.stderr
    lines = github.stdout.splitlines()
    assert len(lines) == 1 and github.stdout.endswith("\n")
    name, _, value = lines[0].partition("=")
    assert name == "matrix"
    assert " " not in value.replace("pyyaml==6.0.2 ", "")  # compact JSON
    assert json.loads(value) == json.loads(pretty.stdout)
    assert [e["target"] for e in json.loads(value)["include"]] == ["debian-12", "alpine-3.20"]


def test_python_selects_the_targets_that_offer_it(project: Path) -> None:
    result = wheelfarm(project, "pyyaml==6.0.2", "--python", "3.11")
    assert result.returncode == 0, result.stderr
    included = json.loads(result.stdout)["include"]
    assert {e["target"] for e in included} == {
        t.name for t in targets.TARGETS if any(p.version == "3.11" for p in t.pythons)
    }
    assert {e["python"] for e in included} == {"3.11"}


def test_markers_are_evaluated_per_target(project: Path) -> None:
    result = wheelfarm(
        project, "pyyaml==6.0.2", 'tomli==2.0.1; python_version < "3.11"',
        "--target", "debian-11", "--target", "debian-12",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    specs = {e["target"]: e["specs"] for e in json.loads(result.stdout)["include"]}
    assert specs == {"debian-11": "pyyaml==6.0.2 tomli==2.0.1", "debian-12": "pyyaml==6.0.2"}


def test_requirement_files_and_local_sources(project: Path) -> None:
    sha = "a" * 64
    (project / "reqs").mkdir()
    (project / "reqs" / "wheels.txt").write_text(
        f"# pinned by pip-compile\nPyYAML==6.0.2 \\\n    --hash=sha256:{sha}\n", encoding="utf-8"
    )
    source = project / "src" / "demo"
    source.mkdir(parents=True)
    (source / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1.0"\n', encoding="utf-8"
    )
    result = wheelfarm(project, "src/demo", "-r", "reqs/wheels.txt", "--target", "debian-13")
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["include"]
    assert entry["specs"] == "src/demo pyyaml==6.0.2"


def test_configuration_from_pyproject_env_and_flags(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.wheelfarm]\nspecs = ["pyyaml==6.0.2"]\ntargets = ["debian-11"]\n' + EXTRA,
        encoding="utf-8",
    )
    from_file = wheelfarm(project)
    assert from_file.returncode == 0, from_file.stderr
    assert [e["target"] for e in json.loads(from_file.stdout)["include"]] == ["debian-11"]

    from_env = wheelfarm(project, env={"WHEELFARM_TARGETS": "fedora-40,debian-13"})
    assert [e["target"] for e in json.loads(from_env.stdout)["include"]] == [
        "fedora-40",
        "debian-13",
    ]

    from_flag = wheelfarm(
        project, "lxml==5.3.0", "--target", "ubuntu-24.04", env={"WHEELFARM_TARGETS": "debian-13"}
    )
    (entry,) = json.loads(from_flag.stdout)["include"]
    assert (entry["target"], entry["specs"]) == ("ubuntu-24.04", "lxml==5.3.0")


def test_extra_target_is_planned_like_a_shipped_one(project: Path) -> None:
    config_file = project / "ci" / "wheelfarm.toml"
    config_file.parent.mkdir()
    config_file.write_text("[tool.wheelfarm]\n" + EXTRA, encoding="utf-8")
    result = wheelfarm(project, "pyyaml==6.0.2", "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    included = json.loads(result.stdout)["include"]
    arch = targets.host_arch()
    assert included[-1] == {
        "target": "fedora-40",
        "arch": arch,
        "image": f"wheelfarm/fedora-40:build-{arch}",
        "python": "3.12",
        "specs": "pyyaml==6.0.2",
        "runner": "ubuntu-latest",
    }
    assert len(included) == len(targets.TARGETS) + 1


def test_unknown_configuration_keys_exit_2_naming_them(project: Path) -> None:
    path = project / "pyproject.toml"
    path.write_text('[tool.wheelfarm]\ntarget = ["debian-12"]\nthreads = 4\n', encoding="utf-8")
    result = wheelfarm(project, "pyyaml==6.0.2")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "'target'" in result.stderr and "'threads'" in result.stderr
    assert "pyproject.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_extra_target_key_exits_2(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.wheelfarm]\n" + EXTRA + 'image = "fedora:40"\n', encoding="utf-8"
    )
    result = wheelfarm(project, "pyyaml==6.0.2")
    assert result.returncode == 2
    assert "unknown key 'image'" in result.stderr
    assert "fedora-40" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pyyaml"], "not pinned"),
        (["pyyaml==6.0.2", "--target", "debian-99"], "unknown target"),
        (["pyyaml==6.0.2", "--format", "yaml"], "unknown format"),
        (["pyyaml==6.0.2", "--target", "debian-12", "--python", "3.99"], "no Python 3.99"),
        (["pyyaml==6.0.2", "--python", "3.99"], "no target offers Python 3.99"),
        ([], "nothing to build"),
    ],
)
def test_bad_input_exits_2(project: Path, args: list[str], message: str) -> None:
    result = wheelfarm(project, *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr
    assert result.stdout == ""


def test_pairs_the_build_would_skip_are_left_out(project: Path) -> None:
    result = wheelfarm(
        project, "numpy==2.1.3", "markupsafe==3.0.2",
        "--target", "centos-7", "--target", "debian-11", "--target", "debian-12",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    specs = {e["target"]: e["specs"] for e in json.loads(result.stdout)["include"]}
    # centos-7 is left with nothing to build: no job at all, so none fails on an empty upload.
    assert specs == {
        "debian-11": "markupsafe==3.0.2",
        "debian-12": "numpy==2.1.3 markupsafe==3.0.2",
    }
    assert "numpy 2.1.3 requires Python >=3.10; debian-11 builds for 3.9" in result.stderr
    assert "numpy 2.1.3 requires Python >=3.10; centos-7 builds for 3.8" in result.stderr


def test_nothing_left_to_build_exits_2_with_the_reasons(project: Path) -> None:
    result = wheelfarm(project, "numpy==2.1.3", "--target", "debian-11")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "every spec is skipped" in result.stderr
    assert "numpy 2.1.3 requires Python >=3.10; debian-11 builds for 3.9" in result.stderr


def test_an_unreachable_index_is_said_and_the_pairs_are_kept(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", wf_index.closed_port_url())
    result = wheelfarm(project, "markupsafe==3.0.2", "--target", "centos-7", "--format", "github")
    assert result.returncode == 0, result.stderr
    _name, _, value = result.stdout.strip().partition("=")
    assert [e["target"] for e in json.loads(value)["include"]] == ["centos-7"]
    assert "Requires-Python of markupsafe==3.0.2 is unknown" in result.stderr
    assert "cannot read markupsafe's page" in result.stderr


def test_a_version_the_index_does_not_have_exits_2(project: Path) -> None:
    result = wheelfarm(project, "numpy==0.0.1", "--target", "debian-12")
    assert result.returncode == 2
    assert "no numpy 0.0.1" in result.stderr


def test_one_entry_per_target_and_arch_with_its_runner(project: Path) -> None:
    result = wheelfarm(
        project, "markupsafe==3.0.2", "--target", "debian-12", "--target", "debian-13",
        "--arch", "x86_64", "--arch", "arm64", "--runner", "aarch64=ubuntu-24.04-arm",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    included = json.loads(result.stdout)["include"]
    assert [(e["target"], e["arch"], e["runner"]) for e in included] == [
        ("debian-12", "x86_64", "ubuntu-latest"),
        ("debian-12", "aarch64", "ubuntu-24.04-arm"),
        ("debian-13", "x86_64", "ubuntu-latest"),
        ("debian-13", "aarch64", "ubuntu-24.04-arm"),
    ]
    assert included[1]["image"] == "wheelfarm/debian-12:build-aarch64"
    for entry in included:
        assert list(entry) == ["target", "arch", "image", "python", "specs", "runner"]


def test_archs_come_from_the_environment_and_the_project(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.wheelfarm]\narchs = ["aarch64"]\ntargets = ["debian-12"]\n', encoding="utf-8"
    )
    from_file = json.loads(wheelfarm(project, "markupsafe==3.0.2").stdout)["include"]
    assert [e["arch"] for e in from_file] == ["aarch64"]
    from_env = wheelfarm(project, "markupsafe==3.0.2", env={"WHEELFARM_ARCHS": "x86_64,aarch64"})
    assert [e["arch"] for e in json.loads(from_env.stdout)["include"]] == ["x86_64", "aarch64"]
    from_flag = wheelfarm(
        project, "markupsafe==3.0.2", "--arch", "x86_64", env={"WHEELFARM_ARCHS": "aarch64"}
    )
    assert [e["arch"] for e in json.loads(from_flag.stdout)["include"]] == ["x86_64"]


def test_an_unknown_arch_or_runner_exits_2_naming_it(project: Path) -> None:
    bad = wheelfarm(project, "markupsafe==3.0.2", "--arch", "sparc")
    assert bad.returncode == 2
    assert "--arch: unknown architecture 'sparc'" in bad.stderr
    bad_env = wheelfarm(project, "markupsafe==3.0.2", env={"WHEELFARM_ARCHS": "mips"})
    assert bad_env.returncode == 2
    assert "environment variable WHEELFARM_ARCHS: unknown architecture 'mips'" in bad_env.stderr
    bad_runner = wheelfarm(project, "markupsafe==3.0.2", "--runner", "aarch64")
    assert bad_runner.returncode == 2
    assert "ARCH=LABEL" in bad_runner.stderr
