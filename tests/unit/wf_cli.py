"""Run wheelfarm's CLI as a user does: a real subprocess, or (for the many malformed-input cases,
to keep the suite fast) the same `cli.main()` in this process with the same argv handling."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OS_RELEASE = REPO / "tests" / "data" / "os-release"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without settings that would change what wheelfarm decides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WHEELFARM_") and k not in {"VIRTUAL_ENV", "SOURCE_DATE_EPOCH"}
    }
    env["COLUMNS"] = "200"  # keep rich tables on one line per row
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env if env is not None else clean_env(),
        cwd=cwd,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> Result:
    from wheelfarm import cli

    monkeypatch.setattr(sys, "argv", ["wheelfarm", *args])
    capsys.readouterr()
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)
