"""Build and verify real wheels on the targets named by WHEELFARM_TEST_TARGETS (comma-separated;
default debian-12, which scripts/setup bootstraps here). On GitHub, ci.yml runs this file once
per Alpine, Ubuntu, CentOS and Rocky/Alma target after `wheelfarm images build <target>`. A
missing image is a failure with the command that makes it, never a skip.

What is built there is every shipped recipe: pyyaml and markupsafe, and lxml, psycopg2 and cffi,
whose apk/dnf/yum package lists are otherwise never exercised, in releases chosen per Python
(target_specs); a pinned release that cannot serve the target's Python is expected `skipped`
(markupsafe 3.0.2 on centos-7). Each wheel is verified by `wheelfarm build` in the target's
runtime image (its recipe's system packages, import, test).

Also: a project's extra target (declared in pyproject.toml, built from the generic Dockerfile
of its package-manager family) is planned, imaged and built like a shipped one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from wheelfarm import config, targets

pytestmark = pytest.mark.integration

TEST_TARGETS = config.split_list(os.environ.get("WHEELFARM_TEST_TARGETS", "")) or ["debian-12"]
SPECS = ("pyyaml==6.0.2", "markupsafe==3.0.2")


def _at_least(python: str, version: tuple[int, int]) -> bool:
    major, minor = (int(part) for part in python.split("."))
    return (major, minor) >= version


def cffi_spec(python: str) -> str:
    """A current cffi where the target's Python allows it: 2.0 needs Python 3.9, and 1.17.1 is
    the last release for 3.8 (CentOS 7)."""
    return "cffi==1.17.1" if python == "3.8" else "cffi==2.0.0"


def target_specs(python: str) -> tuple[str, ...]:
    """What a target whose Python is `python` builds and verifies: the oldest releases this suite
    pins that build on it. Python 3.14 (Ubuntu 26.04, Alpine 3.24+) needs pyyaml 6.0.3,
    markupsafe 3.0.3, psycopg2 2.9.11 and lxml 6.0.2 (which builds against libxml2 2.14/2.15,
    those distros' own). CentOS 7 (3.8) gets lxml 4.9.4: lxml 5 documents libxml2 >= 2.9.2 and
    CentOS 7 ships 2.9.1; markupsafe 3.0.2 needs 3.9 there, so it is planned as skipped
    (skipped_specs) and none is built."""
    if _at_least(python, (3, 14)):
        pinned = ("pyyaml==6.0.3", "markupsafe==3.0.3", "lxml==6.0.2", "psycopg2==2.9.11")
    elif python == "3.8":
        pinned = ("pyyaml==6.0.2", "lxml==4.9.4", "psycopg2==2.9.10")
    else:
        pinned = ("pyyaml==6.0.2", "markupsafe==3.0.2", "lxml==5.3.0", "psycopg2==2.9.10")
    return (*pinned, cffi_spec(python))


def skipped_specs(python: str) -> tuple[str, ...]:
    """Pinned releases whose Requires-Python excludes `python`: planned, and skipped (not a
    failure) with the reason."""
    return ("markupsafe==3.0.2",) if python == "3.8" else ()


EXTRA_NAME = "debian-12-extra"


def wheelfarm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def require_images(target: str) -> None:
    for stage in ("build", "runtime"):
        ref = f"wheelfarm/{target}:{stage}-{targets.host_arch()}"
        if docker("image", "inspect", ref).returncode != 0:
            pytest.fail(
                f"image {ref} is missing: make it with `wheelfarm images build {target}` "
                f"(or `wheelfarm images bootstrap {target}` for Debian)"
            )


def expected_build_tag(image: str, tmp_path: Path) -> str:
    """The build tag wheelfarm's tag engine gives the image's own os-release."""
    name = f"wf-test-os-release-{os.getpid()}"
    shown = docker("run", "--rm", "--name", name, "--network", "none", image, "cat",
                   "/etc/os-release")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    os_release = tmp_path / "os-release"
    os_release.write_text(shown.stdout, encoding="utf-8")
    described = wheelfarm("tags", "--os-release", str(os_release), "--arch", "x86_64", "--json")
    assert described.returncode == 0, described.stderr
    build_tag = json.loads(described.stdout)["build"]
    assert isinstance(build_tag, str)
    return build_tag


def check_wheels(
    wheelhouse: Path, python: str, platform_tag: str, specs: tuple[str, ...] = SPECS
) -> None:
    """One wheel per spec, of that version, for the target's CPython and build tag, with a
    compiled extension in it."""
    cp = "cp" + python.replace(".", "")
    wheels = {}
    for path in wheelhouse.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
        assert name not in wheels, f"two wheels of {name}: {wheels.get(name)}, {path.name}"
        wheels[name] = (str(version), path)
    for spec in specs:
        project, _, version = spec.partition("==")
        found = wheels.get(canonicalize_name(project))
        assert found is not None, f"{project}: {sorted(p.name for p in wheelhouse.iterdir())}"
        assert found[0] == version, (spec, found[1].name)
        wheel = found[1]
        assert wheel.name.endswith(f"-{cp}-{cp}-{platform_tag}.whl"), wheel.name
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            assert archive.testzip() is None
        assert any(n.endswith(".so") for n in names), f"{wheel.name} has no compiled extension"


@pytest.mark.parametrize("name", TEST_TARGETS)
def test_build_and_verify_on_target(name: str, tmp_path: Path) -> None:
    target = targets.get(name)
    require_images(name)
    wheelhouse = tmp_path / "wheelhouse"
    python = target.python.version
    specs, skipped = target_specs(python), skipped_specs(python)
    result = wheelfarm(
        "build", *specs, *skipped, "--target", name, "--wheelhouse", str(wheelhouse), "--json"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert {r["target"] for r in summary["results"]} == {name}
    # A release that cannot serve this Python is skipped with its reason, not failed.
    for spec in skipped:
        project, _, version = spec.partition("==")
        (entry,) = [r for r in summary["results"] if project in json.dumps(r)]
        assert entry["status"] == "skipped", entry
        assert f"{project} {version} requires Python" in json.dumps(entry), entry
        assert f"{name} builds for {python}" in json.dumps(entry), entry
    check_wheels(wheelhouse, python, expected_build_tag(target.build_image, tmp_path), specs)
    # Each wheel passed on this target: installed with its recipe's system packages, imported,
    # its recipe's test run.
    passed = {
        r["wheel"] for r in summary["verify"]["results"] if r["target"] == name
        and r["status"] == "pass"
    }  # fmt: skip
    assert passed == {p.name for p in wheelhouse.glob("*.whl")}, summary["verify"]["results"]


def test_specs_are_chosen_per_python() -> None:
    """Every shipped target's Python gets one spec per recipe, each release serving it."""
    for target in targets.TARGETS:
        python = target.python.version
        projects = [s.partition("==")[0] for s in (*target_specs(python), *skipped_specs(python))]
        assert sorted(projects) == ["cffi", "lxml", "markupsafe", "psycopg2", "pyyaml"], target
    assert "lxml==4.9.4" in target_specs("3.8") and "markupsafe==3.0.2" in skipped_specs("3.8")
    assert "lxml==6.0.2" in target_specs("3.14")


def local_base() -> str:
    """A Debian 12 base this engine already has: the registry's (GitHub) or the bootstrapped
    one (here)."""
    bootstrapped = f"wheelfarm/base:debian-12-{targets.host_arch()}"
    for candidate in ("debian:12", bootstrapped, "wheelfarm/base:debian-12"):
        if docker("image", "inspect", candidate).returncode == 0:
            return candidate
    pytest.fail(
        "no Debian 12 base image: run `wheelfarm images bootstrap debian-12` (no registry) "
        "or `docker pull debian:12`"
    )


def test_extra_target_is_built_like_a_shipped_one(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()
    (project / "pyproject.toml").write_text(
        f"""[tool.wheelfarm]
specs = ["pyyaml==6.0.2", "markupsafe==3.0.2"]
targets = ["{EXTRA_NAME}"]
wheelhouse = "wheels"

[[tool.wheelfarm.extra-targets]]
name = "{EXTRA_NAME}"
base = "{local_base()}"
family = "apt"
python = "3.11"
""",
        encoding="utf-8",
    )

    planned = wheelfarm("matrix", cwd=project)
    assert planned.returncode == 0, planned.stderr
    arch = targets.host_arch()
    assert json.loads(planned.stdout)["include"] == [
        {
            "target": EXTRA_NAME,
            "arch": arch,
            "image": f"wheelfarm/{EXTRA_NAME}:build-{arch}",
            "python": "3.11",
            "specs": "pyyaml==6.0.2 markupsafe==3.0.2",
            "runner": "ubuntu-latest",
        }
    ]

    listed = wheelfarm("images", "list", EXTRA_NAME, "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["family"] == "apt"

    made = wheelfarm("images", "build", EXTRA_NAME, cwd=project)
    assert made.returncode == 0, made.stderr[-4000:]
    require_images(EXTRA_NAME)

    built = wheelfarm("build", "--json", cwd=project)
    assert built.returncode == 0, built.stderr[-4000:]
    assert {r["target"] for r in json.loads(built.stdout)["results"]} == {EXTRA_NAME}
    check_wheels(
        project / "wheels",
        "3.11",
        expected_build_tag(f"wheelfarm/{EXTRA_NAME}:build-{arch}", tmp_path),
    )
    # No container is left on the extra target's images (unique to this test).
    for stage in ("build", "runtime"):
        ancestor = f"ancestor=wheelfarm/{EXTRA_NAME}:{stage}-{arch}"
        assert not docker("ps", "-aq", "--filter", ancestor).stdout.strip()
