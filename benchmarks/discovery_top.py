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

The time discovery added, per built spec: the build's wall time (its provenance record's start and
end) less the last attempt's own steps (environment and compile): the failed attempts, their
diagnosis and traces, and the package lookups and installs. Prints figures only; asserts nothing.

Usage: .venv/bin/python benchmarks/discovery_top.py --list FILE [--count 40] [--target debian-12]...
                                    [--jobs N] [--timeout S] [--dir DIR] [--skip PROJECT]...
                                    [--list-only]
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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pypi_simple
import requests
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelfarm import fetch

WHEELFARM = Path(sys.executable).parent / "wheelfarm"
_ROUND = re.compile(r"^=+ round (\d+) of at most", re.M)


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


def _newest_compiled(page: pypi_simple.ProjectPage) -> str | None:
    """The newest version that has an sdist and a platform wheel, if the newest with an sdist
    has one."""
    by_version: dict[Version, set[str]] = {}
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
        elif package.package_type == "wheel" and not package.filename.endswith("-any.whl"):
            kinds.add("platform wheel")
    with_sdist = [v for v, kinds in by_version.items() if "sdist" in kinds]
    if not with_sdist:
        return None
    newest = max(with_sdist)
    return str(newest) if "platform wheel" in by_version[newest] else None


def pick(list_file: Path, count: int, skip: set[str]) -> list[Pick]:
    settings = fetch.index_settings()
    session = requests.Session()
    if settings.cert:
        session.verify = settings.cert
    client = pypi_simple.PyPISimple(endpoint=settings.indexes[0], session=session)
    picked: list[Pick] = []
    for rank, name in ranked(list_file):
        if canonicalize_name(name) in skip:
            continue
        try:
            version = _newest_compiled(client.get_project_page(name, timeout=30))
        except (pypi_simple.NoSuchProjectError, requests.RequestException):
            continue
        if version is not None:
            picked.append(Pick(rank, name, version))
            print(f"  #{rank:<5} {name} {version}", flush=True)
            if len(picked) == count:
                break
    return picked


def _seconds(record: dict[str, Any], key: str) -> float:
    return datetime.fromisoformat(str(record[key]).replace("Z", "+00:00")).timestamp()


def _record_of(wheelhouse: Path, wheel: str) -> dict[str, Any]:
    path = wheelhouse / ".wheelfarm" / f"{wheel}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _rounds_in_log(wheelhouse: Path, log: str | None) -> int:
    if not log or not (wheelhouse / log).is_file():
        return 0
    found = [int(n) for n in _ROUND.findall((wheelhouse / log).read_text(errors="replace"))]
    return max(found, default=1)


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
    return {"report": json.loads(done.stdout or "{}"), "wheelhouse": wheelhouse}


def table(outcome: dict[str, Any]) -> None:
    wheelhouse: Path = outcome["wheelhouse"]
    report = outcome["report"]
    results = report.get("results", [])
    # A wheel counts as verified when it passed in its own target's runtime image.
    verified = {
        (c.get("wheel"), c.get("target"))
        for c in report.get("verify", {}).get("results", [])
        if c.get("status") == "pass"
    }
    per_target: dict[str, list[str]] = {}
    for result in results:
        target = result["target"]
        record = _record_of(wheelhouse, result["wheel"]) if result.get("wheel") else {}
        discovery = record.get("discovery") or {}
        rounds = discovery.get("rounds") or _rounds_in_log(wheelhouse, result.get("log"))
        added = 0.0
        if record:
            durations = record.get("durations") or {}
            spent = sum(float(v) for v in durations.values())
            added = _seconds(record, "finished_at") - _seconds(record, "started_at") - spent
        ok = result["status"] != "failed"
        mark = "verified" if (result.get("wheel"), target) in verified else "built"
        line = (
            f"  {result['spec']:<34} {mark if ok else 'FAILED':<9} attempts {rounds or 1}  "
            f"+{max(added, 0.0):5.0f} s  "
            + (", ".join(discovery.get("installed", [])) or "-")
            + ("" if ok else f"  ({(result.get('error') or '')[:90]})")
        )
        per_target.setdefault(target, []).append(line)
    for target, lines in per_target.items():
        built = sum("FAILED" not in line for line in lines)
        print(f"\n{target}: {built}/{len(lines)} built")
        print("\n".join(lines))


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
    args = parser.parse_args()
    print(f"the {args.count} highest-ranked projects with compiled code:")
    picks = pick(args.list, args.count, {canonicalize_name(s) for s in args.skip})
    if args.list_only:
        return
    targets = args.target or ["debian-12"]
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        table(build(picks, targets, args.jobs, args.timeout, args.dir))
        return
    with tempfile.TemporaryDirectory(prefix="wf-discovery-") as tmp:
        table(build(picks, targets, args.jobs, args.timeout, Path(tmp)))


if __name__ == "__main__":
    main()
