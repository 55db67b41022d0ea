"""`wheelfarm build`: specs → plan → sources on the host → one long-lived container per target,
in parallel → distro-tagged wheels with Requires-External and a provenance record each.

Per target (one container, every step an exec in it; all targets at once, each with up to
--jobs + 1 specs in hand):
  install the recipe's system packages while the sdist is extracted at /wf/src/<top> and its
  isolated build environment is made at /wf/env/<top> (a venv with the build-system requires,
  installed by the build venv's pip) → the backend's own requirements (get_requires_for_build_
  wheel, once the packages are in) → the backend's build_wheel with SOURCE_DATE_EPOCH, holding
  one of the --jobs build slots shared by every target (the in-container driver
  data/pep517_steps.py does these with the build venv's pinned `build`) → ELF probe inside the
  container (which libraries, which packages own them) → copy the wheel out → retag with the
  container's own os-release through the rules, writing Requires-External → atomic move into the
  wheelhouse → provenance JSON in WHEELHOUSE/.wheelfarm/ → keep a copy in the cache under the
  build's key.

--jobs is how many compiles run at once across all targets (default: the number of cores); a
freed slot goes to the waiting compile expected to take longest (plan.expected_compile_costs:
earlier runs' times, else the sdist's size), then by plan order. Builds expected to take under
half the longest run niced, so that the long builds' chains go first (plan.in_background).

A build whose key (cache.build_key) is already cached starts no container: the wheel is put back
(or found already) in the wheelhouse and reported up to date. A project predicted pure Python
(fetch.inspect_archive) is built once, by the first target that has it; the others wait for that
result and build it themselves only if it came out platform-specific after all."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from wheelfarm import __version__, fsutil, plan, runner
from wheelfarm.errors import BadInput, BuildFailed, ImageMissing, WheelfarmError

if TYPE_CHECKING:
    from wheelfarm.config import Settings
    from wheelfarm.container import Container
    from wheelfarm.fetch import Source
    from wheelfarm.recipes import Recipe
    from wheelfarm.rules import TagSet
    from wheelfarm.targets import Target

_T = TypeVar("_T")
WORK = "/wf"  # everything a build writes inside the container lives under here
SRC = f"{WORK}/src"  # fixed source path: the same sdist always builds at the same path
PIP_CACHE = f"{WORK}/pip-cache"
TOOLS = f"{WORK}/tools"
# The in-container PEP 517 driver (data/pep517_steps.py) and the line it reports the isolated
# environment's contents on.
STEPS_NAME = "pep517_steps.py"
STEPS_ENV_LINE = "wheelfarm-build-env: "
NICE = ["nice", "-n", "10"]  # coreutils and busybox both have it
LOGS_DIR = runner.LOGS
# Steady build environment: no prompts, no version nags, plain logs, stable hashing. Not
# PYTHONDONTWRITEBYTECODE: the build backend is installed into its isolated environment without
# .pyc files, and each PEP 517 hook (a process of its own) would compile setuptools again; letting
# the first hook (get_requires_for_build_wheel, before the slot) write them saves ~0.5 s per
# compile, and the wheel's bytes are the same.
BASE_ENV = {
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PIP_PROGRESS_BAR": "off",
    "PIP_ROOT_USER_ACTION": "ignore",
    "PYTHONHASHSEED": "0",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
}
# What the image is, in one exec: its os-release and rules file (symlinks followed), machine,
# Python and tool versions.
_FACTS_SCRIPT = r"""
import json, platform, subprocess, sys
def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None
try:
    from importlib import metadata
except ImportError:
    metadata = None
tools = {}
for name in ("pip", "build", "wheel", "auditwheel", "setuptools"):
    try:
        tools[name] = metadata.version(name) if metadata else None
    except Exception:
        pass
try:
    gcc = subprocess.run(["gcc", "-dumpfullversion", "-dumpversion"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout.decode().strip()
except OSError:
    gcc = None
tools["gcc"] = gcc
print(json.dumps({
    "os_release": read("/etc/os-release") or read("/usr/lib/os-release"),
    "rules": read("/etc/python/binary-compatibility.cfg"),
    "machine": platform.machine(),
    "python": platform.python_version(),
    "tools": tools,
}))
"""
# `file.c:3:2: error: ...`, `error: command 'gcc' failed`, `E: Unable to locate package x`
_COMPILER_ERROR = re.compile(r"(:\d+:\d+: (fatal )?error: |^error: |^E: )")
# Remove the folders given after the archive and its destination, then unpack the archive.
_EXTRACT_SCRIPT = (
    "import shutil, sys; [shutil.rmtree(p, ignore_errors=True) for p in sys.argv[3:]]; "
    "shutil.unpack_archive(sys.argv[1], sys.argv[2])"
)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Outcome:
    """What happened to one spec on one target."""

    spec: str
    target: str
    status: str  # "built", "up to date", "restored", "failed"
    wheel: str | None = None
    tag: str | None = None
    log: str | None = None  # relative to the wheelhouse
    error: str | None = None
    seconds: float = 0.0
    requires_external: tuple[str, ...] = ()
    note: str = ""
    # Libraries Requires-External could not name (not found, or owned by no package).
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def as_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "target": self.target,
            "status": self.status,
            "wheel": self.wheel,
            "tag": self.tag,
            "requires_external": list(self.requires_external),
            "log": self.log,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "note": self.note,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Report:
    wheelhouse: Path
    outcomes: tuple[Outcome, ...]
    seconds: float
    containers_started: int

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def wheels(self) -> list[Path]:
        return [self.wheelhouse / o.wheel for o in self.outcomes if o.ok and o.wheel]

    def as_json(self) -> dict[str, Any]:
        return {
            "wheelhouse": str(self.wheelhouse),
            "ok": not self.failed,
            "seconds": round(self.seconds, 2),
            "containers_started": self.containers_started,
            "results": [o.as_json() for o in self.outcomes],
        }


@dataclass(frozen=True)
class Options:
    """What the build command was asked, resolved once (config.Settings + the build flags)."""

    settings: Settings
    json_output: bool = False
    timeout: float | None = None
    keep_on_failure: bool = False
    force: bool = False


class _StepFailed(WheelfarmError):
    """One step of one spec's build failed; the message is the reason shown in the summary."""


class _KeepContainer(Exception):
    """Raised inside a container block so Container keeps it running (--keep-on-failure)."""


# ---------------------------------------------------------------- shared state of one run


@dataclass
class _PureResult:
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    platform_specific: bool = False


@dataclass
class _Run(runner.RunState):
    options: Options
    wheelhouse: Path
    sources: dict[tuple[str, str, str], Source]
    recipes: dict[tuple[str, str, str], Recipe]
    owners: dict[tuple[str, str, str], str]  # pure spec → the target that builds it
    image_ids: dict[str, str]
    board: Any
    pure: dict[tuple[str, str, str], _PureResult] = field(default_factory=dict)
    placed: dict[str, str] = field(default_factory=dict)  # wheel file name → target, this run
    order: list[str] = field(default_factory=list)  # target names in plan order
    # --jobs: how many compiles (the backend's build_wheel) run at once, across every target.
    # The targets themselves all run at once, each with up to --jobs + 1 specs in hand, so their
    # I/O-bound steps (container start, package installs, sdist extraction, the isolated build
    # environment and its downloads) overlap the compiles instead of queueing behind them.
    jobs: int = 1
    build_slots: runner.Slots = field(default_factory=lambda: runner.Slots(1))
    # (project, target) → expected compile time (plan.expected_compile_costs), to order the slots
    # and to run the short builds niced (plan.in_background); and the compile times measured in
    # this run, kept for the next one.
    expected: dict[tuple[str, str], float] = field(default_factory=dict)
    background: frozenset[tuple[str, str]] = frozenset()
    compile_times: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def meta(self) -> Path:
        return self.wheelhouse / ".wheelfarm"

    def temp_dir(self, prefix: str) -> Path:
        directory = self.meta / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=directory))


# ---------------------------------------------------------------- logs


class _Log(runner.StepLog):
    """One log per spec and target, with the time of each step, that also keeps the first
    compiler-style "error:" lines for the summary."""

    def __init__(self, run: _Run, name: str) -> None:
        super().__init__(run.wheelhouse, name, clock=True)
        self.errors: list[str] = []
        self.cache_key: str | None = None  # set once the build is in the cache

    def line(self, text: str) -> None:
        super().line(text)
        if len(self.errors) < 3 and _COMPILER_ERROR.search(text):
            self.errors.append(text.strip())


def _check_exit(code: int, what: str, log: _Log) -> None:
    if code != 0:
        last = _reason(log)
        raise _StepFailed(f"{what}: exit {code}" + (f" ({last})" if last else ""))


class _Budget:
    """--timeout for one wheel's build: the execs that make its environment and compile it share
    it; waiting for a slot or for the system packages does not count."""

    def __init__(self, total: float | None) -> None:
        self.total = total
        self.spent = 0.0

    def left(self) -> float | None:
        return None if self.total is None else max(1.0, self.total - self.spent)

    def spend(self, seconds: float) -> None:
        self.spent += seconds

    def check(self, code: int, what: str, log: _Log) -> None:
        """Raise for a failed exec: `timed out` when the `timeout` wrapper ended it (124)."""
        if code == 124 and self.total is not None:
            raise _StepFailed(f"{what}: timed out after {self.total:.0f}s")
        _check_exit(code, what, log)


def _env_report(lines: Sequence[str]) -> dict[str, str]:
    """What the isolated build environment holds (name → version), from the steps' last report."""
    for line in reversed(lines):
        if line.startswith(STEPS_ENV_LINE):
            with contextlib.suppress(ValueError):
                found = json.loads(line[len(STEPS_ENV_LINE) :])
                if isinstance(found, dict):
                    return {str(k): str(v) for k, v in found.items()}
    return {}


def _reason(log: _Log) -> str:
    """The most useful line of a failed step: the first compiler-style error, else pip's last
    `ERROR:` line (a build requirement the index does not have...), else the last line that
    mentions an error, else the last line."""
    if log.errors:
        return log.errors[0][:300]
    for line in reversed(log.tail):
        if line.startswith("ERROR: "):
            return line.strip()[:300]
    for line in reversed(log.tail):
        lowered = line.lower()
        if "error" in lowered or "failed" in lowered or "not found" in lowered:
            return line.strip()[:300]
    return log.tail[-1].strip()[:300] if log.tail else ""


# ---------------------------------------------------------------- keys and tags


def tag_set_for(facts: dict[str, Any], arch: str, rule_files: Sequence[Path]) -> TagSet:
    """The build image's tags: its own os-release through --rules, its own
    /etc/python/binary-compatibility.cfg, then the shipped defaults."""
    from wheelfarm import osrelease, rules

    sources = rules.image_sources(
        rule_files,
        image_rules=facts.get("rules"),
        image_origin=f"{facts.get('image', 'image')}:/etc/python/binary-compatibility.cfg",
    )
    return rules.tag_set(osrelease.parse(facts["os_release"]), arch, sources)


def rules_applied(tag_set: TagSet) -> dict[str, Any]:
    decision = tag_set.decision
    return {
        "build": tag_set.build,
        "source": decision.source.label if decision else None,
        "key": decision.key if decision else None,
        "rule": {"build": decision.rule.build, "install": list(decision.rule.install)}
        if decision
        else None,
    }


def build_env(source: Source, recipe: Recipe) -> dict[str, str]:
    return {**BASE_ENV, **recipe.env, "SOURCE_DATE_EPOCH": str(source.source_date_epoch)}


def _key(run: _Run, target: Target, python: str, facts: dict[str, Any], source: Source) -> str:
    from wheelfarm import cache

    recipe = run.recipes[source.spec.key]
    return cache.build_key(
        image_id=run.image_ids[target.name],
        sdist_sha256=source.sha256,
        recipe_digest=recipe.build_digest(target),
        rules=rules_applied(tag_set_for(facts, facts["arch"], run.options.settings.rules)),
        build_env=build_env(source, recipe),
        python=python,
    )


# ---------------------------------------------------------------- the wheelhouse side


def _install(run: _Run, wheel: Path, provenance: dict[str, Any]) -> str:
    """Put a finished wheel and its provenance into the wheelhouse, atomically. Returns
    "placed", "same" (the wheelhouse already had exactly this wheel) or the name of the target
    whose wheel of the same name this run already placed and which is kept (two targets with the
    same build tag, e.g. rockylinux-9 and almalinux-9 both building rhel_9 wheels)."""
    destination = run.wheelhouse / wheel.name
    target = str(provenance["target"])
    with run.lock:
        # The target that comes first in the plan wins, whichever finished first, so that
        # reruns keep the same file.
        first = run.placed.setdefault(wheel.name, target)
        if first != target and run.order.index(first) < run.order.index(target):
            return first
        run.placed[wheel.name] = target
        if destination.is_file() and (
            destination.samefile(wheel) or fsutil.file_sha256(destination) == provenance["sha256"]
        ):
            record = run.meta / f"{wheel.name}.json"
            if not record.is_file():
                fsutil.write_json_atomic(record, provenance)
            return "same"
        # Staged under .wheelfarm/tmp, never as a temp file among the wheelhouse's wheels.
        fsutil.place_copy(wheel, destination, work_dir=run.meta / "tmp")
        fsutil.write_json_atomic(run.meta / f"{wheel.name}.json", provenance)
    return "placed"


def _placement_note(placed: str, pure: bool) -> str:
    if placed not in ("placed", "same"):
        return f"same file name as {placed}'s wheel (same build tag); that one is kept"
    return "pure Python: built once for every target" if pure else ""


def _from_cache(run: _Run, key: str, target: str, spec: plan.Spec) -> Outcome | None:
    from wheelfarm import cache, elfdeps

    hit = cache.lookup(key)
    if hit is None or hit.provenance.get("sha256") != fsutil.file_sha256(hit.wheel):
        return None
    log = _restore_log(run, key, hit.provenance.get("log"))
    placed = _install(run, hit.wheel, {**hit.provenance, "target": target, "log": log})
    return Outcome(
        spec=spec.requirement,
        target=target,
        status="restored" if placed == "placed" else "up to date",
        wheel=hit.wheel.name,
        tag=hit.provenance.get("platform_tag"),
        log=log,
        requires_external=tuple(hit.provenance.get("requires_external", [])),
        note="from wheelfarm's cache" if placed == "placed" else _placement_note(placed, False),
        warnings=tuple(elfdeps.gaps(hit.provenance.get("external"))),
    )


def _restore_log(run: _Run, key: str, log: Any) -> str | None:
    """The build log a cached wheel's record names, in this wheelhouse: copied from the cache
    entry (atomically) when the wheelhouse lacks it; None when there is none to point at."""
    from wheelfarm import cache

    if not isinstance(log, str) or not log.startswith(f"{runner.META}/{LOGS_DIR}/"):
        return None
    here = run.wheelhouse / log
    if here.is_file():
        return log
    kept = cache.log_of(key)
    if kept is None:
        return None
    fsutil.place_copy(kept, here)
    return log


# ---------------------------------------------------------------- one target


class _LazyContainer:
    """The target's container, started on first use only: a target whose every wheel is up to
    date never starts one."""

    def __init__(self, run: _Run, target: Target, stack: contextlib.ExitStack) -> None:
        self._run = run
        self._target = target
        self._stack = stack
        self.container: Container | None = None
        self.facts: dict[str, Any] | None = None
        self.probe = ""  # the ELF probe's path in the container
        self.steps = ""  # the PEP 517 driver's
        # Several specs of the target may ask at once: the first starts it, the others wait.
        self.lock = threading.Lock()

    def get(self) -> Container:
        with self.lock:
            return self._get()

    def _get(self) -> Container:
        if self.container is None:
            from wheelfarm import cache, container, elfdeps

            self._run.check()
            self._run.board.step(self._target.name, "starting container")
            pip_wheels = cache.pip_wheels_dir(self._target.name)
            pip_wheels.mkdir(parents=True, exist_ok=True)
            c = container.Container(
                self._target.build_image,
                env={"PIP_CACHE_DIR": PIP_CACHE},
                # pip's downloads are shared by every target; the wheels pip builds locally
                # (build dependencies from sdists) stay with the target that built them.
                mounts={str(cache.pip_dir()): PIP_CACHE, str(pip_wheels): f"{PIP_CACHE}/wheels"},
                # Sources, build environments and object files: many small files, written ~5x
                # faster (in system time) to a volume than to the container's overlay.
                scratch=(WORK,),
                keep_on_error=self._run.options.keep_on_failure,
                labels={"org.wheelfarm.job": f"build {self._target.name}"},
            )
            self._stack.enter_context(c)
            self._run.entered(c)
            self._stack.callback(self._run.left, c)
            self.container = c
            data = Path(__file__).parent / "data"
            self.probe = c.copy_in(data / elfdeps.PROBE_NAME, TOOLS)
            self.steps = c.copy_in(data / STEPS_NAME, TOOLS)
        return self.container


class _Target:
    def __init__(self, run: _Run, job: plan.BuildJob) -> None:
        self.run = run
        self.job = job
        self.target = job.target
        self.python = job.python
        self.outcomes: list[Outcome] = []
        self.box: _LazyContainer | None = None
        # Folders of specs built here that are done with: the next extraction removes them.
        self.leftovers: list[str] = []
        self.lock = threading.Lock()  # leftovers, and the facts read once
        self.packages_lock = threading.Lock()  # one package manager at a time in the container

    # -- facts about the image

    def facts(self, need_container: bool) -> dict[str, Any] | None:
        """What the image is (os-release, rules file, Python, tools): from the cache by image id,
        else read from the container (then cached)."""
        with self.lock:
            return self._facts(need_container)

    def _facts(self, need_container: bool) -> dict[str, Any] | None:
        from wheelfarm import cache

        assert self.box is not None
        if self.box.facts is not None:
            return self.box.facts
        image_id = self.run.image_ids[self.target.name]
        facts = cache.image_facts(image_id)
        if facts is not None and facts.get("wheelfarm") == __version__:
            self.box.facts = facts
            return facts
        if not need_container:
            return None
        c = self.box.get()
        self.run.board.step(self.target.name, "reading the image's os-release")
        found = json.loads(
            c.output([f"{self.python.build_venv}/bin/python", "-c", _FACTS_SCRIPT]) or "{}"
        )
        if not found.get("os_release"):
            raise _StepFailed(f"{self.target.build_image} has no os-release file")
        from wheelfarm import tags

        facts = {
            "wheelfarm": __version__,
            "image": self.target.build_image,
            "image_id": image_id,
            "os_release": found["os_release"],
            "rules": found.get("rules"),
            "arch": tags.normalise_arch(str(found.get("machine") or "")),
            "python": found.get("python"),
            "tools": found.get("tools", {}),
        }
        cache.store_image_facts(image_id, facts)
        self.box.facts = facts
        return facts

    # -- the worker

    def work(self) -> list[Outcome]:
        board = self.run.board
        name = self.target.name
        # --keep-on-failure: raising through the container's `with` is what makes it stay.
        with contextlib.suppress(_KeepContainer), contextlib.ExitStack() as stack:
            self.box = _LazyContainer(self.run, self.target, stack)
            board.step(name, "checking what is up to date")
            own, waits = self._split()
            # Up to --jobs + 1 specs in hand at once: one's packages install and build
            # environment fills while another compiles, so even a single target keeps every build
            # slot busy.
            self.outcomes = self._each(own, self._one)
            self.outcomes += [o for o in self._each(waits, self._after_owner) if o is not None]
            failed_here = any(not o.ok for o in self.outcomes)
            if failed_here and self.run.options.keep_on_failure and self.box.container:
                raise _KeepContainer
        failed = sum(not o.ok for o in self.outcomes)
        built = sum(o.status == "built" for o in self.outcomes)
        fresh = len(self.outcomes) - failed - built
        parts = [f"{built} built"] if built else []
        parts += [f"{fresh} up to date"] if fresh else []
        parts += [f"{failed} failed"] if failed else []
        kept = self.box.container if self.box is not None else None
        if kept is not None and kept.kept:
            parts.append(
                f"container kept: {kept.enter_command} (remove it with {kept.remove_command})"
            )
        board.finish(name, failed == 0, ", ".join(parts) or "nothing to do")
        return self.outcomes

    def _each(self, specs: Sequence[plan.Spec], do: Callable[[plan.Spec], _T]) -> list[_T]:
        tasks = [functools.partial(do, spec) for spec in specs]
        # One more in hand than there are slots: the next spec's environment gets ready while
        # this target's specs compile.
        return runner.run_parallel(self.run, self.run.jobs + 1, tasks)

    def _split(self) -> tuple[list[plan.Spec], list[plan.Spec]]:
        """This target's own specs (the pure ones it builds for everyone first, so that waiting
        targets wait as little as possible) and the pure ones another target builds."""
        mine_pure, mine, waits = [], [], []
        for spec in self.job.specs:
            owner = self.run.owners.get(spec.key)
            if owner is None:
                mine.append(spec)
            elif owner == self.target.name:
                mine_pure.append(spec)
            else:
                waits.append(spec)
        return mine_pure + mine, waits

    def _after_owner(self, spec: plan.Spec) -> Outcome | None:
        result = self.run.pure[spec.key]
        self.run.board.step(self.target.name, f"{spec.requirement}: waiting for its pure build")
        while not result.done.wait(0.2):
            self.run.check()
        return self._one(spec) if result.platform_specific else None

    def _one(self, spec: plan.Spec) -> Outcome:
        started = time.monotonic()
        source = self.run.sources[spec.key]
        pure_slot = self.run.pure.get(spec.key) if self.run.owners.get(spec.key) else None
        outcome: Outcome | None = None
        try:
            outcome = self._cached(spec, source)
            if outcome is None:
                outcome = self._build(spec, source, started)
        except (runner.Cancelled, KeyboardInterrupt):
            raise
        except Exception as exc:
            if self.run.cancel.is_set():
                raise runner.Cancelled from None
            message = exc.message if isinstance(exc, WheelfarmError) else f"{exc!r}"
            outcome = Outcome(
                spec=spec.requirement,
                target=self.target.name,
                status="failed",
                error=message,
                seconds=time.monotonic() - started,
                log=getattr(exc, "log", None),
            )
        finally:
            if pure_slot is not None and self.run.owners.get(spec.key) == self.target.name:
                pure_slot.outcome = outcome
                wheel = outcome.wheel if outcome is not None and outcome.ok else None
                pure_slot.platform_specific = bool(wheel and not wheel.endswith("-any.whl"))
                pure_slot.done.set()
        return outcome

    def _cached(self, spec: plan.Spec, source: Source) -> Outcome | None:
        if self.run.options.force:
            return None
        facts = self.facts(need_container=False)
        if facts is None:
            return None
        key = _key(self.run, self.target, self.python.version, facts, source)
        return _from_cache(self.run, key, self.target.name, spec)

    # -- building

    def _build(self, spec: plan.Spec, source: Source, started: float) -> Outcome:
        name = self.target.name
        label = f"{source.name} {source.version or ''}".strip()
        log = _Log(self.run, f"{source.name}-{source.version or 'dev'}-{name}.log")
        try:
            outcome = self._build_logged(spec, source, started, label, log)
        except _StepFailed as exc:
            exc.log = log.relative  # type: ignore[attr-defined]
            raise
        finally:
            log.close()
        if log.cache_key is not None:
            from wheelfarm import cache

            # Kept with the wheel: a wheelhouse it is restored into gets the log its record names.
            cache.store_log(log.cache_key, log.final)
        return outcome

    def _exec(
        self,
        c: Container,
        log: _Log,
        argv: Sequence[str] | str,
        what: str,
        budget: _Budget | None = None,
        **kw: Any,
    ) -> None:
        self.run.check()
        log.heading(what)
        if budget is None:
            code = c.run(argv, on_output=log.line, **kw)
            self.run.check()
            _check_exit(code, what, log)
            return
        began = time.monotonic()
        code = c.run(argv, on_output=log.line, timeout=budget.left(), **kw)
        budget.spend(time.monotonic() - began)
        self.run.check()
        budget.check(code, what, log)

    def _build_logged(
        self, spec: plan.Spec, source: Source, started: float, label: str, log: _Log
    ) -> Outcome:
        from wheelfarm import cache, elfdeps, pkgmgr, retag
        from wheelfarm.hostenv import CONTAINER_CA_PATH

        board = self.run.board
        name = self.target.name
        recipe = self.run.recipes[spec.key]
        c = self.box.get() if self.box else None
        assert c is not None and self.box is not None
        facts = self.facts(need_container=True)
        assert facts is not None
        log.heading(
            f"{label} on {name} ({self.target.build_image} {self.run.image_ids[name][:19]}), "
            f"Python {facts.get('python')}, wheelfarm {__version__}"
        )
        key = _key(self.run, self.target, self.python.version, facts, source)
        env = build_env(source, recipe)
        timestamps = {"started_at": _now()}

        work = f"{SRC}/{source.top}"
        out_dir = f"{WORK}/out/{key[:16]}"
        isolated = f"{WORK}/env/{source.top}"  # the build's isolated environment, fixed path too
        venv_python = f"{self.python.build_venv}/bin/python"
        # A short build's steps run niced (plan.in_background): the long ones go first.
        nice = NICE if (source.name, name) in self.run.background else []
        if nice:
            log.line("(a short build beside longer ones: its steps run at a lower CPU priority)")
        python = [*nice, venv_python]
        steps = [*python, self.box.steps, work, isolated]
        budget = _Budget(self.run.options.timeout)
        # Also frees the folders of specs done with: one exec fewer than a clean-up of their own.
        with self.lock:
            stale, self.leftovers = [*self.leftovers, work, out_dir, isolated], []
        packages = recipe.packages_for(self.target)
        # The backend's own requirements come from a hook that runs project code (setup.py), so
        # that waits for the system packages; with none to wait for, it goes in the same exec.
        first = ["env"] if packages else ["env", "requires"]
        extract_lines: list[str] = []
        env_lines: list[str] = []

        def prepare() -> tuple[str, int]:
            """Unpack the sdist, then make the isolated build environment and install the
            build-system requires: downloads and unpacking, while the packages install."""
            inside = c.copy_in(source.path, f"{WORK}/in")
            argv = [*python, "-c", _EXTRACT_SCRIPT, inside, SRC, *stale]
            code = c.run(argv, on_output=extract_lines.append)
            if code != 0 or self.run.cancel.is_set():
                return "extract", code
            began = time.monotonic()
            code = c.run(
                [*steps, *first],
                env=env,
                workdir=work,
                on_output=env_lines.append,
                timeout=budget.left(),
            )
            budget.spend(time.monotonic() - began)
            return "env", code

        board.step(name, f"{label}: preparing the build environment")
        preparing = runner.Background(prepare)
        try:
            if packages:
                board.step(name, f"{label}: installing {' '.join(packages)}")
                ca = CONTAINER_CA_PATH if c.host_settings and c.host_settings.ca_bundle else None
                with self.packages_lock:
                    install = pkgmgr.install_command(self.target.family, packages, ca_file=ca)
                    self._exec(
                        c,
                        log,
                        [*nice, "sh", "-c", install] if nice else install,
                        "install system packages",
                        env=pkgmgr.install_env(self.target.family),
                    )
        except BaseException:
            with contextlib.suppress(Exception):  # no exec of this spec outlives it
                preparing.join()
            raise
        stage, code = preparing.join()
        self.run.check()
        while_packages = " (while the packages installed)" if packages else ""
        what = f"extract the sdist at {work}"
        log.heading(what + while_packages)
        for line in extract_lines:
            log.line(line)
        if stage == "extract":
            last = _reason(log)
            raise _StepFailed(f"{what}: exit {code}" + (f" ({last})" if last else ""))
        log.heading(
            f"build environment at {isolated}: {', '.join(first)} "
            f"({budget.spent:.1f}s{', while the packages installed' if packages else ''})"
        )
        for line in env_lines:
            log.line(line)
        budget.check(code, "build environment", log)
        build_requires = _env_report(env_lines)
        if packages:
            board.step(name, f"{label}: the backend's build requirements")
            self._exec(
                c,
                log,
                [*steps, "requires"],
                "build environment: the backend's requirements",
                env=env,
                workdir=work,
                budget=budget,
            )
            build_requires = _env_report(log.section) or build_requires
        durations = {"environment": round(budget.spent, 2)}

        def waiting() -> None:
            board.step(name, f"{label}: waiting for a free build slot (--jobs)")
            log.heading("waiting for a free build slot (--jobs)")

        # A free slot goes to the compile expected to take longest, then by plan order.
        priority = plan.slot_priority(
            self.run.expected.get((source.name, name), 0.0),
            self.job.specs.index(spec),
            self.run.order.index(name),
        )
        with self.run.build_slots.hold(priority, self.run, waiting):
            board.step(name, f"{label}: building")
            began = time.monotonic()
            self._exec(
                c,
                log,
                [*steps, "--out", out_dir, "wheel"],
                "build the wheel",
                env=env,
                workdir=work,
                budget=budget,
            )
            durations["compile"] = round(time.monotonic() - began, 2)
        with self.run.lock:
            self.run.compile_times[(source.name, name)] = durations["compile"]
        staging = self.run.temp_dir("build-")
        try:
            # The whole output folder comes out: what pip left there is listed on the host.
            built = sorted(c.copy_out(out_dir, staging / "raw").glob("*.whl"))
            if len(built) != 1:
                raise _StepFailed(f"the build left {len(built)} wheels in {out_dir}, expected one")
            copied = built[0]
            wheel_name = copied.name
            pure = wheel_name.endswith("-any.whl")

            analysis = None
            gaps: tuple[str, ...] = ()
            if not pure:
                board.step(name, f"{label}: analysing ELF files")
                log.heading("ELF probe")
                probe = json.loads(c.output([*python, self.box.probe, f"{out_dir}/{wheel_name}"]))
                owners_text = c.output(
                    [
                        "sh",
                        "-c",
                        elfdeps.owner_script(self.target.family, elfdeps.query_paths(probe)),
                    ]
                )
                analysis = elfdeps.analyse(
                    probe, self.target.family, elfdeps.parse_owners(self.target.family, owners_text)
                )
                for lib in analysis.libraries:
                    log.line(f"  {lib.elf}: {lib.soname} -> {lib.path} ({lib.package})")
                log.line(f"  Requires-External: {', '.join(analysis.requires_external) or '-'}")
                gaps = tuple(elfdeps.gaps(analysis.as_json()))
                for gap in gaps:
                    log.line(f"  warning: Requires-External may be incomplete: {gap}")

            board.step(name, f"{label}: retagging")
            tag_set = tag_set_for(facts, facts["arch"], self.run.options.settings.rules)
            if pure:
                final = copied
                platform_tag = "any"
            else:
                final_dir = staging / "final"
                final_dir.mkdir()
                assert analysis is not None
                final = retag.retag_wheel(
                    copied,
                    tag_set.build,
                    final_dir,
                    requires_external=analysis.requires_external,
                    # The sdist's, as the backend got it: never the host's environment, which
                    # is not part of the cache key.
                    source_date_epoch=source.source_date_epoch,
                )
                platform_tag = tag_set.build
            _check_wheel(final)
            timestamps["finished_at"] = _now()
            provenance = {
                "wheel": final.name,
                "sha256": fsutil.file_sha256(final),
                "platform_tag": platform_tag,
                "pure": pure,
                "spec": spec.requirement,
                "spec_origin": spec.origin,
                "sdist": {
                    "file": source.path.name,
                    "sha256": source.sha256,
                    "origin": source.origin,
                },
                "target": name,
                "image": self.target.build_image,
                "image_id": self.run.image_ids[name],
                "python": facts.get("python"),
                "os_release_tag": {
                    "host": tag_set.host,
                    "default_build": tag_set.default_build,
                    "build": tag_set.build,
                },
                "rules": rules_applied(tag_set),
                "recipe": {
                    "source": recipe.source,
                    "digest": recipe.digest,
                    "build_digest": recipe.build_digest(self.target),
                    "packages": list(packages),
                },
                "build_env": env,
                "build_requires": build_requires,
                "durations": durations,
                "tools": {**facts.get("tools", {}), "wheelfarm": __version__},
                "external": analysis.as_json() if analysis else None,
                "requires_external": list(analysis.requires_external) if analysis else [],
                "log": log.relative,
                "cache_key": key,
                **timestamps,
            }
            cache.store(key, final, provenance)
            log.cache_key = key
            placed = _install(self.run, final, provenance)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        # Done with its folders (a failed build keeps them, for --keep-on-failure).
        with self.lock:
            self.leftovers += [work, out_dir]
        return Outcome(
            spec=spec.requirement,
            target=name,
            status="built",
            wheel=final.name,
            tag=platform_tag,
            log=log.relative,
            seconds=time.monotonic() - started,
            requires_external=analysis.requires_external if analysis else (),
            note=_placement_note(placed, pure),
            warnings=gaps,
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _check_wheel(path: Path) -> None:
    """A wheel goes into the wheelhouse only when every member matches its RECORD."""
    from wheel.wheelfile import WheelFile

    try:
        with WheelFile(path) as wheel:
            for item in wheel.infolist():
                if not item.is_dir():
                    wheel.read(item)
    except Exception as exc:
        raise _StepFailed(f"{path.name} is not a valid wheel: {exc}") from None


# ---------------------------------------------------------------- the whole run


def _image_ids(targets: Sequence[Target], requested: bool) -> dict[str, str]:
    from wheelfarm import container, images

    found: dict[str, str] = {}
    missing: list[Target] = []
    for target in targets:
        image = container.image_id(target.build_image)
        if image is None:
            missing.append(target)
        else:
            found[target.name] = image
    if missing and requested:
        commands = "; ".join(images.make_command(t) for t in missing)
        raise ImageMissing(
            "build image missing for " + ", ".join(f"{t.name} ({t.build_image})" for t in missing),
            hint=f"make it with: {commands}",
        )
    return found


def check_wheelhouse(path: Path) -> None:
    """A wheelhouse is a directory, or a path where one can be made: a file there (or in the way
    of a parent) is bad input, said before anything runs."""
    blocker = fsutil.blocking_file(path)
    if blocker is not None:
        where = "" if blocker == path else f" ({blocker} is a file)"
        raise BadInput(
            f"wheelhouse {path} is not a directory{where}",
            hint="pass --wheelhouse DIR naming a directory (it is made when missing)",
        )


def _offered(targets: Sequence[Target]) -> str:
    from packaging.version import Version

    versions = sorted({p.version for t in targets for p in t.pythons}, key=Version)
    return ", ".join(versions)


def _prepare(options: Options) -> tuple[list[plan.BuildJob], dict[str, str]]:
    """Everything that can fail before a container starts: specs, recipes, rules, the wheelhouse,
    target names and Pythons (exit 2, with or without an engine), then engine and images."""
    from wheelfarm import container, recipes, rules

    settings = options.settings
    specs = plan.parse_specs(settings.specs, settings.requirements)
    for spec in specs:
        recipes.load(spec.name, settings.recipes)
    rules.image_sources(settings.rules)  # a malformed --rules file fails now, exit 2
    check_wheelhouse(settings.wheelhouse)
    catalogue = settings.catalogue
    python = settings.python
    if settings.targets:
        chosen = plan.select_targets(settings.targets, (), python, catalogue)  # unknown: exit 2
        for target in chosen:
            target.python_for(python)  # a target without that Python: exit 2
    elif python is not None and not any(p.version == python for t in catalogue for p in t.pythons):
        raise BadInput(
            f"no target offers Python {python}",
            hint=f"the targets offer Python {_offered(catalogue)}",
        )
    container.check_engine()
    if settings.targets:
        image_ids = _image_ids(chosen, requested=True)
    else:
        image_ids = _image_ids(catalogue, requested=False)
        chosen = plan.select_targets((), image_ids, python, catalogue)
        present = [t for t in catalogue if t.name in image_ids]
        if not chosen and python is not None and present:
            raise BadInput(
                f"no target whose build image is present offers Python {python}",
                hint=f"the present targets ({', '.join(t.name for t in present)}) offer Python "
                f"{_offered(present)}; or name a target with --target",
            )
        if not chosen:
            from wheelfarm import images

            debian = [t for t in catalogue if t.can_bootstrap]
            raise ImageMissing(
                "no target's build image is present",
                hint="make one, e.g.: " + "; ".join(images.make_command(t) for t in debian[:3]),
            )
    jobs = plan.build_plan(specs, chosen, python)
    if not jobs:
        raise BadInput(
            "nothing to build on the selected targets: every spec's marker excludes them",
            hint="check the environment markers in the specs",
        )
    return jobs, image_ids


def _fetch_all(jobs: Sequence[plan.BuildJob], wheelhouse: Path) -> dict[Any, Source]:
    from wheelfarm import fetch

    specs: dict[tuple[str, str, str], plan.Spec] = {}
    for job in jobs:
        for spec in job.specs:
            specs.setdefault(spec.key, spec)
    sources: dict[Any, Source] = {}
    with ThreadPoolExecutor(max_workers=min(4, len(specs))) as pool:
        futures = {key: pool.submit(fetch.fetch, spec, wheelhouse) for key, spec in specs.items()}
        for key, future in futures.items():
            sources[key] = future.result()
    return sources


def run(options: Options) -> Report:
    """Build every job; never raises for a failed build (the report says), only for what stops
    the whole run (bad input, no engine, a missing image, Ctrl-C)."""
    began = time.monotonic()
    settings = options.settings
    jobs, image_ids = _prepare(options)
    wheelhouse = settings.wheelhouse.resolve()
    try:
        wheelhouse.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(
            f"cannot make the wheelhouse {wheelhouse}: {exc.strerror or exc}",
            hint="pass --wheelhouse DIR naming a directory you can write to",
        ) from None
    runner.note_host_settings()
    with runner.sigterm_as_interrupt():
        return _run(options, jobs, image_ids, wheelhouse, began)


def _run(
    options: Options,
    jobs: Sequence[plan.BuildJob],
    image_ids: dict[str, str],
    wheelhouse: Path,
    began: float,
) -> Report:
    from wheelfarm import recipes, ui

    settings = options.settings
    try:
        sources = _fetch_all(jobs, wheelhouse)
        recipe_map = {
            key: recipes.load(source.name, settings.recipes) for key, source in sources.items()
        }
        owners: dict[tuple[str, str, str], str] = {}
        for job in jobs:
            for spec in job.specs:
                if sources[spec.key].pure:
                    owners.setdefault(spec.key, job.target.name)
        names = [job.target.name for job in jobs]
        with ui.StepBoard(names, enabled=True) as board:
            state = _Run(
                options=options,
                wheelhouse=wheelhouse,
                sources=sources,
                recipes=recipe_map,
                owners=owners,
                image_ids=image_ids,
                board=board,
            )
            state.pure = {key: _PureResult() for key in owners}
            state.order = names
            state.jobs = max(1, settings.jobs or default_jobs())
            state.build_slots = runner.Slots(state.jobs)
            state.expected = _expected_costs(jobs, sources)
            state.background = plan.in_background(state.expected)
            outcomes = _run_targets(state, jobs)
            if state.compile_times:
                from wheelfarm import cache

                cache.store_compile_times(state.compile_times)
    except KeyboardInterrupt:
        ui.error("interrupted: every build container was removed and nothing partial was kept")
        raise
    finally:
        _tidy(wheelhouse)
    return Report(wheelhouse, tuple(outcomes), time.monotonic() - began, state.started)


def default_jobs() -> int:
    """One build slot per core: a slot is held only while the backend compiles (the isolated
    environment and its downloads are made before), so each slot keeps a core busy."""
    return os.cpu_count() or 1


def _expected_costs(
    jobs: Sequence[plan.BuildJob], sources: dict[Any, Source]
) -> dict[tuple[str, str], float]:
    """Each (project, target)'s expected compile time, from the times earlier runs recorded and
    the sdists' sizes."""
    from wheelfarm import cache

    sizes: dict[tuple[str, str], int] = {}
    for job in jobs:
        for spec in job.specs:
            source = sources[spec.key]
            with contextlib.suppress(OSError):
                sizes[(source.name, job.target.name)] = source.path.stat().st_size
    return plan.expected_compile_costs(sizes, cache.compile_times())


def _run_targets(state: _Run, jobs: Sequence[plan.BuildJob]) -> list[Outcome]:
    """Every target at once, each in its own thread and container; state.build_slots bounds the
    compiles."""
    workers = [_Target(state, job) for job in jobs]
    done = runner.run_parallel(state, len(workers), [w.work for w in workers])
    return [outcome for outcomes in done for outcome in outcomes]


def _tidy(wheelhouse: Path) -> None:
    """Remove the temp area if nothing else is using it."""
    with contextlib.suppress(OSError):
        (wheelhouse / ".wheelfarm" / "tmp").rmdir()


# ---------------------------------------------------------------- showing the result


def show(report: Report) -> None:
    from wheelfarm import ui

    rows = [
        [
            o.target,
            o.spec,
            o.status,
            o.error or o.wheel or "",
            ", ".join(o.requires_external),
            f"{o.seconds:.1f}s",
        ]
        for o in report.outcomes
    ]
    ui.table(
        ["target", "spec", "status", "wheel", "Requires-External", "time"],
        rows,
        title=f"wheelhouse {report.wheelhouse}",
        styles={"failed": "red", "built": "green", "up to date": "cyan", "restored": "cyan"},
    )
    for outcome in report.outcomes:
        for gap in outcome.warnings:
            ui.warn(
                f"{outcome.wheel} ({outcome.target}): Requires-External may be incomplete: {gap}"
            )
    started = report.containers_started
    ui.detail(
        f"{len(report.outcomes)} result(s) in {report.seconds:.1f}s; "
        f"{started} container{'s' if started != 1 else ''} started"
    )


def finish(report: Report, json_output: bool, verification: dict[str, Any] | None = None) -> None:
    """Print the result (table, or JSON on stdout) and fail the command when a build failed.
    `verification` (what the build's verify step found, as JSON) goes into the JSON under
    "verify", and "ok" then says whether the builds and the verification both passed."""
    from wheelfarm import ui

    if json_output:
        data = report.as_json()
        if verification is not None:
            data["ok"] = bool(data["ok"] and verification.get("ok"))
            data["verify"] = verification
        ui.emit_json(data)
    else:
        show(report)
    failed = report.failed
    if failed:
        lines = [f"{o.spec} on {o.target}: {o.error} (log: {o.log})" for o in failed]
        raise BuildFailed(
            f"{len(failed)} build(s) failed:\n  " + "\n  ".join(lines),
            hint=f"the logs are under {report.wheelhouse / '.wheelfarm' / LOGS_DIR}",
        )


def command(options: Options) -> None:
    """`wheelfarm build --no-verify`: run the builds, show the result."""
    finish(run(options), options.json_output)
