"""Real servers on 127.0.0.1 for the integration tests: a pypiserver holding chosen files."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited early (code {proc.returncode})"
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {seconds}s")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def pypiserver(packages: Path, log: Path | None = None) -> Iterator[str]:
    """A real pypiserver serving `packages` (no authentication); yields its URL. With `log`, its
    request log is written there."""
    port = free_port()
    out = log.open("w") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [str(VENV_BIN / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(port),
         "-a", ".", "-P", ".", "-v", str(packages)],
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/simple/", proc)
        yield url
    finally:
        stop(proc)
        if log is not None and not isinstance(out, int):
            out.close()
