"""The recipes discovery found: `<wheelhouse>/.wheelfarm/recipes/<project>.toml`, one file per
project that every target's discovery merges into.

What a target found: its build packages (the recipe's and discovery's), the runtime packages
its wheel's ELF analysis named (Requires-External), the modules the wheel holds (imports to
verify) and the recipe's own env and test. Merging, per list: a family with no list yet gets this
target's; a target whose list equals its family's adds nothing; one whose list differs gets a
list under its own name (`"debian-11" = [...]`). Imports are the union.

The file is a recipe (recipes.py reads it): `wheelfarm build --recipes <that folder>
--no-discover` rebuilds what discovery built. Written atomically; tomllib only reads, so the
small writer here writes the recipe schema and nothing else."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from wheelfarm import fsutil, recipes, runner
from wheelfarm.recipes import Constraints, PackageLists, Recipe
from wheelfarm.targets import Target

RECIPES = "recipes"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def folder(wheelhouse: Path) -> Path:
    return wheelhouse / runner.META / RECIPES


def wheel_imports(wheel: Path) -> tuple[str, ...]:
    """The top-level modules a wheel installs (packages and extension or plain modules), those
    whose names do not start with `_` (private helpers)."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            top, _, rest = member.partition("/")
            if top.endswith((".dist-info", ".data")):
                continue
            if rest and rest.split("/")[-1] == "__init__.py" and rest.count("/") == 0:
                names.add(top)
            elif not rest:
                stem = top.split(".", 1)[0]
                if top.endswith((".py", ".so")) and _IDENTIFIER.match(stem):
                    names.add(stem)
    return tuple(sorted(n for n in names if not n.startswith("_")))


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _strings(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def render(recipe: Recipe, heading: str) -> str:
    """A recipe as TOML, in the layout recipes.py documents."""
    out = [f"# {line}".rstrip() for line in heading.splitlines()]
    tables: list[tuple[str, list[str]]] = [
        ("build.packages", [f"{_key(k)} = {_strings(v)}" for k, v in recipe.build_packages]),
        ("build.env", [f"{_key(k)} = {json.dumps(v)}" for k, v in recipe.build_env]),
        ("runtime.packages", [f"{_key(k)} = {_strings(v)}" for k, v in recipe.runtime_packages]),
    ]
    for number, (versions, requires) in enumerate(recipe.constraints):
        lines = [f"versions = {json.dumps(versions)}"] if versions else []
        # An array of tables: `[[build.constraints]]`, after [build.env].
        tables.insert(
            2 + number, ("[build.constraints]", [*lines, f"requires = {_strings(requires)}"])
        )
    verify = [f"imports = {_strings(recipe.imports)}"] if recipe.imports else []
    if recipe.test:
        verify.append(f"test = {json.dumps(recipe.test)}")
    tables.append(("verify", verify))
    for name, lines in tables:
        if lines:
            out += ["", f"[{name}]", *lines]
    return "\n".join(out) + "\n"


def _merge_lists(lists: PackageLists, target: Target, packages: Sequence[str]) -> PackageLists:
    found = dict(lists)
    mine = tuple(packages)
    if target.family not in found:
        found[target.family] = mine
        found.pop(target.name, None)
    elif found[target.family] == mine:
        found.pop(target.name, None)
    else:
        found[target.name] = mine
    return tuple(sorted((k, v) for k, v in found.items() if v or k == target.name))


def merged(existing: Recipe, target: Target, found: Mapping[str, Any]) -> Recipe:
    """`existing` (what other targets wrote) with what this target found."""
    return Recipe(
        project=existing.project,
        source=existing.source,
        build_packages=_merge_lists(existing.build_packages, target, found["build"]),
        build_env=existing.build_env or tuple(sorted(found["env"].items())),
        runtime_packages=_merge_lists(existing.runtime_packages, target, found["runtime"]),
        imports=tuple(dict.fromkeys((*existing.imports, *found["imports"]))),
        test=existing.test or found["test"],
        constraints=_merge_constraints(
            existing.constraints, found["constraints"], found.get("python")
        ),
    )


def _merge_constraints(
    existing: Constraints, found: Constraints, python: str | None
) -> Constraints:
    """Per version scope, the pins every target agrees on stay plain; where this target's
    differ (a release-day resolution differs by Python), each side gets a python_version marker,
    so that every target rebuilds with the pins that worked for it."""
    merged = dict(existing)
    for scope, mine in found:
        theirs = merged.get(scope)
        if theirs is None or python is None:
            merged.setdefault(scope, mine)
        else:
            merged[scope] = _merge_pins(theirs, mine, python)
    return tuple(merged.items())


def _merge_pins(theirs: tuple[str, ...], mine: tuple[str, ...], python: str) -> tuple[str, ...]:
    here = Marker(f'python_version == "{python}"')
    parsed = [(text, Requirement(text)) for text in theirs]
    applying = sorted(_plain(r) for _, r in parsed if _applies(r, python))
    if applying == sorted(mine):
        return theirs  # what applies to this Python is what it found: nothing to change
    kept: list[str] = []
    for text, requirement in parsed:
        if not _applies(requirement, python) or (requirement.marker is None and text in mine):
            kept.append(text)
        elif requirement.marker != here:  # this Python's own pins are replaced below
            kept.append(_with_marker(requirement, f'python_version != "{python}"'))
    plain = {text for text in kept if Requirement(text).marker is None}
    ours = [_with_marker(Requirement(r), str(here)) for r in mine if r not in plain]
    return (*kept, *ours)


def _applies(requirement: Requirement, python: str) -> bool:
    marker = requirement.marker
    return marker is None or marker.evaluate({"python_version": python})


def _plain(requirement: Requirement) -> str:
    """The requirement without its marker (the argument is left as it is)."""
    copy = Requirement(str(requirement))
    copy.marker = None
    return str(copy)


def _with_marker(requirement: Requirement, marker: str) -> str:
    """The requirement with `marker` added to its own (the argument is left as it is)."""
    copy = Requirement(str(requirement))
    old = copy.marker
    copy.marker = Marker(f"({old}) and {marker}" if old is not None else marker)
    return str(copy)


def _constraints(recipe: Recipe, record: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """The recipe's own constraints, and the pins that worked for this version."""
    found = list(recipe.constraints)
    pinned = (record.get("discovery") or {}).get("pinned") or []
    version = (record.get("spec") or "").partition("==")[2] or None
    if pinned and version:
        found.append((f"=={version}", tuple(pinned)))
    return found


def merge(
    wheelhouse: Path, target: Target, record: Mapping[str, Any], recipe: Recipe, wheel: Path
) -> Path:
    """Merge what this target's build found (its provenance record, the recipe it started from,
    the wheel) into the project's written recipe; returns the file's path."""
    project = str(canonicalize_name(recipe.project))
    path = folder(wheelhouse) / f"{project}.toml"
    existing = Recipe(project=project)
    if path.is_file():
        existing = recipes.parse(path.read_text(encoding="utf-8"), project, str(path))
    found = {
        "build": list(record["recipe"]["packages"]),
        "runtime": list(record.get("requires_external") or []),
        "imports": [*recipe.imports, *wheel_imports(wheel)],
        "env": recipe.env,
        "test": recipe.test,
        "constraints": _constraints(recipe, record),
        "python": record.get("python"),
    }
    heading = (
        f"The recipe wheelfarm's discovery found for {project}, merged across targets.\n"
        f"Rebuild with: wheelfarm build --recipes {path.parent} --no-discover ..."
    )
    fsutil.write_text_atomic(path, render(merged(existing, target, found), heading))
    return path


def merge_written(source: Path, into: Path, target: Target) -> list[Path]:
    """Merge the recipes one target's build wrote (`source`, a .wheelfarm/recipes folder) into
    `into`, as that target's build would have merged them there: what the GitHub workflow's
    index job does with each target's wheelhouse, in plan order."""
    written: list[Path] = []
    for path in sorted(source.glob("*.toml")):
        found_recipe = recipes.parse(path.read_text(encoding="utf-8"), path.stem, str(path))
        destination = into / path.name
        existing = Recipe(project=found_recipe.project)
        if destination.is_file():
            text = destination.read_text(encoding="utf-8")
            existing = recipes.parse(text, path.stem, str(destination))
        found = {
            "build": found_recipe.packages_for(target),
            "runtime": found_recipe.runtime_for(target),
            "imports": found_recipe.imports,
            "env": found_recipe.env,
            "test": found_recipe.test,
            "constraints": list(found_recipe.constraints),
            # The Python its pins worked for, where the target has only one to build for.
            "python": target.pythons[0].version if len(target.pythons) == 1 else None,
        }
        heading = (
            f"The recipe wheelfarm's discovery found for {found_recipe.project}, merged across "
            f"targets.\nRebuild with: wheelfarm build --recipes <this folder> --no-discover ..."
        )
        fsutil.write_text_atomic(destination, render(merged(existing, target, found), heading))
        written.append(destination)
    return written
