"""Get each spec's source onto the host, once, into the wheelhouse. No code from it runs here.

- A pinned requirement: its sdist from the index's simple API (the host's pip index settings,
  or a requirement file's --index-url; PyPI's simple endpoint by default), checked against the
  sha256 the index gives and against the spec's --hash values.
- A local sdist: copied into the wheelhouse and checked against its --hash values.
- A local source directory: packed into a deterministic tarball under `.wheelfarm/sources/`
  (not the wheelhouse root: it is not a released sdist and must not be published as one).

Next to each sdist, `.wheelfarm/<sdist>.json` records where it came from and its sha256, so an
unchanged rerun finds it without asking the index. The archive is only ever read as data: its
member list (is it pure Python?) and its PKG-INFO's mtime (SOURCE_DATE_EPOCH)."""

from __future__ import annotations

import datetime
import email.parser
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from wheelfarm import hostenv
from wheelfarm.errors import BadInput, WheelfarmError
from wheelfarm.fsutil import file_hashes, write_json_atomic
from wheelfarm.plan import Spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

META_DIR = ".wheelfarm"
SOURCES_DIR = "sources"
# pip's own default, for sdists whose PKG-INFO carries no usable time.
MINIMUM_EPOCH = 315532800  # 1980-01-01, the earliest time a zip can hold
# Top-level members read as text: what says the project compiles, and its metadata.
_READ_MEMBERS = ("setup.py", "pyproject.toml", "PKG-INFO")
_COMPILED_SUFFIXES = frozenset(
    {".c", ".cc", ".cpp", ".cxx", ".c++", ".pyx", ".rs", ".f", ".f90", ".f95", ".cu", ".m", ".mm"}
)
_BUILD_FILES = frozenset({"Cargo.toml", "CMakeLists.txt", "meson.build", "configure"})
# Trees that ship C files as data or examples; they do not make a project compiled.
_DATA_DIRS = frozenset({"tests", "test", "testing", "examples", "example", "docs", "doc"})
_SETUP_MARKERS = re.compile(rb"\b(Extension|ext_modules|cffi_modules|rust_extensions)\b")
_COMPILED_BACKENDS = ("maturin", "mesonpy", "scikit_build_core", "setuptools_rust", "enscons")
_SKIP_IN_TREE = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tox",
        ".nox",
        ".venv",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "build",
        "dist",
        "wheelhouse",
    }
)


class FetchFailed(WheelfarmError):
    """The index could not be reached or served a file that is not what it said (exit 1)."""


@dataclass(frozen=True)
class Source:
    """A spec's source, on the host, checked."""

    spec: Spec
    path: Path  # the archive
    sha256: str
    name: str  # canonical project name
    version: str | None
    top: str  # the archive's top directory
    source_date_epoch: int
    pure: bool  # predicted from the member list: no compiled-language sources
    origin: str  # redacted index URL of the file, "local file" or "local directory"
    # The index's data-requires-python for this file, else the sdist's own metadata; None when
    # neither declares one.
    requires_python: str | None = None
    # When the index says the file was uploaded (PEP 700 `upload-time`, RFC 3339, UTC); None
    # for local sources and indexes that do not say.
    upload_time: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.requirement,
            "spec_origin": self.spec.origin,
            "file": self.path.name,
            "sha256": self.sha256,
            "name": self.name,
            "version": self.version,
            "top": self.top,
            "source_date_epoch": self.source_date_epoch,
            "pure": self.pure,
            "origin": self.origin,
            "requires_python": self.requires_python,
            "upload_time": self.upload_time,
        }


# ---------------------------------------------------------------- reading archives as data


@dataclass(frozen=True)
class _Inspection:
    top: str
    source_date_epoch: int
    pure: bool
    requires_python: str | None = None  # PKG-INFO's, else pyproject's static [project] one


def _is_compiled_member(parts: Sequence[str]) -> bool:
    """Whether one archive member (path below the top directory) says the project compiles."""
    if not parts or any(p in _DATA_DIRS for p in parts[:-1]):
        return False
    name = parts[-1]
    return name in _BUILD_FILES or PurePosixPath(name).suffix.lower() in _COMPILED_SUFFIXES


def _says_compiled(member: str, data: bytes) -> bool:
    """setup.py and pyproject.toml, read as text: do they declare extensions?"""
    if member == "setup.py":
        return bool(_SETUP_MARKERS.search(data))
    if member == "pyproject.toml":
        return any(backend.encode() in data for backend in _COMPILED_BACKENDS)
    return False


def inspect_archive(path: Path) -> _Inspection:
    """Top directory, SOURCE_DATE_EPOCH (the mtime of its PKG-INFO) and whether the project is
    pure Python, read from the archive's member list; nothing is extracted or run."""
    entries: list[tuple[str, int]] = []  # (name, mtime)
    texts: dict[str, bytes] = {}
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    mtime = int(time.mktime((*info.date_time, 0, 0, -1)))
                    entries.append((info.filename.rstrip("/"), mtime))
                    if _top_level_file(info.filename) in _READ_MEMBERS:
                        texts[_top_level_file(info.filename)] = archive.read(info)
        else:
            with tarfile.open(path, "r:*") as archive:
                for member in archive:
                    entries.append((member.name.rstrip("/"), int(member.mtime)))
                    top_file = _top_level_file(member.name)
                    if member.isfile() and top_file in _READ_MEMBERS:
                        handle = archive.extractfile(member)
                        texts[top_file] = handle.read() if handle is not None else b""
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BadInput(f"{path.name}: not a readable sdist archive ({exc})") from None
    tops = {name.split("/", 1)[0] for name, _ in entries if name and name != "."}
    if len(tops) != 1:
        raise BadInput(
            f"{path.name}: an sdist has exactly one top directory, this one has {len(tops)}"
        )
    (top,) = tops
    epoch = next((m for n, m in entries if n == f"{top}/PKG-INFO"), None)
    if epoch is None:
        epoch = max((m for _, m in entries), default=MINIMUM_EPOCH)
    compiled = any(_is_compiled_member(n.split("/")[1:]) for n, _ in entries) or any(
        _says_compiled(name, data) for name, data in texts.items()
    )
    return _Inspection(top, max(epoch, MINIMUM_EPOCH), not compiled, _declared_python(texts))


def _declared_python(texts: Mapping[str, bytes]) -> str | None:
    """Requires-Python as the sdist's metadata declares it: PKG-INFO (core metadata), else a
    static `requires-python` in pyproject's [project] (a packed source tree has no PKG-INFO)."""
    if "PKG-INFO" in texts:
        headers = email.parser.BytesHeaderParser().parsebytes(texts["PKG-INFO"])
        value = headers.get("Requires-Python")
        if value is not None:
            return str(value).strip() or None
    if "pyproject.toml" in texts:
        try:
            project = tomllib.loads(texts["pyproject.toml"].decode("utf-8")).get("project", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None
        value = project.get("requires-python") if isinstance(project, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _top_level_file(member: str) -> str:
    parts = member.strip("/").split("/")
    return parts[1] if len(parts) == 2 else ""


# ---------------------------------------------------------------- hashes


def check_hashes(spec: Spec, path: Path, digests: Mapping[str, str] | None = None) -> None:
    """A spec with --hash values builds only from a file matching one of them (exit 2)."""
    if not spec.hashes:
        return
    digests = digests or file_hashes(path, {h.algorithm for h in spec.hashes})
    if any(digests.get(h.algorithm) == h.hexdigest for h in spec.hashes):
        return
    raise BadInput(
        f"{spec.origin}: {spec.requirement}: {path.name} matches none of the given hashes "
        f"(its sha256 is {digests['sha256']})",
        hint="the --hash lines are stale or wrong; regenerate them (pip-compile "
        "--generate-hashes) or check where the file came from",
    )


def _check_local_hashes(spec: Spec, path: Path) -> dict[str, str]:
    digests = file_hashes(path, {h.algorithm for h in spec.hashes})
    check_hashes(spec, path, digests)
    return digests


# ---------------------------------------------------------------- the wheelhouse side


def meta_dir(wheelhouse: Path) -> Path:
    return wheelhouse / META_DIR


def _sidecar(wheelhouse: Path, filename: str) -> Path:
    return meta_dir(wheelhouse) / f"{filename}.json"


def _temp_dir(wheelhouse: Path) -> Path:
    directory = meta_dir(wheelhouse) / "tmp"
    directory.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="fetch-", dir=directory))


def _known_sdist(spec: Spec, wheelhouse: Path) -> Source | None:
    """An sdist of this name and version already in the wheelhouse, fetched and checked by an
    earlier run (its record says so and its sha256 still matches)."""
    if not wheelhouse.is_dir():
        return None
    for candidate in sorted(wheelhouse.iterdir()):
        if not candidate.name.endswith((".tar.gz", ".zip")) or not candidate.is_file():
            continue
        try:
            name, version = parse_sdist_filename(candidate.name)
        except InvalidSdistFilename:
            continue
        if name != spec.name or not _same_version(str(version), spec.version):
            continue
        try:
            record = json.loads(_sidecar(wheelhouse, candidate.name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        digests = file_hashes(candidate, {h.algorithm for h in spec.hashes})
        if not isinstance(record, dict) or record.get("sha256") != digests["sha256"]:
            continue
        check_hashes(spec, candidate, digests)
        return Source(
            spec=spec,
            path=candidate,
            sha256=digests["sha256"],
            name=str(name),
            version=str(version),
            top=str(record["top"]),
            source_date_epoch=int(record["source_date_epoch"]),
            pure=bool(record["pure"]),
            origin=str(record.get("origin", "")),
            requires_python=(
                record.get("requires_python")
                if "requires_python" in record
                else inspect_archive(candidate).requires_python
            ),
            upload_time=record.get("upload_time") or None,
        )
    return None


def _same_version(a: str, b: str | None) -> bool:
    if b is None:
        return False
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _upload_time(package: Any) -> str | None:
    when = getattr(package, "upload_time", None)
    if when is None:
        return None
    return str(when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _record(wheelhouse: Path, source: Source) -> None:
    data = source.as_json()
    data["fetched_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json_atomic(_sidecar(wheelhouse, source.path.name), data)


def _place(temp_file: Path, destination: Path) -> None:
    """Move a checked file into the wheelhouse; never leave a partial file under its name."""
    temp_file.replace(destination)


# ---------------------------------------------------------------- indexes


@dataclass(frozen=True)
class IndexSettings:
    indexes: tuple[str, ...]  # primary first
    cert: str | None


def index_settings(
    spec_indexes: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> IndexSettings:
    """Where to look for sdists: a requirement file's own index options, else the host's pip
    settings (hostenv.pip_options: environment over config files, as pip reads them), else PyPI's
    simple API. Indexes that are host directories (file://) are not simple APIs and are
    skipped."""
    from pypi_simple import PYPI_SIMPLE_ENDPOINT

    options = hostenv.pip_options(environ)
    cert = options.get("cert")
    if spec_indexes:
        found = list(spec_indexes)
    else:
        primary = options.get("index-url") or PYPI_SIMPLE_ENDPOINT
        found = [primary, *options.get("extra-index-url", "").split()]
    usable = tuple(u for u in dict.fromkeys(found) if u.lower().startswith(("http://", "https://")))
    if not usable:
        usable = (PYPI_SIMPLE_ENDPOINT,)
    return IndexSettings(usable, cert if cert and Path(cert).is_file() else None)


def _session(settings: IndexSettings) -> Any:
    import requests

    session = requests.Session()
    if settings.cert:
        session.verify = settings.cert
    session.headers["User-Agent"] = "wheelfarm (sdist fetch)"
    return session


@dataclass(frozen=True)
class _Found:
    """A spec's sdist on an index page, not downloaded yet."""

    client: Any  # pypi_simple.PyPISimple
    package: Any  # pypi_simple.DistributionPackage
    shown: str  # the index URL, redacted


def _locate(spec: Spec, session: Any, settings: IndexSettings, timeout: float) -> _Found:
    """The spec's sdist from the first index whose page has it. An index that cannot be read
    is FetchFailed (exit 1); a project, version or sdist no index has is BadInput (exit 2)."""
    import pypi_simple
    import requests

    seen_versions: list[str] = []
    wheel_only = False
    for index in settings.indexes:
        shown = hostenv.redact(index)
        client = pypi_simple.PyPISimple(endpoint=index, session=session)
        try:
            page = client.get_project_page(spec.name, timeout=timeout)
        except pypi_simple.NoSuchProjectError:
            continue
        except (requests.RequestException, pypi_simple.UnsupportedContentTypeError) as exc:
            raise FetchFailed(
                f"cannot read {spec.name}'s page on {shown}: {exc}",
                hint="check the index URL and the network (pip config, PIP_INDEX_URL)",
            ) from None
        candidates = []
        for package in page.packages:
            if package.version is None:
                continue
            seen_versions.append(package.version)
            if not _same_version(package.version, spec.version):
                continue
            if package.package_type == "sdist":
                candidates.append(package)
            else:
                wheel_only = True
        if candidates:
            # A .tar.gz is the standard sdist; a legacy .zip only when there is nothing else.
            candidates.sort(key=lambda p: (not p.filename.endswith(".tar.gz"), p.filename))
            return _Found(client, candidates[0], shown)
    raise _not_found(spec, settings, seen_versions, wheel_only)


def _not_found(
    spec: Spec, settings: IndexSettings, seen_versions: list[str], wheel_only: bool
) -> BadInput:
    where = ", ".join(hostenv.redact(i) for i in settings.indexes)
    if wheel_only:
        return BadInput(
            f"{spec.origin}: {spec.requirement} has only wheels on {where}, no sdist to build",
            hint="wheelfarm builds from source; pick a version with an sdist",
        )
    if seen_versions:
        recent = sorted(set(seen_versions), key=_version_key)[-8:]
        return BadInput(
            f"{spec.origin}: no {spec.name} {spec.version} on {where}",
            hint="versions there include: " + ", ".join(recent),
        )
    return BadInput(
        f"{spec.origin}: no project {spec.name!r} on {where}",
        hint="check the spelling, or the index settings (pip config, PIP_INDEX_URL)",
    )


def _fetch_from_index(spec: Spec, wheelhouse: Path, timeout: float) -> Source:
    settings = index_settings(spec.indexes)
    session = _session(settings)
    try:
        found = _locate(spec, session, settings, timeout)
        return _download(
            found.client, found.package, spec, wheelhouse, shown=found.shown, timeout=timeout
        )
    finally:
        session.close()


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def _download(
    client: Any, package: Any, spec: Spec, wheelhouse: Path, *, shown: str, timeout: float
) -> Source:
    import pypi_simple
    import requests

    digest = (package.digests or {}).get("sha256")
    if not digest and not spec.hashes:
        raise FetchFailed(
            f"{shown} gives no sha256 for {package.filename}; it cannot be checked",
            hint="use an index that publishes hashes, or give --hash=sha256:... in a -r file",
        )
    staging = _temp_dir(wheelhouse)
    try:
        temp_file = staging / package.filename
        try:
            client.download_package(package, temp_file, verify=bool(digest), timeout=timeout)
        except pypi_simple.DigestMismatchError as exc:
            raise FetchFailed(
                f"{package.filename} from {shown} does not match the index's sha256 "
                f"(expected {exc.expected_digest}, got {exc.actual_digest})",
                hint="the download was corrupted or the index is inconsistent; try again",
            ) from None
        except requests.RequestException as exc:
            raise FetchFailed(
                f"downloading {package.filename} from {shown} failed: {exc}"
            ) from None
        digests = _check_local_hashes(spec, temp_file)
        inspection = inspect_archive(temp_file)
        name, version = parse_sdist_filename(package.filename)
        destination = wheelhouse / package.filename
        _place(temp_file, destination)
        source = Source(
            spec=spec,
            path=destination,
            sha256=digests["sha256"],
            name=str(canonicalize_name(name)),
            version=str(version),
            top=inspection.top,
            source_date_epoch=inspection.source_date_epoch,
            pure=inspection.pure,
            origin=hostenv.redact(str(package.url).split("#", 1)[0]),
            requires_python=package.requires_python or inspection.requires_python,
            upload_time=_upload_time(package),
        )
        _record(wheelhouse, source)
        return source
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------- local sources


def _local_sdist(spec: Spec, wheelhouse: Path) -> Source:
    assert spec.path is not None
    digests = _check_local_hashes(spec, spec.path)
    inspection = inspect_archive(spec.path)
    destination = wheelhouse / spec.path.name
    if not (destination.exists() and destination.samefile(spec.path)):
        staging = _temp_dir(wheelhouse)
        try:
            shutil.copyfile(spec.path, staging / spec.path.name)
            _place(staging / spec.path.name, destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    source = Source(
        spec=spec,
        path=destination,
        sha256=digests["sha256"],
        name=spec.name,
        version=spec.version,
        top=inspection.top,
        source_date_epoch=inspection.source_date_epoch,
        pure=inspection.pure,
        origin="local file",
        requires_python=inspection.requires_python,
    )
    _record(wheelhouse, source)
    return source


def _tree_files(root: Path, skip: Path | None) -> list[Path]:
    files: list[Path] = []
    for directory, subdirs, names in os.walk(root):
        here = Path(directory)
        subdirs[:] = sorted(
            d
            for d in subdirs
            if d not in _SKIP_IN_TREE
            and not d.endswith(".egg-info")
            and (skip is None or (here / d).resolve() != skip)
        )
        files.extend(here / n for n in sorted(names) if not (here / n).is_symlink())
    return files


def _pack_directory(spec: Spec, wheelhouse: Path) -> Source:
    """A deterministic tar.gz of a source tree: sorted members, owner root, times set to the
    newest file's mtime, so an unchanged tree packs to the same bytes (and the same key)."""
    import gzip

    assert spec.path is not None
    root = spec.path
    files = _tree_files(root, wheelhouse.resolve())
    epoch = max([int(p.stat().st_mtime) for p in files] + [MINIMUM_EPOCH])
    top = f"{spec.name}-{spec.version or '0'}"
    sources = meta_dir(wheelhouse) / SOURCES_DIR
    sources.mkdir(parents=True, exist_ok=True)
    staging = _temp_dir(wheelhouse)
    try:
        temp_file = staging / "source.tar.gz"
        with (
            temp_file.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
        ):
            for path in files:
                info = archive.gettarinfo(str(path), arcname=f"{top}/{path.relative_to(root)}")
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = epoch
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
        digests = _check_local_hashes(spec, temp_file)
        destination = sources / f"{spec.name}-{digests['sha256'][:16]}.tar.gz"
        _place(temp_file, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    inspection = inspect_archive(destination)
    return Source(
        spec=spec,
        path=destination,
        sha256=digests["sha256"],
        name=spec.name,
        version=spec.version,
        top=top,
        source_date_epoch=epoch,
        pure=inspection.pure,
        origin=f"local directory {root}",
        requires_python=inspection.requires_python,
    )


# ---------------------------------------------------------------- Requires-Python before fetching


@dataclass(frozen=True)
class PythonRequirements:
    """What each spec's Requires-Python is, found without downloading anything."""

    declared: Mapping[Spec, str | None]  # None: the spec declares none
    unknown: tuple[tuple[Spec, str], ...] = ()  # specs whose index could not be read, and why


def requires_python(
    spec: Spec, *, wheelhouse: Path | None = None, timeout: float = 30.0
) -> str | None:
    """The Requires-Python a spec declares, without downloading its sdist: a pinned spec's from
    its index page (`data-requires-python` of the sdist it would fetch; an sdist an earlier run
    put in `wheelhouse` answers without the index), a local sdist's or source tree's from its
    metadata. None when it declares none. An index that cannot be read is FetchFailed; a
    version no index has is BadInput, as fetch says."""
    if spec.kind == "sdist":
        assert spec.path is not None
        return inspect_archive(spec.path).requires_python
    if spec.kind == "directory":
        assert spec.path is not None
        texts = {
            n: (spec.path / n).read_bytes() for n in _READ_MEMBERS if (spec.path / n).is_file()
        }
        return _declared_python(texts)
    if wheelhouse is not None:
        known = _known_sdist(spec, wheelhouse)
        if known is not None:
            return known.requires_python
    settings = index_settings(spec.indexes)
    session = _session(settings)
    try:
        declared = _locate(spec, session, settings, timeout).package.requires_python
    finally:
        session.close()
    text = str(declared or "").strip()
    return text or None


def requires_pythons(
    specs: Sequence[Spec], *, wheelhouse: Path | None = None, timeout: float = 30.0
) -> PythonRequirements:
    """requires_python for every spec, asking the index for several at once. A spec whose index
    cannot be read goes to `unknown` (the caller keeps its pairs and says so); any other error
    (a version the index does not have) is raised."""
    from concurrent.futures import ThreadPoolExecutor

    def one(spec: Spec) -> str | FetchFailed | None:
        try:
            return requires_python(spec, wheelhouse=wheelhouse, timeout=timeout)
        except FetchFailed as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(specs)))) as pool:
        answers = list(pool.map(one, specs))
    pairs = list(zip(specs, answers, strict=True))
    declared = {s: a for s, a in pairs if not isinstance(a, FetchFailed)}
    unknown = tuple((s, a.message) for s, a in pairs if isinstance(a, FetchFailed))
    return PythonRequirements(declared, unknown)


# ---------------------------------------------------------------- entry point


def fetch(
    spec: Spec, wheelhouse: Path, *, timeout: float = 60.0, offline_ok: bool = True
) -> Source:
    """The checked source of one spec, in the wheelhouse. An sdist fetched by an earlier run
    is reused without asking the index (`offline_ok`)."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    meta_dir(wheelhouse).mkdir(exist_ok=True)
    if spec.kind == "directory":
        return _pack_directory(spec, wheelhouse)
    if spec.kind == "sdist":
        return _local_sdist(spec, wheelhouse)
    if offline_ok:
        known = _known_sdist(spec, wheelhouse)
        if known is not None:
            return known
    return _fetch_from_index(spec, wheelhouse, timeout)
