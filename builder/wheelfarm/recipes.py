"""Recipes: what a project's build needs from each distro, and how to check the result. Pure: a
TOML file in, a frozen Recipe out.

`recipes/<project>.toml` (the file name is the project name, compared canonically):

    [build.packages]          # installed in the build container before building
    apt = ["libxml2-dev", "libxslt1-dev", "pkg-config"]
    apk = ["libxml2-dev", "libxslt-dev", "pkgconf"]
    dnf = ["libxml2-devel", "libxslt-devel"]
    yum = ["libxml2-devel", "libxslt-devel"]
    "debian-11" = ["..."]     # a target name replaces its family's list for that target

    [build.env]               # environment variables for the build
    STATIC_DEPS = "false"

    [[build.constraints]]     # pins for the build requirements (uv/pip constraints)
    versions = "<3.13"        # the project versions they apply to (PEP 440; all if absent)
    requires = ["cython<3.1"]

    [runtime.packages]        # what a consumer installs to use the wheel (same keys as above)
    apt = ["libxml2", "libxslt1.1"]

    [verify]
    imports = ["lxml", "lxml.etree"]      # modules that must import
    test = "python -c 'import lxml.etree'" # a shell command run after the imports

Every table and key is optional. A project without a recipe is built with no extra packages. Any
unknown table or key, or a value of the wrong type, fails the recipe: exit 2 naming the file and
the key."""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from wheelfarm import fsutil, resources, targets
from wheelfarm.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

_PACKAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._:()/-]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_LAYOUT = {
    "build": {"packages", "env", "constraints"},
    "runtime": {"packages"},
    "verify": {"imports", "test"},
}
PackageLists = tuple[tuple[str, tuple[str, ...]], ...]
Constraints = tuple[tuple[str, tuple[str, ...]], ...]  # (versions specifier, requirements)


@dataclass(frozen=True)
class Recipe:
    project: str  # canonical name
    source: str | None = None  # the file it came from; None when the project has none
    build_packages: PackageLists = ()  # (family or target name, packages)
    build_env: tuple[tuple[str, str], ...] = ()
    runtime_packages: PackageLists = ()
    imports: tuple[str, ...] = ()
    test: str | None = None
    constraints: Constraints = ()

    def constraints_for(self, version: str | None) -> tuple[str, ...]:
        """The build-requirement constraints that apply to this version of the project."""
        found: list[str] = []
        for versions, requires in self.constraints:
            if not versions or (
                version is not None and SpecifierSet(versions).contains(version, prereleases=True)
            ):
                found += requires
        return tuple(dict.fromkeys(found))

    def with_constraints(self, versions: str, requires: tuple[str, ...]) -> Recipe:
        if not requires:
            return self
        kept = tuple(c for c in self.constraints if c[0] != versions)
        return dataclasses.replace(self, constraints=(*kept, (versions, requires)))

    def packages_for(self, target: targets.Target) -> tuple[str, ...]:
        """Build packages for a target: its own list if the recipe has one, else its family's."""
        return _pick(self.build_packages, target)

    def runtime_for(self, target: targets.Target) -> tuple[str, ...]:
        return _pick(self.runtime_packages, target)

    def with_packages(self, target: targets.Target, packages: tuple[str, ...]) -> Recipe:
        """This recipe with `packages` as the build packages of one target (what discovery
        found beside the recipe's own); itself when that changes nothing."""
        if self.packages_for(target) == packages:
            return self
        lists = dict(self.build_packages)
        lists[target.name] = packages
        return dataclasses.replace(self, build_packages=tuple(sorted(lists.items())))

    @property
    def env(self) -> dict[str, str]:
        return dict(self.build_env)

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "source": self.source,
            "build": {
                "packages": {k: list(v) for k, v in self.build_packages},
                "env": dict(self.build_env),
                **(
                    {"constraints": [list(c) for c in self.constraints]} if self.constraints else {}
                ),
            },
            "runtime": {"packages": {k: list(v) for k, v in self.runtime_packages}},
            "verify": {"imports": list(self.imports), "test": self.test},
        }

    @property
    def digest(self) -> str:
        """Hash of everything the recipe says (not of its file: comments do not count)."""
        content = self.as_json()
        del content["source"]
        return fsutil.digest(content)

    def build_digest(self, target: targets.Target, version: str | None = None) -> str:
        """Hash of what changes a build on `target`: its packages, the build env and the
        constraints for this version. Editing another family's list or the verify table does
        not rebuild this target's wheel."""
        content: dict[str, Any] = {"packages": list(self.packages_for(target)), "env": self.env}
        constraints = self.constraints_for(version)
        if constraints:
            content["constraints"] = list(constraints)
        return fsutil.digest(content)


def _pick(lists: PackageLists, target: targets.Target) -> tuple[str, ...]:
    found = dict(lists)
    if target.name in found:
        return found[target.name]
    return found.get(target.family, ())


def _bad(origin: str, key: str, problem: str) -> ConfigError:
    return ConfigError(
        f"{origin}: key {key!r}: {problem}",
        hint="the recipe format is in the README (Recipes); "
        f"shipped examples are in {resources.recipes_dir()}",
    )


def _string_list(origin: str, key: str, value: object, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad(origin, key, f"must be a list of strings, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, str) or not pattern.match(item):
            raise _bad(origin, key, f"{item!r} is not a valid entry")
    return tuple(value)


def _package_lists(origin: str, key: str, value: object) -> PackageLists:
    if not isinstance(value, dict):
        raise _bad(origin, key, f"must be a table keyed by family, got {type(value).__name__}")
    known = set(targets.FAMILIES) | set(targets.names())
    lists: list[tuple[str, tuple[str, ...]]] = []
    for family, packages in value.items():
        where = f"{key}.{family}"
        if family not in known:
            raise _bad(
                origin,
                where,
                f"unknown family or target (families: {', '.join(targets.FAMILIES)}; "
                "or a target name)",
            )
        lists.append((family, _string_list(origin, where, packages, _PACKAGE)))
    return tuple(sorted(lists))


def parse(text: str, project: str, origin: str) -> Recipe:
    """Parse a recipe's text; any problem fails it, naming `origin` and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML ({exc})") from None
    for table, value in data.items():
        if table not in _LAYOUT:
            raise _bad(origin, table, f"unknown table (known: {', '.join(sorted(_LAYOUT))})")
        if not isinstance(value, dict):
            raise _bad(origin, table, "must be a table")
        for key in value:
            if key not in _LAYOUT[table]:
                known = ", ".join(sorted(_LAYOUT[table]))
                raise _bad(origin, f"{table}.{key}", f"unknown key (known: {known})")
    build = data.get("build", {})
    runtime = data.get("runtime", {})
    verify = data.get("verify", {})

    env_raw = build.get("env", {})
    if not isinstance(env_raw, dict):
        raise _bad(origin, "build.env", 'must be a table of NAME = "value"')
    env: list[tuple[str, str]] = []
    for name, value in env_raw.items():
        if not _ENV_NAME.match(name):
            raise _bad(origin, f"build.env.{name}", "not a valid environment variable name")
        if not isinstance(value, str):
            raise _bad(origin, f"build.env.{name}", "value must be a string")
        env.append((name, value))

    constraints = _constraints(origin, build.get("constraints", []))
    test = verify.get("test")
    if test is not None and (not isinstance(test, str) or not test.strip()):
        raise _bad(origin, "verify.test", "must be a non-empty string (a shell command)")
    return Recipe(
        project=str(canonicalize_name(project)),
        source=origin,
        build_packages=_package_lists(origin, "build.packages", build.get("packages", {})),
        build_env=tuple(sorted(env)),
        runtime_packages=_package_lists(origin, "runtime.packages", runtime.get("packages", {})),
        imports=_string_list(origin, "verify.imports", verify.get("imports", []), _MODULE),
        test=test,
        constraints=constraints,
    )


def _constraints(origin: str, value: object) -> Constraints:
    """`[build] constraints = ["cython<3.1"]` (every version) or `[[build.constraints]]`
    tables of `versions` (a PEP 440 specifier set) and `requires`."""
    if not isinstance(value, list):
        raise _bad(origin, "build.constraints", "must be a list of requirements or tables")
    found: list[tuple[str, tuple[str, ...]]] = []
    plain = [v for v in value if isinstance(v, str)]
    if plain:
        found.append(("", tuple(_requirement(origin, "build.constraints", r) for r in plain)))
    for number, entry in enumerate(v for v in value if not isinstance(v, str)):
        where = f"build.constraints[{number}]"
        if not isinstance(entry, dict) or set(entry) - {"versions", "requires"}:
            raise _bad(origin, where, "must be a table of `versions` and `requires`")
        versions = entry.get("versions", "")
        try:
            SpecifierSet(versions)
        except (InvalidSpecifier, TypeError):
            raise _bad(
                origin, f"{where}.versions", f"{versions!r} is no version specifier"
            ) from None
        requires = entry.get("requires")
        if not isinstance(requires, list) or not requires:
            raise _bad(origin, f"{where}.requires", "must be a non-empty list of requirements")
        found.append((versions, tuple(_requirement(origin, where, r) for r in requires)))
    return tuple(found)


def _requirement(origin: str, where: str, text: object) -> str:
    try:
        return str(Requirement(str(text))) if isinstance(text, str) else _fail(text)
    except InvalidRequirement:
        raise _bad(origin, where, f"{text!r} is not a requirement (PEP 508)") from None


def _fail(text: object) -> str:
    raise InvalidRequirement(f"not a string: {text!r}")


def find(project: str, directory: Path) -> Path | None:
    """The recipe file for `project` in `directory` (file names compared canonically)."""
    wanted = canonicalize_name(project)
    exact = directory / f"{wanted}.toml"
    if exact.is_file():
        return exact
    for candidate in sorted(directory.glob("*.toml")):
        if canonicalize_name(candidate.stem) == wanted:
            return candidate
    return None


def load(project: str, recipes_dir: Path | None = None, *, shipped: bool = True) -> Recipe:
    """The project's recipe: from `recipes_dir` (--recipes) first, else the shipped ones
    (unless shipped=False, --no-shipped-recipes); a project with neither gets an empty recipe
    (build with no extra packages, and discovery finds what it lacks)."""
    if recipes_dir is not None and not recipes_dir.is_dir():
        raise ConfigError(f"recipes directory {recipes_dir} does not exist")
    for directory in (recipes_dir, resources.recipes_dir() if shipped else None):
        if directory is None or not directory.is_dir():
            continue
        path = find(project, directory)
        if path is not None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read recipe {path}: {exc}") from None
            return parse(text, project, str(path))
    return Recipe(project=str(canonicalize_name(project)))
