"""Run INSIDE a container by one of the image's Pythons (3.8 or newer; no wheelfarm there):
print, as one JSON line, what the image is as seen by that interpreter — its os-release and
rules file (symlinks followed), machine, the interpreter's version, implementation and libc, and
the build tools it has (pip, build, wheel, setuptools, auditwheel; gcc on PATH)."""

from __future__ import annotations

import contextlib
import json
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

TOOLS = ("pip", "build", "wheel", "auditwheel", "setuptools")


def read(path: str) -> str | None:
    try:
        return Path(path).read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def libc() -> list[str]:
    """glibc from the interpreter; musl from its loader's banner (platform knows only glibc)."""
    name, version = platform.libc_ver()
    if name:
        return [name, version]
    for loader in sorted(Path("/lib").glob("ld-musl-*.so.1")):
        banner = subprocess.run([str(loader)], capture_output=True, check=False).stderr
        found = re.search(r"Version (\d+)\.(\d+)", banner.decode("utf-8", "replace"))
        if found:
            return ["musl", found.group(1) + "." + found.group(2)]
    return ["", ""]


def tools() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in TOOLS:
        with contextlib.suppress(Exception):
            found[name] = metadata.version(name)
    try:
        gcc = subprocess.run(
            ["gcc", "-dumpfullversion", "-dumpversion"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        found["gcc"] = gcc.stdout.decode().strip() or None
    except OSError:
        found["gcc"] = None
    return found


print(
    json.dumps(
        {
            "os_release": read("/etc/os-release") or read("/usr/lib/os-release"),
            "rules": read("/etc/python/binary-compatibility.cfg"),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "implementation": sys.implementation.name,
            "libc": libc(),
            "tools": tools(),
        }
    )
)
