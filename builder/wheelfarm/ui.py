"""All human-facing output. The only module that imports rich.

Human output goes to stderr so stdout stays clean for `--json` and for piping; JSON goes to stdout
as plain text, never through rich (rich wraps long lines). Text from users and tools (messages,
hints, log lines, cells) is shown literally: rich Text objects, never markup, and no emoji codes
(a compiler's `_yaml.c:100:5:` or a `sha256:...` would be mangled)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from wheelfarm.errors import ReaderGone


def _make_console() -> Console:
    # Off a terminal (CI logs, pipes) rich assumes 80 columns and folds every wheel name in a
    # table; logs have no width, so give tables room unless the user set COLUMNS.
    console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False, width=160)
    return console


console = _make_console()


def emit_json(data: Any) -> None:
    try:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head -1`): its choice, not a failure. Raised on to the CLI,
        # which ends quietly with the shell's SIGPIPE status (click would say exit 1).
        raise ReaderGone from None


def _labelled(label: str, style: str, message: str) -> Text:
    return Text.assemble((label, style), " ", message)


def info(message: str) -> None:
    console.print(Text(message))


def detail(message: str) -> None:
    console.print(Text(message, style="dim"))


def success(message: str) -> None:
    console.print(_labelled("✓", "green", message))


def warn(message: str) -> None:
    console.print(_labelled("warning:", "yellow", message))


def error(message: str, hint: str | None = None) -> None:
    console.print(_labelled("error:", "bold red", message))
    if hint:
        console.print(_labelled("hint:", "cyan", hint))


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    styles: dict[str, str] | None = None,
) -> None:
    """A table of plain strings; a cell's text is never interpreted as markup. `styles` maps a
    cell's exact text to a style (e.g. {"failed": "red"})."""
    styles = styles or {}
    t = Table(title=Text(title) if title else None, title_justify="left", show_lines=False)
    for column in columns:
        t.add_column(Text(column), overflow="fold")
    for row in rows:
        t.add_row(*(Text(c, style=styles.get(c, "")) for c in row))
    console.print(t)


def in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


@contextmanager
def group(title: str) -> Iterator[None]:
    """A foldable log group on GitHub Actions, a heading elsewhere."""
    if in_github_actions():
        sys.stderr.write(f"::group::{title}\n")
        sys.stderr.flush()
        try:
            yield
        finally:
            sys.stderr.write("::endgroup::\n")
            sys.stderr.flush()
    else:
        console.rule(Text(title), align="left", style="dim")
        yield


class StepBoard:
    """Live status of several parallel jobs (one line each: name, current step, elapsed time).

    On a terminal it is a live rich display; elsewhere (CI logs, pipes) every step change is one
    plain line, so logs stay readable. Thread-safe: rich's Progress locks internally and the plain
    path writes whole lines."""

    def __init__(self, names: Sequence[str], *, enabled: bool = True) -> None:
        self._names = list(names)
        self._enabled = enabled
        self._live = enabled and console.is_terminal
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> StepBoard:
        if self._live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.fields[mark]}"),  # only our own marks: ✓ or ✗
                TextColumn("{task.fields[name]}", style="bold", markup=False),
                TextColumn("{task.description}", markup=False),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._progress.start()
            for name in self._names:
                self._tasks[name] = self._progress.add_task(
                    "waiting", name=name, mark="", total=None, start=False
                )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def step(self, name: str, description: str) -> None:
        if not self._enabled:
            return
        self._started.setdefault(name, time.monotonic())
        if self._progress is not None:
            task = self._tasks[name]
            self._progress.start_task(task)
            self._progress.update(task, description=description)
        else:
            elapsed = time.monotonic() - self._started[name]
            console.print(
                Text.assemble((name, "bold"), " ", description, " ", (f"({elapsed:.1f}s)", "dim"))
            )

    def finish(self, name: str, ok: bool, description: str) -> None:
        if not self._enabled:
            return
        mark = ("✓", "green") if ok else ("✗", "red")
        if self._progress is not None:
            task = self._tasks[name]
            self._progress.start_task(task)
            mark_markup = f"[{mark[1]}]{mark[0]}[/]"
            self._progress.update(task, description=description, mark=mark_markup)
            self._progress.stop_task(task)
        else:
            elapsed = time.monotonic() - self._started.get(name, time.monotonic())
            console.print(
                Text.assemble(
                    mark, " ", (name, "bold"), " ", description, " ", (f"({elapsed:.1f}s)", "dim")
                )
            )


class ConsoleReporter:
    """reporter.Reporter on the terminal: a StepBoard for parallel jobs, notes dim, warnings
    labelled."""

    @contextmanager
    def board(self, names: Sequence[str]) -> Iterator[StepBoard]:
        with StepBoard(names) as board:
            yield board

    def note(self, message: str) -> None:
        detail(message)

    def warn(self, message: str) -> None:
        warn(message)

    def info(self, message: str) -> None:
        info(message)
