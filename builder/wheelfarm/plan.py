"""What to build where. Pure: specs and requirement files in, a list of BuildJobs out (and the
order their compiles get a build slot in); nothing here touches the network, Docker or the
terminal.

A spec is one of
- a requirement pinned to exactly one version (`lxml==5.3.0`; extras are accepted and ignored,
  since a wheel does not depend on which extras a consumer asks for; an environment marker is
  evaluated per target),
- a local sdist file (`./dist/foo-1.0.tar.gz`),
- a local source directory (with a pyproject.toml or setup.py).
Requirement files are read the way pip-compile and `pip freeze` write them: comments, `\\`
continuations, `--hash=ALGO:HEX` per requirement, nested `-r`, and the index options pip-compile
emits. Everything else (ranges, unpinned names, URLs, editables, typos) is refused with the reason
and the file:line, before anything runs."""

from __future__ import annotations

import configparser
import re
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
)

from wheelfarm import targets as targets_mod
from wheelfarm.errors import BadInput
from wheelfarm.targets import Python, Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

SpecKind = Literal["pinned", "sdist", "directory"]
COMMAND_LINE = "command line"
SDIST_SUFFIXES = (".tar.gz", ".zip")
# pip accepts these in --hash; the index gives sha256, the others are checked on the file itself.
HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+\Z")
# A bare URL (`https://…/x.tar.gz`, `file:///…`) or pip's VCS form (`git+https://…`): not a
# file. `name @ URL` is a direct reference, refused later with its own reason.
_URL = re.compile(r"\A(?:(?:git|hg|svn|bzr)\+|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)
# `name=1.0`, `name = 1.0`: one `=` where `==` was meant.
_SINGLE_EQUALS = re.compile(r"\A([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?)\s*=\s*([^=<>!~\s].*)\Z")
_COMMENT = re.compile(r"(^|\s+)#.*$")

# Options a requirement file may carry, as pip-compile and pip freeze write them.
_INDEX_OPTIONS = {"-i": "index", "--index-url": "index", "--extra-index-url": "extra"}
_INCLUDE_OPTIONS = ("-r", "--requirement")
# Accepted and without effect: wheelfarm always builds from the sdist, never installs.
_IGNORED_OPTIONS = {
    "--trusted-host": True,  # takes a value
    "--no-binary": True,
    "--only-binary": True,
    "--prefer-binary": False,
    "--pre": False,
}
_REFUSED_OPTIONS = {
    "-e": "editable requirements are not built; pin a released version or pass the directory",
    "--editable": "editable requirements are not built; pin a released version or pass the "
    "directory",
    "-f": "--find-links is not supported; configure the index with --index-url or pip config",
    "--find-links": "--find-links is not supported; configure the index with --index-url or pip "
    "config",
    "-c": "constraints files name nothing to build; pin each project with ==",
    "--constraint": "constraints files name nothing to build; pin each project with ==",
    "--no-index": "--no-index leaves nowhere to fetch the sdist from; pass local sdist files",
}


@dataclass(frozen=True)
class Hash:
    algorithm: str  # "sha256", "sha384" or "sha512"
    hexdigest: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


@dataclass(frozen=True)
class Spec:
    """One thing to build. `name` is the canonical project name (for a directory whose metadata
    is dynamic, the directory's name until the build says otherwise)."""

    kind: SpecKind
    name: str
    version: str | None
    path: Path | None = None
    hashes: tuple[Hash, ...] = ()
    marker: str | None = None
    indexes: tuple[str, ...] = ()  # --index-url first, then --extra-index-url, from a -r file
    origin: str = COMMAND_LINE  # "requirements.txt:12" or "command line"
    text: str = ""  # as the user wrote it, without options

    @property
    def requirement(self) -> str:
        """How to show it: `name==version`, or the path given."""
        if self.kind == "pinned":
            return f"{self.name}=={self.version}"
        return str(self.path)

    @property
    def key(self) -> tuple[str, str, str]:
        if self.kind == "pinned":
            return (self.kind, self.name, canonicalize_version(self.version or ""))
        return (self.kind, self.name, str(self.path))

    def applies_to(self, python: Python, arch: str = "x86_64") -> bool:
        if self.marker is None:
            return True
        return Marker(self.marker).evaluate(marker_environment(python, arch))


@dataclass(frozen=True)
class BuildJob:
    """One target x arch (and Python) with the specs it builds, in order."""

    target: Target
    python: Python
    specs: tuple[Spec, ...]

    @property
    def image(self) -> str:
        return self.target.build_image


@dataclass
class _FileState:
    """What a requirement file's global options said, as pip reads them (file-wide)."""

    path: Path
    index: str | None = None
    extras: list[str] = field(default_factory=list)
    require_hashes: bool = False


def marker_environment(python: Python, arch: str = "x86_64") -> dict[str, str]:
    """The marker values of a CPython X.Y on Linux. The micro version is not known before the
    container runs, so python_full_version is X.Y.0."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python.version}.0",
        "os_name": "posix",
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{python.version}.0",
        "python_version": python.version,
        "sys_platform": "linux",
    }


def _bad(origin: str, problem: str, hint: str | None = None) -> BadInput:
    return BadInput(
        f"{origin}: {problem}",
        hint=hint
        or "each spec is NAME==VERSION, a local sdist (.tar.gz/.zip) or a source directory",
    )


# ---------------------------------------------------------------- single specs


def _is_url(text: str) -> bool:
    return _URL.match(text) is not None


def _looks_like_path(text: str) -> bool:
    return (
        "/" in text
        or text.startswith(".")
        or text.endswith((*SDIST_SUFFIXES, ".whl", ".tar", ".tgz", ".tar.bz2"))
    )


def _sdist_spec(path: Path, origin: str, text: str) -> Spec:
    if path.name.endswith(".whl"):
        raise _bad(
            origin,
            f"{text!r} is already a wheel; wheelfarm builds wheels from source",
            hint="pass the project's sdist (.tar.gz) or NAME==VERSION",
        )
    if not path.name.endswith(SDIST_SUFFIXES):
        raise _bad(origin, f"{text!r} is not an sdist (expected NAME-VERSION.tar.gz or .zip)")
    try:
        name, version = parse_sdist_filename(path.name)
    except InvalidSdistFilename as exc:
        raise _bad(origin, f"{text!r}: {exc}") from None
    return Spec("sdist", str(name), str(version), path=path.resolve(), origin=origin, text=text)


def _static_metadata(directory: Path) -> tuple[str | None, str | None]:
    """Name and version from a source tree's static metadata, read as data (no code runs):
    pyproject's [project], then setup.cfg's [metadata], then PKG-INFO of an unpacked sdist."""
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            project = {}
        if isinstance(project, dict) and isinstance(project.get("name"), str):
            version = project.get("version")
            return project["name"], version if isinstance(version, str) else None
    setup_cfg = directory / "setup.cfg"
    if setup_cfg.is_file():
        parser = configparser.RawConfigParser()
        try:
            parser.read(setup_cfg, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            parser = configparser.RawConfigParser()
        if parser.has_option("metadata", "name"):
            version = parser.get("metadata", "version", fallback=None)
            if version is not None and (version.startswith(("attr:", "file:"))):
                version = None
            return parser.get("metadata", "name"), version
    pkg_info = directory / "PKG-INFO"
    if pkg_info.is_file():
        name = version = None
        for line in pkg_info.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            if key.lower() == "name":
                name = value.strip()
            elif key.lower() == "version":
                version = value.strip()
        return name, version
    return None, None


def _directory_spec(path: Path, origin: str, text: str) -> Spec:
    if not (path / "pyproject.toml").is_file() and not (path / "setup.py").is_file():
        raise _bad(
            origin,
            f"{text!r} is a directory without pyproject.toml or setup.py: not a Python project",
        )
    name, version = _static_metadata(path)
    project = str(canonicalize_name(name or path.resolve().name))
    return Spec("directory", project, version, path=path.resolve(), origin=origin, text=text)


def _requirement_spec(text: str, origin: str) -> Spec:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        detail = str(exc).splitlines()[0]
        typo = _SINGLE_EQUALS.match(text)
        hint = None
        if typo:
            hint = f"did you mean {typo.group(1)}=={typo.group(2).strip()}?"
        raise _bad(origin, f"{text!r} is not a valid requirement ({detail})", hint=hint) from None
    name = str(canonicalize_name(req.name))
    if req.url:
        raise _bad(
            origin,
            f"{text!r} names a URL; wheelfarm fetches sdists from the index by version",
            hint=f"pin a released version ({req.name}==VERSION) or download the sdist and pass "
            "the file",
        )
    specifiers = list(req.specifier)
    if not specifiers:
        raise _bad(
            origin,
            f"{text!r} is not pinned to a version",
            hint=f"pin exactly one version: {req.name}==VERSION",
        )
    if len(specifiers) == 1 and specifiers[0].operator == "===":
        raise _bad(
            origin,
            f"{text!r} uses arbitrary equality (===), which is not supported",
            hint=f"use ==: {req.name}=={specifiers[0].version}",
        )
    if len(specifiers) > 1 or specifiers[0].operator != "==":
        raise _bad(
            origin,
            f"{text!r} is a range, not one version",
            hint=f"pin exactly one version: {req.name}==VERSION",
        )
    version = specifiers[0].version
    if version.endswith(".*"):
        raise _bad(
            origin,
            f"{text!r} is a wildcard, not one version",
            hint=f"pin exactly one version: {req.name}==VERSION",
        )
    marker = str(req.marker) if req.marker is not None else None
    return Spec("pinned", name, version, marker=marker, origin=origin, text=text)


def parse_spec(text: str, origin: str = COMMAND_LINE, base: Path | None = None) -> Spec:
    """One spec: a pinned requirement, an sdist file or a source directory. Relative paths are
    taken from `base` (a requirement file's directory) or the working directory."""
    stripped = text.strip()
    if not stripped:
        raise _bad(origin, "empty spec")
    if _is_url(stripped):
        raise _bad(
            origin,
            f"{stripped!r} is a URL: wheelfarm builds pinned releases, sdist files or source "
            "directories",
            hint="pin a released version (NAME==VERSION), or download the sdist and pass the file",
        )
    path = Path(stripped).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_dir():
        return _directory_spec(path, origin, stripped)
    if path.is_file():
        return _sdist_spec(path, origin, stripped)
    if _looks_like_path(stripped) and "==" not in stripped and "@" not in stripped:
        raise _bad(origin, f"{stripped!r}: no such file or directory")
    return _requirement_spec(stripped, origin)


# ---------------------------------------------------------------- requirement files


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first physical line number, joined line without comments), as pip preprocesses."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = raw
        if line.endswith("\\") and not _COMMENT.search(line[:-1]):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = _COMMENT.sub("", " ".join(pending)).strip()
        pending = []
        if joined:
            yield start, joined
    if pending:
        joined = _COMMENT.sub("", " ".join(pending)).strip()
        if joined:
            yield start, joined


_VALUE_OPTIONS = frozenset(
    {
        *_INDEX_OPTIONS,
        *_INCLUDE_OPTIONS,
        *(name for name, takes in _IGNORED_OPTIONS.items() if takes),
        "--hash",
        "-e",
        "--editable",
        "-f",
        "--find-links",
        "-c",
        "--constraint",
    }
)


def _split_option(tokens: list[str], index: int) -> tuple[str, str | None, int]:
    """Option name, its value (from `--opt=value`, `-rFILE` or the next token) and the index of
    the next token, the way pip's optparse reads them."""
    token = tokens[index]
    if token.startswith("--"):
        name, equals, value = token.partition("=")
        if equals:
            return name, value, index + 1
    elif len(token) > 2 and token[:2] in _VALUE_OPTIONS:
        return token[:2], token[2:].lstrip("="), index + 1
    else:
        name = token
    if name in _VALUE_OPTIONS:
        if index + 1 < len(tokens):
            return name, tokens[index + 1], index + 2
        return name, None, index + 1
    return name, None, index + 1


def _parse_hash(value: str | None, origin: str) -> Hash:
    if not value or not value.strip():
        raise _bad(
            origin,
            "--hash is empty: it needs a value",
            hint="use --hash=sha256:HEX (pip-compile --generate-hashes writes them)",
        )
    algorithm, _, digest = (value or "").partition(":")
    algorithm = algorithm.lower()
    digest = digest.lower()
    expected = HASH_LENGTHS.get(algorithm)
    if expected is None:
        raise _bad(
            origin,
            f"--hash={value}: unsupported hash algorithm {algorithm!r}",
            hint="use --hash=sha256:HEX (sha384 and sha512 are accepted too)",
        )
    if len(digest) != expected or not _HEX.match(digest):
        raise _bad(
            origin,
            f"--hash={value}: not a {algorithm} digest ({expected} hex digits expected)",
            hint="copy the hash from pip-compile --generate-hashes or `pip hash FILE`",
        )
    return Hash(algorithm, digest)


def _global_option(
    tokens: list[str], origin: str, state: _FileState, seen: tuple[Path, ...]
) -> list[Spec]:
    """A line starting with an option: includes, index settings, switches."""
    specs: list[Spec] = []
    index = 0
    while index < len(tokens):
        if not tokens[index].startswith("-"):
            raise _bad(origin, f"unexpected {tokens[index]!r} after an option")
        name, value, index = _split_option(tokens, index)
        if name in _REFUSED_OPTIONS:
            raise _bad(origin, f"{name} {value or ''}".strip(), hint=_REFUSED_OPTIONS[name])
        if name in _INCLUDE_OPTIONS:
            if not value:
                raise _bad(origin, f"{name} needs a file name")
            included = Path(value).expanduser()
            if not included.is_absolute():
                included = state.path.parent / included
            specs.extend(_read_file(included, seen, origin))
        elif name in _INDEX_OPTIONS:
            if not value:
                raise _bad(origin, f"{name} needs a URL")
            if _INDEX_OPTIONS[name] == "index":
                state.index = value
            else:
                state.extras.append(value)
        elif name == "--require-hashes":
            state.require_hashes = True
        elif name in _IGNORED_OPTIONS:
            if _IGNORED_OPTIONS[name] and value is None:
                raise _bad(origin, f"{name} needs a value")
        elif name == "--hash":
            raise _bad(origin, "--hash must follow a requirement on the same line")
        else:
            raise _bad(
                origin,
                f"unknown option {name}",
                hint="requirement files may hold NAME==VERSION lines with --hash, -r FILE, "
                "--index-url, --extra-index-url, --require-hashes",
            )
    return specs


def _requirement_line(line: str, origin: str, base: Path) -> tuple[Spec, bool]:
    """A requirement with its per-requirement options. Returns the spec and whether it had a
    hash option (an empty --hash list is still hash-checking mode for pip)."""
    words = line.split()
    split_at = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
    spec = parse_spec(" ".join(words[:split_at]), origin, base)
    tokens = words[split_at:]
    hashes: list[Hash] = []
    index = 0
    while index < len(tokens):
        name, value, index = _split_option(tokens, index)
        if name != "--hash":
            raise _bad(
                origin,
                f"option {name} is not supported on a requirement line",
                hint="only --hash=ALGO:HEX may follow a requirement",
            )
        hashes.append(_parse_hash(value, origin))
    return replace(spec, hashes=tuple(dict.fromkeys(hashes))), bool(tokens)


def _read_file(path: Path, seen: tuple[Path, ...], origin: str) -> list[Spec]:
    resolved = path.resolve()
    if resolved in seen:
        raise _bad(origin, f"requirement file {path} includes itself")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _bad(origin, f"requirement file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(origin, f"cannot read requirement file {path}: {exc}") from None
    state = _FileState(path)
    specs: list[Spec] = []
    own: dict[int, bool] = {}  # index in specs of this file's requirements → had --hash
    here = (*seen, resolved)
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        if line.startswith("-"):
            specs.extend(_global_option(line.split(), where, state, here))
            continue
        spec, had_hash = _requirement_line(line, where, path.parent)
        own[len(specs)] = had_hash
        specs.append(spec)
    if state.require_hashes or any(own.values()):
        # As in pip: once a file uses hashes, every requirement in it must have them.
        for index in own:
            spec = specs[index]
            if not spec.hashes:
                raise _bad(
                    spec.origin,
                    f"{spec.text!r} has no --hash, but this file uses hash-checking",
                    hint="add --hash=sha256:HEX (pip-compile --generate-hashes writes them)",
                )
    indexes = tuple(i for i in (state.index, *state.extras) if i)
    if indexes:
        for index in own:
            specs[index] = replace(specs[index], indexes=indexes)
    return specs


# ---------------------------------------------------------------- together


def _merge(specs: Sequence[Spec]) -> list[Spec]:
    """Drop duplicates (keeping the first, with every hash given), refuse conflicting pins."""
    merged: dict[tuple[str, str, str], Spec] = {}
    pinned: dict[str, Spec] = {}
    for spec in specs:
        if spec.kind == "pinned":
            other = pinned.get(spec.name)
            if other is not None and other.key != spec.key:
                raise _bad(
                    spec.origin,
                    f"{spec.text!r} conflicts with {other.text!r} ({other.origin})",
                    hint="pin each project to one version",
                )
            pinned.setdefault(spec.name, spec)
        existing = merged.get(spec.key)
        if existing is None:
            merged[spec.key] = spec
        elif spec.hashes:
            if existing.hashes and not set(existing.hashes) & set(spec.hashes):
                raise _bad(
                    spec.origin,
                    f"{spec.text!r}: its hashes share none with {existing.origin}",
                    hint="one sdist cannot match both; remove the stale hashes",
                )
            combined = tuple(dict.fromkeys((*existing.hashes, *spec.hashes)))
            merged[spec.key] = replace(existing, hashes=combined)
    return list(merged.values())


def parse_specs(specs: Sequence[str], requirement_files: Sequence[Path] = ()) -> list[Spec]:
    """Every spec from the command line, then every requirement file, without duplicates."""
    parsed = [parse_spec(text) for text in specs]
    for path in requirement_files:
        parsed.extend(_read_file(path, (), COMMAND_LINE))
    if not parsed:
        raise BadInput(
            "nothing to build",
            hint="name what to build: wheelfarm build lxml==5.3.0, or -r requirements.txt",
        )
    return _merge(parsed)


def select_targets(
    requested: Sequence[str],
    present: Collection[str],
    python: str | None = None,
    catalogue: Sequence[Target] = targets_mod.TARGETS,
) -> list[Target]:
    """The targets asked for (unknown names exit 2 listing the known ones), or by default every
    target whose build image is present (`present` names units: target-arch), and that offers
    `python` when one is asked for. May be empty: the caller says what to do then (make an
    image)."""
    if requested:
        return targets_mod.select(requested, catalogue)
    chosen = [t for t in catalogue if t.unit in present]
    if python is not None:
        chosen = [t for t in chosen if any(p.version == python for p in t.pythons)]
    return chosen


@dataclass(frozen=True)
class Skip:
    """A spec planned not to be built on a target, and why: its Requires-Python or its
    environment marker excludes the target's Python. Not a failure."""

    spec: Spec
    target: Target
    python: Python
    reason: str  # "markupsafe 3.0.2 requires Python >=3.9; centos-7 builds for 3.8"


def _label(spec: Spec) -> str:
    return f"{spec.name} {spec.version}" if spec.version else spec.requirement


def _admits(requires_python: str, python: Python) -> bool | None:
    """Whether a Requires-Python admits CPython X.Y; None when it cannot be read (pip ignores
    an invalid one too). The micro version is not known before the container runs, so X.Y is
    admitted when its first or a late micro release is."""
    try:
        allowed = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return None
    return any(allowed.contains(f"{python.version}.{micro}", prereleases=True) for micro in (0, 99))


def skip_reason(
    spec: Spec, target: Target, python: Python, requires_python: str | None = None
) -> str | None:
    """Why `spec` is not built on `target` for `python`, or None when it is built: its
    environment marker excludes that Python on Linux, or its Requires-Python does."""
    if spec.marker is not None:
        try:
            applies = spec.applies_to(python, target.arch)
        except InvalidMarker:  # pragma: no cover - markers are checked when parsed
            applies = True
        if not applies:
            return (
                f"{_label(spec)} is only for {spec.marker}; {target.name} builds for "
                f"{python.version} on Linux"
            )
    if requires_python and _admits(requires_python, python) is False:
        return (
            f"{_label(spec)} requires Python {requires_python}; {target.name} builds for "
            f"{python.version}"
        )
    return None


def skips(
    specs: Sequence[Spec],
    targets: Sequence[Target],
    python: str | None = None,
    requires_python: Mapping[Spec, str | None] | None = None,
) -> list[Skip]:
    """Every (spec, target) pair the plan leaves out, with its reason, in target then spec
    order. `requires_python` maps a spec to the Requires-Python its index page or sdist
    declares (a spec missing from it, or None, declares none)."""
    found = requires_python or {}
    result: list[Skip] = []
    for target in targets:
        chosen = target.python_for(python)
        for spec in specs:
            reason = skip_reason(spec, target, chosen, found.get(spec))
            if reason is not None:
                result.append(Skip(spec, target, chosen, reason))
    return result


def build_plan(
    specs: Sequence[Spec],
    targets: Sequence[Target],
    python: str | None = None,
    requires_python: Mapping[Spec, str | None] | None = None,
) -> list[BuildJob]:
    """One job per target, in target order, with the specs it builds: those whose marker and
    Requires-Python admit its Python (`skips` says why the others are left out). A target that
    lacks the asked-for Python exits 2; a job with nothing to build is left out."""
    skipped = {(s.spec, s.target.unit) for s in skips(specs, targets, python, requires_python)}
    jobs: list[BuildJob] = []
    for target in targets:
        chosen = target.python_for(python)
        applicable = tuple(s for s in specs if (s, target.unit) not in skipped)
        if applicable:
            jobs.append(BuildJob(target, chosen, applicable))
    return jobs


# ---------------------------------------------------------------- the order of the compiles

CostKey = tuple[str, str]  # (canonical project name, unit: target-arch)


def expected_compile_costs(
    sizes: Mapping[CostKey, int], recorded: Mapping[CostKey, float]
) -> dict[CostKey, float]:
    """How long each project's compile on each target is expected to take, only to order the
    compiles (the longest first, so that none starts last and runs alone while cores idle).

    The time an earlier run recorded for that project on that target, else the mean of its times
    on other targets; for a project never timed, its sdist's size times the median seconds per
    byte of those that were. With no time recorded for any of them, the sizes alone (in bytes:
    only the order counts)."""
    times: dict[str, list[float]] = {}
    for (project, _target), seconds in recorded.items():
        times.setdefault(project, []).append(seconds)
    known: dict[CostKey, float] = {}
    for key in sizes:
        if key in recorded:
            known[key] = recorded[key]
        elif key[0] in times:
            known[key] = sum(times[key[0]]) / len(times[key[0]])
    rates = sorted(known[key] / sizes[key] for key in known if sizes[key] > 0)
    if not rates:
        return {key: float(size) for key, size in sizes.items()}
    middle = len(rates) // 2
    rate = rates[middle] if len(rates) % 2 else (rates[middle - 1] + rates[middle]) / 2
    return {key: known.get(key, size * rate) for key, size in sizes.items()}


def slot_priority(expected: float, spec_index: int, target_index: int) -> tuple[float, int, int]:
    """A waiting compile's rank for a free build slot, lowest first: the longest expected, then
    the plan's order (specs as listed, then targets as planned)."""
    return (-expected, spec_index, target_index)


def compile_cores(cores: int, jobs: int, unfinished: int) -> int:
    """The cores a compile starting now may spread over: the machine's, within --jobs, shared by
    the run's builds not yet done (this one included). So only the last builds get more than
    one, when the others have left cores idle: `wheelfarm build lxml==5.3.0 --target debian-12`
    cold took 119 s on 2 cores instead of 163 s on one (--jobs 1; compile 106 s against 150 s),
    the same wheel byte for byte."""
    return max(1, min(cores, jobs) // max(1, unfinished))


def in_background(expected: Mapping[CostKey, float]) -> frozenset[CostKey]:
    """The builds expected to take under half as long as the run's longest. Their steps run at a
    lower CPU priority (nice) than the others in the same container, so that the long builds'
    chains (system packages, build environment, compile: the run's critical path) are not slowed
    by short ones, which take the CPU the long ones leave (while they wait on the network, the
    disk or a slot)."""
    if not expected:
        return frozenset()
    longest = max(expected.values())
    return frozenset(key for key, cost in expected.items() if cost < longest / 2)
