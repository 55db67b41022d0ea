"""ui.ConsoleReporter, the Reporter the commands hand to domain code: everything it is told
reaches stderr as written, nothing reaches stdout (which is kept for --json)."""

from __future__ import annotations

import re

import pytest

from wheelfarm import runner, ui
from wheelfarm.reporter import Reporter


def test_board_notes_warnings_and_info_go_to_stderr_literally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reporter: Reporter = ui.ConsoleReporter()
    with reporter.board(["debian-12", "debian-13"]) as board:
        board.step("debian-12", "compiling pyyaml")
        board.finish("debian-12", True, "built")
        board.finish("debian-13", False, "stopped")
    reporter.note("_yaml.c:100:5: [bold]not markup[/bold] :smile:")
    reporter.warn("the wheels were built, but verification could not run")
    reporter.info("serving site at http://127.0.0.1:8000/")
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    # Off a terminal the board is one plain line per change, with the time since the job began.
    assert re.fullmatch(r"debian-12 compiling pyyaml \(\d+\.\ds\)", lines[0]), lines[0]
    assert re.fullmatch(r"✓ debian-12 built \(\d+\.\ds\)", lines[1]), lines[1]
    assert re.fullmatch(r"✗ debian-13 stopped \(\d+\.\ds\)", lines[2]), lines[2]
    assert lines[3:] == [
        "_yaml.c:100:5: [bold]not markup[/bold] :smile:",
        "warning: the wheels were built, but verification could not run",
        "serving site at http://127.0.0.1:8000/",
    ]


def test_host_settings_are_returned_as_notes_not_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_FIND_LINKS", "/wf-test/links")
    notes = runner.note_host_settings()
    assert "note: not passed to containers (host-only): PIP_FIND_LINKS=/wf-test/links" in notes
    assert capsys.readouterr() == ("", "")
