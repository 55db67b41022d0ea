"""The verify matrix as data — no container, no terminal: what a target is (its runtime image's
tags and Pythons), what a wheel is (its tags, hash, Requires-External, Requires-Dist and import
names), which wheel x target cells apply (and why not), what a cell needs on its target, its cache
key, and the results.

`verify.py` runs the applicable cells in containers; `probe.py` reads the same results to propose
rules."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import compatible_tags, cpython_tags

from wheelfarm import __version__, fsutil, rules, tags, targets, views, wheelmeta, wheelname
from wheelfarm.errors import BadInput
from wheelfarm.imagefacts import ImageFacts

if TYPE_CHECKING:
    from wheelfarm.recipes import Recipe
    from wheelfarm.targets import Target

PASS, FAIL, NA = "pass", "fail", "n/a"


# ------------------------------------------------------------------------------- what a target is


@dataclass(frozen=True)
class PythonFacts:
    version: str  # "3.11"
    full_version: str  # "3.11.2"
    executable: str
    libc: tuple[str, str]  # ("glibc", "2.36"), ("musl", "1.2") or ("", "")

    @property
    def cpython_tag(self) -> str:
        return "cp" + self.version.replace(".", "")


@dataclass(frozen=True)
class TargetView:
    """A target as its runtime image says it is."""

    name: str  # the unit: target-arch (debian-12-aarch64)
    family: str
    image: str
    image_id: str
    arch: str
    tagset: rules.TagSet
    pythons: tuple[PythonFacts, ...]  # in the catalogue's order, only those present
    locale: str = "C.UTF-8"  # what its processes run under (targets.Target.locale)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": split_unit(self.name)[0],
            "arch": self.arch,
            "image": self.image,
            "image_id": self.image_id,
            "pythons": [p.full_version for p in self.pythons],
            "tags": self.tagset.as_json(),
            "rules": self.tagset.decision.source.label if self.tagset.decision else None,
        }


def target_view(target: Target, facts: ImageFacts, rule_files: Sequence[Path]) -> TargetView:
    """Compute a target's tags from what its runtime image holds: its os-release and its own
    /etc/python/binary-compatibility.cfg, under --rules/project rules and the defaults."""
    pythons = [
        PythonFacts(python.version, seen.version, python.executable, seen.libc)
        for python in target.pythons
        if (seen := facts.pythons.get(python.version)) is not None and seen.version
    ]
    return TargetView(
        target.unit,
        target.family,
        target.runtime_image,
        facts.image_id,
        facts.arch,
        facts.tag_set(list(rule_files)),
        tuple(pythons),
        target.locale,
    )


# ------------------------------------------------------------------------------- applicability


def python_abis(version: str) -> frozenset[tuple[str, str]]:
    """The (python, abi) tag pairs CPython X.Y loads: cpXY-cpXY, cpXY-abi3 down to cp32-abi3,
    cpXY-none, pyXY/py3-none and friends."""
    major, minor = (int(part) for part in version.split(".")[:2])
    abi = f"cp{major}{minor}"
    found = {
        (t.interpreter, t.abi) for t in cpython_tags((major, minor), abis=[abi], platforms=["any"])
    }
    found |= {
        (t.interpreter, t.abi)
        for t in compatible_tags((major, minor), interpreter=abi, platforms=["any"])
    }
    return frozenset(found)


@dataclass(frozen=True)
class Applicability:
    applicable: bool
    python: PythonFacts | None = None
    kind: str | None = None  # why not: "arch", "tag", "python"
    reason: str | None = None
    accepted: bool = False  # the target's tags (after the rules) include the wheel's platform


def _platform_ok(platform: str, tagset: rules.TagSet) -> bool:
    return platform == "any" or tagset.accepts(platform)


def _wheel_arches(wheel: wheelname.WheelName) -> set[str]:
    return {parts[0] for p in wheel.platforms if (parts := tags.split_platform(p)) is not None}


def applicability(
    wheel: wheelname.WheelName, target: TargetView, *, ignore_rules: bool = False
) -> Applicability:
    """Whether the cell wheel x target is worth running, and with which of the target's Pythons.

    Verify: some tag of the wheel must have a platform the target accepts AND a python/abi one of
    its Pythons loads. Probe (ignore_rules): only the CPU and the Python must fit."""
    arches = _wheel_arches(wheel)
    accepted = any(_platform_ok(t.platform, target.tagset) for t in wheel.tags)
    if arches and target.arch not in arches:
        return Applicability(
            False,
            kind="arch",
            reason=f"built for {', '.join(sorted(arches))}; {target.name} is {target.arch}",
        )
    for python in target.pythons:
        pairs = python_abis(python.version)
        usable = [t for t in wheel.tags if (t.interpreter, t.abi) in pairs]
        if not usable:
            continue
        if ignore_rules or any(_platform_ok(t.platform, target.tagset) for t in usable):
            return Applicability(True, python=python, accepted=accepted)
    platforms = ", ".join(wheel.platforms)
    if not ignore_rules and not accepted:
        shown = ", ".join(target.tagset.install)
        return Applicability(
            False,
            kind="tag",
            reason=f"{target.name} does not accept {platforms} (it accepts {shown})",
        )
    offered = ", ".join(p.full_version for p in target.pythons) or "none"
    abis = ", ".join(sorted({f"{t.interpreter}-{t.abi}" for t in wheel.tags}))
    return Applicability(
        False,
        kind="python",
        reason=f"{abis} does not load on {target.name}'s Python ({offered})",
        accepted=accepted,
    )


# ------------------------------------------------------------------------------- what a wheel is


@dataclass(frozen=True)
class WheelInfo:
    path: Path
    name: wheelname.WheelName
    sha256: str
    requires_external: tuple[str, ...]
    requires_dist: tuple[str, ...]
    top_level: tuple[str, ...]  # default import names

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def plain_name(self) -> str:
        return self.name.plain_filename

    @property
    def project(self) -> str:
        return str(self.name.name)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.filename,
            "plain_name": self.plain_name,
            "sha256": self.sha256,
            "requires_external": list(self.requires_external),
            "requires_dist": list(self.requires_dist),
        }


def default_imports(record_paths: Iterable[str], top_level: str | None) -> tuple[str, ...]:
    """The modules a consumer would import: those of top_level.txt that the wheel holds, else
    the top-level packages and modules RECORD lists (not .dist-info, .data or __pycache__).
    setuptools lists an extension's bare name there even when it is built inside a package
    (pynacl's `_sodium` is `nacl/_sodium.abi3.so`): such a name is not importable, so it goes."""
    present = _top_level_modules(record_paths)
    if top_level is not None:
        names = [line.strip().replace("/", ".") for line in top_level.splitlines()]
        found = [
            n
            for n in names
            if n and all(p.isidentifier() for p in n.split(".")) and n.split(".")[0] in present
        ]
        if found:
            return tuple(dict.fromkeys(found))
    return tuple(sorted(present))


def _top_level_modules(record_paths: Iterable[str]) -> set[str]:
    modules: set[str] = set()
    for path in record_paths:
        parts = PurePosixPath(path).parts
        if not parts or parts[0].endswith((".dist-info", ".data")) or parts[0] == "__pycache__":
            continue
        first = parts[0]
        if len(parts) == 1:
            if not first.endswith((".py", ".so", ".pyd")) and ".cpython-" not in first:
                continue
            first = first.split(".", 1)[0]
        if first.isidentifier():
            modules.add(first)
    return modules


def read_wheel(path: Path) -> WheelInfo:
    """Name, hash, Requires-External, Requires-Dist and default import names of a wheel;
    BadInput naming the file when it is misnamed, unreadable or not a wheel."""
    name = wheelname.parse(path.name)
    try:
        sha256 = fsutil.file_sha256(path)
    except OSError as exc:
        raise BadInput(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
            info = wheelmeta.dist_info(members)
            metadata = wheelmeta.parse(archive.read(f"{info}/METADATA"))
            top_level = None
            if f"{info}/top_level.txt" in members:
                top_level = archive.read(f"{info}/top_level.txt").decode("utf-8", "replace")
    except BadInput as exc:
        raise BadInput(f"{path.name}: {exc.message}") from None
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise BadInput(f"{path.name} is not a readable wheel ({exc})") from None
    return WheelInfo(
        path=path,
        name=name,
        sha256=sha256,
        requires_external=metadata.requires_external,
        requires_dist=metadata.requires_dist,
        top_level=default_imports(members, top_level),
    )


@dataclass(frozen=True)
class SkippedFile:
    """A `.whl` file of the wheelhouse that was left out: misnamed, unreadable or not a wheel."""

    file: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


def read_wheels(paths: Iterable[Path]) -> tuple[list[WheelInfo], tuple[SkippedFile, ...]]:
    """Each wheel read, or left out with the reason: one bad file does not stop the others."""
    wheels: list[WheelInfo] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        try:
            wheels.append(read_wheel(path))
        except BadInput as exc:
            skipped.append(SkippedFile(path.name, exc.message))
    return wheels, tuple(skipped)


def package_names(requires_external: Iterable[str]) -> list[str]:
    """Distro package names from Requires-External values ("libpq5", "libxml2 (>=2.9)")."""
    names = []
    for value in requires_external:
        first = value.replace("(", " ").replace(";", " ").split()
        if first:
            names.append(first[0])
    return list(dict.fromkeys(names))


def marker_environment(python: PythonFacts, arch: str) -> dict[str, str]:
    """PEP 508 marker values of a CPython on Linux: the target's, not the host's."""
    return {
        "implementation_name": "cpython",
        "implementation_version": python.full_version,
        "os_name": "posix",
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": python.full_version,
        "python_version": python.version,
        "sys_platform": "linux",
        "extra": "",
    }


def needed_requirements(requires_dist: Iterable[str], environment: Mapping[str, str]) -> list[str]:
    """The Requires-Dist entries the target installs (markers evaluated for the target, no
    extras), with their markers removed so the host's pip cannot judge them again."""
    needed = []
    for value in requires_dist:
        try:
            requirement = Requirement(value)
        except InvalidRequirement:
            continue
        if requirement.marker is not None:
            try:
                if not requirement.marker.evaluate(dict(environment)):
                    continue
            except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
                continue
        requirement.marker = None
        needed.append(str(requirement))
    return needed


def download_platforms(arch: str, libc: tuple[str, str]) -> list[str]:
    """Platform tags to stage a target's dependencies with, preferred first: plain
    `linux_<arch>` (only the wheelhouse's view has those: wheelfarm's own builds for this target
    win over an index's wheel of the same version), then manylinux for its glibc (each
    `manylinux_2_N` and the legacy aliases) or musllinux for its musl."""
    kind, version = libc
    found: list[str] = [f"linux_{arch}"]
    numbers = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    if kind == "glibc" and len(numbers) == 2 and numbers[0] == 2:
        aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        for minor in range(numbers[1], 4, -1):
            found.append(f"manylinux_2_{minor}_{arch}")
            if minor in aliases and (minor == 17 or arch in ("x86_64", "i686")):
                found.append(f"{aliases[minor]}_{arch}")
    elif kind == "musl" and len(numbers) == 2:
        found.extend(f"musllinux_{numbers[0]}_{m}_{arch}" for m in range(numbers[1], -1, -1))
    return found


# ------------------------------------------------------------------------------- cache keys


def recipe_digest(recipe: Recipe, imports: tuple[str, ...] | None = None) -> str:
    """What a cell checks: the modules it imports (the recipe's, else `imports`, those the wheel
    names) and the recipe's test, not its build. The imports taken from the wheel count too, so a
    wheelfarm that reads them otherwise checks again rather than reuse an old result."""
    chosen = recipe.imports or imports or ()
    return fsutil.digest({"imports": list(chosen), "test": recipe.test})


def cell_key(wheel_sha256: str, image_id: str, recipe: str, python: str) -> str:
    """The hash of everything a cell's result depends on."""
    content = {
        "wheel": wheel_sha256,
        "image_id": image_id,
        "recipe": recipe,
        "python": python,
        "wheelfarm": __version__,
    }
    return fsutil.digest(content)


# ------------------------------------------------------------------------------- results


def split_unit(unit: str) -> tuple[str, str]:
    """debian-12-aarch64 -> ("debian-12", "aarch64"): architecture names have no "-"; a name
    without one is a target alone (no architecture known)."""
    name, _, arch = unit.rpartition("-")
    if name and arch in targets.DOCKER_ARCHES:
        return name, arch
    return unit, ""


@dataclass(frozen=True)
class Cell:
    wheel: str
    target: str  # the unit: target-arch (debian-12-aarch64); JSON says target and arch apart
    status: str  # PASS, FAIL, NA
    kind: str | None = None  # n/a: "arch", "tag", "python"
    reason: str | None = None  # n/a: why; fail: the one-line summary
    python: str | None = None
    step: str | None = None  # the failed step
    error: tuple[str, ...] = ()  # the first useful lines of the error
    hint: str | None = None
    log: str | None = None  # relative to the wheelhouse
    seconds: float = 0.0
    cached: bool = False
    accepted: bool = False  # the target's tags (after the rules) include the wheel's

    def as_json(self) -> dict[str, Any]:
        name, arch = split_unit(self.target)
        return {
            "wheel": self.wheel,
            "target": name,
            "arch": arch,
            "status": self.status,
            "kind": self.kind,
            "reason": self.reason,
            "python": self.python,
            "step": self.step,
            "error": list(self.error),
            "hint": self.hint,
            "log": self.log,
            "seconds": round(self.seconds, 2),
            "cached": self.cached,
            "accepted_by_rules": self.accepted,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cell:
        arch = str(data.get("arch") or "")
        return cls(
            wheel=str(data["wheel"]),
            target=f"{data['target']}-{arch}" if arch else str(data["target"]),
            status=str(data["status"]),
            kind=data.get("kind"),
            reason=data.get("reason"),
            python=data.get("python"),
            step=data.get("step"),
            error=tuple(data.get("error") or ()),
            hint=data.get("hint"),
            log=data.get("log"),
            seconds=float(data.get("seconds") or 0.0),
            cached=bool(data.get("cached")),
            accepted=bool(data.get("accepted_by_rules")),
        )


@dataclass(frozen=True)
class Report:
    wheelhouse: Path
    wheels: tuple[WheelInfo, ...]
    targets: tuple[TargetView, ...]
    cells: tuple[Cell, ...]
    seconds: float
    containers_started: int
    skipped: tuple[SkippedFile, ...] = ()  # .whl files left out, with why

    @property
    def failed(self) -> list[Cell]:
        return [c for c in self.cells if c.status == FAIL]

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.cells) for s in (PASS, FAIL, NA)}

    def only(self, filenames: Collection[str]) -> Report:
        """The same report restricted to these wheels (what one build verified)."""
        return replace(
            self,
            wheels=tuple(w for w in self.wheels if w.filename in filenames),
            cells=tuple(c for c in self.cells if c.wheel in filenames),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "wheelhouse": str(self.wheelhouse),
            "ok": not self.failed,
            "counts": self.counts(),
            "cached": sum(c.cached for c in self.cells),
            "seconds": round(self.seconds, 2),
            "containers_started": self.containers_started,
            "wheelfarm": __version__,
            "targets": [t.as_json() for t in self.targets],
            "wheels": [w.as_json() for w in self.wheels],
            "results": [c.as_json() for c in self.cells],
            "skipped": [f.as_json() for f in self.skipped],
        }


# ------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Job:
    """One applicable cell: what to run, and with which Python, recipe and dependency view."""

    wheel: WheelInfo
    target: TargetView
    python: PythonFacts
    recipe: Recipe
    runtime_packages: tuple[str, ...]  # the recipe's, for this target (for hints only)
    accepted: bool
    view: tuple[Path, ...]  # wheelhouse wheels this target's view serves (dependencies)

    @property
    def label(self) -> str:
        return f"{self.wheel.filename} @ {self.target.name}"

    @property
    def imports(self) -> tuple[str, ...]:
        return self.recipe.imports or self.wheel.top_level

    @property
    def key(self) -> str:
        return cell_key(
            self.wheel.sha256,
            self.target.image_id,
            recipe_digest(self.recipe, self.imports),
            self.python.executable,
        )


@dataclass(frozen=True)
class Plan:
    """Every cell of a matrix: the jobs to run and the cells already decided (n/a)."""

    jobs: tuple[Job, ...]
    decided: tuple[Cell, ...]
    order: tuple[tuple[str, str], ...]  # (wheel, target) in matrix order


def plan_cells(
    wheels: Sequence[WheelInfo],
    views_: Sequence[TargetView],
    recipe_for: Callable[[str], Recipe],
    catalogue: Mapping[str, Target],  # by unit
    *,
    ignore_rules: bool = False,
    skip: Callable[[WheelInfo], str | None] | None = None,
) -> Plan:
    jobs: list[Job] = []
    decided: list[Cell] = []
    order: list[tuple[str, str]] = []
    by_name = {w.filename: w for w in wheels}
    # What each target's index view serves: the dependencies a cell may take from the wheelhouse.
    served = {
        t.name: tuple(
            by_name[w.filename].path for w in views.select([w.name for w in wheels], t.tagset)
        )
        for t in views_
    }
    for wheel in wheels:
        why_skip = skip(wheel) if skip is not None else None
        for target in views_:
            order.append((wheel.filename, target.name))
            if why_skip is not None:
                decided.append(Cell(wheel.filename, target.name, NA, kind="skip", reason=why_skip))
                continue
            verdict = applicability(wheel.name, target, ignore_rules=ignore_rules)
            if not verdict.applicable or verdict.python is None:
                decided.append(
                    Cell(
                        wheel.filename,
                        target.name,
                        NA,
                        kind=verdict.kind,
                        reason=verdict.reason,
                        accepted=verdict.accepted,
                    )
                )
                continue
            recipe = recipe_for(wheel.project)
            jobs.append(
                Job(
                    wheel,
                    target,
                    verdict.python,
                    recipe,
                    recipe.runtime_for(catalogue[target.name]),
                    verdict.accepted,
                    served[target.name],
                )
            )
    return Plan(tuple(jobs), tuple(decided), tuple(order))


def find_wheels(wheelhouse: Path) -> tuple[list[WheelInfo], tuple[SkippedFile, ...]]:
    """Every wheel of the wheelhouse, and the `.whl` files left out (with why)."""
    if wheelhouse.exists() and not wheelhouse.is_dir():
        raise BadInput(
            f"wheelhouse {wheelhouse} is not a directory",
            hint="pass the directory the wheels are in (wheelfarm build --wheelhouse DIR)",
        )
    if not wheelhouse.is_dir():
        raise BadInput(
            f"wheelhouse {wheelhouse} does not exist",
            hint="build wheels into it first: wheelfarm build SPEC --wheelhouse DIR",
        )
    return read_wheels(p for p in sorted(wheelhouse.glob("*.whl")) if p.is_file())
