"""uv, the tool that makes build environments inside the build containers.

wheelfarm uses uv's static musl build (the `uv` wheel for musllinux), which runs on every target
(glibc or musl, CentOS 7 included). It is downloaded once per architecture on the host, with the
host's pip and so the host's index settings, checked against the pinned sha256, unpacked into
wheelfarm's data directory (`<user data dir>/tools/uv-<version>-<arch>/uv`, not the cache: it is
an installed tool, like the images) and mounted read-only into the build containers: the
containers never download it.

Inside a container uv reads neither PIP_* variables nor pip.conf: `uv_environment` maps the index
settings a container was given (hostenv) to uv's own."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from wheelfarm.errors import EnvironmentProblem

VERSION = "0.13.9"
# The sha256 of that release's static musl wheel, per architecture (as the index lists them).
WHEELS = {
    "x86_64": "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
    "aarch64": "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
}
MOUNT = "/wf/uv"  # where the binary's folder appears in a build container (read-only)
BINARY = f"{MOUNT}/uv"


def available(arch: str) -> bool:
    """Whether a uv build exists for this architecture (else builds fall back to pip)."""
    return arch in WHEELS


def home(arch: str) -> Path:
    return (
        platformdirs.user_data_path("wheelfarm", appauthor=False) / "tools" / f"uv-{VERSION}-{arch}"
    )


def binary_dir(arch: str) -> Path:
    """The folder holding uv for `arch`, downloaded and unpacked on first use."""
    folder = home(arch)
    if (folder / "uv").is_file():
        return folder
    sha256 = WHEELS[arch]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheelfarm-uv-", dir=folder.parent) as temp:
        wheel = _download(arch, Path(temp))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != sha256:
            raise EnvironmentProblem(
                f"{wheel.name} from the index has sha256 {digest}, not the pinned {sha256}",
                hint="the index serves other bytes under that name; use --installer pip meanwhile",
            )
        staged = Path(temp) / "uv-dir"
        staged.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(f"uv-{VERSION}.data/scripts/uv")
        (staged / "uv").write_bytes(data)
        (staged / "uv").chmod(0o755)
        staged.chmod(0o755)
        try:
            staged.replace(folder)
        except OSError:
            if not (folder / "uv").is_file():  # another run placed it meanwhile: keep that one
                raise
    return folder


def _download(arch: str, directory: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", f"uv=={VERSION}", "--no-deps",
        "--only-binary=:all:", f"--platform=musllinux_1_1_{arch}", "--python-version=3.12",
        "--dest", str(directory), "--quiet", "--disable-pip-version-check",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = sorted(directory.glob("uv-*.whl"))
    if done.returncode != 0 or len(found) != 1:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentProblem(
            f"could not download uv {VERSION} for {arch} with the host's pip: {last}",
            hint="check the host's index settings (pip config list), or build with --installer pip",
        )
    return found[0]


def uv_environment(container_env: Mapping[str, str]) -> dict[str, str]:
    """uv's own settings for the index settings a container got from the host (PIP_* variables
    from the host's environment and pip configuration; the CA bundle is already in
    SSL_CERT_FILE, which uv reads, and proxies in the standard variables)."""
    env: dict[str, str] = {
        # The cache is on another file system than the environments: copy, and say nothing.
        "UV_LINK_MODE": "copy",
        "UV_NO_PROGRESS": "1",
        "UV_PYTHON_DOWNLOADS": "never",
    }
    index = container_env.get("PIP_INDEX_URL")
    if index:
        env["UV_DEFAULT_INDEX"] = index
    extra = container_env.get("PIP_EXTRA_INDEX_URL")
    if extra:
        env["UV_INDEX"] = " ".join(extra.split())
    trusted = container_env.get("PIP_TRUSTED_HOST")
    if trusted:
        env["UV_INSECURE_HOST"] = " ".join(trusted.split())
    timeout = container_env.get("PIP_DEFAULT_TIMEOUT")
    if timeout:
        env["UV_HTTP_TIMEOUT"] = timeout
    proxy = container_env.get("PIP_PROXY")
    if proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY"):
            env[name] = container_env.get(name) or proxy
    return env
