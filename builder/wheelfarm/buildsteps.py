"""One spec's build on one target, as a script of small named steps over a typed context.

`build_one` reads top to bottom like the build itself:

  prepare (extract the sdist, make the isolated build environment) while the recipe's system
  packages install → the backend's own requirements → compile (in a build slot) → copy the
  wheel out → analyse its ELF files → retag it for the image → check it → its provenance record.

The part up to the compile is one attempt (`attempt`); `build_rounds` makes up to
discover.ROUNDS of them: after a failed one, discovery looks up what its diagnosis names in the
target's own package index and the next attempt installs it, from a fresh extraction, in a
container of the spec's own (Scheduler.isolated) once the spec installs anything; when discovery
has nothing more, the release-day retry resolves the build requirements as of the sdist's upload.

Each step is a function of a `BuildContext` (container, paths, environment, log, recipe, budget)
that returns a typed result or raises `StepFailed`. Where a step waits, runs beside another or
takes a slot is not decided here: `build_one` asks a `Scheduler` (buildrun.py decides), so the
steps are tested against a fake container with no threads (tests/unit/test_build_steps_replay.py).

Inside the container everything lives under /wf (a scratch volume): the source at the fixed path
/wf/src/<top> (the same sdist always builds at the same path), its isolated environment at
/wf/env/<top>, the wheel in /wf/out/<key>. The in-container helpers are files under data/."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from wheel.wheelfile import WheelFile

from wheelfarm import (
    __version__,
    cache,
    diagnose,
    discover,
    elfdeps,
    pkgmgr,
    provenance,
    providers,
    retag,
    runner,
)
from wheelfarm.container import TIMED_OUT
from wheelfarm.errors import WheelfarmError
from wheelfarm.fetch import Source
from wheelfarm.hostenv import CONTAINER_CA_PATH, HostSettings
from wheelfarm.imagefacts import ImageFacts
from wheelfarm.needs import Missing
from wheelfarm.plan import Spec
from wheelfarm.recipes import Recipe
from wheelfarm.rules import TagSet
from wheelfarm.targets import Python, Target

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)
WORK = "/wf"  # everything a build writes inside the container lives under here
SRC = f"{WORK}/src"
PIP_CACHE = f"{WORK}/pip-cache"
UV_CACHE = f"{WORK}/uv-cache"
TOOLS = f"{WORK}/tools"
# Held in memory (Container's `memory`) unless a build filled them: what a build writes many
# small files into. Not the sdist's way in, nor the wheel's way out (copy_in and copy_out cannot
# reach into memory), nor the caches, which outlive the container.
IN_MEMORY = (SRC, f"{WORK}/env", f"{WORK}/envs", f"{WORK}/home")
# How a file system that filled up says so (ENOSPC's text).
_NO_ROOM = "No space left on device"
DATA = Path(__file__).parent / "data"
# The in-container helpers, copied into TOOLS when the container starts.
STEPS_SCRIPT = DATA / "pep517_steps.py"
EXTRACT_SCRIPT = DATA / "extract_sdist.py"
CONTENTS_SCRIPT = DATA / "contents_index.py"
# The lines pep517_steps.py reports the isolated environment's contents and path on, and what
# the backend asked for.
STEPS_ENV_LINE = "wheelfarm-build-env: "
STEPS_ENV_PATH_LINE = "wheelfarm-build-env-path: "
STEPS_REQUIRES_LINE = "wheelfarm-backend-requires: "
# How many cores the driver's wheel step may give the backend's compile (data/pep517_steps.py).
CORES_VARIABLE = "WHEELFARM_COMPILE_CORES"
# The project's own code (its backend's hooks, its setup.py) runs as this unprivileged user.
BUILDER = "65534:65534"
NICE = ("nice", "-n", "10")  # coreutils and busybox both have it
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
    "TZ": "UTC",
}
# `file.c:3:2: error: ...`, `error: command 'gcc' failed`, `E: Unable to locate package x`
_COMPILER_ERROR = re.compile(r"(:\d+:\d+: (fatal )?error: |^error: |^E: )")


class StepFailed(WheelfarmError):
    """One step of one spec's build failed; the message is the reason shown in the summary, the
    hint what to do about it (the diagnosed cause's, when the log named one)."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        log: str | None = None,
        diagnosis: diagnose.Diagnosis | None = None,
        step: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.log = log  # the build log, relative to the wheelhouse, once it is closed
        self.diagnosis = diagnosis  # what the failed step's output (and trace) say
        self.step = step  # (what, exit code) of the failed exec, when one failed

    @property
    def cause(self) -> diagnose.Cause | None:
        return self.diagnosis.primary if self.diagnosis is not None else None


class ToolchainWanted(StepFailed):
    """The backend asked for a requirement that downloads a toolchain (maturin's puccinialin
    fetches Rust): the distro's own is looked up instead, as if the build had said it lacks it."""

    def __init__(self, wanted: Sequence[discover.Download]) -> None:
        said = "; ".join(f"{d.requirement} (downloads {d.downloads})" for d in wanted)
        super().__init__(f"the build backend asked for {said}: the distro's toolchain is used")
        self.missing = tuple(m for d in wanted for m in d.instead)


class Exec(runner.Runs, Protocol):
    """What the steps need of a container (container.Container; a replaying fake in tests)."""

    @property
    def host_settings(self) -> HostSettings | None: ...

    @property
    def in_memory(self) -> tuple[str, ...]:
        """The folders it holds in memory (IN_MEMORY), none when its files are on disk."""
        ...

    def output(self, argv: Sequence[str] | str, *, check: bool = True) -> str: ...

    def copy_in(self, host_path: Path, container_dir: str) -> str: ...

    def copy_out(self, container_path: str, host_dir: Path) -> Path: ...


class Pending(Protocol[_T_co]):
    """A step started beside others (runner.Background)."""

    def join(self) -> _T_co: ...


class Scheduler(Protocol):
    """Where the scheduling layer (buildrun.py) takes part in one build."""

    def check(self) -> None:
        """Raise runner.Cancelled once the run is stopping."""

    def beside(self, call: Callable[[], _T]) -> Pending[_T]:
        """Start `call` beside the steps that follow (it joins before its result is used)."""
        ...

    def packages(self) -> contextlib.AbstractContextManager[None]:
        """Hold the container's package manager (one install at a time in a container)."""
        ...

    def build_slot(self, waiting: Callable[[], None]) -> contextlib.AbstractContextManager[None]:
        """Hold one of the run's --jobs compile slots; `waiting` is called if none is free."""
        ...

    def status(self, text: str) -> None:
        """Show what this build is doing now."""

    def compile_cores(self) -> int:
        """The cores the compile starting now may spread over (1 but for the run's last builds)."""
        ...

    def isolated(self, on_disk: bool = False) -> Exec:
        """A container of this spec's own, started from the target's image, for a build that
        installs system packages: what one spec installs never reaches another's build. It is
        removed when the spec's build ends. `on_disk`: with none of its files in memory, and so
        every container this spec gets after it."""
        ...


# ---------------------------------------------------------------- the context


class BuildLog(runner.StepLog):
    """One log per spec and target, with the time of each step, that also keeps the first
    compiler-style "error:" lines for the summary."""

    def __init__(self, wheelhouse: Path, name: str) -> None:
        super().__init__(wheelhouse, name, clock=True)
        self.errors: list[str] = []
        self.round: list[str] = []  # the lines of this build attempt, for its diagnosis
        # The project-code exec that just failed (run_step), for trace_failed_step to run again.
        self.failed_exec: tuple[str, ...] | None = None
        self.failed_seconds = 0.0  # how long it ran

    def line(self, text: str) -> None:
        super().line(text)
        self.round.append(text)
        if len(self.errors) < 3 and _COMPILER_ERROR.search(text):
            self.errors.append(text.strip())

    def new_round(self) -> None:
        self.round = []
        self.errors = []

    def reason(self) -> str:
        """The most useful line of a failed step: the first compiler-style error, else pip's last
        `ERROR:` line (a build requirement the index does not have...), else the last line that
        mentions an error, else the last line."""
        if self.errors:
            return self.errors[0][:300]
        for line in reversed(self.tail):
            if line.startswith("ERROR: "):
                return line.strip()[:300]
        for line in reversed(self.tail):
            lowered = line.lower()
            if "error" in lowered or "failed" in lowered or "not found" in lowered:
                return line.strip()[:300]
        return self.tail[-1].strip()[:300] if self.tail else ""

    def diagnosis(self) -> diagnose.Diagnosis:
        """What the lines of the step that just failed (since the last heading) say."""
        return diagnose.read_log("\n".join(self.section))

    def failure(
        self, what: str, code: int, diagnosis: diagnose.Diagnosis | None = None
    ) -> StepFailed:
        """The error for a failed step: its diagnosed cause and that cause's hint, else the
        most useful line of its output (`reason`)."""
        found = self.diagnosis() if diagnosis is None else diagnosis
        cause = found.primary
        if cause is not None:
            return StepFailed(
                f"{what}: {cause.summary}", cause.hint, diagnosis=found, step=(what, code)
            )
        last = self.reason()
        message = f"{what}: exit {code}" + (f" ({last})" if last else "")
        return StepFailed(message, diagnosis=found, step=(what, code))


class Budget:
    """--timeout for one wheel's build: the execs that make its environment and compile it share
    it; waiting for a slot or for the system packages does not count."""

    def __init__(self, total: float | None) -> None:
        self.total = total
        self.spent = 0.0

    def left(self) -> float | None:
        return None if self.total is None else max(1.0, self.total - self.spent)

    def spend(self, seconds: float) -> None:
        self.spent += seconds

    def failure(self, what: str, code: int, log: BuildLog) -> StepFailed:
        """The error for a failed exec: `timed out` when the timeout ended it."""
        if code == TIMED_OUT and self.total is not None:
            return StepFailed(f"{what}: timed out after {self.total:.0f}s")
        return log.failure(what, code)

    def check(self, code: int, what: str, log: BuildLog) -> None:
        if code != 0:
            raise self.failure(what, code, log)


@dataclass(frozen=True)
class BuildPaths:
    """Where one build's files are inside the container."""

    src: str  # the extracted sdist, /wf/src/<top>
    env: str  # pip's environment for it, /wf/env/<top> (uv's live under envs, by content)
    envs: str  # uv's environments, /wf/envs/<hash of the packages in it>
    out: str  # where the wheel is written, /wf/out/<key prefix>
    home: str  # HOME of the project's own code, /wf/home/<top>
    steps: str  # the PEP 517 driver, copied into /wf/tools
    extract: str  # the sdist extractor, copied there too
    probe: str  # the ELF probe
    contents: str  # the apt Contents indexer (discovery)

    @classmethod
    def of(cls, source: Source, key: str, tools: Mapping[str, str]) -> BuildPaths:
        return cls(
            src=f"{SRC}/{source.top}",
            env=f"{WORK}/env/{source.top}",
            envs=f"{WORK}/envs",
            out=f"{WORK}/out/{key[:16]}",
            home=f"{WORK}/home/{source.top}",
            steps=tools["steps"],
            extract=tools["extract"],
            probe=tools["probe"],
            contents=tools["contents"],
        )


@dataclass(frozen=True)
class BuildContext:
    container: Exec
    target: Target
    python: Python
    spec: Spec
    source: Source
    recipe: Recipe
    facts: ImageFacts
    tag_set: TagSet
    key: str
    paths: BuildPaths
    env: Mapping[str, str]  # what the build sees (part of the cache key and the record)
    log: BuildLog
    budget: Budget
    installer: str = "uv"  # what makes the environments: "uv" or "pip"
    # Added for the steps that install (never the project's code): uv's index settings...
    installer_env: Mapping[str, str] = field(default_factory=dict)
    nice: bool = False  # a short build beside longer ones: its steps run at a lower priority
    stale: tuple[str, ...] = ()  # folders of earlier builds, removed while extracting
    discover: bool = True  # look up and install what a failed build was missing
    found: tuple[providers.Choice, ...] = ()  # what discovery installed, in its order
    own_container: bool = False  # the container is this spec's own (Scheduler.isolated)
    # Installed for discovery's own use, never part of the recipe: strace, where the image
    # lacks it, to see what a build that names nothing looked for.
    helpers: tuple[str, ...] = ()
    wanted: tuple[Missing, ...] = ()  # to find before the first attempt ([external] tools)
    # The release-day retry: build requirements resolved as of this time (the sdist's upload),
    # and once that worked, the pins it resolved to (kept as constraints for this version).
    exclude_newer: str | None = None
    pinned: tuple[str, ...] = ()
    emulated: bool = False  # the image's architecture is not the engine's (qemu-user runs it)

    @property
    def label(self) -> str:
        return f"{self.source.name} {self.source.version or ''}".strip()

    @property
    def python_argv(self) -> list[str]:
        return [*(NICE if self.nice else ()), f"{self.python.build_venv}/bin/python"]

    @property
    def packages(self) -> tuple[str, ...]:
        """The recipe's packages for the target, then what discovery found."""
        found = tuple(choice.package for choice in self.found)
        return tuple(dict.fromkeys((*self.recipe.packages_for(self.target), *found)))

    @property
    def effective_recipe(self) -> Recipe:
        """The recipe with what discovery found for this target, and the pins the release-day
        retry resolved scoped to this version: what the wheel was made with."""
        recipe = self.recipe.with_packages(self.target, self.packages)
        if self.pinned and self.source.version:
            recipe = recipe.with_constraints(f"=={self.source.version}", self.pinned)
        return recipe

    def driver(self, step: str, env: str | None = None, *extra: str) -> list[str]:
        """The PEP 517 driver's command line for one step."""
        argv = [*self.python_argv, self.paths.steps, self.paths.src, self.paths.envs]
        argv += ["--installer", self.installer, "--env", env or self.paths.env]
        if step == "wheel":
            argv += ["--out", self.paths.out]
        if step in ("env", "extend"):
            pins = (*self.recipe.constraints_for(self.source.version), *self.pinned)
            argv += [arg for pin in dict.fromkeys(pins) for arg in ("--constraint", pin)]
            if self.exclude_newer:
                argv += ["--exclude-newer", self.exclude_newer]
        return [*argv, step, *extra]


def build_env(
    source: Source, recipe: Recipe, target: Target, installer: str = "uv"
) -> dict[str, str]:
    return {
        **BASE_ENV,
        "LC_ALL": target.locale,
        **recipe.env,
        "SOURCE_DATE_EPOCH": str(source.source_date_epoch),
        "HOME": f"{WORK}/home/{source.top}",
        # The hooks' .pyc files go to their own home (the environment is not theirs to write),
        # so the second hook reuses what the first compiled.
        "PYTHONPYCACHEPREFIX": f"{WORK}/home/{source.top}/pycache",
        "WHEELFARM_INSTALLER": installer,
    }


def cache_key(
    image_id: str,
    source: Source,
    recipe: Recipe,
    target: Target,
    *,
    tag_set: TagSet,
    python: str,
    installer: str = "uv",
) -> str:
    return cache.build_key(
        image_id=image_id,
        sdist_sha256=source.sha256,
        recipe_digest=recipe.build_digest(target, source.version),
        rules=provenance.rules_applied(tag_set),
        build_env=build_env(source, recipe, target, installer),
        python=python,
        arch=target.arch,
    )


# ---------------------------------------------------------------- results of the steps


class Buffer:
    """A log for steps that run beside another (their lines would interleave): kept, then
    written into the build's log in one piece, each heading with the time its step began."""

    def __init__(self) -> None:
        self.entries: list[tuple[float | None, str]] = []  # (a heading's time, text)

    def heading(self, text: str) -> None:
        self.entries.append((time.monotonic(), text))

    def line(self, text: str) -> None:
        self.entries.append((None, text))

    def into(self, log: BuildLog) -> None:
        for at, text in self.entries:
            if at is None:
                log.line(text)
            else:
                log.heading(text, at)


class Sink(Protocol):
    def heading(self, text: str) -> None: ...

    def line(self, text: str) -> None: ...


@dataclass(frozen=True)
class Environment:
    """The isolated build environment a step left: where it is, and what it holds."""

    path: str
    contents: dict[str, str]
    extra: tuple[str, ...] = ()  # what the backend asked for, when it was asked


@dataclass(frozen=True)
class Failed:
    """A step that ran beside another failed: how, said once its output is in the log."""

    what: str
    code: int
    timed: bool  # within the budget (a timeout is said as such)


@dataclass(frozen=True)
class Prepared:
    output: Buffer
    environment: Environment | None
    failed: Failed | None = None


@dataclass(frozen=True)
class Retagged:
    wheel: Path
    platform_tag: str  # "any" for a pure wheel
    pure: bool
    analysis: elfdeps.Analysis | None
    gaps: tuple[str, ...]


@dataclass(frozen=True)
class Built:
    wheel: Path  # on the host, in a staging folder the caller removes
    record: dict[str, Any]  # the provenance record
    retagged: Retagged
    durations: dict[str, float]
    key: str  # the cache key of what made it (with what discovery found)
    found: tuple[providers.Choice, ...] = ()  # what discovery installed
    paths: BuildPaths | None = None  # where it was built (in the container it ended in)
    pinned: tuple[str, ...] = ()  # the release-day retry's pins, when it made the build pass


# ---------------------------------------------------------------- the steps


def run_step(
    ctx: BuildContext,
    sink: Sink,
    argv: Sequence[str],
    what: str,
    *,
    project_code: bool,
    limit: float | None = None,
    cores: int = 1,
) -> tuple[int, list[str]]:
    """One exec of the PEP 517 driver within the budget (and `limit` seconds), its output into
    `sink` under the heading `what`. The project's own code (its backend's hooks) runs as the
    unprivileged BUILDER, who can write only to its source, output and home folders: never to a
    cache or to an environment another build uses. The installing steps run as root with the
    installer's settings. `cores` > 1: the driver lets the backend compile on that many."""
    env = dict(ctx.env) if project_code else {**_as_root(ctx.env), **ctx.installer_env}
    if cores > 1:
        env[CORES_VARIABLE] = str(cores)
    sink.heading(what)
    lines: list[str] = []

    def both(line: str) -> None:
        lines.append(line)
        sink.line(line)

    began = time.monotonic()
    ctx.log.failed_exec = None
    bounds = [t for t in (ctx.budget.left(), limit) if t is not None]
    code = ctx.container.run(
        argv,
        env=env,
        workdir=ctx.paths.src,
        on_output=both,
        timeout=min(bounds) if bounds else None,
        user=BUILDER if project_code else "",
    )
    ctx.budget.spend(time.monotonic() - began)
    if code not in (0, TIMED_OUT) and project_code:
        ctx.log.failed_exec = tuple(argv)
        ctx.log.failed_seconds = time.monotonic() - began
    return code, lines


def _as_root(env: Mapping[str, str]) -> dict[str, str]:
    """The build's environment for a step that runs as root: without the hooks' pycache prefix,
    which lives in BUILDER's home. A root step writing there first makes folders BUILDER cannot
    write into, and a backend that byte-compiles (python-ldap's) then fails."""
    return {k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"}


def make_environment(ctx: BuildContext, sink: Sink) -> tuple[int, Environment | None]:
    """The environment with the project's build-system requires (no project code runs)."""
    code, lines = run_step(ctx, sink, ctx.driver("env"), "build environment", project_code=False)
    return code, (_environment(lines) if code == 0 else None)


def ask_backend(
    ctx: BuildContext, sink: Sink, env: Environment
) -> tuple[int, Environment | None, str]:
    """What the backend also needs (its get_requires_for_build_wheel hook, as BUILDER), then an
    environment that holds it too. Returns the exit code, the environment and the failed step."""
    what = "build environment: the backend's requirements"
    code, lines = run_step(ctx, sink, ctx.driver("requires", env.path), what, project_code=True)
    if code != 0:
        return code, None, what
    extra = _requires(lines)
    if not extra:
        return 0, Environment(env.path, env.contents, ()), what
    what = "build environment: " + ", ".join(extra)
    argv = ctx.driver("extend", env.path, *extra)
    code, lines = run_step(ctx, sink, argv, what, project_code=False)
    if code != 0:
        return code, None, what
    extended = _environment(lines)
    return 0, Environment(extended.path, extended.contents, extra), what


def prepare(ctx: BuildContext) -> Prepared:
    """Unpack the sdist (its folders owned by BUILDER), then make the isolated build environment
    — and, when no system packages are to be waited for, ask the backend what else it needs:
    downloads and unpacking, which run while the system packages install."""
    out = Buffer()
    inside = ctx.container.copy_in(ctx.source.path, f"{WORK}/in")
    what = f"extract the sdist at {ctx.paths.src}"
    out.heading(what)
    own = [ctx.paths.src, ctx.paths.out, ctx.paths.home]
    argv = [*ctx.python_argv, ctx.paths.extract, inside, SRC, "--owner", BUILDER]
    argv += [arg for path in own for arg in ("--own", path)]
    argv += [arg for path in ctx.stale for arg in ("--remove", path)]
    code = ctx.container.run(argv, on_output=out.line)
    if code != 0:
        return Prepared(out, None, Failed(what, code, timed=False))
    code, env = make_environment(ctx, out)
    if env is None:
        return Prepared(out, None, Failed("build environment", code, timed=True))
    if ctx.packages:
        return Prepared(out, env)
    code, asked, what = ask_backend(ctx, out, env)
    return Prepared(out, asked, None if asked else Failed(what, code, timed=True))


def install_system_packages(ctx: BuildContext, sched: Scheduler) -> None:
    packages = (*ctx.packages, *ctx.helpers)
    if not packages:
        return
    sched.status(f"installing {' '.join(packages)}")
    settings = ctx.container.host_settings
    ca = CONTAINER_CA_PATH if settings is not None and settings.ca_bundle else None
    with sched.packages():
        install = pkgmgr.install_command(ctx.target.family, packages, ca_file=ca)
        runner.exec_step(
            ctx.container,
            ctx.log,
            [*NICE, "sh", "-c", install] if ctx.nice else install,
            "install system packages",
            check=sched.check,
            fail=lambda code: ctx.log.failure("install system packages", code),
            env=pkgmgr.install_env(ctx.target.family),
        )


def record_prepared(ctx: BuildContext, prepared: Prepared) -> Environment:
    """Write what ran beside the package install into the log; fail as it failed."""
    if ctx.packages:
        ctx.log.heading(f"(while the packages installed, {ctx.budget.spent:.1f}s:)")
    prepared.output.into(ctx.log)
    failed = prepared.failed
    if failed is not None:
        if failed.timed:
            ctx.budget.check(failed.code, failed.what, ctx.log)
        raise ctx.log.failure(failed.what, failed.code)
    assert prepared.environment is not None
    ctx.log.line(f"build environment at {prepared.environment.path}")
    return prepared.environment


def backend_requirements(ctx: BuildContext, sched: Scheduler, env: Environment) -> Environment:
    """get_requires_for_build_wheel, once the system packages are in."""
    sched.status("the backend's build requirements")
    sched.check()
    code, asked, what = ask_backend(ctx, ctx.log, env)
    sched.check()
    if asked is None:
        raise ctx.budget.failure(what, code, ctx.log)
    ctx.log.line(f"build environment at {asked.path}")
    return asked


def compile_wheel(ctx: BuildContext, sched: Scheduler, env: Environment) -> float:
    """The backend's build_wheel, as BUILDER, in a build slot; returns how long it took. The
    run's last builds may spread their compile over the cores the others left idle."""

    def waiting() -> None:
        sched.status("waiting for a free build slot (--jobs)")
        ctx.log.heading("waiting for a free build slot (--jobs)")

    with sched.build_slot(waiting):
        sched.status("building")
        sched.check()
        began = time.monotonic()
        argv = ctx.driver("wheel", env.path)
        cores = sched.compile_cores()
        heading = "build the wheel"
        if cores > 1:
            heading += f" on {cores} cores (the last build of the run)"
        code, _ = run_step(ctx, ctx.log, argv, heading, project_code=True, cores=cores)
        spread_failed = cores > 1 and code not in (0, TIMED_OUT)
        if spread_failed and ctx.log.diagnosis().primary is None and not out_of_room(ctx.log.round):
            # A project's own build_ext need not be thread-safe: a failure with no cause named
            # (a missing header is one) is built once more as pip builds it, and only that
            # outcome counts.
            sched.check()
            again = "build the wheel again, on one core (it failed on several)"
            code, _ = run_step(ctx, ctx.log, argv, again, project_code=True)
        sched.check()
        ctx.budget.check(code, "build the wheel", ctx.log)
        return round(time.monotonic() - began, 2)


def collect_wheel(ctx: BuildContext, staging: Path) -> Path:
    """The whole output folder comes out: what the backend left there is listed on the host."""
    built = sorted(ctx.container.copy_out(ctx.paths.out, staging / "raw").glob("*.whl"))
    if len(built) != 1:
        raise StepFailed(f"the build left {len(built)} wheels in {ctx.paths.out}, expected one")
    return built[0]


def analyse_elf(ctx: BuildContext, wheel_name: str) -> elfdeps.Analysis:
    """Which libraries the wheel's ELF files load, and which distro packages own them."""
    ctx.log.heading("ELF probe")
    probe = json.loads(
        ctx.container.output([*ctx.python_argv, ctx.paths.probe, f"{ctx.paths.out}/{wheel_name}"])
    )
    wrong = elfdeps.foreign_elfs(probe, ctx.target.arch)
    if wrong:
        for elf in wrong:
            ctx.log.line(f"  {elf}: not {ctx.target.arch}")
        raise StepFailed(
            f"the wheel holds ELF files for another CPU than {ctx.target.arch}: {', '.join(wrong)}",
            hint="the build copied prebuilt binaries into the wheel; build them from source for "
            "the target, or leave them out",
        )
    family = ctx.target.family
    script = elfdeps.owner_script(family, elfdeps.query_paths(probe))
    owners = elfdeps.parse_owners(family, ctx.container.output(["sh", "-c", script]))
    analysis = elfdeps.analyse(probe, family, owners)
    for lib in analysis.libraries:
        ctx.log.line(f"  {lib.elf}: {lib.soname} -> {lib.path} ({lib.package})")
    ctx.log.line(f"  Requires-External: {', '.join(analysis.requires_external) or '-'}")
    for gap in elfdeps.gaps(analysis.as_json()):
        ctx.log.line(f"  warning: Requires-External may be incomplete: {gap}")
    return analysis


def retag_for_image(
    ctx: BuildContext, wheel: Path, analysis: elfdeps.Analysis | None, staging: Path
) -> Retagged:
    """A platform wheel gets the image's build tag (its os-release through the rules) and the
    Requires-External the ELF analysis found; a pure wheel stays as it is."""
    if analysis is None:
        return Retagged(wheel, "any", True, None, ())
    final_dir = staging / "final"
    final_dir.mkdir()
    final = retag.retag_wheel(
        wheel,
        ctx.tag_set.build,
        final_dir,
        requires_external=analysis.requires_external,
        # The sdist's, as the backend got it: never the host's environment, which is not part
        # of the cache key.
        source_date_epoch=ctx.source.source_date_epoch,
    )
    gaps = tuple(elfdeps.gaps(analysis.as_json()))
    return Retagged(final, ctx.tag_set.build, False, analysis, gaps)


def check_wheel(path: Path) -> None:
    """A wheel goes into the wheelhouse only when every member matches its RECORD."""
    try:
        with WheelFile(path) as wheel:
            for item in wheel.infolist():
                if not item.is_dir():
                    wheel.read(item)
    except Exception as exc:
        raise StepFailed(f"{path.name} is not a valid wheel: {exc}") from None


def _environment(lines: Sequence[str]) -> Environment:
    path = ""
    for line in reversed(lines):
        if line.startswith(STEPS_ENV_PATH_LINE):
            path = line[len(STEPS_ENV_PATH_LINE) :].strip()
            break
    return Environment(path, env_report(lines))


def _requires(lines: Sequence[str]) -> tuple[str, ...]:
    for line in reversed(lines):
        if line.startswith(STEPS_REQUIRES_LINE):
            with contextlib.suppress(ValueError):
                found = json.loads(line[len(STEPS_REQUIRES_LINE) :])
                if isinstance(found, list):
                    return tuple(str(item) for item in found)
    return ()


def env_report(lines: Sequence[str]) -> dict[str, str]:
    """What the isolated build environment holds (name → version), from the steps' last report."""
    for line in reversed(lines):
        if line.startswith(STEPS_ENV_LINE):
            with contextlib.suppress(ValueError):
                found = json.loads(line[len(STEPS_ENV_LINE) :])
                if isinstance(found, dict):
                    return {str(k): str(v) for k, v in found.items()}
    return {}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------- diagnosing a failure

# What the trace records: every call that takes a file name (execve, open/openat, the stat and
# access families...). strace's own class, rather than a list of calls: the calls differ by
# architecture (aarch64 has no open or stat) and by strace version (4.x knows no faccessat2).
TRACE_CALLS = "file"
# The trace's lines worth bringing to the host: calls on headers, .pc files, libraries and
# programs (and the halves of interrupted calls); not the build's thousands of .py lookups.
TRACE_KEEP = r'\.(h|hh|hpp|hxx|H|pc|so|a)"|/s?bin/|execve|resumed>|unfinished'
TRACE_MIN_SECONDS = 60.0
TRACE_HEADING = "trace the failed step (strace), to see what it looked for"
_PTRACE_REFUSED = re.compile(
    r"PTRACE_TRACEME|ptrace\(.*Operation not permitted|Operation not permitted.*ptrace"
)


def trace_failed_step(ctx: BuildContext, sched: Scheduler, failed: StepFailed) -> StepFailed:
    """When the failed step's output names nothing missing and no compiler error (a build that
    probed quietly and gave up in prose), run the failed project-code exec once more under
    strace and read off what it looked for and did not find. Where strace cannot run (an
    emulated target, no strace in the image, ptrace refused) the diagnosis is the log's alone,
    and the log says so. Returns the error to raise: `failed`, or one whose cause the trace
    names."""
    found, argv = failed.diagnosis, ctx.log.failed_exec
    if found is None or argv is None or failed.step is None or not _worth_tracing(found):
        return failed
    if out_of_room(ctx.log.round):  # it said why: run again, it would only fill up again
        return failed
    why_not, text = _untraceable(ctx), ""
    began = time.monotonic()
    if why_not is None:
        why_not, text = _traced_run(ctx, sched, argv)
    else:
        ctx.log.heading(TRACE_HEADING)
    if why_not is not None:
        ctx.log.line(f"not traced ({why_not}): the diagnosis is the log's alone")
        return _diagnosed(failed, found.untraceable(why_not))
    missing = diagnose.read_trace(text)
    named = ", ".join(map(str, missing)) or "nothing"
    ctx.log.line(
        f"looked for and found nowhere: {named} (traced in {time.monotonic() - began:.1f}s)"
    )
    merged = found.with_trace(missing, "log and trace")
    if not missing:
        return _diagnosed(failed, merged)
    return ctx.log.failure(*failed.step, merged)


def _traced_run(ctx: BuildContext, sched: Scheduler, argv: Sequence[str]) -> tuple[str | None, str]:
    """The failed exec again under strace, in a build slot: (why it could not be traced, or
    None; the trace's lines worth reading)."""
    trace = f"{ctx.paths.home}/wheelfarm-trace.txt"
    traced = ["strace", "-f", "-qq", "-e", f"trace={TRACE_CALLS}", "-o", trace, *argv]
    # A trace slows the step down; one cut short still says what was looked for until then.
    limit = max(TRACE_MIN_SECONDS, 3 * ctx.log.failed_seconds)
    with sched.build_slot(lambda: sched.status("waiting for a free build slot (--jobs)")):
        sched.status("tracing the failed step")
        _, lines = run_step(ctx, ctx.log, traced, TRACE_HEADING, project_code=True, limit=limit)
    if any(_PTRACE_REFUSED.search(line) for line in lines):
        return "ptrace refused", ""
    keep = f"grep -E '{TRACE_KEEP}' {trace}; rm -f {trace}"
    return None, ctx.container.output(["sh", "-c", keep], check=False)


def _diagnosed(failed: StepFailed, diagnosis: diagnose.Diagnosis) -> StepFailed:
    return StepFailed(failed.message, failed.hint, diagnosis=diagnosis, step=failed.step)


def _worth_tracing(found: diagnose.Diagnosis) -> bool:
    """Nothing named missing, and a cause a trace could add to (a compiler's error or cargo's
    failed crate download could not: see diagnose.Pattern)."""
    primary = found.primary
    return not found.missing and (primary is None or primary.traceable)


def _untraceable(ctx: BuildContext) -> str | None:
    """Why the failed step cannot be traced here, or None."""
    if ctx.emulated:
        return "the target is emulated: ptrace does not reach through qemu-user"
    if not ctx.container.output(["sh", "-c", "command -v strace || true"]).strip():
        return diagnose.NO_TRACER
    return None


# ---------------------------------------------------------------- the script


def attempt(ctx: BuildContext, sched: Scheduler) -> tuple[Environment, dict[str, float]]:
    """One build attempt from a fresh extraction: the system packages install while the sdist
    unpacks and its environment fills, then the backend's requirements and the compile."""
    sched.status("preparing the build environment")
    preparing = sched.beside(lambda: prepare(ctx))
    try:
        install_system_packages(ctx, sched)
    except BaseException:
        with contextlib.suppress(Exception):  # no exec of this spec outlives it
            preparing.join()
        raise
    prepared = preparing.join()
    sched.check()
    try:
        env = record_prepared(ctx, prepared)
        if ctx.packages:
            env = backend_requirements(ctx, sched, env)
    except StepFailed as failed:
        raise trace_failed_step(ctx, sched, failed) from None
    wanted = discover.toolchain_download(env.extra)
    if wanted and ctx.discover:
        raise ToolchainWanted(wanted)
    durations = {"environment": round(ctx.budget.spent, 2)}
    try:
        durations["compile"] = compile_wheel(ctx, sched, env)
    except StepFailed as failed:
        raise trace_failed_step(ctx, sched, failed) from None
    return env, durations


def _missing(failure: StepFailed, diagnosis: diagnose.Diagnosis) -> tuple[Missing, ...]:
    """What this attempt lacked: a toolchain download the backend asked for, else the primary
    cause's missing things (the fewest packages that answer the diagnosis: mysqlclient probes
    mysqlclient, mariadb, libmariadb... in turn and needs one), else everything named."""
    if isinstance(failure, ToolchainWanted):
        return failure.missing
    primary = diagnosis.primary
    if primary is not None and primary.missing:
        return primary.missing
    return diagnosis.missing


def _trace_next(ctx: BuildContext, diagnosis: diagnose.Diagnosis) -> bool:
    """Whether the next attempt is the same one again, with strace installed to trace it: the
    log named nothing, and the image has no strace to trace with."""
    return (
        not diagnosis.missing
        and diagnosis.untraced == diagnose.NO_TRACER
        and ctx.target.family in pkgmgr.FAMILIES
        and "strace" not in ctx.helpers
    )


def _next_round(
    ctx: BuildContext, sched: Scheduler, failure: StepFailed, asked: set[Missing]
) -> BuildContext | None:
    """After a failed attempt: the context of the next one, with what discovery found, or None
    when it found nothing new to install."""
    diagnosis = failure.diagnosis or diagnose.read_log("\n".join(ctx.log.round))
    if _trace_next(ctx, diagnosis):
        ctx.log.heading("discovery: the log names nothing missing; once more, with strace")
        own = ctx if ctx.own_container else dataclasses.replace(ctx, container=sched.isolated())
        return dataclasses.replace(own, own_container=True, helpers=(*ctx.helpers, "strace"))
    missing = [m for m in _missing(failure, diagnosis) if m not in asked]
    if not missing:
        ctx.log.heading("discovery: the log names nothing missing that was not looked up before")
        return None
    ctx.log.heading("discovery: missing " + ", ".join(str(m) for m in missing))
    return _with_providers(ctx, sched, missing, asked)


def _richer_round(ctx: BuildContext, sched: Scheduler, asked: set[Missing]) -> BuildContext | None:
    """After a passing attempt: the context of one more, when the log shows a compile that
    failed for want of a header and a build that carried on without it (pyyaml falls back to
    pure Python without yaml.h, leaving a wheel without the extension its project ships), and
    the distro has the header. None when there is no such thing, or no package has it."""
    if not ctx.discover:
        return None
    diagnosis = diagnose.read_log("\n".join(ctx.log.round))
    missing = [
        m
        for cause in diagnosis.causes
        if cause.kind == "missing-header"
        for m in cause.missing
        if m not in asked
    ]
    if not missing:
        return None
    ctx.log.heading(
        "discovery: the build passed, but a compile failed for want of "
        + ", ".join(str(m) for m in missing)
        + " and the build went on without it"
    )
    return _with_providers(ctx, sched, missing, asked)


def _with_providers(
    ctx: BuildContext, sched: Scheduler, missing: Sequence[Missing], asked: set[Missing]
) -> BuildContext | None:
    """ctx with the distro's packages that provide what is missing (in a container of the
    spec's own), or None when none provides anything new."""
    asked.update(missing)
    if not ctx.own_container:
        ctx = dataclasses.replace(ctx, container=sched.isolated(), own_container=True)
    sched.status("discovery: asking the distro's package index")
    try:
        choices = discover.lookup(_where(ctx), missing, frozenset(ctx.packages), ctx.log)
    except discover.LookupFailed as exc:
        ctx.log.line(f"discovery: {exc.message}")
        return None
    fresh = _fresh(ctx, missing, choices)
    if not fresh:
        return None
    return dataclasses.replace(ctx, found=(*ctx.found, *fresh))


def _find_wanted(ctx: BuildContext, sched: Scheduler, asked: set[Missing]) -> BuildContext:
    """The compilers and tools the sdist's [external] table names, found like missing programs
    before the first attempt (not at all with --no-discover: the recipe must name them)."""
    if not ctx.discover:
        named = ", ".join(map(str, ctx.wanted))
        ctx.log.heading(f"[external] names {named}: not looked up (--no-discover)")
        return ctx
    ctx.log.heading("[external]: finding " + ", ".join(map(str, ctx.wanted)))
    asked.update(ctx.wanted)
    try:
        choices = discover.lookup(_where(ctx), ctx.wanted, frozenset(ctx.packages), ctx.log)
    except discover.LookupFailed as exc:
        ctx.log.line(f"discovery: {exc.message}")
        return ctx
    fresh = _fresh(ctx, ctx.wanted, choices)
    return dataclasses.replace(ctx, found=(*ctx.found, *fresh))


def _where(ctx: BuildContext) -> discover.Where:
    return discover.Where(
        container=ctx.container,
        family=ctx.target.family,
        arch=ctx.facts.arch,
        python=ctx.python_argv[-1],
        script=ctx.paths.contents,
        ca_file=_ca_file(ctx),
    )


def _fresh(
    ctx: BuildContext, missing: Sequence[Missing], choices: Sequence[providers.Choice]
) -> list[providers.Choice]:
    """The choices that install something new (two things may have one provider: it is
    installed once), logged with the things nothing provides."""
    fresh: list[providers.Choice] = []
    for choice in choices:
        if choice.package not in ctx.packages and all(f.package != choice.package for f in fresh):
            fresh.append(choice)
    for m in missing:
        if not any(c.missing == m for c in choices):
            ctx.log.line(f"  {m}: no package of {ctx.target.name} provides it")
    for choice in fresh:
        ctx.log.line(f"  {choice.missing} → {choice.package} ({choice.why})")
    return fresh


def _release_day(ctx: BuildContext, failure: StepFailed) -> BuildContext | None:
    """After discovery has nothing more to install: the same build again with its build
    requirements resolved as of the sdist's upload time (an older release often fails against
    today's Cython or setuptools), once, when the index gave that time. A failed package install,
    or a failure its log blames on something missing from the system or on a download (cargo's
    crate registry out of reach), is not the build requirements' fault."""
    if ctx.exclude_newer or ctx.pinned or failure.step is None:
        return None
    if failure.step[0] == "install system packages":
        return None
    diagnosis = failure.diagnosis
    if diagnosis is not None and diagnosis.missing:
        return None  # blamed on something missing from the system, not on its requirements
    primary = diagnosis.primary if diagnosis is not None else None
    if primary is not None and primary.kind == "download":
        return None  # a registry or a server out of reach: other versions would not reach it
    when = ctx.source.upload_time
    if when is None:
        ctx.log.heading(
            "no release-day retry: the index gives no upload times (PEP 700); pin the build "
            "requirements with [build] constraints in a recipe if today's releases break it"
        )
        return None
    if ctx.installer != "uv":
        ctx.log.heading("no release-day retry: it needs uv (--installer uv)")
        return None
    ctx.log.heading(f"release-day retry: build requirements as of {when}, the sdist's upload")
    return dataclasses.replace(ctx, exclude_newer=when)


def _ca_file(ctx: BuildContext) -> str | None:
    settings = ctx.container.host_settings
    return CONTAINER_CA_PATH if settings is not None and settings.ca_bundle else None


def attempt_with_room(
    ctx: BuildContext, sched: Scheduler
) -> tuple[BuildContext, tuple[Environment, dict[str, float]] | StepFailed]:
    """attempt(), and once more with every file on disk, in a container of the spec's own, when
    it failed for want of room in memory: the context it ended with, and its result or why it
    failed. Not a round of discovery: nothing new is installed."""
    try:
        return ctx, attempt(ctx, sched)
    except StepFailed as failure:
        if not (ctx.container.in_memory and out_of_room(ctx.log.round)):
            return ctx, failure
    ctx.log.heading(
        f"the build filled the room it had in memory ({', '.join(ctx.container.in_memory)}): "
        "building it again with its files on disk"
    )
    paths = ctx.paths
    # What filled the memory goes now, not when the spec's build ends: other builds share it.
    ctx.container.output(["rm", "-rf", paths.src, paths.out, paths.env, paths.home], check=False)
    ctx = _restarted(ctx, container=sched.isolated(on_disk=True), own_container=True)
    ctx.log.new_round()
    try:
        return ctx, attempt(ctx, sched)
    except StepFailed as failure:
        return ctx, failure


def _restarted(ctx: BuildContext, **changes: Any) -> BuildContext:
    """The context of another attempt: the whole budget again, the last one's folders to go."""
    paths = ctx.paths
    return dataclasses.replace(
        ctx, budget=Budget(ctx.budget.total), stale=(paths.src, paths.out, paths.env), **changes
    )


def out_of_room(lines: Sequence[str]) -> bool:
    """Whether a build's output says a file system it wrote to was full."""
    return any(_NO_ROOM in line for line in lines)


def build_rounds(
    ctx: BuildContext, sched: Scheduler
) -> tuple[BuildContext, Environment, dict[str, float], int]:
    """Build attempts until one passes, at most discover.ROUNDS: each from a fresh extraction,
    in the spec's own container once it installs anything, with what the last one lacked."""
    if (ctx.packages or ctx.wanted) and not ctx.own_container:
        ctx = dataclasses.replace(ctx, container=sched.isolated(), own_container=True)
    asked: set[Missing] = set()
    if ctx.wanted and not ctx.found:
        ctx = _find_wanted(ctx, sched, asked)
    # What passed before a richer attempt was tried, to build again should that one fail.
    passed: BuildContext | None = None
    for number in range(1, discover.ROUNDS + 1):
        if number > 1:
            installing = ", ".join(c.package for c in ctx.found) or "-"
            ctx.log.heading(f"round {number} of at most {discover.ROUNDS}: found {installing}")
            ctx = _restarted(ctx)
        ctx.log.new_round()
        ctx, outcome = attempt_with_room(ctx, sched)
        if isinstance(outcome, StepFailed):
            failure = outcome
            if passed is not None:
                # In a container without what the richer attempt installed.
                ctx.log.heading("discovery: that fails; building again as it passed before")
                ctx = dataclasses.replace(passed, container=sched.isolated(), own_container=True)
                passed = None
                continue
            if number == discover.ROUNDS:
                raise failure
            following = _next_round(ctx, sched, failure, asked) if ctx.discover else None
            following = following or _release_day(ctx, failure)
            if following is None:
                raise failure
            ctx = following
            continue
        env, durations = outcome
        # A richer attempt needs a round for itself and one to build again should it fail. It
        # is tried once: what it looked up is in `asked`, so the same log finds nothing new.
        if passed is None and number <= discover.ROUNDS - 2:
            richer = _richer_round(ctx, sched, asked)
            if richer is not None:
                ctx, passed = richer, ctx
                continue
        if ctx.exclude_newer and not ctx.pinned:
            pins = tuple(f"{name}=={version}" for name, version in sorted(env.contents.items()))
            ctx.log.line(f"the release-day build requirements worked: {', '.join(pins)}")
            ctx = dataclasses.replace(ctx, pinned=pins)
        return ctx, env, durations, number
    raise AssertionError("unreachable: the last round raises")  # pragma: no cover


def discovery_record(ctx: BuildContext, rounds: int) -> dict[str, Any]:
    """What discovery did, for the provenance record."""
    return {
        "enabled": ctx.discover,
        "rounds": rounds,
        "installed": [c.package for c in ctx.found],
        "build_requirements_as_of": ctx.exclude_newer,
        "pinned": list(ctx.pinned),
        "choices": [
            {
                "missing": str(c.missing),
                "package": c.package,
                "why": c.why,
                "of": list(c.candidates),
            }
            for c in ctx.found
        ],
    }


def build_one(ctx: BuildContext, sched: Scheduler, staging: Path) -> Built:
    """Build ctx.spec on ctx.target; the wheel is left in `staging`, with its record."""
    started_at = now()
    ctx.log.heading(
        f"{ctx.label} on {ctx.target.unit} ({ctx.facts.image} {ctx.facts.image_id[:19]}), "
        f"Python {ctx.facts.pythons[ctx.python.version].version}, wheelfarm {__version__}"
    )
    if ctx.nice:
        ctx.log.line("(a short build beside longer ones: its steps run at a lower CPU priority)")
    ctx, env, durations, rounds = build_rounds(ctx, sched)
    wheel = collect_wheel(ctx, staging)
    analysis = None
    if not wheel.name.endswith("-any.whl"):
        sched.status("analysing ELF files")
        analysis = analyse_elf(ctx, wheel.name)
    sched.status("retagging")
    retagged = retag_for_image(ctx, wheel, analysis, staging)
    check_wheel(retagged.wheel)
    recipe = ctx.effective_recipe
    key = ctx.key
    if ctx.found or ctx.pinned:
        key = cache_key(
            ctx.facts.image_id,
            ctx.source,
            recipe,
            ctx.target,
            tag_set=ctx.tag_set,
            python=ctx.python.version,
            installer=ctx.installer,
        )
    record = provenance.record(
        provenance.Inputs(
            spec=ctx.spec,
            source=ctx.source,
            target=ctx.target,
            recipe=recipe,
            facts=ctx.facts,
            python=ctx.python.version,
            tag_set=ctx.tag_set,
            build_env=dict(ctx.env),
            key=key,
            log=ctx.log.relative,
        ),
        provenance.Result(
            wheel=retagged.wheel,
            platform_tag=retagged.platform_tag,
            pure=retagged.pure,
            analysis=retagged.analysis,
            build_requires=env.contents,
            durations=durations,
            started_at=started_at,
            finished_at=now(),
        ),
    )
    record["discovery"] = discovery_record(ctx, rounds)
    return Built(retagged.wheel, record, retagged, durations, key, ctx.found, ctx.paths, ctx.pinned)


@contextlib.contextmanager
def opened_log(wheelhouse: Path, source: Source, target: Target) -> Iterator[BuildLog]:
    """The build's log, moved into place when the block ends; a StepFailed raised in the block
    names it."""
    log = BuildLog(wheelhouse, f"{source.name}-{source.version or 'dev'}-{target.unit}.log")
    try:
        yield log
    except StepFailed as exc:
        exc.log = log.relative
        raise
    finally:
        log.close()
