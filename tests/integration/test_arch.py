"""aarch64 for real on this x86_64 machine: markupsafe 3.0.2 built for debian-12 aarch64 in the
aarch64 build image under QEMU's emulation, verified in the aarch64 runtime image (network cut,
stock pip), indexed under its own root and installed from it with `wheelfarm install --arch`;
and a wheel holding an extension for another CPU is a failed build, not a mislabelled wheel.

Needs the debian-12 aarch64 images (scripts/test makes them: scripts/setup --arch aarch64
debian-12) and a registered qemu-aarch64 emulator; nothing here skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from wheelfarm import container, emulation, images, targets
from wheelfarm.errors import WheelfarmError

pytestmark = pytest.mark.integration

ARCH = "aarch64"
AARCH64 = 183  # e_machine
X86_64 = 62


def wheelfarm(*args: str, cache: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env["XDG_CACHE_HOME"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


def machine_of(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


@pytest.fixture(scope="module")
def aarch64_debian_12(engine: None) -> targets.Target:
    target = targets.get("debian-12").with_arch(ARCH)
    why = emulation.problem(ARCH)
    if why is not None:
        pytest.fail(f"{why}: run {emulation.fix_command(ARCH)}", False)
    try:
        for stage in images.STAGES:
            images.require(target, stage)
    except WheelfarmError as exc:
        pytest.fail(f"{exc.message}\n{exc.hint}", False)
    return target


@pytest.fixture(scope="module")
def built(
    aarch64_debian_12: targets.Target, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], Path]:
    """One build with its verification, from a cold cache of its own."""
    root = tmp_path_factory.mktemp("arch")
    wheelhouse, cache = root / "wh", root / "cache"
    run = wheelfarm(
        "build", "markupsafe==3.0.2", "--target", "debian-12", "--arch", "arm64",
        "--wheelhouse", str(wheelhouse), "--json", cache=cache,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    return wheelhouse, json.loads(run.stdout), cache


def test_an_aarch64_wheel_is_built_tagged_and_recorded_as_aarch64(
    built: tuple[Path, dict[str, Any], Path],
) -> None:
    wheelhouse, summary, _cache = built
    [result] = summary["results"]
    name = "markupsafe-3.0.2-cp311-cp311-linux_aarch64_debian_12.whl"
    assert (result["target"], result["arch"], result["status"]) == ("debian-12", ARCH, "built")
    assert (result["wheel"], result["tag"]) == (name, "linux_aarch64_debian_12")
    assert result["log"] == ".wheelfarm/logs/markupsafe-3.0.2-debian-12-aarch64.log"
    assert (wheelhouse / result["log"]).is_file()
    with zipfile.ZipFile(wheelhouse / name) as wheel:
        extensions = [n for n in wheel.namelist() if n.endswith(".so")]
        assert extensions, "markupsafe has its C speedups"
        for extension in extensions:
            assert machine_of(wheel.read(extension)) == AARCH64, extension
        wheel_file = wheel.read("markupsafe-3.0.2.dist-info/WHEEL").decode()
    assert "Tag: cp311-cp311-linux_aarch64_debian_12" in wheel_file
    record = json.loads((wheelhouse / ".wheelfarm" / f"{name}.json").read_text())
    assert (record["target"], record["arch"]) == ("debian-12", ARCH)
    assert record["image"] == "wheelfarm/debian-12:build-aarch64"


def test_the_aarch64_wheel_is_verified_in_the_aarch64_runtime_image(
    built: tuple[Path, dict[str, Any], Path],
) -> None:
    _wheelhouse, summary, _cache = built
    verification = summary["verify"]
    passed = [c for c in verification["results"] if c["status"] == "pass"]
    assert [(c["wheel"], c["target"], c["arch"]) for c in passed] == [
        ("markupsafe-3.0.2-cp311-cp311-linux_aarch64_debian_12.whl", "debian-12", ARCH)
    ]
    [view] = verification["targets"]
    assert (view["name"], view["target"], view["arch"], view["image"]) == (
        "debian-12-aarch64",
        "debian-12",
        ARCH,
        "wheelfarm/debian-12:runtime-aarch64",
    )


def test_the_index_has_an_aarch64_root_and_install_picks_it_by_arch(
    built: tuple[Path, dict[str, Any], Path], tmp_path: Path
) -> None:
    wheelhouse, _summary, cache = built
    site = tmp_path / "site"
    made = wheelfarm("index", str(wheelhouse), "-o", str(site), cache=cache)
    assert made.returncode == 0, made.stderr
    root = site / "linux_aarch64_debian_12" / "simple" / "markupsafe"
    assert root.is_dir(), sorted(p.name for p in site.iterdir())
    # pip on this x86_64 host installs for aarch64 only into a folder, with the plain platform.
    into = tmp_path / "installed"
    pip_args = (
        f"--target {into} --platform linux_aarch64 --python-version 3.11 --implementation cp "
        "--only-binary=:all: --no-deps -q"
    )
    installed = wheelfarm(
        "install", "markupsafe==3.0.2", "--index", str(site), "--arch", ARCH,
        "--pip-args", pip_args, cache=cache,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert "root linux_aarch64_debian_12" in installed.stderr
    [extension] = into.glob("markupsafe/_speedups*.so")
    assert machine_of(extension.read_bytes()) == AARCH64


def test_an_extension_for_another_cpu_fails_the_build(
    debian_targets: dict[str, targets.Target], tmp_path: Path
) -> None:
    """A project whose wheel carries a prebuilt aarch64 library, built for x86_64 (natively, so
    the test is quick): the ELF check refuses it; nothing is placed in the wheelhouse."""
    project = tmp_path / "wf-test-wrong-cpu"
    (project / "wf_test_wrong_cpu").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "wf-test-wrong-cpu"\nversion = "1.0"\n'
    )
    (project / "setup.py").write_text(
        "from setuptools import setup\nfrom setuptools.dist import Distribution\n\n\n"
        "class Binary(Distribution):\n    def has_ext_modules(self):\n        return True\n\n\n"
        "setup(packages=['wf_test_wrong_cpu'], distclass=Binary,\n"
        "      package_data={'wf_test_wrong_cpu': ['_native.so']})\n"
    )
    (project / "wf_test_wrong_cpu" / "__init__.py").write_text("")
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + (3).to_bytes(2, "little") + AARCH64.to_bytes(2, "little") + bytes(44)
    (project / "wf_test_wrong_cpu" / "_native.so").write_bytes(header)
    wheelhouse = tmp_path / "wh"
    run = wheelfarm(
        "build", str(project), "--target", "debian-12", "--arch", "x86_64", "--no-verify",
        "--wheelhouse", str(wheelhouse), "--json", cache=tmp_path / "cache",
    )  # fmt: skip
    assert run.returncode == 1, run.stderr[-3000:]
    [result] = json.loads(run.stdout)["results"]
    assert result["status"] == "failed"
    assert "ELF files for another CPU than x86_64" in result["error"]
    assert "wf_test_wrong_cpu/_native.so (aarch64)" in result["error"]
    assert not list(wheelhouse.glob("*.whl"))


def test_the_aarch64_images_record_their_architecture(aarch64_debian_12: targets.Target) -> None:
    """The bootstrapped base (loaded from an image config wheelfarm wrote) and both stages built
    on it say arm64, and the stages' label carries the aarch64 tag."""
    refs = [images.bootstrap_base_ref(aarch64_debian_12)]
    refs += [aarch64_debian_12.image(stage) for stage in images.STAGES]
    assert refs[0] == "wheelfarm/base:debian-12-aarch64"
    for ref in refs:
        if container.image_id(ref) is None and ref == refs[0]:
            continue  # built from a registry's base (GitHub's CI) rather than bootstrapped
        assert container.image_arch(ref) == "arm64", ref
    for ref in refs[1:]:
        assert container.image_labels(ref)["org.wheelfarm.tag"] == "linux_aarch64_debian_12"


def test_requires_external_names_the_aarch64_images_package(
    aarch64_debian_12: targets.Target, tmp_path: Path
) -> None:
    """A C extension linking libbz2 (which Debian's python3.11 does not load itself), built for
    aarch64 with its recipe's libbz2-dev: the ELF analysis in the aarch64 container names the
    library's package, as on x86_64, and the verification installs it in the aarch64 runtime
    image before importing."""
    module = "wf_test_arm_bz2"
    project = tmp_path / "wf-test-arm-bz2"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "wf-test-arm-bz2"\nversion = "1.0"\n'
    )
    (project / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        f"setup(ext_modules=[Extension('{module}', ['{module}.c'], libraries=['bz2'])])\n"
    )
    (project / f"{module}.c").write_text(
        "#include <Python.h>\n#include <bzlib.h>\n"
        "static PyObject *v(PyObject *s, PyObject *a)\n"
        "{ return PyUnicode_FromString(BZ2_bzlibVersion()); }\n"
        'static PyMethodDef m[] = {{"version", v, METH_NOARGS, NULL}, {NULL}};\n'
        f'static struct PyModuleDef d = {{PyModuleDef_HEAD_INIT, "{module}", NULL, -1, m}};\n'
        f"PyMODINIT_FUNC PyInit_{module}(void) {{ return PyModule_Create(&d); }}\n"
    )
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "wf-test-arm-bz2.toml").write_text(
        '[build.packages]\napt = ["libbz2-dev"]\n[verify]\n'
        f"test = \"python -c 'import {module}; print({module}.version())'\"\n"
    )
    run = wheelfarm(
        "build", str(project), "--target", "debian-12", "--arch", ARCH, "--recipes",
        str(recipes), "--wheelhouse", str(tmp_path / "wh"), "--json", cache=tmp_path / "cache",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    summary = json.loads(run.stdout)
    [result] = summary["results"]
    assert result["tag"] == "linux_aarch64_debian_12"
    assert result["requires_external"] == ["libbz2-1.0"]
    assert [c["status"] for c in summary["verify"]["results"]] == ["pass"]
