"""fsutil (atomic writes, link-or-copy, digests) and runner (parallel pool, step logs)."""

from __future__ import annotations

import os
import re
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from wheelfarm import fsutil, runner


def test_write_text_atomic_leaves_the_file_whole_and_readable(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.md"
    fsutil.write_text_atomic(target, "one\n")
    fsutil.write_text_atomic(target, "two\n")
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]


def test_a_failed_write_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    fsutil.write_json_atomic(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    with pytest.raises(UnicodeEncodeError):
        fsutil.write_text_atomic(target, "\udcff")  # a lone surrogate cannot be encoded
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_link_or_copy_links_on_one_file_system(tmp_path: Path) -> None:
    source = tmp_path / "a.whl"
    source.write_bytes(b"x")
    fsutil.link_or_copy(source, tmp_path / "b.whl")
    assert (tmp_path / "b.whl").stat().st_ino == source.stat().st_ino
    with pytest.raises(FileExistsError):  # a real error is not hidden by a copy
        fsutil.link_or_copy(source, tmp_path / "b.whl")


def test_place_copy_stages_in_the_work_dir(tmp_path: Path) -> None:
    source = tmp_path / "src" / "w.whl"
    source.parent.mkdir()
    source.write_bytes(b"wheel")
    work = tmp_path / "house" / ".wheelfarm" / "tmp"
    fsutil.place_copy(source, tmp_path / "house" / "w.whl", work_dir=work)
    assert (tmp_path / "house" / "w.whl").read_bytes() == b"wheel"
    assert list(work.iterdir()) == []


def test_replacing_dir_is_all_or_nothing(tmp_path: Path) -> None:
    entry = tmp_path / "cache" / "key"
    with fsutil.replacing_dir(entry) as staging:
        (staging / "f").write_text("1")
    with pytest.raises(RuntimeError), fsutil.replacing_dir(entry) as staging:
        (staging / "f").write_text("2")
        raise RuntimeError
    assert (entry / "f").read_text() == "1"
    with fsutil.replacing_dir(entry) as staging:
        (staging / "g").write_text("3")
    assert sorted(p.name for p in entry.iterdir()) == ["g"]
    assert [p.name for p in entry.parent.iterdir()] == ["key"]


def test_make_dirs_makes_the_missing_parents_and_says_which(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    made = fsutil.make_dirs(target)
    assert made == [target, tmp_path / "a" / "b", tmp_path / "a"]
    assert target.is_dir()
    assert fsutil.make_dirs(target) == []
    fsutil.remove_empty_dirs(made)
    assert not (tmp_path / "a").exists()


def test_a_file_in_the_way_is_named_and_nothing_is_made(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    blocker = tmp_path / "a" / "file"
    blocker.write_text("x")
    wanted = blocker / "sub" / "deeper"
    assert fsutil.blocking_file(wanted) == blocker
    assert fsutil.blocking_file(blocker) == blocker
    assert fsutil.blocking_file(tmp_path / "a" / "new") is None
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "nowhere")
    assert fsutil.blocking_file(dangling / "x") == dangling
    with pytest.raises(NotADirectoryError) as refused:
        fsutil.make_dirs(wanted)
    assert refused.value.filename == str(blocker)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["file"]


def test_digest_ignores_key_order_but_not_values() -> None:
    assert fsutil.digest({"a": 1, "b": [1, 2]}) == fsutil.digest({"b": [1, 2], "a": 1})
    assert fsutil.digest({"a": 1}) != fsutil.digest({"a": 2})


def test_run_parallel_keeps_the_order_of_the_tasks() -> None:
    state = runner.RunState()

    def task(n: int) -> int:
        time.sleep(0.01 * (3 - n))
        return n

    assert runner.run_parallel(state, 3, [lambda n=n: task(n) for n in range(3)]) == [0, 1, 2]
    assert runner.run_parallel(state, 2, []) == []


def test_a_failing_task_stops_the_others_and_is_raised() -> None:
    state = runner.RunState()
    stopped = threading.Event()

    def slow() -> None:
        while True:
            state.check()  # raises Cancelled once the run stops
            time.sleep(0.01)

    def broken() -> None:
        raise ValueError("bug")

    def watch() -> None:
        try:
            slow()
        finally:
            stopped.set()

    with pytest.raises(ValueError, match="bug"):
        runner.run_parallel(state, 2, [watch, broken])
    assert state.cancel.is_set() and stopped.is_set()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_tasks_run_stops_them_and_is_raised_as_an_interrupt(signum: int) -> None:
    state = runner.RunState()
    stopped = threading.Event()
    handlers: list[object] = []

    def slow() -> None:
        # While the run waits, the signal is only noted (raised by its handler, it could land
        # inside threading's lock handling and come out as a RuntimeError instead).
        handlers.append(signal.getsignal(signum))
        try:
            while True:
                state.check()
                time.sleep(0.01)
        finally:
            stopped.set()

    def send() -> None:
        time.sleep(0.3)
        os.kill(os.getpid(), signum)

    threading.Thread(target=send, daemon=True).start()
    expected = runner.Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    try:
        with runner.sigterm_as_interrupt(), pytest.raises(expected):
            runner.run_parallel(state, 2, [slow, slow])
    finally:
        runner.terminated_by.clear()
    assert state.cancel.is_set() and stopped.is_set()
    assert handlers and all(
        h not in (signal.default_int_handler, runner._interrupt) for h in handlers
    )
    # The handlers are as they were: Ctrl-C raises again, SIGTERM is the default.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_step_log_moves_into_place_when_closed(tmp_path: Path) -> None:
    log = runner.StepLog(tmp_path, "x.log", clock=True)
    log.heading("first")
    log.line("a")
    log.heading("second")
    log.line("")
    log.line("b")
    assert log.section == ["", "b"]
    assert log.tail[-1] == "b" and log.tail[-2].startswith("==> [")
    assert not log.final.exists()
    log.close()
    lines = log.final.read_text().splitlines()
    assert [re.sub(r"\[ *[0-9.]+s\]", "[T]", line) for line in lines] == [
        "==> [T] first",
        "a",
        "==> [T] second",
        "",
        "b",
    ]
    assert log.relative == ".wheelfarm/logs/x.log"
    assert [p.name for p in log.final.parent.iterdir()] == ["x.log"]
    dropped = runner.StepLog(tmp_path, "y.log")
    dropped.close(keep=False)
    assert [p.name for p in log.final.parent.iterdir()] == ["x.log"]


def test_a_freed_slot_goes_to_the_first_in_the_plan_not_the_first_to_ask() -> None:
    state = runner.RunState()
    slots = runner.Slots(1)
    order: list[str] = []
    waited: list[str] = []

    def take(name: str, priority: tuple[int, ...]) -> None:
        with slots.hold(priority, state, lambda: waited.append(name)):
            order.append(name)

    with slots.hold((0,), state, lambda: waited.append("first")):
        late = threading.Thread(target=take, args=("asked first, listed last", (5,)))
        late.start()
        time.sleep(0.1)
        early = threading.Thread(target=take, args=("asked last, listed first", (1,)))
        early.start()
        time.sleep(0.1)
        assert order == [] and sorted(waited) == sorted(
            ["asked first, listed last", "asked last, listed first"]
        )
    late.join(5)
    early.join(5)
    assert order == ["asked last, listed first", "asked first, listed last"]


def test_waiting_for_a_slot_ends_when_the_run_stops() -> None:
    state = runner.RunState()
    slots = runner.Slots(1)
    outcome: list[BaseException] = []

    def wait_in_vain() -> None:
        try:
            with slots.hold((1,), state, lambda: None):
                pass
        except runner.Cancelled as exc:
            outcome.append(exc)

    with slots.hold((0,), state, lambda: None):
        waiter = threading.Thread(target=wait_in_vain)
        waiter.start()
        time.sleep(0.1)
        state.cancel.set()
        waiter.join(5)
    assert len(outcome) == 1 and not waiter.is_alive()
    with slots.hold((0,), runner.RunState(), lambda: None):  # the slot is free again
        pass


def test_background_returns_or_raises_what_its_call_did() -> None:
    assert runner.Background(lambda: 7).join() == 7

    def broken() -> int:
        raise OSError("disk")

    with pytest.raises(OSError, match="disk"):
        runner.Background(broken).join()
