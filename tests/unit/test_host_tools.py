"""The images module's own machinery that needs no engine: the host programs it runs."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from wheelfarm import images, runner


def _ended(pid: int, within: float) -> bool:
    """Gone, or a zombie waiting for whoever adopted it to reap it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_host_tools_stop_ends_a_running_program_and_its_children(tmp_path: Path) -> None:
    """What a SIGTERM to wheelfarm does to a debootstrap in flight: the program and what it
    started (its downloader) end, and the worker running it learns it is cancelled."""
    tools = images.HostTools()
    marker = tmp_path / "grandchild.pid"
    outcome: list[BaseException | None] = []

    def worker() -> None:
        try:
            tools.run(["sh", "-c", f"sleep 300 & echo $! > {marker}; wait"])
            outcome.append(None)
        except BaseException as exc:  # the test reads what the worker saw
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 10
    while not (marker.is_file() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(marker.read_text())
    tools.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], runner.Cancelled)
    assert _ended(grandchild, within=5)
    with pytest.raises(runner.Cancelled):
        tools.run(["true"])


def test_host_tools_run_returns_what_the_program_printed() -> None:
    done = images.HostTools().run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


def test_ctrl_c_in_the_thread_running_a_program_ends_it_at_once(tmp_path: Path) -> None:
    """The program runs in a process group of its own, so the terminal's Ctrl-C does not reach
    it: the KeyboardInterrupt that reaches wheelfarm must end it, not wait for it."""
    marker = tmp_path / "child.pid"
    main = threading.main_thread().ident
    assert main is not None

    def ctrl_c_once_it_runs() -> None:
        deadline = time.monotonic() + 60
        while not (marker.is_file() and marker.read_text().strip()):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)

    interrupter = threading.Thread(target=ctrl_c_once_it_runs)
    # A test run started in the background inherits SIGINT ignored: Ctrl-C must raise here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            images.HostTools().run(["sh", "-c", f"sleep 300 & echo $! > {marker}; wait"])
    finally:
        signal.signal(signal.SIGINT, previous)
    ended_at = time.monotonic()
    interrupter.join()
    assert _ended(int(marker.read_text()), within=5)
    assert time.monotonic() - ended_at < 10
