"""File-system helpers every writer shares, so that each rule is kept in one place: a file appears
whole or not at all (written beside its final name, then renamed over it), records are readable by
anyone who can read the wheelhouse (0644), a copy is a hard link where the file system allows, and
a key is the sha256 of canonical JSON."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

# What os.link raises when the file system cannot link these two paths (another device, no hard
# links at all, too many links): copy instead. Anything else (a missing source, an existing
# destination) is a real error.
_CANNOT_LINK = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP}
)


def write_text_atomic(path: Path, text: str, *, suffix: str = "") -> None:
    """Write `text` to a temp file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # Records and reports are meant to be read by anyone who can read the wheelhouse.
        Path(temp).chmod(0o644)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """`data` as indented JSON with sorted keys, written atomically."""
    text = json.dumps(dict(data), indent=2, sort_keys=True) + "\n"
    write_text_atomic(path, text, suffix=".json")


def link_or_copy(
    source: Path | str, destination: Path | str, copies: dict[Path, str] | None = None
) -> None:
    """Hard-link `source` to `destination`, else copy it (keeping its times). With `copies`, a
    file copied once (across file systems) is linked from that first copy afterwards."""
    source = Path(source)
    origin = copies.get(source) if copies is not None else None
    if origin is not None:
        os.link(origin, destination)
        return
    try:
        os.link(source, destination)
    except OSError as exc:
        if exc.errno not in _CANNOT_LINK:
            raise
        shutil.copy2(source, destination)
        if copies is not None:
            copies[source] = str(destination)


def place_copy(source: Path, destination: Path, *, work_dir: Path | None = None) -> None:
    """Put a copy of `source` (a hard link where possible) at `destination`, readable by all,
    atomically: made in a temp directory under `work_dir` (default: beside the destination),
    then renamed into place."""
    parent = work_dir if work_dir is not None else destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    try:
        temp = staging / destination.name
        link_or_copy(source, temp)
        temp.chmod(0o644)
        temp.replace(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _missing_dirs(path: Path) -> tuple[list[Path], Path | None]:
    """The directories missing from `path` upward, deepest first, and what stands where a
    directory must be (a file, a dangling link), if anything."""
    missing: list[Path] = []
    for current in (path, *path.parents):
        if current.is_dir():
            return missing, None
        if current.exists() or current.is_symlink():
            return missing, current
        missing.append(current)
    return missing, None


def blocking_file(path: Path) -> Path | None:
    """What keeps `path` from being, or becoming, a directory: `path` itself or a parent that
    exists and is not a directory. None when `path` is a directory or can be made one."""
    return _missing_dirs(path)[1]


def make_dirs(path: Path) -> list[Path]:
    """Make `path` and its missing parents; return those made, deepest first, so a caller that
    ends up writing nothing can remove them again. Nothing is made when a file stands in the way
    (NotADirectoryError naming it); a failure part way removes what this call made, then raises."""
    missing, blocker = _missing_dirs(path)
    if blocker is not None:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(blocker))
    made: list[Path] = []
    try:
        for directory in reversed(missing):
            directory.mkdir(exist_ok=True)
            made.insert(0, directory)
    except OSError:
        remove_empty_dirs(made)
        raise
    return made


def remove_empty_dirs(directories: Iterable[Path]) -> None:
    """Remove each directory (deepest first) if it is still empty; others are left alone."""
    for directory in directories:
        with contextlib.suppress(OSError):
            directory.rmdir()


@contextlib.contextmanager
def replacing_dir(destination: Path) -> Iterator[Path]:
    """A temp directory beside `destination` to fill; when the block ends without error it
    replaces `destination` whole, else it is removed. A crash leaves the old entry or the new
    one, never half of either."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=destination.parent))
    try:
        yield staging
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def digest(data: Mapping[str, Any]) -> str:
    """sha256 of `data` as canonical JSON (sorted keys, no spaces): the same content, the same
    key, whatever order it was assembled in."""
    text = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def file_hashes(path: Path, algorithms: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a file's bytes (sha256 always, and each algorithm asked for), read once."""
    digests = {name: hashlib.new(name) for name in {"sha256", *algorithms}}
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            for one in digests.values():
                one.update(block)
    return {name: one.hexdigest() for name, one in digests.items()}


def file_sha256(path: Path) -> str:
    return file_hashes(path)["sha256"]
