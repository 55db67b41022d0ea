"""Every command's --help explains itself with an example (issue 3's definition of done)."""

from __future__ import annotations

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
