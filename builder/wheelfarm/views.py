"""What one consumer sees of a wheelhouse. Pure: file names in, file names out.

A wheel built on Debian 12 is named `…-linux_x86_64_debian_12.whl`. Stock pip and uv skip that
name, yet install the very same bytes when the file is named `…-linux_x86_64.whl`: they take the
tags from the file name alone, never from the WHEEL file inside. So a consumer's view is: the best
wheel its accepted tags allow for each project/version/python-abi, shown under its plain
`linux_<arch>` name."""

from __future__ import annotations

from collections.abc import Iterable

from packaging.version import Version

from wheelfarm import wheelname
from wheelfarm.rules import TagSet
from wheelfarm.wheelname import WheelName

_ANY = "any"


def plain_filename(wheel_filename: str) -> str:
    """The same wheel named with plain `linux_<arch>` instead of its distro tag(s), which is what
    stock pip and uv accept. Names without a distro tag come back unchanged."""
    return wheelname.parse(wheel_filename).plain_filename


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
    return [w.filename for w in select((wheelname.parse(f) for f in wheel_filenames), tagset)]


def _better(candidate: tuple[int, WheelName], current: tuple[int, WheelName]) -> bool:
    (rank_a, a), (rank_b, b) = candidate, current
    if rank_a != rank_b:
        return rank_a < rank_b
    if a.build != b.build:
        return a.build > b.build
    return a.filename < b.filename
