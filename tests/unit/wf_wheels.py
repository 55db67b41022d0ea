"""Real, tiny distributions for index tests: wheels (zip with METADATA, WHEEL, RECORD) and sdists
(tar.gz with PKG-INFO), written the way build backends write them."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def metadata(name: str, version: str, requires_python: str | None = ">=3.9") -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    return ("\n".join(lines) + "\n\nA long description.\n").encode()


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    tag: str,
    *,
    requires_python: str | None = ">=3.9",
    metadata_name: str | None = None,
) -> Path:
    """`tag` is python-abi-platform, e.g. cp311-cp311-linux_x86_64_debian_12."""
    module = name.lower().replace("-", "_").replace(".", "_")
    dist_info = f"{module}-{version}.dist-info"
    members = {
        f"{module}/__init__.py": b"VALUE = 1\n",
        f"{dist_info}/METADATA": metadata(metadata_name or name, version, requires_python),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: wf-tests\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ).encode(),
    }
    record = [_record_line(n, d) for n, d in members.items()] + [f"{dist_info}/RECORD,,"]
    members[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{module}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


def make_sdist(
    directory: Path, name: str, version: str, *, requires_python: str | None = ">=3.9"
) -> Path:
    base = f"{name.lower().replace('-', '_').replace('.', '_')}-{version}"
    path = directory / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for member, data in (
            (f"{base}/setup.py", b"from setuptools import setup\nsetup()\n"),
            (f"{base}/PKG-INFO", metadata(name, version, requires_python)),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path
