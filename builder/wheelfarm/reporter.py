"""How domain modules tell the user what is happening, without printing.

Domain code (build, verify, probe, images, index, publish...) takes a `Reporter` and calls it;
`ui.ConsoleReporter` is the implementation that draws on the terminal, `Silent` the one for
tests and for callers that only want the returned data. Nothing here imports rich or touches a
terminal, so a module that reports progress stays pure of output."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Protocol


class Board(Protocol):
    """Live status of parallel jobs: one line per job name, its current step, then its end."""

    def step(self, name: str, description: str) -> None: ...

    def finish(self, name: str, ok: bool, description: str) -> None: ...


class Reporter(Protocol):
    def board(self, names: Sequence[str]) -> contextlib.AbstractContextManager[Board]:
        """A status board for these job names, shown while the block runs."""
        ...

    def note(self, message: str) -> None:
        """A detail the user may skip (dim on a terminal)."""
        ...

    def warn(self, message: str) -> None: ...

    def info(self, message: str) -> None: ...


class _SilentBoard:
    def step(self, name: str, description: str) -> None:
        pass

    def finish(self, name: str, ok: bool, description: str) -> None:
        pass


class Silent:
    """A reporter that shows nothing and keeps what it was told, for tests and quiet callers."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    @contextlib.contextmanager
    def board(self, names: Sequence[str]) -> Iterator[Board]:
        yield _SilentBoard()

    def note(self, message: str) -> None:
        self.messages.append(("note", message))

    def warn(self, message: str) -> None:
        self.messages.append(("warn", message))

    def info(self, message: str) -> None:
        self.messages.append(("info", message))
