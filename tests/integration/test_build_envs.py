"""Build environments made by uv (or pip, on request) in real debian-12 build containers: they
come from the index the host's pip is configured for, are reused by specs whose resolved set
matches (with the same wheel bytes as a fresh one), and the project's own code cannot write to
any cache or shared environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from localserver import pypiserver
from test_build import environment, run_wheelfarm, write_project

from wheelfarm.targets import Target

TARGET = "debian-12"
C_SETUP = """from setuptools import Extension, setup
setup(ext_modules=[Extension("{module}", ["{module}.c"])])
"""
C_SOURCE = """#include <Python.h>
static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{module}", NULL, -1, NULL}};
PyMODINIT_FUNC PyInit_{module}(void) {{ return PyModule_Create(&def); }}
"""
# Tries every cache and environment folder a build container has, and says what it could do.
POISON_SETUP = """import glob, os
from setuptools import setup
targets = ["/wf/pip-cache", "/wf/pip-cache/wheels", "/wf/uv-cache", "/wf/uv", "/wf/envs",
           "/wf/env", os.environ.get("PIP_CACHE_DIR"), os.environ.get("UV_CACHE_DIR")]
targets += glob.glob("/wf/envs/*") + glob.glob("/wf/envs/*/lib/python*/site-packages")
targets += glob.glob("/wf/uv-cache/*") + glob.glob("/wf/pip-cache/*")
for folder in sorted(set(filter(None, targets))):
    try:
        with open(os.path.join(folder, "wheelfarm-poison"), "w") as handle:
            handle.write("x")
        print("wheelfarm-poison: WROTE " + folder)
    except OSError as exc:
        print("wheelfarm-poison: denied %s (%s)" % (folder, exc.strerror))
setup(ext_modules=[])
"""


def c_project(root: Path, name: str, build_requires: str = '"setuptools"') -> Path:
    module = name.replace("-", "_")
    project = write_project(
        root / name,
        name,
        "1.0",
        {"setup.py": C_SETUP.format(module=module), f"{module}.c": C_SOURCE.format(module=module)},
    )
    (project / "pyproject.toml").write_text(
        f"[build-system]\nrequires = [{build_requires}]\n"
        'build-backend = "setuptools.build_meta"\n'
        f'\n[project]\nname = "{name}"\nversion = "1.0"\n'
    )
    return project


def build(*args: str, env: dict[str, str], wheelhouse: Path) -> dict[str, object]:
    run = run_wheelfarm(
        "build", *args, "--target", TARGET, "--no-verify", "--json", "--wheelhouse",
        str(wheelhouse), env=env,
    )  # fmt: skip
    assert run.code == 0, run.stderr[-3000:]
    return run.summary


def record_of(wheelhouse: Path, wheel: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((wheelhouse / ".wheelfarm" / f"{wheel}.json").read_text())
    return data


def test_the_build_environment_comes_from_the_hosts_configured_index(
    tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    """The host's pip configuration names a pypiserver on 127.0.0.1 holding one old setuptools:
    uv, inside the container, installs that one (it reads no pip configuration of its own)."""
    packages = tmp_path / "packages"
    packages.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
         "-d", str(packages), "setuptools==75.1.0"],
        check=True,
    )  # fmt: skip
    project = c_project(tmp_path / "src", "wf-from-local-index")
    log = tmp_path / "pypiserver.log"
    with pypiserver(packages, log) as url:
        pip_conf = tmp_path / "pip.conf"
        pip_conf.write_text(f"[global]\nindex-url = {url}/simple/\n")
        env = {**environment(tmp_path / "cache"), "PIP_CONFIG_FILE": str(pip_conf)}
        env.pop("PIP_INDEX_URL", None)
        summary = build(str(project), env=env, wheelhouse=tmp_path / "wh")
    [result] = summary["results"]  # type: ignore[index]
    record = record_of(tmp_path / "wh", result["wheel"])
    assert record["build_requires"]["setuptools"] == "75.1.0"  # type: ignore[index]
    assert "/packages/setuptools-75.1.0" in log.read_text()


def test_a_reused_environment_builds_the_same_bytes_as_a_fresh_one(
    tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    first = c_project(tmp_path / "src", "wf-env-first")
    second = c_project(tmp_path / "src", "wf-env-second")
    together = build(
        str(first), str(second), "--jobs", "1", env=environment(tmp_path / "c1"),
        wheelhouse=tmp_path / "together",
    )  # fmt: skip
    alone = build(str(second), env=environment(tmp_path / "c2"), wheelhouse=tmp_path / "alone")
    wheels = {r["spec"]: r["wheel"] for r in together["results"]}  # type: ignore[index]
    logs = [(tmp_path / "together" / r["log"]).read_text() for r in together["results"]]  # type: ignore[index]
    assert sum("reusing the build environment" in text for text in logs) == 1, logs
    [fresh] = alone["results"]  # type: ignore[index]
    assert "reusing" not in (tmp_path / "alone" / fresh["log"]).read_text()
    reused = (tmp_path / "together" / wheels[str(second)]).read_bytes()
    assert reused == (tmp_path / "alone" / fresh["wheel"]).read_bytes()


def test_the_projects_code_cannot_write_to_a_cache_or_a_shared_environment(
    tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    poison = write_project(tmp_path / "src" / "wf-poison", "wf-poison", "1.0",
                           {"setup.py": POISON_SETUP})  # fmt: skip
    cache = tmp_path / "cache"
    summary = build(str(poison), "--force", env=environment(cache), wheelhouse=tmp_path / "wh")
    [result] = summary["results"]  # type: ignore[index]
    log = (tmp_path / "wh" / result["log"]).read_text()
    tried = [line for line in log.splitlines() if line.startswith("wheelfarm-poison: ")]
    assert tried and all("denied" in line for line in tried), tried
    assert any("/wf/envs/" in line for line in tried)  # its own, shared environment too
    assert not list(cache.rglob("wheelfarm-poison"))


@pytest.mark.parametrize("spec", ["pyyaml==6.0.2"])
def test_the_pip_installer_still_works_and_makes_the_same_wheel(
    spec: str, tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    by_uv = build(spec, env=environment(tmp_path / "c1"), wheelhouse=tmp_path / "uv")
    by_pip = build(
        spec, "--installer", "pip", env=environment(tmp_path / "c2"), wheelhouse=tmp_path / "pip"
    )
    [uv_result], [pip_result] = by_uv["results"], by_pip["results"]  # type: ignore[index]
    assert uv_result["wheel"] == pip_result["wheel"]
    uv_wheel = (tmp_path / "uv" / uv_result["wheel"]).read_bytes()
    assert uv_wheel == (tmp_path / "pip" / pip_result["wheel"]).read_bytes()
    pip_log = (tmp_path / "pip" / pip_result["log"]).read_text()
    assert "build environment at /wf/env/pyyaml-6.0.2" in pip_log
    record = record_of(tmp_path / "pip", pip_result["wheel"])
    assert record["build_env"]["WHEELFARM_INSTALLER"] == "pip"  # type: ignore[index]
