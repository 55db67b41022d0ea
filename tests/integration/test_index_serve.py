"""The wheelhouse as an index, for real: a C extension built by `wheelfarm build` on Debian 11, 12
and 13, indexed by `wheelfarm index`, served by `wheelfarm serve` on 127.0.0.1; inside each
Debian runtime container (host network) stock pip and uv install from that distro's root and
get the wheel built for it. Then `wheelfarm publish` to real pypiservers and stock pip installs
from the one holding a view; and `wheelfarm install` on this host, with the host's own pip."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import localserver
import pytest
from localserver import free_port, stop, wait_for

from wheelfarm import container, describe
from wheelfarm.targets import Target

pytestmark = pytest.mark.integration

PROJECT = "wf-idx-hello"
MODULE = "wf_idx_hello"
HELLO_C = r"""
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "The answer."}, {NULL, NULL, 0, NULL}
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "wf_idx_hello", NULL, -1, methods};
PyMODINIT_FUNC PyInit_wf_idx_hello(void) { return PyModule_Create(&module); }
"""
PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "wf-idx-hello"
version = "1.0"
description = "A C extension indexed by wheelfarm's tests"
requires-python = ">=3.9"
"""
SETUP_PY = """
from setuptools import Extension, setup
setup(ext_modules=[Extension("wf_idx_hello", ["hello.c"])])
"""
IMPORT_CHECK = (
    f"import {MODULE}; assert {MODULE}.answer() == 42; print('imported', {MODULE}.__file__)"
)
VENV_BIN = Path(sys.executable).parent


def wheelfarm(
    *args: str, env: dict[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        env={**base, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def write_project(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "hello.c").write_text(HELLO_C)
    (directory / "pyproject.toml").write_text(PYPROJECT)
    (directory / "setup.py").write_text(SETUP_PY)
    return directory


@pytest.fixture(scope="session")
def hello_sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's sdist, made on this host by setuptools (no code from an index runs)."""
    project = write_project(tmp_path_factory.mktemp("project") / "wf-idx-hello")
    dist = tmp_path_factory.mktemp("sdist")
    code = f"from setuptools import build_meta; build_meta.build_sdist({str(dist)!r})"
    made = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    (sdist,) = dist.glob("*.tar.gz")
    return sdist


@pytest.fixture(scope="session")
def wheelhouse(
    debian_targets: dict[str, Target], hello_sdist: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """wf-idx-hello built for real by `wheelfarm build` on debian-11, -12 and -13."""
    wh = tmp_path_factory.mktemp("wheelhouse")
    # Verification has tests of its own; here the wheels only need to exist.
    args = ["build", str(hello_sdist), "--wheelhouse", str(wh), "--json", "--no-verify"]
    for name in debian_targets:
        args += ["--target", name]
    built = wheelfarm(*args)
    assert built.returncode == 0, built.stderr[-4000:]
    if not (wh / hello_sdist.name).exists():
        shutil.copy2(hello_sdist, wh / hello_sdist.name)
    names = sorted(p.name for p in wh.glob("*.whl"))
    assert names == [
        "wf_idx_hello-1.0-cp311-cp311-linux_x86_64_debian_12.whl",
        "wf_idx_hello-1.0-cp313-cp313-linux_x86_64_debian_13.whl",
        "wf_idx_hello-1.0-cp39-cp39-linux_x86_64_debian_11.whl",
    ]
    return wh


@pytest.fixture(scope="session")
def site(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("published") / "site"
    # A corrupt wheel beside the real ones: reported, left out, never served.
    corrupt = wheelhouse / "wf_idx_hello-0.9-cp311-cp311-linux_x86_64_debian_12.whl"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    try:
        made = wheelfarm("index", str(wheelhouse), "-o", str(site))
    finally:
        corrupt.unlink()
    assert made.returncode == 0, made.stderr
    assert f"{corrupt.name} left out" in made.stderr
    return site


@pytest.fixture(scope="session")
def served(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`wheelfarm serve SITE --port 0` on 127.0.0.1; yields the base URL it prints."""
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wheelfarm", "serve", str(site), "--port", "0"],
            stderr=sink,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
    try:
        deadline = time.monotonic() + 60
        match = None
        while match is None and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            match = re.search(r"at (http://127\.0\.0\.1:\d+)/", log.read_text())
            time.sleep(0.2)
        assert match, log.read_text()
        base = match.group(1)
        wait_for(f"{base}/roots.json", proc)
        printed = log.read_text()
        for tag in ("debian_11", "debian_12", "debian_13"):
            assert f"{base}/linux_x86_64_{tag}/simple/" in printed, printed
        yield base
    finally:
        stop(proc)


def run_in(box: container.Container, command: str) -> tuple[int, str]:
    lines: list[str] = []
    code = box.run(command, on_output=lines.append, timeout=600)
    return code, "\n".join(lines)


def installed_tag(box: container.Container, python: str) -> str:
    code, out = run_in(
        box,
        f'{python} -c "import importlib.metadata as m; '
        f"print(m.distribution('{PROJECT}').read_text('WHEEL'))\"",
    )
    assert code == 0, out
    tags = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Tag:")]
    assert len(tags) == 1, out
    return tags[0]


def test_stock_pip_and_uv_install_the_wheel_built_for_each_distro(
    debian_target: Target, served: str, no_leftover_containers: None
) -> None:
    python = debian_target.python
    build_tag = f"linux_x86_64_debian_{debian_target.version}"
    root = f"{served}/{build_tag}/simple/"
    expected = f"{python.cpython_tag}-{python.cpython_tag}-{build_tag}"
    uv = shutil.which("uv", path=str(VENV_BIN)) or shutil.which("uv")
    assert uv, "uv is missing from the test environment: pip install -e '.[test]'"
    name = f"wf-test-index-{debian_target.name}-{os.getpid()}"
    with container.Container(
        debian_target.runtime_image, name=name, host_network=True, host_settings=False
    ) as box:
        code, out = run_in(
            box,
            "python3 -m venv /tmp/pipv && /tmp/pipv/bin/python -m pip install "
            "--disable-pip-version-check --no-cache-dir --only-binary :all: "
            f"--index-url {root} {PROJECT}",
        )
        assert code == 0, out
        code, out = run_in(box, f'/tmp/pipv/bin/python -c "{IMPORT_CHECK}"')
        assert code == 0 and "imported" in out, out
        assert installed_tag(box, "/tmp/pipv/bin/python") == expected

        box.copy_in(Path(uv), "/opt/wf-uv")
        code, out = run_in(
            box,
            "/opt/wf-uv/uv venv --no-config -q --python /usr/bin/python3 /tmp/uvv && "
            "/opt/wf-uv/uv pip install --no-config --no-cache --python /tmp/uvv/bin/python "
            f"--only-binary :all: --index-url {root} {PROJECT}",
        )
        assert code == 0, out
        code, out = run_in(box, f'/tmp/uvv/bin/python -c "{IMPORT_CHECK}"')
        assert code == 0 and "imported" in out, out
        assert installed_tag(box, "/tmp/uvv/bin/python") == expected


@pytest.fixture
def pypiserver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real pypiserver on 127.0.0.1 (no authentication: credentials are twine's business and
    come from the environment); yields its URL and its packages directory."""
    packages = tmp_path / "packages"
    packages.mkdir()
    with localserver.pypiserver(packages) as url:
        yield url, packages


SECRET = "wf-test-twine-password-do-not-log"
TWINE_ENV = {"TWINE_USERNAME": "wf-test", "TWINE_PASSWORD": SECRET}


def test_publish_canonical_wheels_skipping_what_is_there(
    wheelhouse: Path, pypiserver: tuple[str, Path]
) -> None:
    url, packages = pypiserver
    first = wheelfarm("publish", str(wheelhouse), "--repository-url", f"{url}/", env=TWINE_ENV)
    assert first.returncode == 0, first.stderr
    assert SECRET not in first.stdout + first.stderr
    expected = sorted(p.name for p in wheelhouse.iterdir() if p.is_file())
    assert sorted(p.name for p in packages.iterdir()) == expected
    assert any("linux_x86_64_debian_11" in name for name in expected)
    again = wheelfarm("publish", str(wheelhouse), "--repository-url", f"{url}/", env=TWINE_ENV)
    assert again.returncode == 0, again.stderr
    assert "0 uploaded, 4 already there" in again.stderr
    assert again.stdout == ""
    with urllib.request.urlopen(f"{url}/simple/{PROJECT}/", timeout=10) as response:
        page = response.read().decode()
    assert "wf_idx_hello-1.0-cp311-cp311-linux_x86_64_debian_12.whl" in page


def test_publish_a_view_and_install_from_it_with_stock_pip(
    wheelhouse: Path, pypiserver: tuple[str, Path], debian_targets: dict[str, Target],
    no_leftover_containers: None,
) -> None:  # fmt: skip
    url, packages = pypiserver
    published = wheelfarm(
        "publish", str(wheelhouse), "--repository-url", f"{url}/", "--target", "debian-12",
        env=TWINE_ENV,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    assert sorted(p.name for p in packages.iterdir()) == [
        "wf_idx_hello-1.0-cp311-cp311-linux_x86_64.whl",
        "wf_idx_hello-1.0.tar.gz",
    ]
    target = debian_targets["debian-12"]
    name = f"wf-test-pypiserver-{os.getpid()}"
    with container.Container(
        target.runtime_image, name=name, host_network=True, host_settings=False
    ) as box:
        code, out = run_in(
            box,
            "python3 -m venv /tmp/v && /tmp/v/bin/python -m pip install "
            "--disable-pip-version-check --no-cache-dir --only-binary :all: "
            f'--index-url {url}/simple/ {PROJECT} && /tmp/v/bin/python -c "{IMPORT_CHECK}"',
        )
        assert code == 0, out
        assert installed_tag(box, "/tmp/v/bin/python") == "cp311-cp311-linux_x86_64_debian_12"


def test_publishing_another_view_to_the_same_repository_is_refused(
    wheelhouse: Path, pypiserver: tuple[str, Path], tmp_path: Path
) -> None:
    """Two views share plain names: the second one's file is compared with the server's
    (sha256 from its simple page) and refused, not silently skipped; the same view again is
    skipped file by file."""
    url, packages = pypiserver
    view = ("--repository-url", f"{url}/", "--target", "debian-12")
    first = wheelfarm("publish", str(wheelhouse), *view, env=TWINE_ENV)
    assert first.returncode == 0, first.stderr
    held = {p.name: p.read_bytes() for p in packages.iterdir()}
    assert "wf_idx_hello-1.0-cp311-cp311-linux_x86_64.whl" in held

    again = wheelfarm("publish", str(wheelhouse), *view, env=TWINE_ENV)
    assert again.returncode == 0, again.stderr
    assert "0 uploaded, 2 already there" in again.stderr

    # Another distro's wheel of the same Python: the same plain name, other bytes.
    other = tmp_path / "other"
    source = wheelhouse / "wf_idx_hello-1.0-cp311-cp311-linux_x86_64_debian_12.whl"
    made = wheelfarm("retag", str(source), "--platform", "linux_x86_64_ubuntu_22_04", "-o",
                     str(other))  # fmt: skip
    assert made.returncode == 0, made.stderr
    refused = wheelfarm(
        "publish", str(other), "--repository-url", f"{url}/", "--target",
        "linux_x86_64_ubuntu_22_04", env=TWINE_ENV,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert (
        "this repository holds another file under the name "
        "wf_idx_hello-1.0-cp311-cp311-linux_x86_64.whl" in refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert {p.name: p.read_bytes() for p in packages.iterdir()} == held  # nothing replaced


def test_publishing_without_credentials_says_how_to_give_them(
    wheelhouse: Path, pypiserver: tuple[str, Path]
) -> None:
    url, packages = pypiserver
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHEELFARM_", "TWINE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "wheelfarm", "publish", str(wheelhouse), "--repository-url",
         f"{url}/"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "no credentials" in result.stderr
    assert "TWINE_USERNAME" in result.stderr and "any values" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(packages.iterdir()) == []


@pytest.fixture(scope="session")
def host_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wf-idx-hello compiled on this host by pip and retagged with this host's build tag."""
    project = write_project(tmp_path_factory.mktemp("host-project") / "wf-idx-hello")
    out = tmp_path_factory.mktemp("host-wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(out), str(project)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (plain,) = out.glob("*.whl")
    tagset = describe.describe(None, None, [])
    wheelhouse = tmp_path_factory.mktemp("host-wheelhouse")
    retagged = wheelfarm("retag", str(plain), "--platform", tagset.build, "-o", str(wheelhouse))
    assert retagged.returncode == 0, retagged.stderr
    (wheel,) = wheelhouse.glob("*.whl")
    return wheel


@pytest.fixture
def fresh_venv(tmp_path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    return tmp_path / "venv" / "bin" / "python"


def test_wheelfarm_install_picks_this_hosts_root(
    host_wheel: Path, fresh_venv: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    made = wheelfarm("index", str(host_wheel.parent), "-o", str(site))
    assert made.returncode == 0, made.stderr
    tagset = describe.describe(None, None, [])
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", "serve", str(site), "--port", str(port)],
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/roots.json", proc)
        result = wheelfarm(
            "install", PROJECT, "--index", f"http://127.0.0.1:{port}/", "--python",
            str(fresh_venv), "--pip-args", "--only-binary :all: --no-cache-dir",
        )  # fmt: skip
    finally:
        stop(proc)
    assert result.returncode == 0, result.stderr
    roots = json.loads((site / "roots.json").read_text())["roots"]
    have = {r["tag"] for r in roots}
    chosen = next(t for t in (tagset.host, tagset.default_build, tagset.build) if t in have)
    assert f"installing from root {chosen}" in result.stderr
    check = subprocess.run(
        [str(fresh_venv), "-c", IMPORT_CHECK], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    # The site's directory works as well as its URL (pip reads file: indexes).
    local = wheelfarm(
        "install", PROJECT, "--index", str(site), "--python", str(fresh_venv),
        "--pip-args", "--only-binary :all: --no-cache-dir --force-reinstall --no-deps",
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    assert f"installing from root {chosen} (file://" in local.stderr


def test_wheelfarm_install_of_a_wheel_file_uses_its_plain_name(
    host_wheel: Path, fresh_venv: Path
) -> None:
    result = wheelfarm(
        "install", str(host_wheel), "--python", str(fresh_venv),
        "--pip-args", "--no-index --no-deps",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(same bytes, the name stock pip accepts)" in result.stderr
    shown = subprocess.run(
        [str(fresh_venv), "-c",
         f"import importlib.metadata as m; print(m.distribution('{PROJECT}').read_text('WHEEL'))"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    tag = "-".join(host_wheel.name.removesuffix(".whl").split("-")[2:5])
    assert f"Tag: {tag}" in shown.stdout, shown.stdout
