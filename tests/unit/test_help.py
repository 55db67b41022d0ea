"""Every command's --help explains itself with an example (issue 3's definition of done)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
import typer
from wf_cli import run_in_process

from wheelfarm.cli import app


def command_paths(group: typer.Typer, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for command in group.registered_commands:
        assert command.callback is not None
        yield (*prefix, command.name or command.callback.__name__.replace("_", "-"))
    for sub in group.registered_groups:
        assert sub.name is not None and sub.typer_instance is not None
        yield (*prefix, sub.name)
        yield from command_paths(sub.typer_instance, (*prefix, sub.name))


PATHS = [(), *command_paths(app)]


def panel_rows(text: str, title: str) -> list[str]:
    """The rows of one of typer's help panels ("Options", "Arguments"), continuation lines too."""
    rows: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith(f"╭─ {title} "):
            inside = True
        elif inside and line.startswith("╰"):
            inside = False
        elif inside:
            rows.append(line)
    return rows


def typers_help_row(row: str) -> bool:
    return re.match(r"│\s+--help\s", row) is not None


def bracketed_in_help(path: tuple[str, ...]) -> Counter[str]:
    """Every "[word]" the options' and arguments' help texts of this command hold, as written,
    each as many times as it is written."""
    command = typer.main.get_command(app)
    for name in path:  # a group's subcommands (typer's click, vendored or not)
        command = command.commands[name]  # type: ignore[attr-defined]
    found: Counter[str] = Counter()
    for param in command.params:
        text = getattr(param, "help", None) or ""
        found.update(re.findall(r"\[[a-z][\w.-]*\]", text.replace("\\[", "[")))
    return found


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "wheelfarm" for p in PATHS])
def test_help_has_an_example(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    result = run_in_process(capsys, monkeypatch, *path, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: wheelfarm" in result.stdout
    assert "example" in result.stdout.lower(), f"`wheelfarm {' '.join(path)} --help` has no example"
    assert f"wheelfarm {' '.join(path)}".strip() in result.stdout.split("Usage:", 1)[1]


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "wheelfarm" for p in PATHS])
def test_help_reads_cleanly(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No text eaten as markup, no typer type names for an option that has a metavar, no type
    beside our flags, no doubled "...", and the command list one line per command.

    Two places are typer's own and left as typer draws them (hiding them meant patching typer):
    an argument's row shows its type beside its metavar (WHEEL <list[Path]>, typer >= 0.2x), and
    the --help option typer adds shows <bool> there."""
    monkeypatch.setenv("COLUMNS", "100")
    result = run_in_process(capsys, monkeypatch, *path, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    options = panel_rows(text, "Options")
    assert any(typers_help_row(row) for row in options), "no Options panel found"
    ours = [row for row in options if not typers_help_row(row)]
    assert not [row for row in ours if "<list[" in row], ours
    assert not [row for row in ours if "<bool>" in row], "a flag shows a value type"
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "...}" not in usage and "...]" not in usage, usage
    shown = " ".join(text.split())
    eaten = [tag for tag, n in bracketed_in_help(path).items() if shown.count(tag) < n]
    assert not eaten, f"eaten as markup: {eaten}"
    if "Commands" in text:
        panel = text.split("Commands", 1)[1]
        rows = [line for line in panel.splitlines() if line.startswith("│")]
        assert rows and all(not line.startswith("│  ") for line in rows), panel


def test_docstring_paragraphs_are_reflowed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Line breaks in the source must not reach the terminal: at 200 columns the paragraph's
    first 150-odd characters are on one line (they used to break after "virtualenv's")."""
    monkeypatch.setenv("COLUMNS", "200")
    result = run_in_process(capsys, monkeypatch, "tags", "--help")
    assert (
        "Without --os-release it describes this machine, applying --rules (or the project's "
        "configured rules), the active virtualenv's binary-compatibility.cfg"
    ) in result.stdout
    usage = run_in_process(capsys, monkeypatch, "retag", "--help").stdout
    # The argument by its metavar, as typer writes a repeatable one: {WHEEL}... (0.29), WHEEL
    # (the lowest typer pyproject.toml allows).
    assert re.search(r"Usage: wheelfarm retag \[OPTIONS\] (\{WHEEL\}\.\.\.|WHEEL)\s", usage), usage


_SNAPSHOT = """
import inspect, json, sys
import typer, typer.core, typer.main

# click itself, or the copy newer typer releases vendor: the module typer's Command extends
click_core = sys.modules[typer.core.TyperCommand.__mro__[1].__module__]

def classes():
    for module in (typer.core, click_core):
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and cls.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", cls

def snapshot():
    return {key: sorted((k, id(v)) for k, v in vars(cls).items()) for key, cls in classes()}

before = snapshot()
from wheelfarm import cli
command = typer.main.get_command(cli.app)
with click_core.Context(command) as ctx:
    command.get_help(ctx)
    subcommands = [command.get_command(ctx, n) for n in command.list_commands(ctx)]
params = [p for c in [command, *subcommands] for p in c.get_params(ctx)]
print(json.dumps({
    "changed": sorted(k for k, v in snapshot().items() if before.get(k) != v),
    "foreign": sorted(
        m for m in {type(p).__module__ for p in params}
        if not m.startswith(("typer.", click_core.__name__.rpartition(".")[0] + "."))
    ),
}))
"""


def test_the_cli_changes_nothing_in_typer_or_click() -> None:
    """Importing the CLI and drawing its help leaves typer's and click's classes as they were,
    and every parameter is one of theirs (no method replaced, no class swapped on an object)."""
    proc = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    assert found == {"changed": [], "foreign": []}
