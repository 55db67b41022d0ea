"""All human-facing output. The only module that imports rich.

Human output goes to stderr so stdout stays clean for `--json` and for piping; JSON goes to stdout
as plain text, never through rich (rich wraps long lines)."""

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
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table


def _make_console() -> Console:
    # Off a terminal (CI logs, pipes) rich assumes 80 columns and folds every wheel name in a
    # table; logs have no width, so give tables room unless the user set COLUMNS.
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=True, highlight=False, soft_wrap=True, width=160)
    return console


console = _make_console()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    console.print(escape(message))


def detail(message: str) -> None:
    console.print(escape(message), style="dim")


def success(message: str) -> None:
    console.print(f"[green]✓[/green] {escape(message)}")


def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/yellow] {escape(message)}")


def error(message: str, hint: str | None = None) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(message)}")
    if hint:
        console.print(f"[cyan]hint:[/cyan] {escape(hint)}")


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
    t = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        t.add_row(*(f"[{styles[c]}]{escape(c)}[/]" if c in styles else escape(c) for c in row))
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
        console.rule(escape(title), align="left", style="dim")
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
                TextColumn("[bold]{task.fields[name]}[/bold]"),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            self._progress.start()
            for name in self._names:
                self._tasks[name] = self._progress.add_task(
                    "waiting", name=escape(name), total=None, start=False
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
            self._progress.update(task, description=escape(description))
        else:
            elapsed = time.monotonic() - self._started[name]
            console.print(
                f"[bold]{escape(name)}[/bold] {escape(description)} [dim]({elapsed:.1f}s)[/dim]"
            )

    def finish(self, name: str, ok: bool, description: str) -> None:
        if not self._enabled:
            return
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        if self._progress is not None:
            task = self._tasks[name]
            self._progress.start_task(task)
            self._progress.update(task, description=f"{mark} {escape(description)}")
            self._progress.stop_task(task)
        else:
            elapsed = time.monotonic() - self._started.get(name, time.monotonic())
            line = f"{mark} [bold]{escape(name)}[/bold] {escape(description)}"
            console.print(f"{line} [dim]({elapsed:.1f}s)[/dim]")
