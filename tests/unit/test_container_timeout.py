"""--timeout is enforced from the host: the exit status run() reports, and the in-container
script that ends a timed-out exec's whole process tree (run here on this machine's own /proc,
with real processes, under every POSIX shell found; Docker is not needed)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wheelfarm import container

SCRIPT = Path(container.__file__).parent / "data" / "end_marked.sh"
SHELLS = [s for s in ("sh", "dash", "bash", "busybox") if shutil.which(s)]

# A tree like a build whose setup.py starts a daemon: the child calls setsid, ignores SIGTERM,
# forks a grandchild, and both sleep.
TREE = """
import os, signal, sys, time
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)
    sys.exit(0)
time.sleep(600)
"""


@pytest.mark.parametrize(
    ("code", "timed_out", "expected"),
    [
        (0, False, 0),
        (1, False, 1),
        (137, True, 124),  # what the kill leaves
        (143, True, 124),  # busybox timeout's status, if anything still sends it
        (0, True, 124),
        (124, False, 124),  # a command's own 124 is passed on as it is
        (None, False, -1),  # the engine gives no code
        (None, True, 124),
    ],
)
def test_exit_status(code: int | None, timed_out: bool, expected: int) -> None:
    assert container.exit_status(code, timed_out=timed_out) == expected
    assert container.TIMED_OUT == 124


def marked(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"{container.EXEC_MARKER}={marker}".encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("shell", SHELLS)
def test_the_script_ends_a_setsid_tree_that_ignores_sigterm(shell: str) -> None:
    marker = f"test{os.getpid()}{shell}"
    env = {**os.environ, container.EXEC_MARKER: marker}
    tree = subprocess.Popen([sys.executable, "-c", TREE], env=env)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and len(marked(marker)) < 3:
            time.sleep(0.05)
        assert len(marked(marker)) == 3, "the tree did not start"
        argv = [shell] if shell != "busybox" else ["busybox", "sh"]
        ended = subprocess.run(
            [*argv, "-c", SCRIPT.read_text(), "end_marked", marker], timeout=60, check=False
        )
        assert ended.returncode == 0
        tree.wait(timeout=10)
        # The orphans were reparented; give their reaper a moment, then none may be left.
        deadline = time.time() + 5
        while time.time() < deadline and marked(marker):
            time.sleep(0.05)
        assert [p for p in marked(marker) if not _zombie(p)] == []
    finally:
        for pid in marked(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        tree.kill()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def test_the_script_leaves_other_processes_alone() -> None:
    other = subprocess.Popen(["sleep", "60"], env={**os.environ, container.EXEC_MARKER: "other"})
    try:
        ended = subprocess.run(
            ["sh", "-c", SCRIPT.read_text(), "end_marked", "nobody-has-this"],
            timeout=60,
            check=False,
        )
        assert ended.returncode == 0
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
