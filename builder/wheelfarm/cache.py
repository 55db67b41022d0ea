"""wheelfarm's own cache, in the user cache dir (platformdirs; honours XDG_CACHE_HOME).

    <cache>/builds/<key>/          one finished build: the wheel, its provenance record and
                                   its build log (build.log), restored with the wheel
    <cache>/images/<image id>.json what a build image is (its os-release, its rules file), so an
                                   unchanged rerun can compute its cache key without a container
    <cache>/pip                    pip's cache dir (its downloads), shared by every target:
                                   downloads are the same bytes everywhere
    <cache>/pip-wheels/<target>    mounted over that dir's `wheels/` in each container: pip's
                                   locally built wheels, never shared between targets, since a
                                   wheel pip built on one distro is wrong on another
    <cache>/uv/<target>            uv's cache for that target's build environments (uv keeps the
                                   wheels it builds from sdists there too, so it is per target)
    <cache>/discovered/<key>.json  what discovery installed for the build whose key (without
                                   it) is <key>, so a rerun computes the wheel's key at once
    <cache>/contents/<id>.gz       an apt target's reduced Contents index, by its Release files
    <cache>/compile-times.json     how long each project's last compile took per target, so the
                                   next run gives the longest a build slot first

A build's key is the hash of everything that made it (`build_key`); the same key means the same
wheel, so the build is skipped and no container starts. Entries are written atomically (a temp
directory renamed into place), so a crash leaves either the whole entry or none."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelfarm import __version__, fsutil
from wheelfarm.needs import KINDS, Missing
from wheelfarm.providers import Choice

APP_NAME = "wheelfarm"
PROVENANCE_NAME = "provenance.json"
LOG_NAME = "build.log"


def root() -> Path:
    from platformdirs import user_cache_path

    return Path(user_cache_path(APP_NAME, appauthor=False))


def pip_dir() -> Path:
    return root() / "pip"


def uv_dir(target: str) -> Path:
    """uv's cache for one target's build environments."""
    return root() / "uv" / target


def pip_wheels_dir(target: str) -> Path:
    return root() / "pip-wheels" / target


def build_key(
    *,
    image_id: str,
    sdist_sha256: str,
    recipe_digest: str,
    rules: Mapping[str, Any],
    build_env: Mapping[str, str],
    python: str,
    arch: str,
    version: str = __version__,
) -> str:
    """The hash of everything that makes a wheel: the build image and its architecture, the
    source, the recipe, the rules that decided its tag, the build environment, the Python and
    wheelfarm itself."""
    content = {
        "image_id": image_id,
        "arch": arch,
        "sdist_sha256": sdist_sha256,
        "recipe": recipe_digest,
        "rules": dict(rules),
        "build_env": dict(sorted(build_env.items())),
        "python": python,
        "wheelfarm": version,
    }
    return fsutil.digest(content)


@dataclass(frozen=True)
class CachedBuild:
    key: str
    wheel: Path
    provenance: dict[str, Any]


def _builds() -> Path:
    return root() / "builds"


def lookup(key: str) -> CachedBuild | None:
    """The finished build with this key, if the cache holds a complete one."""
    entry = _builds() / key
    try:
        provenance = json.loads((entry / PROVENANCE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    wheel = entry / str(provenance.get("wheel", ""))
    if not isinstance(provenance, dict) or not wheel.is_file() or wheel.parent != entry:
        return None
    return CachedBuild(key, wheel, provenance)


def store(key: str, wheel: Path, provenance: Mapping[str, Any]) -> CachedBuild:
    """Keep a finished build: the wheel (a hard link when on the same file system) and its
    provenance, written to a temp directory and renamed into place."""
    with fsutil.replacing_dir(_builds() / key) as staging:
        fsutil.link_or_copy(wheel, staging / wheel.name)
        (staging / PROVENANCE_NAME).write_text(
            json.dumps(dict(provenance), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    found = lookup(key)
    if found is None:  # pragma: no cover - just written
        raise OSError(f"cache entry {key} vanished")
    return found


def store_log(key: str, log: Path) -> None:
    """Keep a finished build's log in its entry (atomically), so that a wheelhouse the wheel is
    restored into gets the log its record names."""
    entry = _builds() / key
    if entry.is_dir() and log.is_file():
        fsutil.place_copy(log, entry / LOG_NAME)


def log_of(key: str) -> Path | None:
    path = _builds() / key / LOG_NAME
    return path if path.is_file() else None


def image_facts(image_id: str) -> dict[str, Any] | None:
    """What was learnt about an image the first time a container ran from it."""
    path = root() / "images" / f"{image_id.replace(':', '-')}.json"
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


def store_image_facts(image_id: str, facts: Mapping[str, Any]) -> None:
    fsutil.write_json_atomic(root() / "images" / f"{image_id.replace(':', '-')}.json", facts)


def _compile_times_path() -> Path:
    return root() / "compile-times.json"


def compile_times() -> dict[tuple[str, str], float]:
    """(project, target) → seconds its last compile took, as `store_compile_times` kept them."""
    try:
        data = json.loads(_compile_times_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[tuple[str, str], float] = {}
    if isinstance(data, dict):
        for target, projects in data.items():
            if isinstance(projects, dict):
                for project, seconds in projects.items():
                    if isinstance(seconds, (int, float)) and seconds >= 0:
                        found[(str(project), str(target))] = float(seconds)
    return found


def store_compile_times(times: Mapping[tuple[str, str], float]) -> None:
    """Remember how long compiles took (the next run gives the longest a build slot first).
    Merged into what is kept; two runs writing at once may lose one's times, which only costs
    an estimate."""
    merged = compile_times()
    merged.update(times)
    data: dict[str, dict[str, float]] = {}
    for (project, target), seconds in sorted(merged.items()):
        data.setdefault(target, {})[project] = seconds
    fsutil.write_json_atomic(_compile_times_path(), data)


def _discovered_path(key: str) -> Path:
    return root() / "discovered" / f"{key}.json"


def store_discovered(key: str, found: Sequence[Choice], pinned: Sequence[str] = ()) -> None:
    """What discovery installed for the build whose key without it is `key`, and the pins of
    the release-day retry when it made that build pass."""
    data = [
        {
            "kind": c.missing.kind,
            "name": c.missing.name,
            "package": c.package,
            "why": c.why,
            "of": list(c.candidates),
        }
        for c in found
    ]
    fsutil.write_json_atomic(_discovered_path(key), {"found": data, "pinned": list(pinned)})


@dataclass(frozen=True)
class Discovered:
    found: tuple[Choice, ...] = ()
    pinned: tuple[str, ...] = ()


def discovered(key: str) -> Discovered:
    """What store_discovered kept for `key` (nothing when it kept nothing or cannot be read)."""
    try:
        data = json.loads(_discovered_path(key).read_text(encoding="utf-8"))
        pinned = tuple(str(p) for p in data.get("pinned", []))
        found = []
        for item in data["found"]:
            kind = item["kind"]
            if kind not in KINDS:
                return Discovered()
            missing = Missing(kind, str(item["name"]))
            of = tuple(str(o) for o in item["of"])
            found.append(Choice(missing, str(item["package"]), of, str(item["why"])))
        return Discovered(tuple(found), pinned)
    except (OSError, ValueError, KeyError, TypeError):
        return Discovered()
