"""From the in-container ELF probe (data/probe_elf.py) to `Requires-External`. Pure: the probe's
JSON and the package manager's answers in, the distro packages a wheel needs out.

A wheel needs a distro package when one of its ELF files names (DT_NEEDED) a shared library that
is neither inside the wheel nor loaded by the target's Python interpreter itself (whoever can run
Python already has libc, libm, and the rest of the interpreter's own tree), and that package owns
the file the container's loader resolves it to. Only direct needs are listed: the package
manager brings each package's own dependencies."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from wheelfarm import pkgmgr

PROBE_NAME = "probe_elf.py"
# The ELF header's e_machine for each architecture, as tags name them (System V ABI numbers).
MACHINES = {"x86_64": 62, "aarch64": 183, "ppc64le": 21, "s390x": 22, "i686": 3, "armv7l": 40}
_MACHINE_NAMES = {number: arch for arch, number in MACHINES.items()}
# The dynamic loader is named in DT_NEEDED by some toolchains; it is part of the C library.
_LOADER = re.compile(r"^ld-(linux|musl)[-.].*")


@dataclass(frozen=True)
class Library:
    elf: str  # path inside the wheel
    soname: str
    path: str | None  # where the container's loader finds it; None: not found
    package: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"elf": self.elf, "soname": self.soname, "path": self.path, "package": self.package}


def outside_libraries(probe: Mapping[str, Any]) -> list[Library]:
    """Every (ELF, needed library) pair the wheel itself does not provide and the interpreter
    does not load, in a stable order."""
    elfs: Mapping[str, Any] = probe.get("elfs", {})
    inside = {PurePosixPath(name).name for name in elfs}
    interpreter = set(probe.get("interpreter_libs", {}))
    found: list[Library] = []
    for elf in sorted(elfs):
        info = elfs[elf]
        resolved: Mapping[str, str | None] = info.get("resolved", {})
        for soname in info.get("needed", []):
            if soname in inside or soname in interpreter or _LOADER.match(soname):
                continue
            found.append(Library(elf, soname, resolved.get(soname)))
    return found


def foreign_elfs(probe: Mapping[str, Any], arch: str) -> list[str]:
    """The wheel's ELF files whose CPU (e_machine) is not `arch`'s, each as "path (machine)": a
    prebuilt binary of another architecture would make a wheel whose tag lies. A probe that did
    not read the machine says nothing."""
    wanted = MACHINES.get(arch)
    found: list[str] = []
    for elf, info in sorted((probe.get("elfs") or {}).items()):
        number = info.get("machine") if isinstance(info, Mapping) else None
        if wanted is None or not isinstance(number, int) or number == wanted:
            continue
        found.append(f"{elf} ({_MACHINE_NAMES.get(number, f'e_machine {number}')})")
    return found


def interpreter_paths(probe: Mapping[str, Any]) -> list[str]:
    return sorted({p for p in probe.get("interpreter_libs", {}).values() if p})


def owner_script(family: str, paths: Iterable[str]) -> str:
    """One shell command printing `path<TAB>first line of the owner query` for every path, with
    the family's own package database (pkgmgr's query), in one exec instead of one per path."""
    lines = [
        f'printf "%s\\t%s\\n" {shlex.quote(path)} '
        f'"$({shlex.join(pkgmgr.owner_command(family, path))} 2>/dev/null | head -n 1)"'
        for path in sorted(set(paths))
    ]
    return "\n".join(lines) or "true"


def parse_owners(family: str, output: str) -> dict[str, str]:
    """The owner script's output as {path: package name} (paths without an owner left out)."""
    owners: dict[str, str] = {}
    for line in output.splitlines():
        path, _, answer = line.partition("\t")
        package = pkgmgr.parse_owner(family, answer) if path else None
        if package:
            owners[path] = package
    return owners


def owner_of(path: str | None, owners: Mapping[str, str]) -> str | None:
    if path is None:
        return None
    for candidate in pkgmgr.owner_paths(path):
        if candidate in owners:
            return owners[candidate]
    return None


def all_candidates(paths: Iterable[str | None]) -> list[str]:
    return sorted({c for p in paths if p for c in pkgmgr.owner_paths(p)})


@dataclass(frozen=True)
class Analysis:
    method: str  # "lddtree" or "readelf+ldd"
    libraries: tuple[Library, ...]
    requires_external: tuple[str, ...]  # distro packages, sorted
    unresolved: tuple[str, ...]  # sonames the loader did not find

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "libraries": [lib.as_json() for lib in self.libraries],
            "requires_external": list(self.requires_external),
            "unresolved": list(self.unresolved),
        }


def analyse(probe: Mapping[str, Any], family: str, owners: Mapping[str, str]) -> Analysis:
    """Map each outside library to its package; drop packages that also own the interpreter's
    own libraries (libc6 and friends are there wherever Python runs)."""
    interpreter_packages = {owner_of(p, owners) for p in interpreter_paths(probe)} - {None}
    libraries = tuple(
        Library(lib.elf, lib.soname, lib.path, owner_of(lib.path, owners))
        for lib in outside_libraries(probe)
    )
    packages = sorted(
        {
            lib.package
            for lib in libraries
            if lib.package is not None and lib.package not in interpreter_packages
        }
    )
    unresolved = sorted({lib.soname for lib in libraries if lib.path is None})
    return Analysis(str(probe.get("method", "")), libraries, tuple(packages), tuple(unresolved))


def gaps(external: Mapping[str, Any] | None) -> list[str]:
    """What Requires-External cannot name, from an analysis' JSON (a fresh one or a provenance
    record's "external"): each library the loader did not find, and each one found in a file no
    package owns. One line each, for warnings; a wheel with none is complete."""
    if not external:
        return []
    found: dict[str, str] = {}
    for lib in external.get("libraries") or ():
        if not isinstance(lib, Mapping):
            continue
        soname, path = str(lib.get("soname")), lib.get("path")
        if path is None:
            found.setdefault(
                soname, f"{soname} (needed by {lib.get('elf')}): the loader found no file"
            )
        elif lib.get("package") is None:
            found.setdefault(
                soname, f"{soname} (needed by {lib.get('elf')}): {path} belongs to no package"
            )
    for soname in external.get("unresolved") or ():
        found.setdefault(str(soname), f"{soname}: the loader found no file")
    return list(found.values())


def query_paths(probe: Mapping[str, Any]) -> list[str]:
    """Every path whose owner the analysis needs, with /usr-merge twins."""
    return all_candidates(
        [lib.path for lib in outside_libraries(probe)] + list(interpreter_paths(probe))
    )
