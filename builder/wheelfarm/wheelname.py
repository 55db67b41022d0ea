"""A wheel's file name taken apart (PEP 427/491), the one type every module uses for it. Pure.

packaging's `parse_wheel_filename` does the parsing (build tags, compressed tag sets, name
normalisation); this adds what wheelfarm asks of a name: its platform tags in the file's own
order, and the same file under other platform tags (a retag's output, a view's plain name)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from packaging.tags import Tag
from packaging.utils import BuildTag, InvalidWheelFilename, NormalizedName, parse_wheel_filename
from packaging.version import Version

from wheelfarm import tags
from wheelfarm.errors import BadInput


@dataclass(frozen=True)
class WheelName:
    """`platforms` keeps the file name's own order; `plain_filename` is this wheel's name with
    plain `linux_<arch>` for its distro tag(s)."""

    filename: str
    name: NormalizedName
    version: Version
    build: BuildTag
    tags: frozenset[Tag]
    platforms: tuple[str, ...]
    # Derived once here rather than by cached_property: an index asks every wheel for both, and
    # before Python 3.12 cached_property takes a lock on each first access.
    interpreter_abi: frozenset[tuple[str, str]] = field(init=False, repr=False, compare=False)
    plain_filename: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "interpreter_abi", _interpreter_abi(self.tags))
        object.__setattr__(self, "plain_filename", self.with_platform(_plain(self.platforms)))

    def with_platform(self, platform: str) -> str:
        """This file's name with `platform` for its platform tag(s); the rest is kept as the
        file spells it (case, build tag, python and abi tags)."""
        head = self.filename[: -len(".whl")].rsplit("-", 1)[0]
        return f"{head}-{platform}.whl"


def parse(filename: str) -> WheelName:
    """Parse a wheel file name; BadInput (exit 2) when it is not one."""
    try:
        return _parse_shared(filename)
    except InvalidWheelFilename:
        pass  # parsed whole again below, so that packaging's message names this file
    try:
        name, version, build, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise BadInput(f"{filename}: not a valid wheel file name ({exc})") from None
    platforms = tuple(dict.fromkeys(filename[: -len(".whl")].rsplit("-", 1)[1].split(".")))
    return WheelName(filename, name, version, build, frozenset(wheel_tags), platforms)


# A wheelhouse repeats a few name-version heads across targets and Pythons, and a few tag sets
# across projects (10,000 wheels: ~2,000 heads, a dozen tag sets), so each part is parsed once
# and its Version and Tag objects are shared: parsing every name whole was a tenth of a cold
# index, and left ~8 objects per wheel for the garbage collector to walk (index_scale.py).
# packaging checks a name's head and its tags independently, so a name assembled from a real
# head with neutral tags (and the reverse) passes or fails exactly as the real name would.
def _parse_shared(filename: str) -> WheelName:
    parts = filename[: -len(".whl")].rsplit("-", 3) if filename.endswith(".whl") else []
    if len(parts) != 4 or parts[0].count("-") not in (1, 2):
        raise InvalidWheelFilename(filename)
    name, version, build = _parse_head(parts[0])
    wheel_tags, platforms = _parse_tags("-".join(parts[1:]))
    return WheelName(filename, name, version, build, wheel_tags, platforms)


@functools.lru_cache(maxsize=4096)
def _parse_head(head: str) -> tuple[NormalizedName, Version, BuildTag]:
    name, version, build, _ = parse_wheel_filename(f"{head}-py3-none-any.whl")
    return name, version, build


@functools.lru_cache(maxsize=1024)
def _parse_tags(tag_string: str) -> tuple[frozenset[Tag], tuple[str, ...]]:
    wheel_tags = parse_wheel_filename(f"x-0-{tag_string}.whl")[3]
    platforms = tuple(dict.fromkeys(tag_string.rsplit("-", 1)[1].split(".")))
    return frozenset(wheel_tags), platforms


@functools.lru_cache(maxsize=1024)
def _interpreter_abi(wheel_tags: frozenset[Tag]) -> frozenset[tuple[str, str]]:
    return frozenset((t.interpreter, t.abi) for t in wheel_tags)


@functools.lru_cache(maxsize=1024)
def _plain(platforms: tuple[str, ...]) -> str:
    return ".".join(dict.fromkeys(plain_platform(p) for p in platforms))


@functools.lru_cache(maxsize=1024)
def plain_platform(platform_tag: str) -> str:
    """`linux_x86_64_debian_12` → `linux_x86_64`; any other platform tag is returned as is."""
    parts = tags.split_platform(platform_tag)
    if parts is None or not parts[1]:
        return platform_tag
    return tags.plain_tag(parts[0])
