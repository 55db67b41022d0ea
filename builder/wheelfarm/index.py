"""A wheelhouse as a static package index (PEP 503 HTML + PEP 691 JSON + PEP 658/714 metadata).

Layout of SITE (a symlink to the current tree beside it, `.SITE.<digest>`):

    SITE/index.html, SITE/roots.json            what roots there are
    SITE/simple/                                every wheel under its distro tag, every sdist
    SITE/<consumer tag>/simple/                 one consumer's view: its best wheels under their
                                                plain linux_<arch> names, every sdist
    …/simple/index.html, index.json             project list
    …/simple/<project>/index.html, index.json   project page
    …/simple/<project>/<file>, <file>.metadata  the distribution (a hardlink) and its METADATA
    SITE/.wheelfarm-scan.json                   what was read from each wheelhouse file (hidden:
                                                never served, not part of the digest)

Pure apart from writing that tree: nothing here prints; corrupt distributions come back as
`Problem`s for the caller to report. The tree is planned in memory first (path → bytes or file
to link), named by the digest of that plan, written beside SITE, and swapped in by replacing
the SITE symlink, so readers see the old index or the new one, never a mix, and regenerating
from the same wheelhouse leaves the same bytes (no timestamps, everything sorted).

What it costs, and why it is shaped this way: a cold run reads every file once (one read of the
whole file gives its sha256; zipfile reads the central directory from those same bytes, and each
small member is inflated from them and checked against its CRC-32 and local header, which costs
less than zipfile's per-member reader: 18% fewer instructions for a cold index of 1,000 small
wheels under callgrind); a rerun reads again only files whose size, mtime or inode changed since the
scan recorded in the previous tree (or that were modified just before it), and links their
METADATA from that tree. Writing is dominated by creating inodes, so every unchanged or repeated
file is a hardlink (wheels of the wheelhouse, identical pages and METADATA, files of the previous
tree).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import html
import io
import json
import os
import re
import secrets
import shutil
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from packaging.utils import (
    InvalidSdistFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
)
from packaging.version import InvalidVersion, Version

from wheelfarm import fsutil, rules, tags, targets, views, wheelmeta, wheelname
from wheelfarm.errors import BadInput

API_VERSION = "1.1"
ROOTS_FILE = "roots.json"
CANONICAL = "simple"
SCAN_RECORD = ".wheelfarm-scan.json"
# Bump when the checks made on a distribution or the facts kept about it change: a record of
# another format is ignored, so every file is read and checked again.
_SCAN_FORMAT = 1
# A file modified this recently may change again within the same timestamp tick, unseen by its
# (size, mtime, inode): such files are not recorded, so the next run reads them again (git's
# "racily clean" entries).
_RACY_NS = 2_000_000_000
_SDIST_SUFFIXES = (".tar.gz", ".zip")
_TREE_NAME = re.compile(r"\.(?P<site>.+)\.(?P<digest>[0-9a-f]{16})\Z")
_CHUNK = 1 << 20
_IN_MEMORY = 64 << 20  # a wheel up to this size is read whole, once

# A zip member's local header (APPNOTE 4.3.7): its signature, 22 bytes the central directory
# repeats, then the lengths of the name and of the extra field that come before the data.
_LOCAL_HEADER = struct.Struct("<4s22xHH")
Stamp = tuple[int, int, int]  # (size, mtime_ns, inode) of a wheelhouse file when it was read


class _Corrupt(Exception):
    """A distribution that must not be served; the message says why."""


@dataclass(frozen=True)
class Dist:
    """One distribution file of the wheelhouse, checked and measured."""

    filename: str
    path: str  # a str, not a Path: 10,000 Paths were a tenth of what a cold scan keeps alive
    project: NormalizedName
    version: Version
    sha256: str
    size: int
    requires_python: str | None
    metadata: bytes | None  # the wheel's METADATA, served as <file>.metadata (PEP 658)
    wheel: wheelname.WheelName | None = None  # None for an sdist
    metadata_sha256: str | None = None  # None for an sdist
    # A wheel recalled from the previous tree's scan record was not read: `metadata` is None
    # and the previous tree's copy of its METADATA is linked from here instead.
    metadata_file: str | None = None
    stamp: Stamp | None = None  # None: not to be recorded (modified too recently)

    @property
    def is_wheel(self) -> bool:
        return self.wheel is not None


@dataclass(frozen=True)
class Problem:
    filename: str
    reason: str


@dataclass(frozen=True)
class Root:
    """One index root: the canonical one (`consumer` None) or a consumer's view."""

    name: str  # "simple" for the canonical root, else the consumer tag
    consumer: rules.TagSet | None
    files: tuple[tuple[str, Dist], ...]  # (served file name, distribution), sorted

    @property
    def path(self) -> str:
        return CANONICAL if self.consumer is None else f"{self.name}/{CANONICAL}"

    def summary(self) -> dict[str, object]:
        data: dict[str, object] = {
            "tag": None if self.consumer is None else self.name,
            "path": self.path + "/",
            "projects": len({d.project for _, d in self.files}),
            "files": len(self.files),
        }
        if self.consumer is not None:
            data["build"] = self.consumer.build
            data["install"] = list(self.consumer.install)
        return data


@dataclass(frozen=True)
class Linked:
    """A tree entry that is a hardlink (or, across filesystems, a copy) of an existing file."""

    source: Path | str
    sha256: str


@dataclass(frozen=True)
class Same:
    """A tree entry that is a hardlink of another entry of the same tree (one inode for the
    METADATA every root serves: creating inodes is what costs on a busy disk)."""

    entry: str
    sha256: str


Entry = bytes | Linked | Same


@dataclass(frozen=True)
class SiteResult:
    site: Path
    tree: Path
    changed: bool
    roots: tuple[Root, ...]
    problems: tuple[Problem, ...] = field(default=())

    def summaries(self) -> list[dict[str, object]]:
        return [r.summary() for r in self.roots]

    def as_json(self) -> dict[str, object]:
        return {
            "site": str(self.site),
            "tree": str(self.tree),
            "changed": self.changed,
            "roots": self.summaries(),
            "problems": [{"file": p.filename, "reason": p.reason} for p in self.problems],
        }


# --- reading the wheelhouse ---------------------------------------------------------------


def _sha256(fd: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(fd, _CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _opened(path: str) -> Iterator[tuple[int, os.stat_result]]:
    """The file and its stamp as of this very open (what is read is what is recorded). A bare
    descriptor: a Python file object costs more to set up than reading a small wheel."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise _Corrupt(f"it cannot be read ({exc.strerror})") from None
    try:
        yield fd, os.fstat(fd)
    finally:
        os.close(fd)


def _read_whole(fd: int, size: int) -> bytes:
    """The whole file, `size` bytes as its stamp says (more if it grew since; os.read may return
    less than asked)."""
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data
    parts = [data]
    while chunk := os.read(fd, _CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class Identity:
    """What a METADATA or PKG-INFO file says of the distribution that holds it."""

    name: str | None  # as written
    version: str | None
    project: NormalizedName | None
    parsed_version: Version | None  # None when missing or not a valid version
    requires_python: str | None


def identity(metadata: bytes) -> Identity:
    meta = wheelmeta.parse(metadata)
    try:
        parsed_version = Version(meta.version) if meta.version else None
    except InvalidVersion:
        parsed_version = None
    project = canonicalize_name(meta.name) if meta.name else None
    return Identity(meta.name, meta.version, project, parsed_version, meta.requires_python)


Identify = Callable[[bytes], Identity]


def _check_identity(found: Identity, project: NormalizedName, version: Version) -> None:
    if not found.name or not found.version:
        raise _Corrupt("its metadata has no Name or Version")
    if found.parsed_version is None:
        raise _Corrupt(f"its metadata has an invalid Version {found.version!r}")
    if found.project != project or found.parsed_version != version:
        raise _Corrupt(
            f"its metadata says {found.name} {found.version}, its file name {project} {version}"
        )


def _checked_metadata(wheel: bytes | BinaryIO) -> bytes:
    """The METADATA of a wheel (its bytes, or the open file when it is too big to hold) whose
    every member reads back whole and matches its CRC-32, with one .dist-info directory holding
    METADATA, WHEEL and RECORD. _Corrupt says what is wrong."""
    data = wheel if isinstance(wheel, bytes) else None
    try:
        with zipfile.ZipFile(io.BytesIO(wheel) if isinstance(wheel, bytes) else wheel) as archive:
            names = archive.namelist()
            try:
                dist_info = wheelmeta.dist_info(names)
            except BadInput as exc:
                raise _Corrupt(exc.message) from None
            for required in ("METADATA", "WHEEL", "RECORD"):
                if f"{dist_info}/{required}" not in names:
                    raise _Corrupt(f"{dist_info}/{required} is missing")
            metadata_name, metadata = f"{dist_info}/METADATA", b""
            for info in archive.infolist():
                try:
                    content = _member(archive, data, info, keep=info.filename == metadata_name)
                except (zipfile.BadZipFile, zlib.error) as exc:
                    raise _Corrupt(f"member {info.filename} is damaged ({exc})") from None
                if info.filename == metadata_name:
                    metadata = content
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise _Corrupt(f"not a readable zip file ({exc})") from None
    return metadata


def _member(
    archive: zipfile.ZipFile, data: bytes | None, info: zipfile.ZipInfo, keep: bool
) -> bytes:
    """A member's content, checked against its CRC-32, size and local header as zipfile.open()
    checks it. zipfile.open() reads through a file-like object whose setup costs more than
    inflating a small member (a third of a cold scan of small wheels), so a small member of a
    wheel held in memory (`data`) is inflated from those bytes; any other goes through zipfile
    (and comes back only when `keep`). The data starts after the local header's name and extra
    field, whose lengths only the local header gives."""
    if data is None or info.compress_size > _CHUNK or info.flag_bits & 0x1:
        return _member_via_zipfile(archive, info, keep)
    if info.compress_type not in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        return _member_via_zipfile(archive, info, keep)
    offset = info.header_offset
    header = data[offset : offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size:
        raise zipfile.BadZipFile("truncated file header")
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != b"PK\x03\x04":
        raise zipfile.BadZipFile("bad magic number for file header")
    name_start = offset + _LOCAL_HEADER.size
    name = info.orig_filename
    # ASCII is spelt the same in both encodings, and its encoder is C (cp437's is Python).
    encoding = "ascii" if name.isascii() else "utf-8" if info.flag_bits & 0x800 else "cp437"
    if data[name_start : name_start + name_length] != name.encode(encoding):
        raise zipfile.BadZipFile(f"file name in directory {info.orig_filename!r} and header differ")
    start = name_start + name_length + extra_length
    raw = data[start : start + info.compress_size]
    content = zlib.decompress(raw, -15) if info.compress_type == zipfile.ZIP_DEFLATED else raw
    if len(content) != info.file_size or zlib.crc32(content) != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return content


def _member_via_zipfile(archive: zipfile.ZipFile, info: zipfile.ZipInfo, keep: bool) -> bytes:
    with archive.open(info) as member:
        if keep:
            return member.read()
        while member.read(_CHUNK):  # zipfile checks the CRC-32 at the end
            pass
    return b""


def inspect_wheel(path: str, identify: Identify = identity) -> Dist:
    """Check a wheel (name, zip integrity, one .dist-info with METADATA/WHEEL/RECORD, METADATA
    agreeing with the file name) and measure it. _Corrupt says what is wrong."""
    name = path.rpartition("/")[2]
    try:
        wheel = wheelname.parse(name)
    except BadInput:
        raise _Corrupt("not a valid wheel file name") from None
    with _opened(path) as (fd, st):
        if st.st_size <= _IN_MEMORY:
            # One read for the hash and the archive: zipfile then seeks in memory, not in the
            # file, and small members are inflated from those bytes (a small wheel: ~36 µs
            # instead of ~80 µs through the open file).
            data = _read_whole(fd, st.st_size)
            sha256, size = hashlib.sha256(data).hexdigest(), len(data)
            metadata = _checked_metadata(data)
        else:
            sha256, size = _sha256(fd)
            os.lseek(fd, 0, os.SEEK_SET)
            with open(fd, "rb", closefd=False) as f:
                metadata = _checked_metadata(f)
    found = identify(metadata)
    _check_identity(found, wheel.name, wheel.version)
    return Dist(
        name, path, wheel.name, wheel.version, sha256, size, found.requires_python,
        metadata, wheel, hashlib.sha256(metadata).hexdigest(), None, _stamp(st),
    )  # fmt: skip


def _sdist_pkg_info(path: str) -> bytes:
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.count("/") == 1 and name.endswith("/PKG-INFO"):
                    return zf.read(name)
    else:
        with tarfile.open(path, "r:gz") as tf:
            for member in tf:
                top_level = member.isfile() and member.name.count("/") == 1
                if top_level and member.name.endswith("/PKG-INFO"):
                    extracted = tf.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
    raise _Corrupt("it has no PKG-INFO")


def inspect_sdist(path: str, identify: Identify = identity) -> Dist:
    name = path.rpartition("/")[2]
    try:
        project, version = parse_sdist_filename(name)
    except (InvalidSdistFilename, InvalidVersion):
        raise _Corrupt("not a valid sdist file name") from None
    with _opened(path) as (fd, st):
        sha256, size = _sha256(fd)
    try:
        pkg_info = _sdist_pkg_info(path)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _Corrupt(f"not a readable archive ({exc})") from None
    found = identify(pkg_info)
    _check_identity(found, project, version)
    return Dist(
        name, path, project, version, sha256, size, found.requires_python, None,
        stamp=_stamp(st),
    )  # fmt: skip


@dataclass(frozen=True)
class Known:
    """What a previous run read from one wheelhouse file, and where its tree keeps the METADATA
    (the canonical root's `<project>/<file>.metadata`)."""

    stamp: Stamp
    sha256: str
    requires_python: str | None
    metadata_sha256: str | None
    tree: str
    trusted_before_ns: int  # a file modified since may have changed again, unseen by its stamp


def _recall(path: str, known: Known) -> Dist | None:
    """The distribution as a previous run found it, when the file is still the one it read."""
    try:
        st = os.stat(path)  # noqa: PTH116  # a str: no Path object per wheelhouse file
    except OSError:
        return None
    if _stamp(st) != known.stamp or st.st_mtime_ns >= known.trusted_before_ns:
        return None
    name = path.rpartition("/")[2]
    if not name.endswith(".whl"):
        try:
            project, version = parse_sdist_filename(name)
        except (InvalidSdistFilename, InvalidVersion):
            return None
        return Dist(
            name, path, project, version, known.sha256, st.st_size, known.requires_python, None,
            stamp=known.stamp,
        )  # fmt: skip
    try:
        wheel = wheelname.parse(name)
    except BadInput:
        return None
    if known.metadata_sha256 is None:
        return None
    metadata_file = f"{known.tree}/{CANONICAL}/{wheel.name}/{name}.metadata"
    return Dist(
        name, path, wheel.name, wheel.version, known.sha256, st.st_size, known.requires_python,
        None, wheel, known.metadata_sha256, metadata_file, known.stamp,
    )  # fmt: skip


def scan(
    wheelhouse: Path, known: Mapping[str, Known] | None = None
) -> tuple[list[Dist], list[Problem]]:
    """Every wheel and sdist at the top of the wheelhouse, checked; the bad ones as problems.
    A file `known` (from the previous tree's scan record) with the same size, mtime and inode is
    not read again."""
    if not wheelhouse.is_dir():
        raise BadInput(
            f"wheelhouse {wheelhouse} is not a directory",
            hint="build wheels first (wheelfarm build …) or name the directory that holds them",
        )
    directory = str(wheelhouse.absolute())
    dists: list[Dist] = []
    problems: list[Problem] = []
    # One project version built for several targets and Pythons has the same METADATA in every
    # wheel, and parsing it is a third of reading a small wheel: each distinct file is parsed
    # once per scan (10,000 wheels of 2,000 versions: see benchmarks/index_scale.py).
    identify = functools.cache(identity)
    with os.scandir(directory) as entries:
        candidates = sorted(
            e.name
            for e in entries
            if not e.name.startswith(".")
            and e.is_file()
            and (e.name.endswith(".whl") or e.name.endswith(_SDIST_SUFFIXES))
        )
    for name in candidates:
        path = f"{directory}/{name}"
        fact = known.get(name) if known else None
        dist = _recall(path, fact) if fact is not None else None
        if dist is None:
            try:
                inspect = inspect_wheel if name.endswith(".whl") else inspect_sdist
                dist = inspect(path, identify)
            except _Corrupt as exc:
                problems.append(Problem(name, str(exc)))
                continue
        dists.append(dist)
    return dists, problems


@dataclass(frozen=True)
class ScanRecord:
    """What the next run needs to recall distributions without reading them (`content`, kept in
    the tree as SCAN_RECORD) and when the scan that found them began (kept as that file's mtime,
    so that the content depends on the wheelhouse alone)."""

    content: bytes
    started_ns: int


def make_scan_record(dists: Iterable[Dist], started_ns: int) -> ScanRecord:
    files = {
        d.filename: [*d.stamp, d.sha256, d.requires_python, d.metadata_sha256]
        for d in dists
        if d.stamp is not None
    }
    return ScanRecord(_json({"format": _SCAN_FORMAT, "files": files}), started_ns)


def read_scan_record(tree: Path | None) -> dict[str, Known]:
    """The scan record of a site tree; empty when there is none or it is not one we can trust
    (another format, or damaged: then every file is simply read again)."""
    if tree is None:
        return {}
    try:
        with (tree / SCAN_RECORD).open("rb") as f:
            # A file modified less than _RACY_NS before that scan began may have been modified
            # again within the same timestamp tick after it was read (git's "racily clean").
            trusted_before = os.fstat(f.fileno()).st_mtime_ns - _RACY_NS
            data = json.load(f)
        if data.get("format") != _SCAN_FORMAT:
            return {}
        base = str(tree)
        found: dict[str, Known] = {}
        for name, fact in data["files"].items():
            size, mtime_ns, inode, sha256, requires_python, metadata_sha256 = fact
            stamp = (size, mtime_ns, inode)
            texts = (requires_python, metadata_sha256)
            if not all(type(n) is int for n in stamp) or not isinstance(sha256, str):
                return {}
            if not all(t is None or isinstance(t, str) for t in texts):
                return {}
            found[name] = Known(
                stamp, sha256, requires_python, metadata_sha256, base, trusted_before
            )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}
    return found


# --- which roots, and what each holds ------------------------------------------------------


def consumer_tag_set(tag: str, sources: Sequence[rules.RulesSource]) -> rules.TagSet:
    """What a host whose tag is `tag` accepts: the tag, its build tag after the rules, the rules'
    install list, then plain linux_<arch> (the same as rules.tag_set for a host whose host tag
    and default build tag are both `tag`)."""
    parts = tags.split_platform(tag)
    if parts is None or not parts[1]:
        raise BadInput(f"{tag!r} is not a distro platform tag (linux_<arch>_<distro>)")
    arch = parts[0]
    decision = rules.lookup(sources, tag, tag)
    build = tag
    extra: tuple[str, ...] = ()
    if decision is not None:
        build = decision.rule.build or tag
        extra = decision.rule.install
    install = tags.unique([tag, build, *extra, tags.plain_tag(arch)])
    return rules.TagSet(arch, tag, tag, build, install, decision)


def target_build_tags(
    arch: str,
    sources: Sequence[rules.RulesSource],
    catalogue: Sequence[targets.Target] = targets.TARGETS,
) -> list[str]:
    """The build tag of every known target on `arch`, through the rules. An extra target whose
    distro and version were only guessed from its image name has none: its wheels still get the
    root of the distro tag they carry."""
    found = []
    for target in catalogue:
        if not target.release_known:
            continue
        os_release = {"ID": target.distro, "VERSION_ID": target.version}
        found.append(rules.tag_set(os_release, arch, sources).build)
    return list(dict.fromkeys(found))


def _platforms(dists: Iterable[Dist]) -> set[str]:
    return {p for d in dists if d.wheel is not None for p in d.wheel.platforms}


def consumer_tags(
    dists: Sequence[Dist],
    sources: Sequence[rules.RulesSource],
    arch: str,
    catalogue: Sequence[targets.Target] = targets.TARGETS,
) -> list[str]:
    """Root tags: every known target's build tag for `arch` and for every arch the wheelhouse
    has, plus every distro tag present in the wheelhouse. Sorted."""
    platforms = _platforms(dists)
    arches = {arch} | {parts[0] for p in platforms if (parts := tags.split_platform(p)) is not None}
    found = {t for a in arches for t in target_build_tags(a, sources, catalogue)}
    found |= {p for p in platforms if tags.is_distro_tag(p)}
    return sorted(found)


def plan_roots(
    dists: Sequence[Dist],
    sources: Sequence[rules.RulesSource],
    arch: str,
    catalogue: Sequence[targets.Target] = targets.TARGETS,
) -> tuple[Root, ...]:
    sdists = [(d.filename, d) for d in dists if d.wheel is None]
    # Bucket wheels by platform tag so each root only looks at wheels it may accept.
    by_platform: dict[str, list[Dist]] = {}
    for d in dists:
        if d.wheel is not None:
            for p in d.wheel.platforms:
                by_platform.setdefault(p, []).append(d)
    roots = [Root(CANONICAL, None, tuple(sorted((d.filename, d) for d in dists)))]
    for tag in consumer_tags(dists, sources, arch, catalogue):
        consumer = consumer_tag_set(tag, sources)
        candidates = {
            d.filename: d for p in (*consumer.install, "any") for d in by_platform.get(p, ())
        }
        served: dict[str, Dist] = {}
        chosen = views.select([d.wheel for d in candidates.values() if d.wheel], consumer)
        for wheel in chosen:
            # Preference order: a plain name already taken keeps the better wheel.
            served.setdefault(wheel.plain_filename, candidates[wheel.filename])
        served.update(sdists)
        roots.append(Root(tag, consumer, tuple(sorted(served.items()))))
    return tuple(roots)


# --- rendering ------------------------------------------------------------------------------


def _json(data: object) -> bytes:
    # Compact on purpose: with `indent` json falls back to its pure-Python encoder (3x slower).
    return (
        json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode()


def _page(title: str, body: Iterable[str]) -> bytes:
    escaped = html.escape(title)
    head = (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="utf-8">\n'
        f'<meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"<title>{escaped}</title>\n</head>\n<body>\n<h1>{escaped}</h1>\n"
    )
    lines = "".join(f"{line}\n" for line in body)
    return f"{head}{lines}</body>\n</html>\n".encode()


def _anchor(dist: Dist, served: str, url: str) -> str:
    attrs = ""
    if dist.requires_python:
        attrs += f' data-requires-python="{html.escape(dist.requires_python)}"'
    if dist.metadata_sha256 is not None:
        # PEP 714 renamed the attribute; old clients read only the PEP 658 one, so the HTML has
        # both. JSON has only the new key: pip 22.3 to 23.1 crash on the old one (that bug is
        # why PEP 714 exists; Debian 12's pip 23.0 is among them).
        attrs += (
            f' data-dist-info-metadata="sha256={dist.metadata_sha256}"'
            f' data-core-metadata="sha256={dist.metadata_sha256}"'
        )
    href = f"{html.escape(url)}#sha256={dist.sha256}"
    return f'<a href="{href}"{attrs}>{html.escape(served)}</a><br>'


def _file_entry(dist: Dist, served: str, url: str) -> dict[str, object]:
    """One file of a PEP 691 project page."""
    entry: dict[str, object] = {
        "filename": served,
        "url": url,
        "hashes": {"sha256": dist.sha256},
        "size": dist.size,
        "yanked": False,
    }
    if dist.requires_python:
        entry["requires-python"] = dist.requires_python
    if dist.metadata_sha256 is not None:
        entry["core-metadata"] = {"sha256": dist.metadata_sha256}
    return entry


def _metadata_entry(root: Root, dist: Dist, metadata_sha256: str) -> Entry:
    """A wheel's METADATA file in a root: every root shares the canonical root's copy, which is
    itself the previous tree's copy when the wheel was recalled rather than read."""
    if root.consumer is not None:
        return Same(f"{CANONICAL}/{dist.project}/{dist.filename}.metadata", metadata_sha256)
    if dist.metadata_file is not None:
        return Linked(dist.metadata_file, metadata_sha256)
    return dist.metadata or b""


def _by_project(root: Root) -> dict[NormalizedName, list[tuple[str, Dist]]]:
    """The root's files by project (sorted), each project's in version order, then by name."""
    projects: dict[NormalizedName, list[tuple[str, Dist]]] = {}
    for served, dist in root.files:
        projects.setdefault(dist.project, []).append((served, dist))
    for files in projects.values():
        files.sort(key=lambda item: (item[1].version, item[0]))
    return dict(sorted(projects.items()))


def _project(
    root: Root, project: str, files: Sequence[tuple[str, Dist]], base_url: str | None
) -> dict[str, Entry]:
    """One project's pages, METADATA files and distributions in one root."""
    page_dir = f"{root.path}/{project}"
    out: dict[str, Entry] = {}
    links: list[str] = []
    entries: list[dict[str, object]] = []
    versions: dict[Version, str] = {}
    for served, dist in files:
        url = quote(served)
        if base_url is not None:
            url = f"{base_url}/{page_dir}/{url}"
        links.append(_anchor(dist, served, url))
        entries.append(_file_entry(dist, served, url))
        if dist.metadata_sha256 is not None:
            out[f"{page_dir}/{served}.metadata"] = _metadata_entry(root, dist, dist.metadata_sha256)
        out[f"{page_dir}/{served}"] = Linked(dist.path, dist.sha256)
        # The first of equal versions (1.0, 1.0.0) names them all: files are in version order.
        versions.setdefault(dist.version, str(dist.version))
    out[f"{page_dir}/index.html"] = _page(f"Links for {project}", links)
    out[f"{page_dir}/index.json"] = _json(
        {
            "meta": {"api-version": API_VERSION},
            "name": project,
            "files": entries,
            "versions": list(versions.values()),
        }
    )
    return out


def render_root(root: Root, base_url: str | None) -> dict[str, Entry]:
    """Every file of one root, by path relative to the site tree (`base_url` without its
    trailing slash)."""
    projects = _by_project(root)
    out: dict[str, Entry] = {
        f"{root.path}/index.html": _page(
            f"Simple index: {root.name}",
            (f'<a href="{quote(p)}/">{html.escape(p)}</a><br>' for p in projects),
        ),
        f"{root.path}/index.json": _json(
            {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in projects]}
        ),
    }
    for project, files in projects.items():
        out.update(_project(root, project, files, base_url))
    return out


def _root_url(base_url: str | None, root: Root) -> str:
    return f"{base_url}/{root.path}/" if base_url else f"{root.path}/"


def render_site(roots: Sequence[Root], base_url: str | None) -> dict[str, Entry]:
    base = base_url.rstrip("/") if base_url else None
    out: dict[str, Entry] = {}
    listing = []
    for root in roots:
        out.update(render_root(root, base))
        listing.append({**root.summary(), "url": _root_url(base, root)})
    out[ROOTS_FILE] = _json({"wheelfarm-site": 1, "roots": listing})
    out["index.html"] = _page(
        "wheelfarm index roots",
        (
            f'<a href="{html.escape(str(r["url"]))}">{html.escape(str(r["tag"] or "all wheels"))}'
            f"</a> ({r['files']} files)<br>"
            for r in listing
        ),
    )
    return out


def _digest(tree: Mapping[str, Entry], paths: Iterable[str]) -> str:
    """What names a tree: every path with the sha256 of its content."""
    lines = []
    for path in paths:
        content = tree[path]
        value = (
            hashlib.sha256(content).hexdigest() if isinstance(content, bytes) else content.sha256
        )
        lines.append(f"{path}\0{value}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# --- writing and swapping -------------------------------------------------------------------


def _link_or_copy(source: Path | str, dest: str, copies: dict[Path, str]) -> None:
    """Hardlink `source`; where that cannot be (another file system), fsutil's rule: copy it
    once and link that copy after. The bare os.link comes first, as it runs for every file
    served (fsutil's Path handling costs ~0.1 s at 10,000 wheels)."""
    if not copies:
        try:
            os.link(source, dest)
        except OSError:
            pass
        else:
            return
    fsutil.link_or_copy(source, dest, copies)


def _same_bytes(path: str, content: bytes) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        # One byte more than expected: a longer file is caught without reading it all.
        return os.read(fd, len(content) + 1) == content
    finally:
        os.close(fd)


def _write_new(dest: str, content: bytes) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _directories(paths: Iterable[str]) -> list[str]:
    """Every directory the files at `paths` need, parents before children."""
    found: set[str] = set()
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in found:
            found.add(parent)
            parent = parent.rpartition("/")[0]
    return sorted(found)  # a parent is a prefix of its children, so it sorts first


def write_tree(
    tree: Mapping[str, Entry],
    directory: Path,
    previous: Path | None = None,
    paths: Sequence[str] | None = None,
) -> None:
    """Write the planned tree into the new `directory` (`paths`: the tree's paths, sorted).
    Files the previous tree already has with the same bytes are hardlinked from it rather than
    written, and so are repeats of bytes written before in this tree: trees are never modified
    once swapped in, so they can share inodes, and creating inodes is what writing a site costs
    on a busy disk."""
    if paths is None:
        paths = sorted(tree)
    base = str(directory)
    directory.mkdir()
    for sub in _directories(paths):
        os.mkdir(f"{base}/{sub}")  # noqa: PTH102  # hot loop
    old = str(previous) if previous is not None else None
    copies: dict[Path, str] = {}
    later: list[tuple[str, Same]] = []
    written: dict[bytes, str] = {}
    for rel in paths:
        dest = f"{base}/{rel}"
        content = tree[rel]
        if isinstance(content, Same):
            later.append((dest, content))
        elif isinstance(content, Linked):
            _link_or_copy(content.source, dest, copies)
        elif (first := written.get(content)) is not None:
            # Roots that serve the same files have the same pages (relative links): one inode.
            os.link(first, dest)
        elif old is not None and _same_bytes(f"{old}/{rel}", content):
            os.link(f"{old}/{rel}", dest)
            written[content] = dest
        else:
            _write_new(dest, content)
            written[content] = dest
    for dest, same in later:
        os.link(f"{base}/{same.entry}", dest)


def current_tree(site: Path) -> Path | None:
    """The tree SITE points to, when SITE is a wheelfarm site."""
    if not site.is_symlink():
        return None
    target = site.readlink()
    match = _TREE_NAME.match(target.name)
    if target.parent != Path() or match is None or match["site"] != site.name:
        return None
    return site.parent / target


# Errors that say the output is not somewhere this user can write: the caller's to fix.
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR)


def _unwritable(site: Path, where: Path, exc: OSError) -> BadInput:
    reason = exc.strerror or str(exc)
    return BadInput(
        f"cannot write the index to {site}: {exc.filename or where}: {reason}",
        hint="name an output directory (-o SITE) whose parent is a directory you can write to",
    )


def _make_parent(site: Path) -> None:
    """The directory SITE goes in, made if missing; nothing is made when some part of the path
    cannot be (a file on the way, no permission)."""
    try:
        fsutil.make_dirs(site.parent)
    except NotADirectoryError as exc:
        raise BadInput(
            f"cannot write the index to {site}: {exc.filename} is not a directory",
            hint="name an output directory (-o SITE) whose parent is a directory",
        ) from None
    except OSError as exc:
        raise _unwritable(site, site.parent, exc) from None


def _prepare_site_path(site: Path) -> None:
    if site.is_symlink():
        if current_tree(site) is None:
            raise BadInput(
                f"{site} is a symlink wheelfarm did not make",
                hint="name a new output directory, or remove the symlink",
            )
        return
    if site.is_dir():
        with contextlib.suppress(OSError):
            site.rmdir()  # an empty directory is fine to take over
        if site.is_dir():
            raise BadInput(
                f"{site} is a directory that is not a wheelfarm site",
                hint="a site is a symlink to its current tree; name a new output directory, or "
                "remove this one",
            )
    elif site.exists():
        raise BadInput(f"{site} exists and is not a directory")


def _write_record(path: str, record: ScanRecord) -> None:
    _write_new(path, record.content)
    os.utime(path, ns=(record.started_ns, record.started_ns))


def _update_record(tree: Path, record: ScanRecord) -> None:
    """Bring the scan record of a tree already in place up to date (the served files are the
    same; only what the next run may skip reading changed): atomically, like everything else."""
    path = tree / SCAN_RECORD
    same = False
    with contextlib.suppress(OSError):
        same = path.read_bytes() == record.content
    if same:
        os.utime(path, ns=(record.started_ns, record.started_ns))
        return
    temp = tree / f"{SCAN_RECORD}.tmp-{secrets.token_hex(6)}"
    try:
        _write_record(str(temp), record)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def publish_tree(
    tree: Mapping[str, Entry], site: Path, record: ScanRecord | None = None
) -> tuple[Path, bool]:
    """Write the tree beside SITE and point SITE at it with one atomic rename. Returns the tree
    directory and whether anything changed. `record` (the scan record) goes into the tree too,
    outside its digest."""
    site = site.absolute()
    _make_parent(site)
    _prepare_site_path(site)
    paths = sorted(tree)
    name = f".{site.name}.{_digest(tree, paths)[:16]}"
    final = site.parent / name
    old = current_tree(site)
    if old == final and final.is_dir():
        if record is not None:
            # Only what the next run may skip reading: a site we may not write to stays as is.
            with contextlib.suppress(OSError):
                _update_record(final, record)
        return final, False
    if not final.is_dir():
        temp = site.parent / f".{site.name}.tmp-{secrets.token_hex(6)}"
        try:
            write_tree(tree, temp, old, paths)
            if record is not None:
                _write_record(f"{temp}/{SCAN_RECORD}", record)
            os.rename(temp, final)  # noqa: PTH104
        except OSError as exc:
            shutil.rmtree(temp, ignore_errors=True)
            if exc.errno in _NOT_WRITABLE:
                raise _unwritable(site, site.parent, exc) from None
            # A concurrent run wrote the same tree first: it has the same bytes, use it.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
                raise
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    link = site.parent / f".{site.name}.link-{secrets.token_hex(6)}"
    try:
        link.symlink_to(name)
        link.replace(site)
    except BaseException:
        with contextlib.suppress(OSError):
            link.unlink()
        raise
    if old is not None and old != final:
        shutil.rmtree(old, ignore_errors=True)
    return final, True


def build_site(
    wheelhouse: Path,
    site: Path,
    *,
    base_url: str | None = None,
    rule_files: Sequence[Path] = (),
    catalogue: Sequence[targets.Target] = targets.TARGETS,
    arch: str | None = None,
) -> SiteResult:
    """Index the wheelhouse into SITE. `arch` is the architecture whose target roots are always
    made (default: this machine's); roots for every other arch the wheelhouse holds are added."""
    if base_url is not None and not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", base_url):
        raise BadInput(f"--base-url {base_url!r} is not an absolute URL (e.g. https://host/)")
    sources = rules.image_sources(rule_files)
    arch = arch or tags.running_arch()
    return _build_site(
        wheelhouse, site, base_url=base_url, sources=sources, catalogue=catalogue, arch=arch
    )


def _build_site(
    wheelhouse: Path,
    site: Path,
    *,
    base_url: str | None,
    sources: Sequence[rules.RulesSource],
    catalogue: Sequence[targets.Target],
    arch: str,
) -> SiteResult:
    known = read_scan_record(current_tree(site.absolute()))
    while True:
        started = time.time_ns()
        dists, problems = scan(wheelhouse, known)
        roots = plan_roots(dists, sources, arch, catalogue)
        record = make_scan_record(dists, started)
        try:
            tree, changed = publish_tree(render_site(roots, base_url), site, record)
        except FileNotFoundError:
            if not known:
                raise
            # A file recalled from the previous tree is gone (a concurrent run replaced that
            # tree): read every distribution afresh.
            known = {}
            continue
        return SiteResult(site, tree, changed, roots, tuple(problems))
