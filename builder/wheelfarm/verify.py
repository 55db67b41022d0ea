"""`wheelfarm verify`: prove each wheel installs and imports where its tag says it does.

For each wheel x target: the target's accepted tags come from its RUNTIME image's own os-release
and rules file through the rules (as `wheelfarm tags` computes them), and one of the target's
Pythons must load the wheel's python/abi tags. Each applicable cell runs in a fresh container
from the runtime image (no compilers):

  install the distro packages the wheel's Requires-External names (network on)
  → stage its Python dependencies, downloaded on the host for that Python and platform or taken
    from the wheelhouse → cut the network → a fresh venv with the target's own stock pip →
  pip install --no-index of the wheel under its plain `linux_<arch>` name (what the target's
  index view serves; stock pip reads the tag from the file name only) → import the recipe's
  import names (default: the wheel's top-level modules) → the recipe's test command.

A cell's result is cached by wheel sha256 x runtime image id x recipe (verify part) x Python, so
an unchanged rerun starts no container. The wheelhouse is only read; the reports
(`.wheelfarm/verify.json`, `verify.md`, `logs/verify-*.log`) are the only files written there.

Which cells apply, their keys and their results are pure data (`verifyplan.py`); this module
runs them. `probe.py` runs the same cells while ignoring the rules, to measure which rules hold."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from wheelfarm import (
    __version__,
    cache,
    container,
    fsutil,
    hostenv,
    imagefacts,
    images,
    pkgmgr,
    recipes,
    rules,
    runner,
    targets,
    views,
)
from wheelfarm.container import Container
from wheelfarm.errors import (
    BadInput,
    EnvironmentProblem,
    ImageMissing,
    VerificationFailed,
)
from wheelfarm.imagefacts import ImageFacts
from wheelfarm.recipes import Recipe
from wheelfarm.reporter import Board, Reporter, Silent
from wheelfarm.runner import LOGS, META
from wheelfarm.targets import Target
from wheelfarm.verifyplan import (
    FAIL,
    NA,
    PASS,
    Cell,
    Job,
    Report,
    SkippedFile,
    TargetView,
    WheelInfo,
    download_platforms,
    find_wheels,
    marker_environment,
    needed_requirements,
    package_names,
    plan_cells,
    read_wheel,
    read_wheels,
    target_view,
)

if TYPE_CHECKING:
    from wheelfarm.config import Settings

REPORT_JSON = "verify.json"
REPORT_MD = "verify.md"
WORK = "/wf"
STAGE = f"{WORK}/stage"
VENV = f"{WORK}/venv"
EMPTY = f"{WORK}/empty"  # the imports' working directory: nothing there shadows the install
CONTAINER_PREFIX = "wheelfarm-verify"
# The kind of an n/a cell the build's verify step did not run (another wheel, nothing cached).
NOT_RUN = "not run"
# Quiet, non-interactive stock pip that never looks for a newer self.
PIP_ENV = {
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
    "PIP_PROGRESS_BAR": "off",
    "PIP_ROOT_USER_ACTION": "ignore",
    "PIP_NO_WARN_SCRIPT_LOCATION": "1",
    "LC_ALL": "C.UTF-8",
}
# Imports each module in turn and says which failed and why (data/import_check.py).
IMPORT_SCRIPT = Path(__file__).parent / "data" / "import_check.py"
_IMPORT_FAILED = "FAILED import "
_COMPILED_LOAD = "compiled modules load: "  # data/import_check.py's LOADS
_ERROR_WORDS = re.compile(
    r"error|failed|not found|cannot|unable|no such|refused|denied|invalid|traceback|"
    r"undefined symbol|version `",
    re.IGNORECASE,
)
_NOISE = re.compile(r"^(Traceback \(most recent call last\)|\s+File \"|\s+\^+\s*$|==> )")


def useful_lines(lines: Sequence[str], limit: int = 3) -> tuple[str, ...]:
    """The first lines of an error worth showing: an import's own verdict if there is one, else
    the last traceback line and lines that say error, failed, not found..."""
    verdicts = [ln[len(_IMPORT_FAILED) :].strip() for ln in lines if ln.startswith(_IMPORT_FAILED)]
    if verdicts:
        return tuple(f"import {v}" for v in verdicts[:limit])
    picked: list[str] = []
    for index, line in enumerate(lines):
        text = line.strip()
        if not text or _NOISE.match(line):
            continue
        after_trace = index > 0 and lines[index - 1].startswith("    ") and ":" in text
        if _ERROR_WORDS.search(text) or after_trace:
            picked.append(text[:300])
    if not picked:
        picked = [ln.strip()[:300] for ln in lines if ln.strip()][-limit:]
    # The last lines say what finally went wrong; keep the order they came in.
    return tuple(dict.fromkeys(picked[-limit:]))


# ------------------------------------------------------------------------------- one run's state


class _CellFailed(Exception):
    def __init__(
        self, step: str, lines: Sequence[str], *, hint: str | None = None, cacheable: bool = True
    ) -> None:
        super().__init__(step)
        self.step = step
        self.lines = tuple(lines)
        self.hint = hint
        # A failure to reach a package mirror or index says nothing about the wheel.
        self.cacheable = cacheable


@dataclass
class _Run(runner.RunState):
    wheelhouse: Path
    board: Board
    reporter: Reporter

    def container(
        self,
        image: str,
        target: str,
        job: str,
        *,
        network: bool,
        mounts: Mapping[str, str] | None = None,
    ) -> Container:
        self.check()
        return container.Container(
            image,
            name=f"{CONTAINER_PREFIX}-{target}-{os.urandom(4).hex()}",
            network=network,
            host_settings=network,
            labels={"org.wheelfarm.job": job},
            mounts=mounts,
            # The venv's files (the target's pip, the wheel, its dependencies, their .pyc) are
            # many: far cheaper to write in memory than in the container's layers.
            memory=(VENV,),
        )


def log_name(wheel: str, target: str) -> str:
    return f"verify-{wheel[: -len('.whl')]}-{target}.log"


# ------------------------------------------------------------------------------- target facts


def _read_facts(run: _Run, target: Target, image_id: str) -> ImageFacts:
    """What the runtime image is, from the cache by image id, else from a throwaway offline
    container (then cached): os-release, its own rules file, arch, each Python and its libc."""
    versions = [python.version for python in target.pythons]
    facts = imagefacts.cached(image_id, versions)
    if facts is not None:
        return facts
    run.board.step(target.unit, "reading the runtime image")
    c = run.container(target.runtime_image, target.unit, f"facts {target.unit}", network=False)
    with c:
        run.entered(c)
        try:
            executables = {python.version: python.executable for python in target.pythons}
            return imagefacts.read(c, target.runtime_image, image_id, executables)
        finally:
            run.left(c)


# ------------------------------------------------------------------------------- cell cache


def _cache_dir() -> Path:
    return cache.root() / "verify"


def cached_cell(key: str) -> tuple[Cell, Path | None] | None:
    entry = _cache_dir() / key
    try:
        data = json.loads((entry / "cell.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    log = entry / "cell.log"
    return Cell.from_json(data), log if log.is_file() else None


def store_cell(key: str, cell: Cell, log: Path | None) -> None:
    """Keep a cell's result and log, written to a temp directory renamed into place."""
    with fsutil.replacing_dir(_cache_dir() / key) as staging:
        (staging / "cell.json").write_text(json.dumps(cell.as_json(), indent=2) + "\n")
        if log is not None and log.is_file():
            shutil.copyfile(log, staging / "cell.log")


# ------------------------------------------------------------------------------- one cell


def require_pip() -> None:
    """Dependencies are staged with this Python's pip (`python -m pip download`); without it,
    say so before any container starts."""
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        raise EnvironmentProblem(
            f"pip is not installed for {sys.executable}: verify stages the wheels' dependencies "
            "with `python -m pip download`",
            hint=f"install it: {sys.executable} -m ensurepip --upgrade (or reinstall wheelfarm, "
            "which depends on pip)",
        )


def _needs_dependencies(job: Job) -> bool:
    return bool(
        needed_requirements(
            job.wheel.requires_dist, marker_environment(job.python, job.target.arch)
        )
    )


def _host_pip(argv: Sequence[str], log: runner.StepLog, run: _Run) -> int:
    """Run the host's pip (the host's own index, proxy and trust settings apply), streaming its
    output into the log; the process is stopped when the run is cancelled."""
    log.line("$ pip " + " ".join(argv))
    process = subprocess.Popen(
        [sys.executable, "-m", "pip", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"},
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            log.line(line.rstrip("\n"))
            if run.cancel.is_set():
                process.terminate()
        return process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise


def _stage(job: Job, stage: Path, log: runner.StepLog, run: _Run) -> list[Path]:
    """Put the wheel (under its plain name) and its Python dependencies into `stage`: from the
    wheelhouse view first, else downloaded on the host for the target's Python and platform.
    Returns the dependency files staged."""
    fsutil.link_or_copy(job.wheel.path, stage / job.wheel.plain_name)
    needed = needed_requirements(
        job.wheel.requires_dist, marker_environment(job.python, job.target.arch)
    )
    log.line(f"dependencies for {job.target.name}: {', '.join(needed) or 'none'}")
    if not needed:
        return []
    view = stage.parent / "view"
    view.mkdir()
    for path in job.view:
        if path != job.wheel.path:
            fsutil.link_or_copy(path, view / views.plain_filename(path.name))
    deps = stage.parent / "deps"
    common = [
        "download",
        "--only-binary=:all:",
        "--dest",
        str(deps),
        "--python-version",
        job.python.version,
        "--implementation",
        "cp",
        "--abi",
        job.python.cpython_tag,
        *(f"--platform={p}" for p in download_platforms(job.target.arch, job.python.libc)),
        "--find-links",
        str(view),
    ]
    # The wheelhouse alone first: what wheelfarm built for this target is what a consumer of its
    # index gets; the host's index only fills in what the wheelhouse lacks.
    code = _host_pip([*common, "--no-index", *needed], log, run)
    if code != 0:
        run.check()
        shutil.rmtree(deps, ignore_errors=True)
        log.line("not all in the wheelhouse; asking the host's index")
        code = _host_pip([*common, *needed], log, run)
    run.check()
    if code != 0:
        raise _CellFailed(
            "stage dependencies",
            useful_lines(log.section),
            hint=f"pip on this host could not get wheels of {', '.join(needed)} for Python "
            f"{job.python.version} on {job.target.name}; build them with wheelfarm into the "
            "same wheelhouse",
            cacheable=False,
        )
    staged = []
    for path in sorted(deps.iterdir()):
        if path.name.endswith(".whl") and not (stage / path.name).exists():
            path.replace(stage / path.name)
            staged.append(stage / path.name)
            log.line(f"staged dependency {path.name}")
    return staged


def _missing_packages(c: Container, family: str, packages: Sequence[str]) -> list[str]:
    missing = []
    for package in packages:
        # `apk list --installed` exits 0 for a package it does not have: read what it says.
        shown = c.output(pkgmgr.version_command(family, package), check=False)
        if pkgmgr.parse_version(family, package, shown) is None:
            missing.append(package)
    return missing


def _library_hint(job: Job, lines: Sequence[str]) -> str | None:
    """When an import fails for want of a shared library (or of a new enough glibc), say what the
    wheel asked for and what the recipe says a consumer needs."""
    text = "\n".join(lines)
    glibc = re.search(r"version `(GLIBC_[0-9.]+)' not found", text)
    if glibc:
        has = job.python.libc[1] or "an older one"
        return (
            f"the wheel was linked against a newer glibc ({glibc.group(1)}) than "
            f"{job.target.name} has ({has}): a rule letting {job.target.name} install it is wrong"
        )
    if "cannot open shared object file" not in text and "version `" not in text:
        return None
    asked = ", ".join(job.wheel.requires_external) or "no distro package"
    hint = f"a shared library is missing or too old on {job.target.name}: the wheel's "
    hint += f"Requires-External names {asked}"
    named = package_names(job.wheel.requires_external)
    missing = [p for p in job.runtime_packages if p not in named]
    if missing:
        hint += f"; the recipe's runtime packages add {', '.join(missing)}"
    return hint


def _own_code_hint(lines: Sequence[str]) -> str | None:
    """When the import failed although the wheel's compiled modules load (import_check.py bound
    every symbol of each): the package's own code refused, not the wheel's linking."""
    loaded = next((ln for ln in lines if ln.startswith(_COMPILED_LOAD)), None)
    if loaded is None:
        return None
    how_many = loaded[len(_COMPILED_LOAD) :].strip()
    return (
        f"the wheel links on this target (its compiled modules load: {how_many}); the package's "
        "own code refused to import this way (it may want another package imported first, or a "
        "setting): name the modules that show it works in the recipe's [verify] imports or test"
    )


# Where each family's package manager keeps what it downloads: shared by one runtime image's cells
# (the archives are the same for all of them), so a package is downloaded once. The container
# stays fresh: nothing it installs is kept. apt's package lists are the image's own (wheelfarm's
# apt images keep them), so a cell downloads lists only when those are stale.
_PACKAGE_CACHES = {
    "apt": ("/var/cache/apt/archives",),
    "dnf": ("/var/cache/dnf",),
    "yum": ("/var/cache/yum",),
    "apk": (),
}


def _package_cache_mounts(target: TargetView) -> dict[str, str]:
    root = cache.root() / "verify-packages" / target.image_id.replace("sha256:", "")[:16]
    mounts = {}
    for inside in _PACKAGE_CACHES.get(target.family, ()):
        host = root / inside.strip("/").replace("/", "-")
        (host / "partial").mkdir(parents=True, exist_ok=True)
        mounts[str(host)] = inside
    return mounts


class _Cell:
    def __init__(self, run: _Run, job: Job) -> None:
        self.run = run
        self.job = job

    def _exec(
        self,
        c: Container,
        log: runner.StepLog,
        argv: Sequence[str] | str,
        step: str,
        *,
        cacheable: bool = True,
        hint: str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
    ) -> None:
        def failed(code: int) -> _CellFailed:
            lines = useful_lines(log.section) or (f"exit {code}",)
            return _CellFailed(step, lines, hint=hint, cacheable=cacheable)

        runner.exec_step(
            c, log, argv, step, check=self.run.check, fail=failed, env=env, workdir=workdir
        )

    def work(self) -> tuple[Cell, bool]:
        """Run the cell; return its result and whether it may be cached."""
        job = self.job
        started = time.monotonic()
        log = runner.StepLog(self.run.wheelhouse, log_name(job.wheel.filename, job.target.name))
        keep_log = False
        try:
            log.line(
                f"verify {job.wheel.filename} on {job.target.name} ({job.target.image} "
                f"{job.target.image_id[:19]}), Python {job.python.full_version}, "
                f"wheelfarm {__version__}"
            )
            try:
                self._steps(log)
            except _CellFailed as failed:
                keep_log = True
                return (
                    Cell(
                        job.wheel.filename,
                        job.target.name,
                        FAIL,
                        reason=f"{failed.step}: {failed.lines[0] if failed.lines else 'failed'}",
                        python=job.python.full_version,
                        step=failed.step,
                        error=failed.lines,
                        hint=failed.hint,
                        log=log.relative,
                        seconds=time.monotonic() - started,
                        accepted=job.accepted,
                    ),
                    failed.cacheable,
                )
            keep_log = True
            return (
                Cell(
                    job.wheel.filename,
                    job.target.name,
                    PASS,
                    python=job.python.full_version,
                    log=log.relative,
                    seconds=time.monotonic() - started,
                    accepted=job.accepted,
                ),
                True,
            )
        finally:
            log.close(keep_log)

    def _steps(self, log: runner.StepLog) -> None:
        job, board = self.job, self.run.board
        name = job.label
        board.step(name, "staging the wheel and its dependencies")
        log.heading("stage the wheel and its dependencies (on the host)")
        with tempfile.TemporaryDirectory(prefix="wheelfarm-verify-") as temp:
            stage = Path(temp) / "stage"
            stage.mkdir()
            packages = package_names(self._stage(stage, log))
            board.step(name, "starting a fresh runtime container")
            c = self.run.container(
                job.target.image,
                job.target.name,
                f"verify {name}",
                network=True,
                mounts=_package_cache_mounts(job.target) if packages else None,
            )
            with c:
                self.run.entered(c)
                try:
                    # The venv needs no network and no package: make it while packages install.
                    venv_lines: list[str] = []
                    venv = runner.Background(
                        lambda: c.run(
                            [job.python.executable, "-m", "venv", VENV],
                            on_output=venv_lines.append,
                        )
                    )
                    if packages:
                        self._packages(c, log, packages)
                    log.heading("create a venv (while the packages were installed)")
                    code = venv.join()
                    for line in venv_lines:
                        log.line(line)
                    self.run.check()
                    if code != 0:
                        raise _CellFailed("create a venv", useful_lines(venv_lines))
                    c.copy_in(stage, WORK)
                    board.step(name, "cutting the network")
                    c.disconnect_network()
                    log.heading("network cut")
                    self._install_and_import(c, log)
                finally:
                    self.run.left(c)

    def _packages(self, c: Container, log: runner.StepLog, packages: Sequence[str]) -> None:
        job = self.job
        family = job.target.family
        missing = _missing_packages(c, family, packages)
        log.line(
            f"Requires-External: {', '.join(packages)}; "
            f"not yet installed: {', '.join(missing) or 'none'}"
        )
        if not missing:
            return
        self.run.board.step(job.label, f"installing {' '.join(missing)}")
        settings = c.host_settings
        ca = (
            hostenv.CONTAINER_CA_PATH
            if settings is not None and settings.ca_bundle is not None
            else None
        )
        # The package manager's cache is shared by the target's cells: one at a time uses it.
        with self.run.package_lock(job.target.image_id):
            self._exec(
                c,
                log,
                pkgmgr.install_command(family, missing, ca_file=ca),
                f"install system packages {' '.join(missing)}",
                env=pkgmgr.install_env(family),
                cacheable=False,
                hint=f"the package manager of {job.target.name} could not install "
                f"{', '.join(missing)} (the wheel's Requires-External)",
            )

    def _stage(self, stage: Path, log: runner.StepLog) -> tuple[str, ...]:
        """Stage the wheel and its dependencies; return the distro packages they all need (a
        dependency wheelfarm built has its own Requires-External)."""
        try:
            deps = _stage(self.job, stage, log, self.run)
            external = list(self.job.wheel.requires_external)
            for path in deps:
                external.extend(read_wheel(path).requires_external)
        except (OSError, BadInput) as exc:
            raise _CellFailed("stage dependencies", [str(exc)], cacheable=False) from None
        log.line(f"staged {self.job.wheel.plain_name} and {len(deps)} dependency file(s)")
        return tuple(external)

    def _install_and_import(self, c: Container, log: runner.StepLog) -> None:
        job, board = self.job, self.run.board
        name = job.label
        python = f"{VENV}/bin/python"
        pip_version = c.output([python, "-m", "pip", "--version"], check=False).split()
        shown = pip_version[1] if len(pip_version) > 1 else "?"
        board.step(name, f"pip {shown}: installing {job.wheel.plain_name}")
        self._exec(
            c,
            log,
            [
                python,
                "-m",
                "pip",
                "install",
                "--no-index",
                "--find-links",
                STAGE,
                "--no-cache-dir",
                f"{STAGE}/{job.wheel.plain_name}",
            ],
            f"install with the target's stock pip {shown}",
            env={**PIP_ENV, "LC_ALL": job.target.locale},
            hint=f"stock pip {shown} on {job.target.name} refused the wheel or a dependency",
        )
        env = {
            **PIP_ENV,
            "LC_ALL": job.target.locale,
            "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "VIRTUAL_ENV": VENV,
        }
        c.run(["mkdir", "-p", EMPTY])
        imports = job.imports
        if imports:
            board.step(name, f"importing {', '.join(imports)}")
            try:
                self._exec(
                    c,
                    log,
                    [python, c.copy_in(IMPORT_SCRIPT, f"{WORK}/tools"), *imports],
                    f"import {' '.join(imports)}",
                    env=env,
                    workdir=EMPTY,
                )
            except _CellFailed as failed:
                failed.hint = (
                    _library_hint(job, log.section) or _own_code_hint(log.section) or failed.hint
                )
                raise
        else:
            log.line("nothing to import: the wheel has no top-level module")
        if job.recipe.test:
            board.step(name, "running the recipe's test")
            self._exec(c, log, ["sh", "-c", job.recipe.test], "the recipe's test", env=env,
                       workdir=EMPTY)  # fmt: skip


# ------------------------------------------------------------------------------- the whole run


def _runtime_ids(chosen: Sequence[Target]) -> dict[str, str]:
    found: dict[str, str] = {}
    missing: list[Target] = []
    for target in chosen:
        try:
            found[target.unit] = images.require(target, "runtime")
        except ImageMissing:
            missing.append(target)
    if missing:
        commands = "; ".join(dict.fromkeys(images.make_command(t) for t in missing))
        raise ImageMissing(
            "runtime image missing for "
            + ", ".join(f"{t.name} {t.arch} ({t.runtime_image})" for t in missing),
            hint=f"make it with: {commands}",
        )
    return found


def choose_targets(
    settings: Settings, names: Sequence[str] = ()
) -> tuple[list[Target], dict[str, str]]:
    """The targets asked for (all must have a runtime image), else every target in the
    catalogue whose runtime image is present."""
    asked = list(names) or list(settings.targets)
    chosen = targets.select(asked, settings.catalogue) if asked else []  # unknown names: exit 2
    container.check_engine()
    if asked:
        images.check_runnable(chosen)
        return chosen, _runtime_ids(chosen)
    ids: dict[str, str] = {}
    for target in settings.catalogue:
        images.adopt_legacy(target, [target.runtime_image])
        found = container.image_id(target.runtime_image)
        if found is not None:
            ids[target.unit] = found
    chosen = [t for t in settings.catalogue if t.unit in ids]
    images.check_runnable(chosen)
    if not chosen:
        debian = [t for t in settings.catalogue if t.can_bootstrap][:3]
        raise ImageMissing(
            "no target's runtime image is present",
            hint="make one, e.g.: " + "; ".join(images.make_command(t) for t in debian),
        )
    return chosen, ids


@dataclass(frozen=True)
class Request:
    """What to verify, resolved once."""

    wheelhouse: Path
    wheels: tuple[Path, ...] | None  # None: every wheel in the wheelhouse
    targets: tuple[str, ...]
    settings: Settings
    jobs: int | None = None
    ignore_rules: bool = False  # probe
    board: bool = True
    # Only these wheels' cells may start a container; the others' come from the cell cache, or
    # are `n/a: not run` (the build's verify step: its report still covers the wheelhouse).
    run_only: frozenset[str] | None = None


def execute(
    request: Request,
    reporter: Reporter,
    skip: Callable[[WheelInfo], str | None] | None = None,
) -> Report:
    """Plan and run a matrix. Raises only for what stops the whole run (bad input, no engine, a
    missing image, Ctrl-C or SIGTERM); a failed cell is a result."""
    with runner.sigterm_as_interrupt():
        return _execute(request, reporter if request.board else Silent(), skip)


def _wheels(request: Request, reporter: Reporter) -> tuple[list[WheelInfo], list[SkippedFile]]:
    wheelhouse = request.wheelhouse.resolve()
    if request.wheels is None:
        wheels, skipped = find_wheels(wheelhouse)
    else:
        wheels, skipped = read_wheels(dict.fromkeys(request.wheels))
    for bad in skipped:
        reporter.warn(f"skipped {bad.file}: {bad.reason}")
    if not wheels:
        left_out = f" ({len(skipped)} file(s) skipped)" if skipped else ""
        raise BadInput(
            f"no wheels in {wheelhouse}{left_out}",
            hint="build some first: wheelfarm build SPEC --wheelhouse DIR",
        )
    return list(wheels), list(skipped)


def _recipes(wheels: Sequence[WheelInfo], settings: Settings) -> Callable[[str], Recipe]:
    """Each wheel's recipe, loaded once; a malformed one fails before any container starts."""
    loaded = {
        w.project: recipes.load(w.project, settings.recipes, shipped=settings.shipped_recipes)
        for w in wheels
    }

    def recipe_for(project: str) -> Recipe:
        if project not in loaded:
            loaded[project] = recipes.load(
                project, settings.recipes, shipped=settings.shipped_recipes
            )
        return loaded[project]

    return recipe_for


def _target_views(
    run: _Run, chosen: Sequence[Target], ids: Mapping[str, str], settings: Settings, parallel: int
) -> list[TargetView]:
    """Each target's tags and Pythons, from its runtime image."""
    facts = runner.run_parallel(
        run, parallel, [functools.partial(_read_facts, run, t, ids[t.unit]) for t in chosen]
    )
    views = [target_view(t, f, settings.rules) for t, f in zip(chosen, facts, strict=True)]
    for target, view in zip(chosen, views, strict=True):
        if not view.pythons:
            tried = ", ".join(p.executable for p in target.pythons)
            run.reporter.warn(
                f"{view.name}: no working Python in {view.image} (tried {tried}); "
                "every cell there is n/a"
            )
        pythons = ", ".join(p.full_version for p in view.pythons) or "none"
        run.board.finish(view.name, True, f"{view.tagset.build}, Python {pythons}")
    return views


def _known_cells(
    jobs: Sequence[Job], request: Request, wheelhouse: Path
) -> tuple[list[Cell], list[Job]]:
    """The cells the cache already has (their logs put back) or that this run does not run, and
    the jobs left to run."""
    known: list[Cell] = []
    to_run: list[Job] = []
    for job in jobs:
        hit = cached_cell(job.key)
        others = request.run_only is not None and job.wheel.filename not in request.run_only
        if hit is None and others:
            known.append(
                Cell(
                    job.wheel.filename,
                    job.target.name,
                    NA,
                    kind=NOT_RUN,
                    reason="not verified by this build; `wheelfarm verify` runs it",
                    accepted=job.accepted,
                )
            )
        elif hit is None:
            to_run.append(job)
        else:
            cell, log = hit
            runner.restore_log(wheelhouse, cell.log, log)
            known.append(
                replace(
                    cell, target=job.target.name, cached=True, accepted=job.accepted, seconds=0.0
                )
            )
    return known, to_run


def _execute(
    request: Request, reporter: Reporter, skip: Callable[[WheelInfo], str | None] | None
) -> Report:
    began = time.monotonic()
    settings = request.settings
    wheelhouse = request.wheelhouse.resolve()
    rules.image_sources(settings.rules)  # a malformed --rules file fails now, exit 2
    wheels, skipped = _wheels(request, reporter)
    recipe_for = _recipes(wheels, settings)
    chosen, ids = choose_targets(settings, request.targets)
    parallel = max(1, request.jobs or settings.jobs or os.cpu_count() or 1)
    with reporter.board([t.unit for t in chosen]) as board:
        run = _Run(wheelhouse=wheelhouse, board=board, reporter=reporter)
        target_views = _target_views(run, chosen, ids, settings, parallel)
    catalogue = {t.unit: t for t in settings.catalogue}
    plan = plan_cells(
        wheels, target_views, recipe_for, catalogue, ignore_rules=request.ignore_rules, skip=skip
    )
    known, to_run = _known_cells(plan.jobs, request, wheelhouse)
    if any(_needs_dependencies(job) for job in to_run):
        require_pip()
    with reporter.board([j.label for j in to_run]) as board:
        run.board = board
        tasks = [functools.partial(_run_job, run, j) for j in to_run]
        ran = runner.run_parallel(run, parallel, tasks)
    results = {(c.wheel, c.target): c for c in (*plan.decided, *known, *ran)}
    return Report(
        wheelhouse,
        tuple(wheels),
        tuple(target_views),
        tuple(results[key] for key in plan.order),
        time.monotonic() - began,
        run.started,
        tuple(skipped),
    )


def _run_job(run: _Run, job: Job) -> Cell:
    cell, cacheable = _Cell(run, job).work()
    if cacheable:
        store_cell(job.key, cell, run.wheelhouse / cell.log if cell.log else None)
    detail = "passed" if cell.status == PASS else (cell.reason or "failed")
    run.board.finish(job.label, cell.status == PASS, detail)
    return cell


# ------------------------------------------------------------------------------- reports


def markdown(report: Report, title: str = "wheelfarm verify") -> str:
    """The matrix as Markdown: one row per wheel, one column per target, then every failure with
    its first error lines and log, then why cells did not apply."""
    names = [t.name for t in report.targets]
    by_key = {(c.wheel, c.target): c for c in report.cells}
    counts = report.counts()
    lines = [
        f"# {title}",
        "",
        f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[NA]} not applicable "
        f"({sum(c.cached for c in report.cells)} from the cache); wheelfarm {__version__}.",
        "",
        "| wheel | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    marks = {PASS: "✅ pass", FAIL: "❌ **fail**"}
    for wheel in report.wheels:
        row = []
        for name in names:
            cell = by_key.get((wheel.filename, name))
            if cell is None:
                row.append("")
            elif cell.status == NA:
                row.append(f"n/a ({cell.kind})" if cell.kind else "n/a")
            else:
                row.append(marks[cell.status])
        lines.append(f"| `{wheel.filename}` | " + " | ".join(row) + " |")
    lines.append("")
    lines.append("## Targets")
    lines.append("")
    for target in report.targets:
        pythons = ", ".join(p.full_version for p in target.pythons) or "none"
        accepts = ", ".join(f"`{t}`" for t in target.tagset.install)
        lines.append(
            f"- **{target.name}** ({target.image}, `{target.image_id[:19]}`): builds "
            f"`{target.tagset.build}`, accepts {accepts}; Python {pythons}"
        )
    failed = report.failed
    if failed:
        lines += ["", "## Failures", ""]
        for cell in failed:
            lines.append(f"- `{cell.wheel}` on **{cell.target}** — {cell.step} (log `{cell.log}`)")
            lines.extend(f"  - `{line}`" for line in cell.error)
            if cell.hint:
                lines.append(f"  - hint: {cell.hint}")
    not_applicable = [c for c in report.cells if c.status == NA]
    if not_applicable:
        lines += ["", "## Not applicable", ""]
        lines.extend(f"- `{c.wheel}` on **{c.target}**: {c.reason}" for c in not_applicable)
    if report.skipped:
        lines += ["", "## Skipped files", ""]
        lines.extend(f"- `{f.file}`: {f.reason}" for f in report.skipped)
    return "\n".join(lines) + "\n"


def report_paths(wheelhouse: Path) -> tuple[Path, Path]:
    """Where a wheelhouse's verify reports are: (verify.json, verify.md)."""
    meta = wheelhouse / META
    return meta / REPORT_JSON, meta / REPORT_MD


def write_reports(report: Report) -> tuple[Path, Path]:
    json_path, md_path = report_paths(report.wheelhouse)
    fsutil.write_text_atomic(json_path, json.dumps(report.as_json(), indent=2) + "\n")
    fsutil.write_text_atomic(md_path, markdown(report))
    return json_path, md_path


def fail_if_failed(report: Report) -> None:
    failed = report.failed
    if failed:
        lines = [f"{c.wheel} on {c.target}: {c.reason} (log: {c.log})" for c in failed]
        raise VerificationFailed(
            f"{len(failed)} verification(s) failed:\n  " + "\n  ".join(lines),
            hint=f"the reports are {report.wheelhouse / META / REPORT_MD} and the logs under "
            f"{report.wheelhouse / META / LOGS}",
        )


# ------------------------------------------------------------------------------- commands


def run_matrix(request: Request, reporter: Reporter) -> Report:
    """`wheelfarm verify`: run the matrix and write its reports (`report_paths`). A failed cell
    is in the report; `fail_if_failed` turns it into exit 1 once the report is shown."""
    report = execute(request, reporter)
    write_reports(report)
    return report
