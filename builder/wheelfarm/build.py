"""`wheelfarm build`: specs → plan → sources on the host → one long-lived container per target,
in parallel → distro-tagged wheels with Requires-External and a provenance record each → (unless
--no-verify) their verification in sibling images.

This module checks the inputs (everything that can fail before a container starts), fetches the
sources and hands the run to the scheduling layer (buildrun.py), which runs each spec's steps
(buildsteps.py) on each target. A build whose key (cache.build_key) is already cached starts no
container: the wheel is put back (or found already) in the wheelhouse and reported up to date."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from wheelfarm import (
    buildrun,
    cache,
    container,
    external,
    fetch,
    fsutil,
    images,
    plan,
    recipes,
    rules,
    runner,
    verify,
    verifyplan,
)
from wheelfarm.buildrun import BuildRun, Limits, PureBuild, SpecWork, TargetWorker
from wheelfarm.config import Settings
from wheelfarm.errors import BadInput, ImageMissing, WheelfarmError
from wheelfarm.fetch import Source
from wheelfarm.reporter import Reporter
from wheelfarm.targets import Target
from wheelfarm.wheelhouse import Outcome, Wheelhouse

__all__ = ["Options", "Outcome", "Report", "run"]
LOGS_DIR = runner.LOGS


@dataclass(frozen=True)
class Report:
    wheelhouse: Path
    outcomes: tuple[Outcome, ...]
    seconds: float
    containers_started: int
    # Engines of their own that stopped answering mid-run (address -> arch): the other
    # architectures finished and placed their wheels; the command then exits 3 naming these.
    lost_engines: tuple[tuple[str, str], ...] = ()

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
            "lost_engines": [{"engine": e, "arch": a} for e, a in self.lost_engines],
        }


@dataclass(frozen=True)
class Options:
    """What the build command was asked, resolved once (config.Settings + the build flags)."""

    settings: Settings
    json_output: bool = False
    timeout: float | None = None
    keep_on_failure: bool = False
    force: bool = False
    installer: str = "uv"  # what makes the isolated build environments: "uv" or "pip"

    @property
    def limits(self) -> Limits:
        return Limits(
            rules=tuple(self.settings.rules),
            timeout=self.timeout,
            keep_on_failure=self.keep_on_failure,
            force=self.force,
            installer=self.installer,
            discover=self.settings.discover,
            scratch_memory=self.settings.scratch_memory,
        )


def _image_ids(targets: Sequence[Target], requested: bool) -> dict[str, str]:
    found: dict[str, str] = {}
    missing: list[Target] = []
    for target in targets:
        images.adopt_legacy(target, [target.build_image])
        image = container.image_id(target.build_image)
        if image is None:
            missing.append(target)
        else:
            found[target.unit] = image
    if missing and requested:
        commands = "; ".join(images.make_command(t) for t in missing)
        raise ImageMissing(
            "build image missing for "
            + ", ".join(f"{t.name} {t.arch} ({t.build_image})" for t in missing),
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
    versions = sorted({p.version for t in targets for p in t.pythons}, key=Version)
    return ", ".join(versions)


@dataclass(frozen=True)
class Planned:
    """What the run builds, on which images, and what it leaves out before any container."""

    jobs: tuple[plan.BuildJob, ...]
    image_ids: dict[str, str]
    skips: tuple[plan.Skip, ...] = ()


def _targets(settings: Settings) -> list[Target] | None:
    """The targets named (unknown ones and ones without the asked Python: exit 2, with or
    without an engine); None for "every target whose build image is present"."""
    catalogue, python = settings.catalogue, settings.python
    if settings.targets:
        chosen = plan.select_targets(settings.targets, (), python, catalogue)  # unknown: exit 2
        for target in chosen:
            target.python_for(python)  # a target without that Python: exit 2
        return chosen
    if python is not None and not any(p.version == python for t in catalogue for p in t.pythons):
        raise BadInput(
            f"no target offers Python {python}",
            hint=f"the targets offer Python {_offered(catalogue)}",
        )
    return None


def _present_targets(settings: Settings) -> tuple[list[Target], dict[str, str]]:
    catalogue, python = settings.catalogue, settings.python
    image_ids = _image_ids(catalogue, requested=False)
    chosen = plan.select_targets((), image_ids, python, catalogue)
    present = [t for t in catalogue if t.unit in image_ids]
    if not chosen and python is not None and present:
        raise BadInput(
            f"no target whose build image is present offers Python {python}",
            hint=f"the present targets ({', '.join(t.unit for t in present)}) offer Python "
            f"{_offered(present)}; or name a target with --target",
        )
    if not chosen:
        debian = [t for t in catalogue if t.can_bootstrap]
        raise ImageMissing(
            "no target's build image is present",
            hint="make one, e.g.: " + "; ".join(images.make_command(t) for t in debian[:3]),
        )
    return chosen, image_ids


def _prepare(options: Options, reporter: Reporter) -> Planned:
    """Everything that can fail before a container starts: specs, recipes, rules, the wheelhouse,
    target names and Pythons (exit 2, with or without an engine), then engine and images; and
    which specs a target's Python cannot take (Requires-Python from the index, markers)."""
    settings = options.settings
    specs = plan.parse_specs(settings.specs, settings.requirements)
    for spec in specs:
        recipes.load(spec.name, settings.recipes, shipped=settings.shipped_recipes)
    rules.image_sources(settings.rules)  # a malformed --rules file fails now, exit 2
    check_wheelhouse(settings.wheelhouse)
    named = _targets(settings)
    container.check_engine()
    chosen, image_ids = (named, {}) if named is not None else _present_targets(settings)
    found = fetch.requires_pythons(specs, wheelhouse=settings.wheelhouse)
    for spec, why in found.unknown:
        reporter.warn(f"{spec.requirement}: its Requires-Python is unknown ({why}); built anyway")
    skips = plan.skips(specs, chosen, settings.python, found.declared)
    jobs = plan.build_plan(specs, chosen, settings.python, found.declared)
    if named is not None:
        # Only the targets with something to build need their image.
        image_ids = _image_ids([job.target for job in jobs], requested=True)
    images.check_runnable(job.target for job in jobs)
    return Planned(tuple(jobs), image_ids, tuple(skips))


def _late_skips(planned: Planned, sources: dict[buildrun.SpecKey, Source]) -> Planned:
    """The sdist's own metadata may declare a Requires-Python its index page did not: those
    pairs are left out too, still before any container starts."""
    jobs: list[plan.BuildJob] = []
    late: list[plan.Skip] = []
    for job in planned.jobs:
        kept = []
        for spec in job.specs:
            declared = sources[spec.key].requires_python
            reason = plan.skip_reason(spec, job.target, job.python, declared)
            if reason is None:
                kept.append(spec)
            else:
                late.append(plan.Skip(spec, job.target, job.python, reason))
        if kept:
            jobs.append(plan.BuildJob(job.target, job.python, tuple(kept)))
    return Planned(tuple(jobs), planned.image_ids, planned.skips + tuple(late))


def _skipped(skips: Sequence[plan.Skip]) -> list[Outcome]:
    return [
        Outcome(
            spec=s.spec.requirement,
            target=s.target.name,
            arch=s.target.arch,
            status="skipped",
            note=s.reason,
        )
        for s in skips
    ]


def _fetch_all(jobs: Sequence[plan.BuildJob], wheelhouse: Path) -> dict[buildrun.SpecKey, Source]:
    specs: dict[buildrun.SpecKey, plan.Spec] = {}
    for job in jobs:
        for spec in job.specs:
            specs.setdefault(spec.key, spec)
    sources: dict[buildrun.SpecKey, Source] = {}
    with ThreadPoolExecutor(max_workers=min(4, len(specs))) as pool:
        futures = {key: pool.submit(fetch.fetch, spec, wheelhouse) for key, spec in specs.items()}
        for key, future in futures.items():
            sources[key] = future.result()
    return sources


def run(options: Options, reporter: Reporter) -> Report:
    """Build every job; never raises for a failed build (the report says), only for what stops
    the whole run (bad input, no engine, a missing image, Ctrl-C)."""
    began = time.monotonic()
    planned = _prepare(options, reporter)
    wheelhouse = options.settings.wheelhouse.resolve()
    try:
        wheelhouse.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(
            f"cannot make the wheelhouse {wheelhouse}: {exc.strerror or exc}",
            hint="pass --wheelhouse DIR naming a directory you can write to",
        ) from None
    for note in runner.note_host_settings():
        reporter.note(note)
    with runner.sigterm_as_interrupt():
        try:
            return _run(options, reporter, planned, wheelhouse=wheelhouse, began=began)
        except KeyboardInterrupt:
            reporter.warn("interrupted: every build container was removed, nothing partial kept")
            raise
        finally:
            _tidy(wheelhouse)


def _spec_work(
    options: Options, jobs: Sequence[plan.BuildJob], sources: dict[buildrun.SpecKey, Source]
) -> dict[buildrun.SpecKey, SpecWork]:
    """Each spec's source and recipe; a spec predicted pure is built by the first target that
    has it."""
    owners: dict[buildrun.SpecKey, str] = {}
    for job in jobs:
        for spec in job.specs:
            if sources[spec.key].pure:
                owners.setdefault(spec.key, job.target.unit)
    settings = options.settings
    table = external.mappings(settings.external_mappings)
    work = {}
    for key, source in sources.items():
        recipe = recipes.load(source.name, settings.recipes, shipped=settings.shipped_recipes)
        mapped = external.map_external(external.read(source.path, source.top), table)
        work[key] = SpecWork(
            source=source,
            recipe=external.apply(recipe, mapped),
            pure=PureBuild(owners[key]) if key in owners else None,
            find=mapped.find,
        )
    return work


def _run(
    options: Options, reporter: Reporter, planned: Planned, *, wheelhouse: Path, began: float
) -> Report:
    sources = _fetch_all(planned.jobs, wheelhouse) if planned.jobs else {}
    planned = _late_skips(planned, sources)
    skipped = _skipped(planned.skips)
    if not planned.jobs:
        return Report(wheelhouse, tuple(skipped), time.monotonic() - began, 0)
    jobs, image_ids = planned.jobs, planned.image_ids
    names = [job.target.unit for job in jobs]
    jobs_at_once = max(1, options.settings.jobs or default_jobs())
    expected = _expected_costs(jobs, sources)
    with reporter.board(names) as board:
        state = BuildRun(
            limits=options.limits,
            reporter=reporter,
            wheelhouse=Wheelhouse(wheelhouse, names),
            work=_spec_work(options, jobs, sources),
            image_ids=image_ids,
            board=board,
            order=names,
            jobs=jobs_at_once,
            slots=runner.Slots(jobs_at_once),
            expected=expected,
            background=plan.in_background(expected),
            cores=os.cpu_count() or 1,
            unfinished=sum(len(job.specs) for job in jobs),
        )
        workers = [TargetWorker(state, job) for job in jobs]
        done = runner.run_parallel(state, len(workers), [w.work for w in workers])
    if state.compile_times:
        cache.store_compile_times(state.compile_times)
    outcomes = tuple(outcome for outcomes in done for outcome in outcomes)
    return Report(
        wheelhouse,
        (*outcomes, *skipped),
        time.monotonic() - began,
        state.started,
        tuple(state.lost.items()),
    )


def default_jobs() -> int:
    """One build slot per core, and one more. A slot is held only while the backend compiles
    (the isolated environment and its downloads are made before), so each keeps a core busy; the
    extra one is for the end of a run, where the last long compile would otherwise wait for a
    slot and then run alone while the other cores idle. Time-sharing the cores instead: 2 cores,
    lxml 5.3.0 cold on debian-11/12/13 211 s → 192 s, benchmarks/build_matrix.py's cold run
    2.8-3.3 s (about 9%) less in three paired runs; the same CPU time, the same wheels byte for
    byte. What it costs is one more compile's memory."""
    return (os.cpu_count() or 1) + 1


def _expected_costs(
    jobs: Sequence[plan.BuildJob], sources: dict[buildrun.SpecKey, Source]
) -> dict[plan.CostKey, float]:
    """Each (project, target)'s expected compile time, from the times earlier runs recorded and
    the sdists' sizes."""
    sizes: dict[plan.CostKey, int] = {}
    for job in jobs:
        for spec in job.specs:
            source = sources[spec.key]
            with contextlib.suppress(OSError):
                sizes[(source.name, job.target.unit)] = source.path.stat().st_size
    return plan.expected_compile_costs(sizes, cache.compile_times())


def _tidy(wheelhouse: Path) -> None:
    """Remove the temp area if nothing else is using it."""
    with contextlib.suppress(OSError):
        (wheelhouse / runner.META / "tmp").rmdir()


# ---------------------------------------------------------------- build, then verify


@dataclass(frozen=True)
class Result:
    """What `wheelfarm build` did: the builds, and (unless --no-verify) their verification."""

    report: Report
    verified: verifyplan.Report | None = None  # the cells of the wheels this build verified
    verification: dict[str, Any] | None = None  # that, as JSON, with the reports' paths
    verify_error: WheelfarmError | None = None  # verification could not run at all

    @property
    def ok(self) -> bool:
        verified_ok = self.verified is None or not self.verified.failed
        return not self.report.failed and self.verify_error is None and verified_ok


def build_and_verify(options: Options, reporter: Reporter, *, verify_wheels: bool) -> Result:
    """`wheelfarm build`: run the builds, then (unless verify_wheels is False) verify what they
    built on the targets they built for.

    The reports written (.wheelfarm/verify.json, verify.md) cover every wheel of the wheelhouse
    on those targets: the wheels just built are verified, the others show their cached result
    (no container), or `n/a: not run` when none is cached."""
    built = run(options, reporter)
    wheels = tuple(dict.fromkeys(built.wheels))
    if not verify_wheels or not wheels or built.lost_engines:
        # An engine lost mid-run would fail the verification of every architecture again.
        return Result(built)
    request = verify.Request(
        wheelhouse=built.wheelhouse,
        wheels=None,
        targets=tuple(dict.fromkeys(o.target for o in built.outcomes)),
        settings=options.settings,
        run_only=frozenset(w.name for w in wheels),
    )
    try:
        whole = verify.execute(request, reporter)
    except WheelfarmError as exc:
        return Result(built, None, {"ok": False, "error": exc.message, "hint": exc.hint}, exc)
    json_path, md_path = verify.write_reports(whole)
    mine = whole.only(request.run_only or frozenset())
    verification = {
        **mine.as_json(),
        "reports": {"json": str(json_path), "markdown": str(md_path)},
    }
    return Result(built, mine, verification)
