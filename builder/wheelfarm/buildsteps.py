"""One spec's build on one target, as a script of small named steps over a typed context.

`build_one` reads top to bottom like the build itself:

  prepare (extract the sdist, make the isolated build environment) while the recipe's system
  packages install → the backend's own requirements → compile (in a build slot) → copy the
  wheel out → analyse its ELF files → retag it for the image → check it → its provenance record.

Each step is a function of a `BuildContext` (container, paths, environment, log, recipe, budget)
that returns a typed result or raises `StepFailed`. Where a step waits, runs beside another or
takes a slot is not decided here: `build_one` asks a `Scheduler` (buildrun.py decides), so the
steps are tested against a fake container with no threads (tests/unit/test_build_steps_replay.py).

Inside the container everything lives under /wf (a scratch volume): the source at the fixed path
/wf/src/<top> (the same sdist always builds at the same path), its isolated environment at
/wf/env/<top>, the wheel in /wf/out/<key>. The in-container helpers are files under data/."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from wheel.wheelfile import WheelFile

from wheelfarm import __version__, cache, elfdeps, pkgmgr, provenance, retag, runner
from wheelfarm.container import TIMED_OUT
from wheelfarm.errors import WheelfarmError
from wheelfarm.fetch import Source
from wheelfarm.hostenv import CONTAINER_CA_PATH, HostSettings
from wheelfarm.imagefacts import ImageFacts
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
DATA = Path(__file__).parent / "data"
# The in-container helpers, copied into TOOLS when the container starts.
STEPS_SCRIPT = DATA / "pep517_steps.py"
EXTRACT_SCRIPT = DATA / "extract_sdist.py"
# The lines pep517_steps.py reports the isolated environment's contents and path on, and what
# the backend asked for.
STEPS_ENV_LINE = "wheelfarm-build-env: "
STEPS_ENV_PATH_LINE = "wheelfarm-build-env-path: "
STEPS_REQUIRES_LINE = "wheelfarm-backend-requires: "
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
    """One step of one spec's build failed; the message is the reason shown in the summary."""

    def __init__(self, message: str, hint: str | None = None, *, log: str | None = None) -> None:
        super().__init__(message, hint)
        self.log = log  # the build log, relative to the wheelhouse, once it is closed


class Exec(runner.Runs, Protocol):
    """What the steps need of a container (container.Container; a replaying fake in tests)."""

    @property
    def host_settings(self) -> HostSettings | None: ...

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


# ---------------------------------------------------------------- the context


class BuildLog(runner.StepLog):
    """One log per spec and target, with the time of each step, that also keeps the first
    compiler-style "error:" lines for the summary."""

    def __init__(self, wheelhouse: Path, name: str) -> None:
        super().__init__(wheelhouse, name, clock=True)
        self.errors: list[str] = []

    def line(self, text: str) -> None:
        super().line(text)
        if len(self.errors) < 3 and _COMPILER_ERROR.search(text):
            self.errors.append(text.strip())

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

    def failure(self, what: str, code: int) -> StepFailed:
        last = self.reason()
        return StepFailed(f"{what}: exit {code}" + (f" ({last})" if last else ""))


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

    @property
    def label(self) -> str:
        return f"{self.source.name} {self.source.version or ''}".strip()

    @property
    def python_argv(self) -> list[str]:
        return [*(NICE if self.nice else ()), f"{self.python.build_venv}/bin/python"]

    @property
    def packages(self) -> tuple[str, ...]:
        return self.recipe.packages_for(self.target)

    def driver(self, step: str, env: str | None = None, *extra: str) -> list[str]:
        """The PEP 517 driver's command line for one step."""
        argv = [*self.python_argv, self.paths.steps, self.paths.src, self.paths.envs]
        argv += ["--installer", self.installer, "--env", env or self.paths.env]
        if step == "wheel":
            argv += ["--out", self.paths.out]
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
        recipe_digest=recipe.build_digest(target),
        rules=provenance.rules_applied(tag_set),
        build_env=build_env(source, recipe, target, installer),
        python=python,
        arch=target.arch,
    )


# ---------------------------------------------------------------- results of the steps


class Buffer:
    """A log for steps that run beside another (their lines would interleave): kept, then
    written into the build's log in one piece."""

    def __init__(self) -> None:
        self.entries: list[tuple[bool, str]] = []

    def heading(self, text: str) -> None:
        self.entries.append((True, text))

    def line(self, text: str) -> None:
        self.entries.append((False, text))

    def into(self, log: BuildLog) -> None:
        for is_heading, text in self.entries:
            (log.heading if is_heading else log.line)(text)


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


# ---------------------------------------------------------------- the steps


def run_step(
    ctx: BuildContext,
    sink: Sink,
    argv: Sequence[str],
    what: str,
    *,
    project_code: bool,
) -> tuple[int, list[str]]:
    """One exec of the PEP 517 driver within the budget, its output into `sink` under the heading
    `what`. The project's own code (its backend's hooks) runs as the unprivileged BUILDER, who
    can write only to its source, output and home folders: never to a cache or to an environment
    another build uses. The installing steps run as root with the installer's settings."""
    env = dict(ctx.env) if project_code else {**ctx.env, **ctx.installer_env}
    sink.heading(what)
    lines: list[str] = []

    def both(line: str) -> None:
        lines.append(line)
        sink.line(line)

    began = time.monotonic()
    code = ctx.container.run(
        argv,
        env=env,
        workdir=ctx.paths.src,
        on_output=both,
        timeout=ctx.budget.left(),
        user=BUILDER if project_code else "",
    )
    ctx.budget.spend(time.monotonic() - began)
    return code, lines


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
    packages = ctx.packages
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
    """The backend's build_wheel, as BUILDER, in a build slot; returns how long it took."""

    def waiting() -> None:
        sched.status("waiting for a free build slot (--jobs)")
        ctx.log.heading("waiting for a free build slot (--jobs)")

    with sched.build_slot(waiting):
        sched.status("building")
        sched.check()
        began = time.monotonic()
        code, _ = run_step(
            ctx, ctx.log, ctx.driver("wheel", env.path), "build the wheel", project_code=True
        )
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


# ---------------------------------------------------------------- the script


def build_one(ctx: BuildContext, sched: Scheduler, staging: Path) -> Built:
    """Build ctx.spec on ctx.target; the wheel is left in `staging`, with its record."""
    started_at = now()
    ctx.log.heading(
        f"{ctx.label} on {ctx.target.unit} ({ctx.facts.image} {ctx.facts.image_id[:19]}), "
        f"Python {ctx.facts.pythons[ctx.python.version].version}, wheelfarm {__version__}"
    )
    if ctx.nice:
        ctx.log.line("(a short build beside longer ones: its steps run at a lower CPU priority)")
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
    env = record_prepared(ctx, prepared)
    if ctx.packages:
        env = backend_requirements(ctx, sched, env)
    durations = {"environment": round(ctx.budget.spent, 2)}
    durations["compile"] = compile_wheel(ctx, sched, env)
    wheel = collect_wheel(ctx, staging)
    analysis = None
    if not wheel.name.endswith("-any.whl"):
        sched.status("analysing ELF files")
        analysis = analyse_elf(ctx, wheel.name)
    sched.status("retagging")
    retagged = retag_for_image(ctx, wheel, analysis, staging)
    check_wheel(retagged.wheel)
    record = provenance.record(
        provenance.Inputs(
            spec=ctx.spec,
            source=ctx.source,
            target=ctx.target,
            recipe=ctx.recipe,
            facts=ctx.facts,
            python=ctx.python.version,
            tag_set=ctx.tag_set,
            build_env=dict(ctx.env),
            key=ctx.key,
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
    return Built(retagged.wheel, record, retagged, durations)


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
