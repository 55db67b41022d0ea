"""A wheelhouse as a static package index (PEP 503 HTML + PEP 691 JSON + PEP 658/714 metadata).

Layout of SITE (a symlink to the current tree beside it, `.SITE.<digest>`):

    SITE/index.html, SITE/roots.json            what roots there are
    SITE/simple/                                every wheel under its distro tag, every sdist
    SITE/<consumer tag>/simple/                 one consumer's view: its best wheels under their
                                                plain linux_<arch> names, every sdist
    …/simple/index.html, index.json             project list
    …/simple/<project>/index.html, index.json   project page
    …/simple/<project>/<file>, <file>.metadata  the distribution (a hardlink) and its METADATA

Pure apart from writing that tree: nothing here prints; corrupt distributions come back as
`Problem`s for the caller to report. The tree is planned in memory first (path → bytes or file
to link), named by the digest of that plan, written beside SITE, and swapped in by replacing
the SITE symlink, so readers see the old index or the new one, never a mix, and regenerating
from the same wheelhouse leaves the same bytes (no timestamps, everything sorted)."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from packaging.utils import (
    InvalidSdistFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
)
from packaging.version import InvalidVersion, Version

from wheelfarm import rules, tags, targets, views
from wheelfarm.errors import BadInput

API_VERSION = "1.1"
ROOTS_FILE = "roots.json"
CANONICAL = "simple"
_SDIST_SUFFIXES = (".tar.gz", ".zip")
_TREE_NAME = re.compile(r"\.(?P<site>.+)\.(?P<digest>[0-9a-f]{16})\Z")
_CHUNK = 1 << 20


class _Corrupt(Exception):
    """A distribution that must not be served; the message says why."""


@dataclass(frozen=True)
class Dist:
    """One distribution file of the wheelhouse, checked and measured."""

    filename: str
    path: Path
    project: NormalizedName
    version: Version
    sha256: str
    size: int
    requires_python: str | None
    metadata: bytes | None  # the wheel's METADATA, served as <file>.metadata (PEP 658)
    wheel: views.WheelName | None = None  # None for an sdist

    @property
    def is_wheel(self) -> bool:
        return self.wheel is not None

    @functools.cached_property
    def metadata_sha256(self) -> str | None:
        return None if self.metadata is None else hashlib.sha256(self.metadata).hexdigest()


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

    source: Path
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


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _headers(metadata: bytes) -> dict[str, str]:
    """The few core-metadata headers we need, from the header block only (RFC 822 style)."""
    wanted = {"name", "version", "requires-python"}
    found: dict[str, str] = {}
    for line in metadata.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in wanted:
            found.setdefault(key.strip().lower(), value.strip())
    return found


def _check_identity(meta: Mapping[str, str], project: NormalizedName, version: Version) -> None:
    name = meta.get("name")
    raw_version = meta.get("version")
    if not name or not raw_version:
        raise _Corrupt("its metadata has no Name or Version")
    try:
        same_version = Version(raw_version) == version
    except InvalidVersion:
        raise _Corrupt(f"its metadata has an invalid Version {raw_version!r}") from None
    if canonicalize_name(name) != project or not same_version:
        raise _Corrupt(f"its metadata says {name} {raw_version}, its file name {project} {version}")


# Zip records (APPNOTE.TXT 4.3): end of central directory, central header, local header.
_EOCD = struct.Struct("<4s4H2LH")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_FAST_LIMIT = 64 << 20  # larger wheels are streamed through zipfile instead of read whole


def _members_fast(data: bytes) -> dict[str, bytes] | None:
    """Every member of a small, plain zip (stored or deflated, no zip64, no encryption), each
    checked against its CRC-32 and size. None when the archive is anything else, bad or not:
    zipfile then decides. This is `zipfile.testzip` without its per-member Python overhead."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD.size - 0xFFFF))
    if end < 0 or end + _EOCD.size > len(data):
        return None
    _, disk, cd_disk, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(data, end)
    if disk or cd_disk or cd_offset + cd_size > end or count == 0xFFFF:
        return None
    members: dict[str, bytes] = {}
    pos = cd_offset
    for _ in range(count):
        if pos + _CENTRAL.size > end:
            return None
        (sig, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, _, offset) = (
            _CENTRAL.unpack_from(data, pos)
        )
        if sig != b"PK\x01\x02" or flags & 1 or method not in (0, 8):
            return None
        name = data[pos + _CENTRAL.size : pos + _CENTRAL.size + nlen].decode("utf-8", "replace")
        pos += _CENTRAL.size + nlen + xlen + clen
        if offset + _LOCAL.size > end:
            return None
        local = _LOCAL.unpack_from(data, offset)
        start = offset + _LOCAL.size + local[9] + local[10]
        local_name = data[offset + _LOCAL.size : offset + _LOCAL.size + local[9]]
        if local[0] != b"PK\x03\x04" or local_name.decode("utf-8", "replace") != name:
            return None
        raw = data[start : start + csize]
        try:
            content = zlib.decompress(raw, -15) if method == 8 else raw
        except zlib.error:
            return None
        if len(content) != usize or zlib.crc32(content) != crc:
            return None
        members[name] = content
    return members


def _members_zipfile(path: Path) -> dict[str, bytes | None]:
    """The slow, general path (zip64, other compressions, big files): every member name, after
    a full CRC check, with the content of the top-level .dist-info/METADATA members only."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise _Corrupt(f"member {bad} fails its CRC check")
            return {name: zf.read(name) if _is_metadata(name) else None for name in zf.namelist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise _Corrupt(f"not a readable zip file ({exc})") from None


def _is_metadata(name: str) -> bool:
    top, _, rest = name.partition("/")
    return rest == "METADATA" and top.endswith(".dist-info")


def inspect_wheel(path: Path) -> Dist:
    """Check a wheel (name, zip integrity, one .dist-info with METADATA/WHEEL/RECORD, METADATA
    agreeing with the file name) and measure it. _Corrupt says what is wrong."""
    try:
        wheel = views.parse(path.name)
    except BadInput:
        raise _Corrupt("not a valid wheel file name") from None
    members: Mapping[str, bytes | None] | None = None
    if path.stat().st_size <= _FAST_LIMIT:
        data = path.read_bytes()
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        members = _members_fast(data)
    else:
        sha256, size = _sha256(path)
    if members is None:
        members = _members_zipfile(path)
    dist_infos = {
        n.split("/", 1)[0]
        for n in members
        if n.count("/") == 1 and n.split("/", 1)[0].endswith(".dist-info")
    }
    if len(dist_infos) != 1:
        raise _Corrupt(f"expected one .dist-info directory, found {len(dist_infos)}")
    dist_info = dist_infos.pop()
    for required in ("METADATA", "WHEEL", "RECORD"):
        if f"{dist_info}/{required}" not in members:
            raise _Corrupt(f"{dist_info}/{required} is missing")
    metadata = members[f"{dist_info}/METADATA"] or b""
    meta = _headers(metadata)
    _check_identity(meta, wheel.name, wheel.version)
    return Dist(
        path.name, path, wheel.name, wheel.version, sha256, size, meta.get("requires-python"),
        metadata, wheel,
    )  # fmt: skip


def _sdist_pkg_info(path: Path) -> bytes:
    if path.name.endswith(".zip"):
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


def inspect_sdist(path: Path) -> Dist:
    try:
        project, version = parse_sdist_filename(path.name)
    except (InvalidSdistFilename, InvalidVersion):
        raise _Corrupt("not a valid sdist file name") from None
    sha256, size = _sha256(path)
    try:
        pkg_info = _sdist_pkg_info(path)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _Corrupt(f"not a readable archive ({exc})") from None
    meta = _headers(pkg_info)
    _check_identity(meta, project, version)
    return Dist(path.name, path, project, version, sha256, size, meta.get("requires-python"), None)


def scan(wheelhouse: Path) -> tuple[list[Dist], list[Problem]]:
    """Every wheel and sdist at the top of the wheelhouse, checked; the bad ones as problems."""
    if not wheelhouse.is_dir():
        raise BadInput(
            f"wheelhouse {wheelhouse} is not a directory",
            hint="build wheels first (wheelfarm build …) or name the directory that holds them",
        )
    wheelhouse = wheelhouse.absolute()
    dists: list[Dist] = []
    problems: list[Problem] = []
    with os.scandir(wheelhouse) as entries:
        candidates = sorted(
            e.name
            for e in entries
            if not e.name.startswith(".")
            and e.is_file()
            and (e.name.endswith(".whl") or e.name.endswith(_SDIST_SUFFIXES))
        )
    for name in candidates:
        path = wheelhouse / name
        try:
            dists.append(inspect_wheel(path) if name.endswith(".whl") else inspect_sdist(path))
        except _Corrupt as exc:
            problems.append(Problem(name, str(exc)))
    return dists, problems


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
    """The build tag of every known target on `arch`, through the rules."""
    found = []
    for target in catalogue:
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
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        '<meta charset="utf-8">',
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        f"<title>{html.escape(title)}</title>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        *body,
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(lines).encode()


def _file_url(base_url: str | None, root: Root, project: str, filename: str) -> str:
    quoted = quote(filename)
    if base_url is None:
        return quoted
    return f"{base_url}/{root.path}/{project}/{quoted}"


def _project_files(root: Root) -> dict[NormalizedName, list[tuple[str, Dist]]]:
    projects: dict[NormalizedName, list[tuple[str, Dist]]] = {}
    for served, dist in root.files:
        projects.setdefault(dist.project, []).append((served, dist))
    for files in projects.values():
        files.sort(key=lambda item: (item[1].version, item[0]))
    return dict(sorted(projects.items()))


def render_root(root: Root, base_url: str | None) -> dict[str, Entry]:
    """Every file of one root, by path relative to the site tree."""
    out: dict[str, Entry] = {}
    projects = _project_files(root)
    out[f"{root.path}/index.html"] = _page(
        f"Simple index: {root.name}",
        (f'<a href="{quote(p)}/">{html.escape(p)}</a><br>' for p in projects),
    )
    out[f"{root.path}/index.json"] = _json(
        {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in projects]}
    )
    for project, files in projects.items():
        links: list[str] = []
        entries: list[dict[str, object]] = []
        for served, dist in files:
            url = _file_url(base_url, root, project, served)
            attrs = [f'href="{html.escape(url)}#sha256={dist.sha256}"']
            entry: dict[str, object] = {
                "filename": served,
                "url": url,
                "hashes": {"sha256": dist.sha256},
                "size": dist.size,
                "yanked": False,
            }
            if dist.requires_python:
                attrs.append(f'data-requires-python="{html.escape(dist.requires_python)}"')
                entry["requires-python"] = dist.requires_python
            meta_sha = dist.metadata_sha256
            if dist.metadata is not None and meta_sha is not None:
                # PEP 714 renamed the attribute; old clients read only the PEP 658 one, so the
                # HTML has both. JSON has only the new key: pip 22.3 to 23.1 crash on the old
                # one (that bug is why PEP 714 exists; Debian 12's pip 23.0 is among them).
                attrs.append(f'data-dist-info-metadata="sha256={meta_sha}"')
                attrs.append(f'data-core-metadata="sha256={meta_sha}"')
                entry["core-metadata"] = {"sha256": meta_sha}
                canonical = f"{CANONICAL}/{project}/{dist.filename}.metadata"
                here = f"{root.path}/{project}/{served}.metadata"
                out[here] = dist.metadata if here == canonical else Same(canonical, meta_sha)
            out[f"{root.path}/{project}/{served}"] = Linked(dist.path, dist.sha256)
            links.append(f"<a {' '.join(attrs)}>{html.escape(served)}</a><br>")
            entries.append(entry)
        out[f"{root.path}/{project}/index.html"] = _page(f"Links for {project}", links)
        versions = sorted({d.version for _, d in files})
        out[f"{root.path}/{project}/index.json"] = _json(
            {
                "meta": {"api-version": API_VERSION},
                "name": project,
                "versions": [str(v) for v in versions],
                "files": entries,
            }
        )
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


def _bytes_sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def digest(tree: Mapping[str, Entry]) -> str:
    h = hashlib.sha256()
    for path in sorted(tree):
        content = tree[path]
        value = content.sha256 if isinstance(content, Linked | Same) else _bytes_sha(content)
        h.update(f"{path}\0{value}\n".encode())
    return h.hexdigest()


# --- writing and swapping -------------------------------------------------------------------


def _link_or_copy(source: Path, dest: str, copies: dict[Path, str]) -> None:
    """Hardlink `source`; across filesystems copy it once and hardlink that copy after."""
    origin = copies.get(source)
    if origin is not None:
        os.link(origin, dest)
        return
    try:
        os.link(source, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(source, dest)
        copies[source] = dest


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


def write_tree(tree: Mapping[str, Entry], directory: Path, previous: Path | None = None) -> None:
    """Write the planned tree. Files the previous tree already has with the same bytes are
    hardlinked from it rather than written, and so are repeats of bytes written before in this
    tree: trees are never modified once swapped in, so they can share inodes, and creating
    inodes is what writing a site costs on a busy disk."""
    made: set[str] = set()
    copies: dict[Path, str] = {}
    base = str(directory)
    old = str(previous) if previous is not None else None
    later: list[tuple[str, Same]] = []
    written: dict[bytes, str] = {}
    for rel in sorted(tree):
        dest = f"{base}/{rel}"
        parent = dest.rsplit("/", 1)[0]
        if parent not in made:
            os.makedirs(parent, exist_ok=True)  # noqa: PTH103  # hot loop
            made.add(parent)
        content = tree[rel]
        if isinstance(content, Same):
            later.append((dest, content))
        elif isinstance(content, Linked):
            _link_or_copy(content.source, dest, copies)
        elif old is not None and _same_bytes(f"{old}/{rel}", content):
            os.link(f"{old}/{rel}", dest)
        elif (first := written.setdefault(content, dest)) != dest:
            # Roots that serve the same files have the same pages (relative links): one inode.
            os.link(first, dest)
        else:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
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


def publish_tree(tree: Mapping[str, Entry], site: Path) -> tuple[Path, bool]:
    """Write the tree beside SITE and point SITE at it with one atomic rename. Returns the tree
    directory and whether anything changed."""
    site = site.absolute()
    site.parent.mkdir(parents=True, exist_ok=True)
    _prepare_site_path(site)
    name = f".{site.name}.{digest(tree)[:16]}"
    final = site.parent / name
    old = current_tree(site)
    if old == final and final.is_dir():
        return final, False
    if not final.is_dir():
        temp = site.parent / f".{site.name}.tmp-{secrets.token_hex(6)}"
        try:
            write_tree(tree, temp, old)
            os.rename(temp, final)  # noqa: PTH104
        except OSError as exc:
            shutil.rmtree(temp, ignore_errors=True)
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
    dists, problems = scan(wheelhouse)
    roots = plan_roots(dists, sources, arch or tags.running_arch(), catalogue)
    tree, changed = publish_tree(render_site(roots, base_url), site)
    return SiteResult(site, tree, changed, roots, tuple(problems))
