"""What one consumer sees of a wheelhouse. Pure: file names in, file names out.

A wheel built on Debian 12 is named `…-linux_x86_64_debian_12.whl`. Stock pip and uv skip that
name, but install the same bytes named `…-linux_x86_64.whl` (they read the tag from the file
name only; DESIGN.md, "Facts measured"). So a consumer's view is: the best wheel its accepted
tags allow for each project/version/python-abi, shown under its plain `linux_<arch>` name."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.tags import Tag
from packaging.utils import (
    BuildTag,
    InvalidWheelFilename,
    NormalizedName,
    parse_wheel_filename,
)
from packaging.version import Version

from wheelfarm import tags
from wheelfarm.errors import BadInput
from wheelfarm.rules import TagSet

_ANY = "any"


@dataclass(frozen=True)
class WheelName:
    """A wheel file name taken apart. `platforms` keeps the file name's own order;
    `plain_filename` is this wheel's name with plain `linux_<arch>` for its distro tag(s)."""

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
        pairs = frozenset((t.interpreter, t.abi) for t in self.tags)
        object.__setattr__(self, "interpreter_abi", pairs)
        object.__setattr__(self, "plain_filename", _plain(self.filename, self.platforms))


def parse(filename: str) -> WheelName:
    """Parse a wheel file name; BadInput (exit 2) when it is not one."""
    try:
        name, version, build, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise BadInput(f"{filename}: not a valid wheel file name ({exc})") from None
    platforms = tuple(dict.fromkeys(filename[: -len(".whl")].rsplit("-", 1)[1].split(".")))
    return WheelName(filename, name, version, build, frozenset(wheel_tags), platforms)


@functools.lru_cache(maxsize=1024)
def plain_platform(platform_tag: str) -> str:
    """`linux_x86_64_debian_12` → `linux_x86_64`; any other platform tag is returned as is."""
    parts = tags.split_platform(platform_tag)
    if parts is None or not parts[1]:
        return platform_tag
    return tags.plain_tag(parts[0])


def plain_filename(wheel_filename: str) -> str:
    """The same wheel named with plain `linux_<arch>` instead of its distro tag(s), which is what
    stock pip and uv accept. Names without a distro tag come back unchanged."""
    return parse(wheel_filename).plain_filename


def _plain(filename: str, platforms: tuple[str, ...]) -> str:
    head = filename[: -len(".whl")].rsplit("-", 1)[0]
    plain = dict.fromkeys(plain_platform(p) for p in platforms)
    return f"{head}-{'.'.join(plain)}.whl"


def platform_rank(wheel: WheelName, tagset: TagSet) -> int | None:
    """How much the consumer likes this wheel's platform: the index of its best platform tag in
    the consumer's install list (0 = most specific); `any` ranks after every platform tag; None
    when the consumer accepts none of them."""
    return _rank(wheel, _ranks(tagset))


def _ranks(tagset: TagSet) -> dict[str, int]:
    ranks = {tag: i for i, tag in reversed(list(enumerate(tagset.install)))}
    ranks.setdefault(_ANY, len(tagset.install))
    return ranks


def _rank(wheel: WheelName, ranks: dict[str, int]) -> int | None:
    found = [ranks[p] for p in wheel.platforms if p in ranks]
    return min(found) if found else None


def select(wheels: Iterable[WheelName], tagset: TagSet) -> list[WheelName]:
    """`select_for_consumer` on parsed names (parse once, select for many consumers)."""
    ranks = _ranks(tagset)
    best: dict[tuple[str, Version, frozenset[tuple[str, str]]], tuple[int, WheelName]] = {}
    for wheel in wheels:
        rank = _rank(wheel, ranks)
        if rank is None:
            continue
        key = (wheel.name, wheel.version, wheel.interpreter_abi)
        current = best.get(key)
        if current is None or _better((rank, wheel), current):
            best[key] = (rank, wheel)
    chosen = sorted(best.values(), key=lambda item: (item[0], item[1].filename))
    return [wheel for _, wheel in chosen]


def select_for_consumer(wheel_filenames: Iterable[str], tagset: TagSet) -> list[str]:
    """The best wheel per (project, version, python/abi tags) among those the consumer accepts.

    Best: the most specific platform tag in the consumer's install list, then the highest build
    number, then the file name (so the choice never depends on input order). The result is in
    the consumer's preference order: most specific platform first, then by file name."""
    return [w.filename for w in select((parse(f) for f in wheel_filenames), tagset)]


def _better(candidate: tuple[int, WheelName], current: tuple[int, WheelName]) -> bool:
    (rank_a, a), (rank_b, b) = candidate, current
    if rank_a != rank_b:
        return rank_a < rank_b
    if a.build != b.build:
        return a.build > b.build
    return a.filename < b.filename
