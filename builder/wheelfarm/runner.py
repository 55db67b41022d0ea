"""What `build` and `verify` share to run work in parallel containers and stop cleanly.

- `RunState`: one run's cancel flag and the containers alive right now;
- `run_parallel`: tasks on a bounded pool; on Ctrl-C (or a bug) every worker is told to stop and
  every live container is removed at once, so blocked execs end and nothing is left behind;
- `sigterm_as_interrupt`: SIGTERM (a cancelled CI job, `kill`) cleans up exactly like Ctrl-C;
- `StepLog`: one job's log, written beside its final name in `.wheelfarm/logs/` and moved into
  place when closed, so the logs folder never holds a half-written file;
- `Background`: one step on a thread of its own, to overlap another (a venv made, an sdist
  unpacked while packages install);
- `Slots`: N slots for CPU-heavy steps, each freed one given to the waiting step with the lowest
  priority value (the caller's ranking);
- `note_host_settings`: which of the host's pip settings containers do not get, to say once."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Generic, Protocol, TypeVar

from wheelfarm import fsutil, hostenv

if TYPE_CHECKING:
    from wheelfarm.container import Container

META = ".wheelfarm"  # the wheelhouse's own folder: records, reports, logs
LOGS = "logs"
TAIL_LINES = 20

T = TypeVar("T")


def note_host_settings() -> tuple[str, ...]:
    """The notes to show once per run on which host settings are left out of every container:
    file:// indexes, find-links, constraints... name host paths (hostenv). URLs are already
    redacted. Data, not output: the command shows them (`Reporter.note`)."""
    return tuple(
        f"note: not passed to containers (host-only): {item}"
        for item in hostenv.from_host().dropped
    )


class Cancelled(Exception):
    """Raised in a worker once the run is stopping (Ctrl-C, SIGTERM): stop at the next step."""


@dataclass(kw_only=True)
class RunState:
    """Shared by every worker of one run. Subclasses add what their workers read."""

    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    live: set[Container] = field(default_factory=set)
    started: int = 0  # containers started in this run
    package_locks: dict[str, threading.Lock] = field(default_factory=dict)

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled

    def entered(self, c: Container) -> None:
        with self.lock:
            self.live.add(c)
            self.started += 1

    def package_lock(self, key: str) -> threading.Lock:
        """One package manager at a time per key (a container, or the runtime image whose
        download cache its cells share)."""
        with self.lock:
            return self.package_locks.setdefault(key, threading.Lock())

    def left(self, c: Container) -> None:
        with self.lock:
            self.live.discard(c)

    def stop(self) -> None:
        """Tell every worker to stop and remove every live container now."""
        self.cancel.set()
        with self.lock:
            live = list(self.live)
        for c in live:
            with contextlib.suppress(Exception):
                c.remove()


def run_parallel(state: RunState, parallel: int, tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run tasks on at most `parallel` threads; return their results in order. A task raising
    (other than Cancelled) stops the whole run: the others are cancelled, their containers
    removed, and the error raised here. Ctrl-C (and SIGTERM under sigterm_as_interrupt) is raised
    here too, at the next poll, and stops the run the same way."""
    if not tasks:
        return []
    with _signals_deferred() as arrived:
        pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(tasks))))
        futures: list[Future[T]] = [pool.submit(task) for task in tasks]
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
                if arrived:
                    _raise_for(arrived[0])
                for future in done:
                    problem = future.exception()
                    if problem is not None and not isinstance(problem, Cancelled):
                        raise problem
        except BaseException:
            state.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    pool.shutdown(wait=True)
    return [f.result() for f in futures]


@contextlib.contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Ctrl-C (and SIGTERM where it is taken for one) only noted while the block runs, for the
    caller to raise where it is safe. Raised by the handler itself, it could land inside
    threading's own lock handling in `wait` and come out as `RuntimeError: release unlocked
    lock` (seen under load), which neither cleans up as an interrupt nor exits 130. A second
    signal during the clean-up is noted too, so the clean-up finishes."""
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return
    # Only signals that would raise: an ignored or otherwise handled one is left alone.
    raising = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: _interrupt}
    previous = {
        signum: signal.getsignal(signum)
        for signum, handler in raising.items()
        if signal.getsignal(signum) is handler
    }
    for signum in previous:
        signal.signal(signum, lambda signum, frame: arrived.append(signum))
    try:
        yield arrived
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    _interrupt(signum, None)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be so the same clean-up runs; the command then exits
    128 + the signal's number (143), as a process ended by it does, not SIGINT's 130."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# The signal that ended this process's run, once one did (the CLI's exit status says which).
terminated_by: list[int] = []


def _interrupt(signum: int, frame: object) -> None:
    terminated_by.append(signum)
    raise Terminated(signum)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread for the block's duration, so it
    leaves no container and no partial file either. Only the main thread may set a handler;
    elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StepLog:
    """One job's log, `WHEELHOUSE/.wheelfarm/logs/<name>`: a temp file beside it until closed.

    `heading` starts a step (`==> text`, or `==> [  12.3s] text` with clock=True); `section`
    holds the lines since the last heading, `tail` the last non-blank lines of the whole log."""

    def __init__(self, wheelhouse: Path, name: str, *, clock: bool = False) -> None:
        self.final = wheelhouse / META / LOGS / name
        self.final.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".log", dir=self.final.parent)
        self._temp = Path(temp)
        self._stream: IO[str] = os.fdopen(handle, "w", encoding="utf-8", errors="replace")
        self._lock = threading.Lock()
        self._clock = clock
        self._began = time.monotonic()
        self.section: list[str] = []
        self.tail: list[str] = []

    @property
    def relative(self) -> str:
        """The log's path relative to the wheelhouse."""
        return f"{META}/{LOGS}/{self.final.name}"

    def line(self, text: str) -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self.section.append(text)
            if text.strip():
                self.tail = [*self.tail[-(TAIL_LINES - 1) :], text]

    def heading(self, text: str, at: float | None = None) -> None:
        """`at`: when the step began (time.monotonic()), for one written after it ran."""
        if self._clock:
            text = f"[{(time.monotonic() if at is None else at) - self._began:6.1f}s] {text}"
        with self._lock:
            self._stream.write(f"==> {text}\n")
            self.section = []
            self.tail = [*self.tail[-(TAIL_LINES - 1) :], f"==> {text}"]

    def close(self, keep: bool = True) -> None:
        """Move the log into place (or, keep=False, throw it away)."""
        with self._lock:
            self._stream.close()
        if keep:
            self._temp.chmod(0o644)
            self._temp.replace(self.final)
        else:
            self._temp.unlink(missing_ok=True)


class Runs(Protocol):
    """What exec_step needs of a container (container.Container)."""

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        on_output: Callable[[str], None] | None = None,
        timeout: float | None = None,
        user: str = "",
    ) -> int: ...


def exec_step(
    c: Runs,
    log: StepLog,
    argv: Sequence[str] | str,
    what: str,
    *,
    check: Callable[[], None],
    fail: Callable[[int], Exception],
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    timeout: float | None = None,
) -> None:
    """Run one step of a job in its container: its output in the job's log under the heading
    `what`; `check` (the run's cancel check) before and after; a non-zero exit raises what
    `fail` makes of the exit code (each caller's own typed error)."""
    check()
    log.heading(what)
    code = c.run(argv, env=env, workdir=workdir, on_output=log.line, timeout=timeout)
    check()
    if code != 0:
        raise fail(code)


def restore_log(wheelhouse: Path, relative: object, kept: Path | None) -> str | None:
    """The log a cached result names (relative to the wheelhouse, under .wheelfarm/logs/), put
    back from the cache (`kept`) when this wheelhouse lacks it. Returns the relative path when
    the wheelhouse has the log, else None."""
    if not isinstance(relative, str) or not relative.startswith(f"{META}/{LOGS}/"):
        return None
    here = wheelhouse / relative
    if here.is_file():
        return relative
    if kept is None:
        return None
    fsutil.place_copy(kept, here)
    return relative


class Background(Generic[T]):
    """One call on a daemon thread; `join` returns its result or raises what it raised."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._result: list[T] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], T]) -> None:
        try:
            self._result.append(call())
        except BaseException as exc:
            self._error = exc

    def join(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result[0]


class Slots:
    """`count` slots for CPU-heavy steps. A freed slot goes to the waiter with the lowest
    priority value (build: the longest expected step, then its place in the plan), not to
    whoever asked first: steps that are ready early do not push the biggest ones to the end."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting: list[tuple[tuple[float, ...], int]] = []
        self._condition = threading.Condition()
        self._tickets = 0

    @contextlib.contextmanager
    def hold(
        self, priority: tuple[float, ...], state: RunState, waiting: Callable[[], None]
    ) -> Iterator[None]:
        """Hold a slot for the block; `waiting` is called when none is free at once. A wait ends
        with Cancelled when the run stops."""
        with self._condition:
            self._tickets += 1
            ticket = (priority, self._tickets)
            self._waiting.append(ticket)
            told = False
            try:
                while not (self._free and min(self._waiting) == ticket):
                    if not told:
                        told = True
                        waiting()
                    self._condition.wait(0.2)
                    state.check()
            finally:
                self._waiting.remove(ticket)
                self._condition.notify_all()
            self._free -= 1
        try:
            yield
        finally:
            with self._condition:
                self._free += 1
                self._condition.notify_all()
