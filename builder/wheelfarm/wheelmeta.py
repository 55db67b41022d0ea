"""A distribution's core metadata (a wheel's .dist-info/METADATA, an sdist's PKG-INFO): the one
reader every module uses, and the one way wheelfarm rewrites a field of it. Pure: bytes in.

Reading is lenient, as installers are: packaging's `parse_email` splits the fields without judging
them (an unknown field, an `X-` header or a field newer than the installed packaging knows, such
as Metadata 2.4's License-Expression, is simply not kept), and of a single-use field given twice
the first counts. Only the header block is parsed: the body is the long description, which
nothing here needs and which can be most of the file.

Both the reader and the editor take the header block to end at the first empty line and a line
that starts with a space or a tab to continue the field above it; a value is unfolded (the line
breaks inside it removed) and stripped."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from packaging.metadata import parse_email

from wheelfarm.errors import BadInput

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_KEPT = frozenset({"name", "version", "requires-python", "requires-dist", "requires-external"})


@dataclass(frozen=True)
class Metadata:
    """The fields wheelfarm reads; None or empty when the file does not have them."""

    name: str | None
    version: str | None
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    requires_external: tuple[str, ...] = ()


def header_fields(data: bytes) -> tuple[list[bytes], bytes]:
    """The header block as fields (each with its line ending and continuation lines) and the
    untouched rest, from the empty line that ends the block on."""
    lines = data.splitlines(keepends=True)
    fields: list[bytes] = []
    for number, line in enumerate(lines):
        if line in (b"\n", b"\r\n", b"\r"):
            return fields, b"".join(lines[number:])
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, b""


def field_name(field: bytes) -> str:
    """A header field's name, lowercased (names are case-insensitive)."""
    return field.split(b":", 1)[0].strip().decode("utf-8", "replace").lower()


def field_value(field: bytes) -> str:
    return _unfold(field.split(b":", 1)[1].decode("utf-8"))


def _unfold(value: str) -> str:
    return (_FOLD.sub("", value) if "\n" in value else value).strip()


def parse(data: bytes) -> Metadata:
    """What a METADATA or PKG-INFO file says. Never fails: what it lacks comes back empty."""
    fields, _ = header_fields(data)
    # Only the fields kept here go to the parser: it costs per line (classifiers, project URLs,
    # a long Description header can be most of a real METADATA).
    kept = [f for f in fields if field_name(f) in _KEPT]
    raw, unparsed = parse_email(b"".join(kept) + b"\n")

    fields_found = cast("dict[str, object]", raw)

    def values(key: str) -> list[str]:
        found = fields_found.get(key)
        if isinstance(found, str):
            return [found]
        if isinstance(found, list):
            return [str(v) for v in found]
        # What parse_email would not judge (a single field given twice, bytes that are not UTF-8)
        # still counts, as it does for pip.
        return unparsed.get(key.replace("_", "-"), [])

    def first(key: str) -> str | None:
        found = values(key)
        return _unfold(found[0]) if found else None

    def every(key: str) -> tuple[str, ...]:
        return tuple(_unfold(v) for v in values(key))

    return Metadata(
        name=first("name"),
        version=first("version"),
        requires_python=first("requires_python"),
        requires_dist=every("requires_dist"),
        requires_external=every("requires_external"),
    )


def dist_info(members: Iterable[str]) -> str:
    """The one top-level `.dist-info` directory of a wheel's members (as pip finds it);
    BadInput saying what is wrong when there is none or more than one."""
    found = sorted(
        {
            top
            for member in members
            # the cheap test first: most members are not in a .dist-info directory at all
            if ".dist-info/" in member
            and (top := member[: member.index("/")]).endswith(".dist-info")
        }
    )
    if not found:
        raise BadInput("it has no .dist-info directory: not a wheel")
    if len(found) > 1:
        raise BadInput(f"expected one .dist-info directory, found {len(found)}")
    return found[0]


def with_requires_external(data: bytes, requirements: Sequence[str]) -> bytes:
    """The same METADATA with every Requires-External field replaced by `requirements`, placed
    where the first one was (or at the end of the header block); every other byte is kept."""
    fields, body = header_fields(data)
    newline = b"\r\n" if fields and fields[0].endswith(b"\r\n") else b"\n"
    new = [f"Requires-External: {r}".encode() + newline for r in requirements]
    out: list[bytes] = []
    placed = False
    for f in fields:
        if field_name(f) == "requires-external":
            if not placed:
                out.extend(new)
                placed = True
        else:
            out.append(f)
    if not placed:
        if out and not out[-1].endswith(b"\n"):
            out[-1] += newline
        out.extend(new)
    return b"".join(out) + body
