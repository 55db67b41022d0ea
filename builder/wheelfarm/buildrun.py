"""Scheduling of a build run: every target at once, each in a thread and a container of its own,
its specs' steps (buildsteps.py) overlapping where they can.

- A target's container starts on first use: a target whose every wheel is cached starts none.
- Each target has up to --jobs + 1 specs in hand: one's packages install and build environment
  fills while another compiles, so even a single target keeps every build slot busy.
- --jobs build slots, shared by every target, bound the compiles; a freed slot goes to the
  waiting compile expected to take longest (plan.expected_compile_costs: earlier runs' times,
  else the sdist's size), then by plan order. Builds expected to take under half the longest run
  niced (plan.in_background), so the long builds' chains go first.
- The package manager of a container installs for one spec at a time. A spec that installs
  system packages (recipe, [external] or discovery) builds in a container of its own, started
  for it and removed after it (Scheduler.isolated): the target's long-lived container never gets
  a package, so no spec's wheel depends on what another installed.
- A project predicted pure Python is built once, by the first target that has it; the others
  wait for that result and build it themselves only if it came out platform-specific."""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from wheelfarm import (
    buildsteps,
    cache,
    elfdeps,
    foundrecipes,
    hostenv,
    imagefacts,
    plan,
    runner,
    tags,
    uvtool,
)
from wheelfarm.container import Container, address_for, engine_arch, is_remote, lost_engine
from wheelfarm.errors import WheelfarmError
from wheelfarm.fetch import Source
from wheelfarm.imagefacts import ImageFacts
from wheelfarm.needs import Missing
from wheelfarm.recipes import Recipe
from wheelfarm.reporter import Board, Reporter
from wheelfarm.targets import Target
from wheelfarm.wheelhouse import Outcome, Wheelhouse, placement_note

_T = TypeVar("_T")


@functools.cache
def _engine_arch(image: str) -> str:
    """The architecture of the engine that runs `image`, as image facts name it: an image of
    another architecture runs emulated there."""
    return tags.normalise_arch(engine_arch(image))


SpecKey = tuple[str, str, str]  # plan.Spec.key: what makes two specs the same build


@dataclass(frozen=True)
class Limits:
    """What the build command was asked that the scheduling and the steps obey."""

    rules: tuple[Path, ...]
    timeout: float | None = None
    keep_on_failure: bool = False
    force: bool = False
    installer: str = "uv"  # what makes the build environments: "uv" or "pip"
    discover: bool = True  # look up and install what a failed build lacked (--no-discover)
    scratch_memory: int | None = None  # MiB per in-memory scratch folder (--scratch-memory)


@dataclass
class PureBuild:
    """A spec predicted pure Python: its owner target builds it; the others wait for `done`."""

    owner: str  # the unit (target-arch)
    done: threading.Event = field(default_factory=threading.Event)
    platform_specific: bool = False


@dataclass(frozen=True)
class SpecWork:
    """What every target knows about one spec before building it."""

    source: Source
    recipe: Recipe  # with the packages its sdist's [external] table maps to
    pure: PureBuild | None = None
    find: tuple[Missing, ...] = ()  # what [external] names to find (compilers, tools)


@dataclass(kw_only=True)
class BuildRun(runner.RunState):
    """Shared by every target's thread of one run."""

    limits: Limits
    reporter: Reporter
    wheelhouse: Wheelhouse
    work: dict[SpecKey, SpecWork]
    image_ids: dict[str, str]
    board: Board
    order: list[str]  # units (target-arch) in plan order
    jobs: int = 1  # --jobs: compiles at once across every target
    slots: runner.Slots = field(default_factory=lambda: runner.Slots(1))
    expected: dict[plan.CostKey, float] = field(default_factory=dict)
    background: frozenset[plan.CostKey] = frozenset()
    compile_times: dict[plan.CostKey, float] = field(default_factory=dict)
    cores: int = 1  # this machine's
    unfinished: int = 0  # the run's builds (spec, target) not yet done, cached ones included

    said: set[str] = field(default_factory=set)
    # Engines of their own (--engine) that stopped answering during the run: address -> arch.
    lost: dict[str, str] = field(default_factory=dict)

    def warn_once(self, message: str) -> None:
        with self.lock:
            if message in self.said:
                return
            self.said.add(message)
        self.reporter.warn(message)

    def installer(self, arch: str) -> str:
        """The installer for an image of this architecture: pip where uv has no build."""
        if self.limits.installer == "uv" and not uvtool.available(arch):
            self.warn_once(f"uv has no build for {arch}: its build environments are made by pip")
            return "pip"
        return self.limits.installer

    def finished_one(self) -> None:
        with self.lock:
            self.unfinished -= 1

    def compile_cores(self, remote: bool) -> int:
        """plan.compile_cores for a compile starting now; on another machine's engine
        (--engine), whose cores are not this machine's, one."""
        if remote:
            return 1
        with self.lock:
            return plan.compile_cores(self.cores, self.jobs, self.unfinished)

    def note_compile(self, project: str, target: str, seconds: float) -> None:
        with self.lock:
            self.compile_times[(project, target)] = seconds


class _KeepContainer(Exception):
    """Raised inside a container block so Container keeps it running (--keep-on-failure)."""


class _TargetBox:
    """A target's container, started on first use, with the facts of its image and the folders
    of finished builds the next extraction removes. Several specs may ask at once."""

    def __init__(self, run: BuildRun, target: Target, stack: contextlib.ExitStack) -> None:
        self._run = run
        self._target = target
        self._stack = stack
        self.container: Container | None = None
        self.tools: dict[str, str] = {}
        self.facts: ImageFacts | None = None
        self.leftovers: list[str] = []
        self.lock = threading.Lock()
        # Another machine's engine (--engine): its cores are not this machine's.
        self.remote = is_remote(address_for(target.build_image))

    def get(self) -> Container:
        with self.lock:
            if self.container is None:
                self.container = self._start()
            return self.container

    def _start(self) -> Container:
        c, self.tools = self.open(self._stack, f"build {self._target.unit}")
        return c

    def open(
        self, stack: contextlib.ExitStack, job: str, *, on_disk: bool = False
    ) -> tuple[Container, dict[str, str]]:
        """A container of the target's build image, entered in `stack`, with the tools in it:
        the target's long-lived one, or (Scheduler.isolated) one spec's own; what builds write
        most is held in memory unless `on_disk`."""
        self._run.check()
        self._run.board.step(self._target.unit, "starting container")
        pip_wheels = cache.pip_wheels_dir(self._target.unit)
        pip_wheels.mkdir(parents=True, exist_ok=True)
        mounts = {
            # pip's downloads are shared by every target; the wheels pip builds locally (build
            # dependencies from sdists) stay with the target that built them.
            str(cache.pip_dir()): buildsteps.PIP_CACHE,
            str(pip_wheels): f"{buildsteps.PIP_CACHE}/wheels",
        }
        readonly = {}
        arch = self._target.arch
        if self._run.installer(arch) == "uv":
            # uv's cache holds wheels it built from sdists too: one per target, never shared.
            uv_cache = cache.uv_dir(self._target.unit)
            uv_cache.mkdir(parents=True, exist_ok=True)
            mounts[str(uv_cache)] = buildsteps.UV_CACHE
            # The image's own architecture's build, downloaded on the host, never in here.
            readonly[str(uvtool.binary_dir(arch))] = uvtool.MOUNT
        c = Container(
            self._target.build_image,
            env={"PIP_CACHE_DIR": buildsteps.PIP_CACHE},
            mounts=mounts,
            readonly=readonly,
            # An index on the host's loopback (a local mirror) is reached on the host's network.
            host_network=hostenv.from_host().index_on_loopback,
            # Sources, build environments and object files: many small files, written ~5x
            # faster (in system time) to a volume than to the container's overlay.
            scratch=(buildsteps.WORK,),
            memory=() if on_disk else buildsteps.IN_MEMORY,
            memory_mib=self._run.limits.scratch_memory,
            keep_on_error=self._run.limits.keep_on_failure,
            labels={"org.wheelfarm.job": job},
        )
        stack.enter_context(c)
        self._run.entered(c)
        stack.callback(self._run.left, c)
        tools = {
            "probe": c.copy_in(buildsteps.DATA / elfdeps.PROBE_NAME, buildsteps.TOOLS),
            "steps": c.copy_in(buildsteps.STEPS_SCRIPT, buildsteps.TOOLS),
            "extract": c.copy_in(buildsteps.EXTRACT_SCRIPT, buildsteps.TOOLS),
            "contents": c.copy_in(buildsteps.CONTENTS_SCRIPT, buildsteps.TOOLS),
        }
        return c, tools

    def image_facts(self, python: str, need_container: bool) -> ImageFacts | None:
        """The image's facts: from the cache by image id, else read in the container."""
        with self.lock:
            if self.facts is None:
                self.facts = imagefacts.cached(self._run.image_ids[self._target.unit], [python])
        if self.facts is not None or not need_container:
            return self.facts
        c = self.get()
        with self.lock:
            if self.facts is None:
                self._run.board.step(self._target.unit, "reading the image's os-release")
                venv_python = f"{self._target.python_for(python).build_venv}/bin/python"
                image_id = self._run.image_ids[self._target.unit]
                facts = imagefacts.read(
                    c, self._target.build_image, image_id, {python: venv_python}
                )
                if facts.os_release is None or python not in facts.pythons:
                    raise buildsteps.StepFailed(
                        f"{self._target.build_image} has no os-release file"
                        if facts.os_release is None
                        else f"{venv_python} in {self._target.build_image} could not run"
                    )
                self.facts = facts
            return self.facts

    def take_leftovers(self, *mine: str) -> tuple[str, ...]:
        with self.lock:
            stale, self.leftovers = (*self.leftovers, *mine), []
            return stale

    def done_with(self, *folders: str) -> None:
        with self.lock:
            self.leftovers += folders


class _Schedule:
    """The buildsteps.Scheduler of one spec's build on one target."""

    def __init__(
        self,
        run: BuildRun,
        name: str,
        label: str,
        rank: tuple[float, ...],
        *,
        box: _TargetBox,
        stack: contextlib.ExitStack,
    ) -> None:
        self._run, self._name, self._label, self._rank = run, name, label, rank
        self._box, self._stack = box, stack
        # The target's container installs for one spec at a time; a spec's own, for it alone.
        self._packages_key = f"build {name}"
        self._on_disk = False  # once a build filled its memory, its later containers too

    def check(self) -> None:
        self._run.check()

    def beside(self, call: Callable[[], _T]) -> runner.Background[_T]:
        return runner.Background(call)

    @contextlib.contextmanager
    def packages(self) -> Iterator[None]:
        with self._run.package_lock(self._packages_key):
            yield

    def build_slot(self, waiting: Callable[[], None]) -> contextlib.AbstractContextManager[None]:
        return self._run.slots.hold(self._rank, self._run, waiting)

    def status(self, text: str) -> None:
        self._run.board.step(self._name, f"{self._label}: {text}")

    def compile_cores(self) -> int:
        return self._run.compile_cores(self._box.remote)

    def isolated(self, on_disk: bool = False) -> Container:
        self._on_disk = self._on_disk or on_disk
        job = f"build {self._name}: {self._label}"
        c, _ = self._box.open(self._stack, job, on_disk=self._on_disk)
        self._packages_key = f"build {self._name}: {self._label} {id(c)}"
        return c


def _lost_engine(run: BuildRun, target: Target, exc: BaseException) -> str | None:
    """When `exc` says the target's own engine (not this machine's) stopped answering: that
    recorded for the run, and the error to give; else None."""
    engine = address_for(target.build_image)
    if not (is_remote(engine) and lost_engine(exc)):
        return None
    with run.lock:
        run.lost[engine] = target.arch
    return f"the {target.arch} engine at {engine} stopped answering"


def _lost_engine_outcomes(
    run: BuildRun, job: plan.BuildJob, exc: Exception, done: Sequence[Outcome]
) -> list[Outcome]:
    """Every spec of the job without an outcome yet, failed for its lost engine; `exc` again
    when it is not an engine of its own that stopped answering."""
    target = job.target
    error = None if run.cancel.is_set() else _lost_engine(run, target, exc)
    if error is None:
        raise exc
    finished = {o.spec for o in done}
    return [*done] + [
        Outcome(
            spec=spec.requirement,
            target=target.name,
            arch=target.arch,
            status="failed",
            error=error,
            seconds=0.0,
        )
        for spec in job.specs
        if spec.requirement not in finished
    ]


def _write_recipe(run: BuildRun, target: Target, spec: plan.Spec, built: buildsteps.Built) -> None:
    """The recipe discovery found, merged into <wheelhouse>/.wheelfarm/recipes/."""
    if not built.found and not built.pinned:
        return
    recipe = run.work[spec.key].recipe
    with run.lock:
        path = foundrecipes.merge(run.wheelhouse.path, target, built.record, recipe, built.wheel)
    said = []
    if built.found:
        said.append(f"discovery installed {', '.join(c.package for c in built.found)}")
    if built.pinned:
        said.append("it built with its build requirements as of the sdist's upload day")
    run.reporter.note(
        f"{spec.requirement} on {target.name}: {'; '.join(said)}; its recipe is in {path}"
    )


def _recipe_of_cached(run: BuildRun, target: Target, spec: plan.Spec, key: str) -> None:
    """A wheel discovery made, put back from the cache: its recipe goes into this wheelhouse's
    written recipes too (from the cached record), as its build would have written it."""
    cached = cache.lookup(key)
    if cached is None:
        return
    recipe = run.work[spec.key].recipe
    with run.lock:
        foundrecipes.merge(run.wheelhouse.path, target, cached.provenance, recipe, cached.wheel)


def _counted(run: BuildRun, do: Callable[[plan.Spec], _T], spec: plan.Spec) -> _T:
    """`do(spec)`, then one build fewer left in the run (plan.compile_cores counts them)."""
    try:
        return do(spec)
    finally:
        run.finished_one()


class TargetWorker:
    """One target's part of the run: its specs, in its own container."""

    def __init__(self, run: BuildRun, job: plan.BuildJob) -> None:
        self.run = run
        self.job = job
        self.target = job.target
        self.python = job.python
        self.box: _TargetBox | None = None

    def work(self) -> list[Outcome]:
        name = self.target.unit
        outcomes: list[Outcome] = []
        try:
            # --keep-on-failure: raising through the container's `with` is what makes it stay.
            with contextlib.suppress(_KeepContainer), contextlib.ExitStack() as stack:
                self.box = _TargetBox(self.run, self.target, stack)
                self.run.board.step(name, "checking what is up to date")
                own, waits = self._split()
                outcomes = self._each(own, self._one)
                outcomes += [o for o in self._each(waits, self._after_owner) if o is not None]
                failed_here = not all(o.ok for o in outcomes)
                if failed_here and self.run.limits.keep_on_failure and self.box.container:
                    raise _KeepContainer
        except Exception as exc:  # the engine lost outside any one spec's build, say
            outcomes = _lost_engine_outcomes(self.run, self.job, exc, outcomes)
        self.run.board.finish(name, all(o.ok for o in outcomes), self._summary(outcomes))
        return outcomes

    def _summary(self, outcomes: Sequence[Outcome]) -> str:
        failed = sum(not o.ok for o in outcomes)
        built = sum(o.status == "built" for o in outcomes)
        fresh = len(outcomes) - failed - built
        parts = [f"{built} built"] if built else []
        parts += [f"{fresh} up to date"] if fresh else []
        parts += [f"{failed} failed"] if failed else []
        kept = self.box.container if self.box is not None else None
        if kept is not None and kept.kept:
            parts.append(
                f"container kept: {kept.enter_command} (remove it with {kept.remove_command})"
            )
        return ", ".join(parts) or "nothing to do"

    def _each(self, specs: Sequence[plan.Spec], do: Callable[[plan.Spec], _T]) -> list[_T]:
        tasks = [functools.partial(_counted, self.run, do, spec) for spec in specs]
        # One more in hand than there are slots: the next spec's environment gets ready while
        # this target's specs compile.
        return runner.run_parallel(self.run, self.run.jobs + 1, tasks)

    def _split(self) -> tuple[list[plan.Spec], list[plan.Spec]]:
        """This target's own specs (the pure ones it builds for everyone first, so that waiting
        targets wait as little as possible) and the pure ones another target builds."""
        mine_pure, mine, waits = [], [], []
        for spec in self.job.specs:
            pure = self.run.work[spec.key].pure
            if pure is None:
                mine.append(spec)
            elif pure.owner == self.target.unit:
                mine_pure.append(spec)
            else:
                waits.append(spec)
        return mine_pure + mine, waits

    def _after_owner(self, spec: plan.Spec) -> Outcome | None:
        pure = self.run.work[spec.key].pure
        assert pure is not None
        self.run.board.step(self.target.unit, f"{spec.requirement}: waiting for its pure build")
        while not pure.done.wait(0.2):
            self.run.check()
        return self._one(spec) if pure.platform_specific else None

    def _one(self, spec: plan.Spec) -> Outcome:
        started = time.monotonic()
        pure = self.run.work[spec.key].pure
        owner = pure is not None and pure.owner == self.target.unit
        outcome: Outcome | None = None
        try:
            outcome = self._cached(spec) or self._build(spec, started)
        except (runner.Cancelled, KeyboardInterrupt):
            raise
        except Exception as exc:
            if self.run.cancel.is_set():
                raise runner.Cancelled from None
            error = _lost_engine(self.run, self.target, exc) or (
                exc.message if isinstance(exc, WheelfarmError) else f"{exc!r}"
            )
            outcome = Outcome(
                spec=spec.requirement,
                target=self.target.name,
                arch=self.target.arch,
                status="failed",
                error=error,
                seconds=time.monotonic() - started,
                log=exc.log if isinstance(exc, buildsteps.StepFailed) else None,
                cause=exc.cause if isinstance(exc, buildsteps.StepFailed) else None,
            )
        finally:
            if pure is not None and owner:
                wheel = outcome.wheel if outcome is not None and outcome.ok else None
                pure.platform_specific = bool(wheel and not wheel.endswith("-any.whl"))
                pure.done.set()
        return outcome

    def _key(self, spec: plan.Spec, facts: ImageFacts, recipe: Recipe | None = None) -> str:
        work = self.run.work[spec.key]
        tag_set = facts.tag_set(list(self.run.limits.rules))
        return buildsteps.cache_key(
            facts.image_id,
            work.source,
            recipe or work.recipe,
            self.target,
            tag_set=tag_set,
            python=self.python.version,
            installer=self.run.installer(facts.arch),
        )

    def _found_before(self, base: str) -> cache.Discovered:
        """What discovery (and the release-day retry) found for this build in an earlier run
        (the cache keeps it by the key of the build without it), so a rerun neither rediscovers
        nor starts a container. With --no-discover only the recipe counts."""
        if not self.run.limits.discover:
            return cache.Discovered()
        return cache.discovered(base)

    def _cached(self, spec: plan.Spec) -> Outcome | None:
        assert self.box is not None
        if self.run.limits.force:
            return None
        facts = self.box.image_facts(self.python.version, need_container=False)
        if facts is None:
            return None
        key = base = self._key(spec, facts)
        before = self._found_before(base)
        if before.found or before.pinned:
            work = self.run.work[spec.key]
            found = (c.package for c in before.found)
            packages = tuple(dict.fromkeys((*work.recipe.packages_for(self.target), *found)))
            recipe = work.recipe.with_packages(self.target, packages)
            if before.pinned and work.source.version:
                recipe = recipe.with_constraints(f"=={work.source.version}", before.pinned)
            key = self._key(spec, facts, recipe)
        outcome = self.run.wheelhouse.restore(key, self.target, spec)
        if outcome is not None and (before.found or before.pinned):
            _recipe_of_cached(self.run, self.target, spec, key)
        return outcome

    def _context(self, spec: plan.Spec, log: buildsteps.BuildLog) -> buildsteps.BuildContext:
        assert self.box is not None
        c = self.box.get()
        facts = self.box.image_facts(self.python.version, need_container=True)
        assert facts is not None
        work = self.run.work[spec.key]
        key = self._key(spec, facts)
        paths = buildsteps.BuildPaths.of(work.source, key, self.box.tools)
        before = self._found_before(key)
        return buildsteps.BuildContext(
            container=c,
            target=self.target,
            python=self.python,
            spec=spec,
            source=work.source,
            recipe=work.recipe,
            facts=facts,
            tag_set=facts.tag_set(list(self.run.limits.rules)),
            key=key,
            paths=paths,
            env=buildsteps.build_env(
                work.source, work.recipe, self.target, self.run.installer(facts.arch)
            ),
            log=log,
            budget=buildsteps.Budget(self.run.limits.timeout),
            installer=self.run.installer(facts.arch),
            installer_env=self._installer_env(c, facts.arch),
            nice=(work.source.name, self.target.unit) in self.run.background,
            # Also frees the folders of specs done with: one exec fewer than a clean-up.
            stale=self.box.take_leftovers(paths.src, paths.out, paths.env),
            discover=self.run.limits.discover,
            found=before.found,
            pinned=before.pinned,
            emulated=facts.arch != _engine_arch(self.target.build_image),
            wanted=work.find,
        )

    def _installer_env(self, c: Container, arch: str) -> dict[str, str]:
        """What the installing steps get: uv's own index settings, its cache and binary."""
        if self.run.installer(arch) != "uv":
            return {}
        host = c.host_settings.as_env() if c.host_settings is not None else {}
        return {
            **uvtool.uv_environment(host),
            "UV_CACHE_DIR": buildsteps.UV_CACHE,
            "WHEELFARM_UV": uvtool.BINARY,
        }

    def _schedule(
        self, spec: plan.Spec, ctx: buildsteps.BuildContext, stack: contextlib.ExitStack
    ) -> _Schedule:
        assert self.box is not None
        name = self.target.unit
        rank = plan.slot_priority(
            self.run.expected.get((ctx.source.name, name), 0.0),
            self.job.specs.index(spec),
            self.run.order.index(name),
        )
        return _Schedule(self.run, name, ctx.label, rank, box=self.box, stack=stack)

    def _build(self, spec: plan.Spec, started: float) -> Outcome:
        assert self.box is not None
        source = self.run.work[spec.key].source
        stored: str | None = None
        with (
            buildsteps.opened_log(self.run.wheelhouse.path, source, self.target) as log,
            contextlib.ExitStack() as own,  # the spec's own containers (Scheduler.isolated)
        ):
            ctx = self._context(spec, log)
            staging = self.run.wheelhouse.temp_dir("build-")
            try:
                built = buildsteps.build_one(ctx, self._schedule(spec, ctx, own), staging)
                self.run.note_compile(source.name, self.target.unit, built.durations["compile"])
                cache.store(built.key, built.wheel, built.record)
                stored = built.key
                if built.found or built.pinned:
                    cache.store_discovered(ctx.key, built.found, built.pinned)
                placed = self.run.wheelhouse.place(built.wheel, built.record, self.target.unit)
                _write_recipe(self.run, self.target, spec, built)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        if stored is not None:
            # Kept with the wheel: a wheelhouse it is restored into gets the log its record names.
            cache.store_log(stored, log.final)
        # Done with its folders (a failed build keeps them, for --keep-on-failure).
        self.box.done_with(ctx.paths.src, ctx.paths.out)
        retagged = built.retagged
        return Outcome(
            spec=spec.requirement,
            target=self.target.name,
            arch=self.target.arch,
            status="built",
            wheel=built.wheel.name,
            tag=retagged.platform_tag,
            log=log.relative,
            seconds=time.monotonic() - started,
            requires_external=retagged.analysis.requires_external if retagged.analysis else (),
            note=placement_note(placed, retagged.pure),
            warnings=retagged.gaps,
        )
