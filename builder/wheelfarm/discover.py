"""Discovery: when a build fails for something missing from the system, ask the target's own
package metadata, inside the target's container, which package provides it.

- apt: the Contents indexes of the image's own sources, fetched through the image's mirror by
  data/contents_index.py (apt's own IndexTargets, as apt-file does) and reduced to the paths a
  lookup can ask about. The reduced index is kept on the host, `<cache>/contents/<identity>.gz`,
  keyed by the image's Release files (what its package lists were made from), so it is fetched
  once per distro release snapshot, not per build or per run.
- dnf/yum: `provides` queries; apk: `pc:`/`cmd:`/`so:` provides (providers.py writes them).

`lookup` returns one `providers.Choice` per missing thing it found a package for; the tie-break
is providers.choose. The rounds themselves (install, build again, bounded) are buildsteps'."""

from __future__ import annotations

import gzip
import re
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wheelfarm import cache, fsutil, providers
from wheelfarm.errors import WheelfarmError
from wheelfarm.needs import Missing

ROUNDS = 6  # every build attempt of one spec, the first included
IDENTITY_LINE = "wheelfarm-contents-identity: "
_INDEXES: dict[str, list[str]] = {}  # identity → lines, read once per process
_INDEX_LOCK = threading.Lock()


@dataclass(frozen=True)
class Download:
    """A build requirement that downloads a toolchain, and what to install instead."""

    requirement: str
    downloads: str
    instead: tuple[Missing, ...]


# Build requirements a backend adds when it finds no toolchain, which then fetch one from the
# network: the distro's toolchain is looked up instead.
DOWNLOADERS = (Download("puccinialin", "a Rust toolchain", (Missing("program", "cargo"),)),)


def toolchain_download(requirements: Sequence[str]) -> list[Download]:
    """The toolchain downloaders among a backend's extra requirements (`puccinialin>=0.1`)."""
    names = {re.split(r"[\s<>=!~;\[(]", r.strip(), maxsplit=1)[0].lower() for r in requirements}
    return [d for d in DOWNLOADERS if d.requirement in names]


class Queries(Protocol):
    """What a lookup needs of a container (container.Container)."""

    def output(self, argv: Sequence[str] | str, *, check: bool = True) -> str: ...

    def copy_out(self, container_path: str, host_dir: Path) -> Path: ...


class Note(Protocol):
    def line(self, text: str) -> None: ...


class LookupFailed(WheelfarmError):
    """The target's package metadata could not be asked (no Contents index, no network...)."""


@dataclass(frozen=True)
class Where:
    """Where a lookup runs: the container, its family and architecture, and the tools in it."""

    container: Queries
    family: str
    arch: str  # the package manager's name for it: x86_64, aarch64
    python: str  # a Python in the container to run data/ scripts with
    script: str  # contents_index.py, copied into the container
    ca_file: str | None = None


# Bumped whenever contents_index.py keeps other lines, so that no older reduction is read.
CONTENTS_FORMAT = 2


def contents_path(identity: str) -> Path:
    return cache.root() / "contents" / f"{identity}.v{CONTENTS_FORMAT}.gz"


def _identity(text: str) -> str:
    found = (ln[len(IDENTITY_LINE) :] for ln in text.splitlines() if ln.startswith(IDENTITY_LINE))
    return next(found, "").strip()


def _apt_index(where: Where, note: Note) -> list[str]:
    identity = _identity(where.container.output([where.python, where.script, "identity"]))
    with _INDEX_LOCK:
        if identity and identity in _INDEXES:
            return _INDEXES[identity]
        path = contents_path(identity) if identity else None
        if path is not None and path.is_file():
            note.line(f"Contents index {identity[:12]} from the cache")
        else:
            note.line("fetching the Contents indexes of the image's apt sources")
            path = _fetch_apt_index(where)
            identity = path.name.removesuffix(".gz")
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            _INDEXES[identity] = handle.readlines()
        return _INDEXES[identity]


def _fetch_apt_index(where: Where) -> Path:
    """Fetch and reduce the index in the container; keep it on the host under its identity."""
    inside = "/wf/contents-index.gz"
    argv = [where.python, where.script, "fetch", inside]
    if where.ca_file:
        argv += ["--ca", where.ca_file]
    try:
        identity = _identity(where.container.output(argv))
    except WheelfarmError as exc:
        raise LookupFailed(
            f"could not fetch the Contents indexes of the image's apt sources: {exc.message}"
        ) from None
    if not identity:
        raise LookupFailed("the image's apt sources gave no Release file to key the index by")
    path = contents_path(identity)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as temp:
        copied = where.container.copy_out(inside, Path(temp))
        fsutil.place_copy(copied, path)
    return path


def installed(where: Where) -> frozenset[str]:
    """The packages installed in the container."""
    if where.family == "apt":
        argv = ["dpkg-query", "-W", "-f=${Package}\\n"]
    elif where.family == "apk":
        argv = ["apk", "info", "-q"]
    else:
        argv = ["rpm", "-qa", "--queryformat", "%{NAME}\\n"]
    return frozenset(where.container.output(argv, check=False).split())


def apt_versions(where: Where, packages: Sequence[str]) -> dict[str, str]:
    """Each package's candidate version (`apt-cache show`), for the tie-break's program rule."""
    if not packages:
        return {}
    out = where.container.output(["apt-cache", "show", "--no-all-versions", *packages], check=False)
    found: dict[str, str] = {}
    name = ""
    for line in out.splitlines():
        if line.startswith("Package: "):
            name = line[len("Package: ") :].strip()
        elif line.startswith("Version: ") and name:
            found.setdefault(name, line[len("Version: ") :].strip())
    return found


def _rpm_candidates(where: Where, missing: Missing) -> list[providers.Candidate]:
    tool = "dnf" if where.family == "dnf" else "yum"
    found: list[providers.Candidate] = []
    for query in providers.provides_queries(where.family, missing):
        out = where.container.output([tool, "-q", "provides", query], check=False)
        found += providers.parse_rpm_provides(out, where.arch)
    return found


def _apk_candidates(where: Where, missing: Missing) -> list[providers.Candidate]:
    thing = missing
    if missing.kind == "header":
        # apk has no file index: a header's library by its stem (ldap.h → libldap.so.*).
        stem = missing.name.split("/", 1)[0].removesuffix(".h").removeprefix("lib")
        thing = Missing("library", stem)
    found: list[providers.Candidate] = []
    for query in providers.provides_queries("apk", thing):
        if thing.kind == "library":
            out = where.container.output(["apk", "search", "-x", "-o", query], check=False)
            names = [providers.apk_dev_package(n) for n in providers.parse_apk_search(out)]
        else:
            out = where.container.output(["apk", "search", "-x", query], check=False)
            names = providers.parse_apk_search(out)
        found += [providers.Candidate(name, query) for name in names]
    return found


def lookup(
    where: Where, wanted: Sequence[Missing], chosen: frozenset[str], note: Note
) -> list[providers.Choice]:
    """A package for each wanted thing the target's metadata knows a provider of."""
    if where.family == "apt":
        index = _apt_index(where, note)
        found = providers.apt_candidates(index, wanted)
    elif where.family == "apk":
        found = {m: _apk_candidates(where, m) for m in wanted}
    else:
        found = {m: _rpm_candidates(where, m) for m in wanted}
    have = installed(where)
    versions: dict[str, str] = {}
    if where.family == "apt":
        programs = sorted({c.package for m, cs in found.items() if m.kind == "program" for c in cs})
        versions = apt_versions(where, programs) if len(programs) > 1 else {}
    choices = []
    for missing in wanted:
        known = providers.Known(installed=have, chosen=chosen, versions=versions)
        choice = providers.choose(missing, found[missing], known)
        if choice is not None:
            choices.append(choice)
            chosen = chosen | {choice.package}
    return choices


def install_line(choices: Sequence[providers.Choice]) -> str:
    """`missing header lber.h → libldap-dev (the only package with usr/include/lber.h)`."""
    return "; ".join(f"{c.missing} → {c.package} ({c.why})" for c in choices)
