"""Run INSIDE a build container by the target's own Python (3.6+, no wheelfarm there):
list the ELF files of an unpacked wheel, the CPU each is built for (e_machine), the shared
libraries each one needs directly (DT_NEEDED) and where the container's loader finds them.
auditwheel's lddtree when the build venv has it, else `readelf -d` and `ldd`. Also the libraries
the interpreter itself loads: a consumer who can run Python already has those.

Usage: python probe_elf.py WHEEL   (prints one JSON object on stdout)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)")
_NEEDED = re.compile(r"\(NEEDED\).*\[(.+)\]")


def is_elf(path: str) -> bool:
    try:
        with Path(path).open("rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def machine(path: str) -> int | None:
    """The ELF header's e_machine (62 x86-64, 183 AArch64, ...), in the file's own byte order;
    None for a header too short to have one."""
    with Path(path).open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20:
        return None
    if header[5] == 1:
        return int.from_bytes(header[18:20], "little")
    return int.from_bytes(header[18:20], "big")


def with_lddtree(path: str) -> tuple[list[str], dict[str, str | None]]:
    try:  # auditwheel >= 6.3 calls it ldd and returns a dataclass
        from auditwheel.lddtree import ldd as tree_of
    except ImportError:  # older: lddtree, returning a dict
        from auditwheel.lddtree import lddtree as tree_of

    tree = tree_of(path)
    if isinstance(tree, dict):
        libs = tree.get("libs", {})
        return list(tree.get("needed", [])), {
            name: _text((info or {}).get("realpath") or (info or {}).get("path"))
            for name, info in libs.items()
        }
    resolved: dict[str, str | None] = {}
    for name, info in (getattr(tree, "libraries", None) or {}).items():
        resolved[name] = _text(getattr(info, "realpath", None) or getattr(info, "path", None))
    return list(getattr(tree, "needed", [])), resolved


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def with_tools(path: str) -> tuple[list[str], dict[str, str | None]]:
    dynamic = subprocess.run(
        ["readelf", "-d", path], check=False, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ).stdout.decode("utf-8", "replace")
    needed = [m.group(1) for m in map(_NEEDED.search, dynamic.splitlines()) if m]
    ldd = subprocess.run(
        ["ldd", path], check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ).stdout.decode("utf-8", "replace")
    resolved: dict[str, str | None] = {}
    for line in ldd.splitlines():
        match = _LDD_LINE.match(line)
        if match and match.group(2) != "not":
            resolved[match.group(1)] = os.path.realpath(match.group(2))
    return needed, resolved


def analyse(path: str) -> tuple[list[str], dict[str, str | None], str]:
    try:
        needed, resolved = with_lddtree(path)
        return needed, resolved, "lddtree"
    except Exception:  # any trouble with auditwheel (absent, too old): use the plain tools
        needed, resolved = with_tools(path)
        return needed, resolved, "readelf+ldd"


def probe(root: str) -> dict[str, object]:
    elfs: dict[str, object] = {}
    method = None
    for directory, _subdirs, names in sorted(os.walk(root)):
        for name in sorted(names):
            path = str(Path(directory) / name)
            if Path(path).is_symlink() or not is_elf(path):
                continue
            needed, resolved, method = analyse(path)
            elfs[os.path.relpath(path, root)] = {
                "machine": machine(path),
                "needed": needed,
                "resolved": {n: resolved.get(n) for n in needed},
            }
    interpreter = os.path.realpath(sys.executable)
    _needed, python_libs, _method = analyse(interpreter)
    return {
        "method": method,
        "elfs": elfs,
        "interpreter": interpreter,
        "interpreter_libs": {k: v for k, v in python_libs.items() if v},
    }


def main() -> None:
    root = tempfile.mkdtemp(prefix="wheelfarm-probe-")
    try:
        with zipfile.ZipFile(sys.argv[1]) as wheel:
            wheel.extractall(root)
        json.dump(probe(root), sys.stdout, sort_keys=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
