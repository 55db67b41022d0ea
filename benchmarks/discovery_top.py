"""How far zero-config discovery gets on the projects people actually use: take the N highest-ranked
projects of a ranked PyPI list that have compiled code, build each one's latest sdist with
`wheelfarm build --no-shipped-recipes` (no recipe at all, unless the user has one) on the given
targets, failures kept, and print per target how many built and verified, how many build attempts
(discovery rounds) each needed, what discovery installed, and the time it added.

"Has compiled code" is read off the index, not guessed: the project's newest release with an sdist
also ships a wheel for a platform (not `-any`). The index is the host's own (pip's configuration
and environment, as wheelfarm reads it everywhere).

The ranked list is a tab-separated file with a header line naming at least the columns `name` and
one whose name starts with `rank` (empty or 0 for unranked), such as the package list of this
workplace's `env` entry.

The time discovery added, per spec: when its last attempt began, from its log (0 for a build that
passed at once): the failed attempts (and their waits for a build slot), their diagnosis and
traces, and the package lookups and installs. The build's JSON report is kept as report.json
beside the wheelhouse. Prints figures only; asserts nothing.

Usage: .venv/bin/python benchmarks/discovery_top.py --list FILE [--count 40] [--target debian-12]...
                                    [--jobs N] [--timeout S] [--dir DIR] [--skip PROJECT]...
                                    [--only PROJECT]... [--list-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypi_simple
import requests
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelfarm import fetch, targets

WHEELFARM = Path(sys.executable).parent / "wheelfarm"
_ROUND = re.compile(r"^==> \[\s*(?P<at>[\d.]+)s\] round (?P<number>\d+) of at most", re.M)


@dataclass(frozen=True)
class Pick:
    rank: int
    project: str
    version: str


def ranked(path: Path) -> Iterator[tuple[int, str]]:
    """(rank, name) of every ranked project in the list, best first."""
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f, delimiter="\t")
        rank_column = next(c for c in reader.fieldnames or () if c.startswith("rank"))
        rows = []
        for row in reader:
            try:
                rank = int(row[rank_column] or 0)
            except ValueError:
                continue
            if rank > 0:
                rows.append((rank, row["name"]))
    yield from sorted(rows)


def _newest_compiled(
    page: pypi_simple.ProjectPage, pythons: Sequence[str], *, compiled: bool = True
) -> str | None:
    """For a project whose newest release with an sdist also has a platform wheel (it has
    compiled code): its newest sdist whose Requires-Python admits every one of `pythons`, as a
    lock file for those Pythons would pin it (numpy 2.5 needs Python 3.12; debian-12 has 3.11)."""
    by_version: dict[Version, set[str]] = {}
    admits: dict[Version, bool] = {}
    for package in page.packages:
        if package.version is None or package.is_yanked:
            continue
        try:
            version = Version(package.version)
        except InvalidVersion:
            continue
        if version.is_prerelease:
            continue
        kinds = by_version.setdefault(version, set())
        if package.package_type == "sdist":
            kinds.add("sdist")
            try:
                wanted = SpecifierSet(package.requires_python or "")
            except InvalidSpecifier:  # pip ignores what it cannot read
                wanted = SpecifierSet()
            admits[version] = all(wanted.contains(p, prereleases=True) for p in pythons)
        elif package.package_type == "wheel" and not package.filename.endswith("-any.whl"):
            kinds.add("platform wheel")
    with_sdist = [v for v, kinds in by_version.items() if "sdist" in kinds]
    if not with_sdist:
        return None
    if compiled and "platform wheel" not in by_version[max(with_sdist)]:
        return None
    usable = [v for v in with_sdist if admits.get(v)]
    return str(max(usable)) if usable else None


def pick(
    list_file: Path, count: int, skip: set[str], pythons: Sequence[str], only: set[str]
) -> list[Pick]:
    """The `count` best-ranked projects with compiled code, or, with `only`, those projects
    (compiled code or not: a recipe's project may ship no wheels at all)."""
    settings = fetch.index_settings()
    session = requests.Session()
    if settings.cert:
        session.verify = settings.cert
    client = pypi_simple.PyPISimple(endpoint=settings.indexes[0], session=session)
    picked: list[Pick] = []
    for rank, name in ranked(list_file):
        if canonicalize_name(name) in skip or (only and canonicalize_name(name) not in only):
            continue
        try:
            page = client.get_project_page(name, timeout=30)
            version = _newest_compiled(page, pythons, compiled=not only)
        except (pypi_simple.NoSuchProjectError, requests.RequestException):
            continue
        if version is not None:
            picked.append(Pick(rank, name, version))
            print(f"  #{rank:<5} {name} {version}", flush=True)
            if len(picked) == (len(only) if only else count):
                break
    return picked


def _record_of(wheelhouse: Path, wheel: str) -> dict[str, Any]:
    path = wheelhouse / ".wheelfarm" / f"{wheel}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _rounds_in_log(wheelhouse: Path, log: str | None) -> tuple[int, float]:
    """How many attempts the build's log shows, and when (seconds into the build) the last one
    began: what the earlier attempts, their diagnosis and the lookups and installs cost."""
    if not log or not (wheelhouse / log).is_file():
        return 1, 0.0
    found = list(_ROUND.finditer((wheelhouse / log).read_text(errors="replace")))
    if not found:
        return 1, 0.0
    return int(found[-1]["number"]), float(found[-1]["at"])


def build(
    picks: list[Pick], targets: list[str], jobs: str | None, timeout: str | None, work: Path
) -> dict[str, Any]:
    wheelhouse = work / "wheelhouse"
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"))
    argv = [
        str(WHEELFARM),
        "build",
        "--json",
        "--no-shipped-recipes",
        "--wheelhouse",
        str(wheelhouse),
    ]
    argv += [f"--target={t}" for t in targets] + ([f"--jobs={jobs}"] if jobs else [])
    argv += [f"--timeout={timeout}"] if timeout else []
    argv += [f"{p.project}=={p.version}" for p in picks]
    started = time.monotonic()
    done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, check=False)
    print(f"wheelfarm build exited {done.returncode} after {time.monotonic() - started:.0f} s")
    (work / "report.json").write_text(done.stdout or "{}", encoding="utf-8")
    return {"report": json.loads(done.stdout or "{}"), "wheelhouse": wheelhouse}


def _row(wheelhouse: Path, result: dict[str, Any], verified: set[tuple[Any, Any]]) -> str:
    status = result["status"]
    spec = f"  {result['spec']:<34}"
    if status == "skipped":
        return f"{spec} skipped   ({result.get('note') or ''})"
    record = _record_of(wheelhouse, result["wheel"]) if result.get("wheel") else {}
    discovery = record.get("discovery") or {}
    rounds, added = _rounds_in_log(wheelhouse, result.get("log"))
    if status == "failed":
        mark = "FAILED"
    else:
        mark = "verified" if (result.get("wheel"), result["target"]) in verified else "unverified"
    installed = ", ".join(discovery.get("installed", [])) or "-"
    why = f"  ({(result.get('error') or '')[:100]})" if status == "failed" else ""
    return f"{spec} {mark:<10} attempts {rounds}  +{added:5.0f} s  {installed}{why}"


def table(outcome: dict[str, Any]) -> None:
    wheelhouse: Path = outcome["wheelhouse"]
    report = outcome["report"]
    # A wheel counts as verified when it passed in its own target's runtime image.
    verified = {
        (c.get("wheel"), c.get("target"))
        for c in report.get("verify", {}).get("results", [])
        if c.get("status") == "pass"
    }
    per_target: dict[str, list[dict[str, Any]]] = {}
    for result in report.get("results", []):
        per_target.setdefault(result["target"], []).append(result)
    for target, results in per_target.items():
        built = [r for r in results if r["status"] not in ("failed", "skipped")]
        passed = [r for r in built if (r.get("wheel"), target) in verified]
        skipped = sum(r["status"] == "skipped" for r in results)
        print(
            f"\n{target}: {len(built)} built, {len(passed)} verified, "
            f"{len(results) - len(built) - skipped} failed, {skipped} not for its Python"
        )
        print("\n".join(_row(wheelhouse, r, verified) for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", type=Path, required=True, help="ranked PyPI list (TSV)")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--target", action="append", default=[])
    parser.add_argument("--jobs")
    parser.add_argument("--timeout", help="give up on one wheel's build after S seconds")
    parser.add_argument(
        "--dir",
        type=Path,
        help="where the wheelhouse (with the recipes discovery wrote) and the caches go, and stay"
        " (default: a temp dir, removed at the end)",
    )
    parser.add_argument("--list-only", action="store_true", help="print the picks, build nothing")
    parser.add_argument("--skip", action="append", default=[], help="a project to leave out")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="build this project of the list instead of the best-ranked (repeat; --count then"
        " does nothing): to have discovery write recipes for projects that have one",
    )
    args = parser.parse_args()
    heading = "the projects asked for" if args.only else f"the {args.count} highest-ranked projects"
    print(f"{heading} with compiled code:" if not args.only else f"{heading}:", flush=True)
    chosen = args.target or ["debian-12"]
    pythons = sorted({p.version for name in chosen for p in targets.get(name).pythons})
    skip: set[str] = {canonicalize_name(s) for s in args.skip}
    picks = pick(args.list, args.count, skip, pythons, {canonicalize_name(o) for o in args.only})
    if args.list_only:
        return
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        table(build(picks, chosen, args.jobs, args.timeout, args.dir))
        return
    with tempfile.TemporaryDirectory(prefix="wf-discovery-") as tmp:
        table(build(picks, chosen, args.jobs, args.timeout, Path(tmp)))


if __name__ == "__main__":
    main()
