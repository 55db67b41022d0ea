"""PEP 725: what an sdist's `[external]` table in pyproject.toml says it needs from the system,
mapped to each family's packages the way PEP 804's mappings do, from data shipped with
wheelfarm (data/external-mappings.json) and the project's own (`external-mappings` in
[tool.wheelfarm], a file of the same shape whose entries win). Nothing is fetched at run time.

`build-requires` and `host-requires` give build packages (installed before the first attempt,
part of the cache key like a recipe's); `dependencies` are what the wheel needs at run time,
recorded but not installed. An entry maps an identifier to packages per family
(`{"apt": ["libssl-dev"], ...}`), or to things to find (`{"find": ["program:cargo"]}`: a
compiler or toolchain, looked up in the target's own package index like a missing program, so
Debian 12's cargo comes from cargo-web). An identifier no mapping knows is logged, and left to
discovery. Pure but for reading the archive and the mapping files."""

from __future__ import annotations

import json
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelfarm import recipes, targets
from wheelfarm.errors import ConfigError
from wheelfarm.needs import KINDS, Missing

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

SHIPPED = Path(__file__).parent / "data" / "external-mappings.json"
BUILD_KEYS = ("build-requires", "host-requires")
Mappings = dict[str, dict[str, tuple[str, ...]]]


@dataclass(frozen=True)
class External:
    """An sdist's [external] table: identifiers for the build, and for run time."""

    build: tuple[str, ...] = ()
    runtime: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mapped:
    packages: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (family, packages)
    find: tuple[Missing, ...] = ()
    unmapped: tuple[str, ...] = ()


def _pyproject(archive: Path, top: str) -> str | None:
    name = f"{top}/pyproject.toml"
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                return z.read(name).decode("utf-8") if name in z.namelist() else None
        with tarfile.open(archive) as t:
            member = t.getmember(name)
            handle = t.extractfile(member)
            return handle.read().decode("utf-8") if handle is not None else None
    except (KeyError, OSError, tarfile.TarError, zipfile.BadZipFile, UnicodeDecodeError):
        return None


def _identifiers(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def read(archive: Path, top: str) -> External:
    """The [external] table of the sdist's pyproject.toml (empty without one)."""
    text = _pyproject(archive, top)
    if text is None:
        return External()
    try:
        table = tomllib.loads(text).get("external", {})
    except tomllib.TOMLDecodeError:
        return External()
    if not isinstance(table, dict):
        return External()
    build = [i for key in BUILD_KEYS for i in _identifiers(table, key)]
    return External(tuple(dict.fromkeys(build)), tuple(_identifiers(table, "dependencies")))


def bare(identifier: str) -> str:
    """A PEP 725 identifier without its version or qualifiers: `pkg:generic/openssl@>=3` →
    `pkg:generic/openssl`."""
    return identifier.split("@", 1)[0].split("?", 1)[0].split("#", 1)[0].strip().lower()


def _load(path: Path) -> Mappings:
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the external mappings {where}: {exc}") from None
    entries = data.get("mappings") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"{where}: expected an object with a `mappings` object")
    found: Mappings = {}
    for identifier, entry in entries.items():
        if not isinstance(entry, dict) or not all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in entry.values()
        ):
            raise ConfigError(f"{where}: key {identifier!r}: expected family → list of names")
        unknown = set(entry) - {*targets.FAMILIES, "find"}
        if unknown:
            raise ConfigError(f"{where}: key {identifier!r}: unknown {', '.join(sorted(unknown))}")
        found[bare(identifier)] = {k: tuple(v) for k, v in entry.items()}
    return found


def mappings(user: Path | None = None) -> Mappings:
    """The shipped mappings, with the user's entries over them."""
    found = _load(SHIPPED)
    if user is not None:
        found.update(_load(user))
    return found


def _find(identifier: str, thing: str) -> Missing:
    kind, _, name = thing.partition(":")
    if kind not in KINDS or not name:
        raise ConfigError(f"external mapping {identifier!r}: bad find entry {thing!r}")
    return Missing(kind, name)


def map_external(found: External, table: Mappings) -> Mapped:
    """Each build identifier's packages per family, or what to find; the unknown ones."""
    lists: dict[str, list[str]] = {family: [] for family in targets.FAMILIES}
    find: list[Missing] = []
    unmapped: list[str] = []
    for identifier in found.build:
        entry = table.get(bare(identifier))
        if entry is None:
            unmapped.append(identifier)
            continue
        find += [_find(identifier, thing) for thing in entry.get("find", ())]
        for family in targets.FAMILIES:
            lists[family] += entry.get(family, ())
    packages = tuple((f, tuple(dict.fromkeys(p))) for f, p in sorted(lists.items()) if p)
    return Mapped(packages, tuple(dict.fromkeys(find)), tuple(unmapped))


def apply(recipe: recipes.Recipe, mapped: Mapped) -> recipes.Recipe:
    """The recipe with the mapped packages after its own, for every family and for every target
    list it has (a target's own list replaces its family's, so it gets its family's mapping)."""
    if not mapped.packages:
        return recipe
    extra = dict(mapped.packages)
    lists = dict(recipe.build_packages)
    for key in set(lists) | set(extra):
        family = key if key in targets.FAMILIES else targets.get(key).family
        lists[key] = tuple(dict.fromkeys((*lists.get(key, ()), *extra.get(family, ()))))
    return recipes.Recipe(
        project=recipe.project,
        source=recipe.source,
        build_packages=tuple(sorted((k, v) for k, v in lists.items() if v)),
        build_env=recipe.build_env,
        runtime_packages=recipe.runtime_packages,
        imports=recipe.imports,
        test=recipe.test,
    )
