"""os-release(5) parsing. Pure: text in, mapping out; the one filesystem probe is `read_host`."""

from __future__ import annotations

import re
from pathlib import Path

from wheelfarm.errors import BadInput

HOST_PATHS = (Path("/etc/os-release"), Path("/usr/lib/os-release"))

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Inside double quotes a backslash escapes only these, as in the shell; elsewhere it stays.
_DQ_ESCAPABLE = frozenset('"\\$`')
_BLANKS = frozenset(" \t")


class _Unterminated(ValueError):
    pass


def _parse_value(raw: str) -> str:
    """Shell-style value: unquoted text, '…' literal, "…" with backslash escapes, concatenated.
    Unescaped blanks at the start and end of unquoted text are dropped, as systemd does."""
    out: list[str] = []
    blanks: list[str] = []  # unquoted blanks, kept only if something follows them
    i, n = 0, len(raw)

    def emit(text: str) -> None:
        out.extend(blanks)
        blanks.clear()
        out.append(text)

    while i < n:
        c = raw[i]
        if c == "'":
            end = raw.find("'", i + 1)
            if end < 0:
                raise _Unterminated(raw)
            emit(raw[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            chunk: list[str] = []
            while True:
                if i >= n:
                    raise _Unterminated(raw)
                c = raw[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and raw[i + 1] in _DQ_ESCAPABLE:
                    chunk.append(raw[i + 1])
                    i += 2
                else:
                    chunk.append(c)
                    i += 1
            emit("".join(chunk))
        elif c == "\\" and i + 1 < n:
            emit(raw[i + 1])
            i += 2
        elif c in _BLANKS:
            if out:
                blanks.append(c)
            i += 1
        else:
            emit(c)
            i += 1
    return "".join(out)


def parse(text: str) -> dict[str, str]:
    """Parse os-release text. Lines that are not assignments, or whose quoting is broken, are
    skipped, as systemd does; a later assignment of the same key wins."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, raw = stripped.partition("=")
        if not _KEY.match(key):
            continue
        try:
            fields[key] = _parse_value(raw)
        except _Unterminated:
            continue
    return fields


def read_file(path: Path) -> dict[str, str]:
    """Read an os-release file the user named; a missing or unreadable file, or one with no
    KEY=value line at all, is bad input."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise BadInput(
            f"os-release file {path} does not exist",
            hint="pass the path of a real os-release file, e.g. /etc/os-release",
        ) from None
    except OSError as exc:
        raise BadInput(f"cannot read os-release file {path}: {exc.strerror}") from None
    fields = parse(text)
    # os-release(5) defaults a missing ID to "linux", but a file with no assignment at all (an
    # empty file, a binary) is not an os-release file: tagging it linux_<arch>_linux_rolling
    # would hide the mistake.
    if not fields:
        raise BadInput(
            f"no os-release keys in {path}",
            hint="pass an os-release file (KEY=value lines such as ID=debian, VERSION_ID=12)",
        )
    return fields


def read_host(paths: tuple[Path, ...] | None = None) -> dict[str, str] | None:
    """The running machine's os-release, or None when it has none (not a distro we can tag).
    `HOST_PATHS` is looked up at call time so a test can describe a machine without one."""
    for path in HOST_PATHS if paths is None else paths:
        try:
            return parse(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return None
