"""Build pyyaml 6.0.2 + markupsafe 3.0.2 for debian-11, -12 and -13, three ways, in one run and on
the same images, and print the times and ratios:

- naive: a fresh `docker run --rm` per target (one after the other, as a shell loop would) that
  makes a venv, upgrades pip and runs `pip wheel --no-binary <NO_BINARY>` for both packages,
  with the host's CA bundle mounted so that pip reaches the index;
- wheelfarm cold: `wheelfarm build` with an empty wheelhouse and an empty cache (its own
  XDG_CACHE_HOME), so every download, package install and compile happens;
- wheelfarm warm: the same command again, nothing changed.

Goals: cold <= 0.5 x naive, warm <= 0.02 x cold. Wall-clock times are printed, never asserted.
Needs the Debian images (`wheelfarm images bootstrap debian-11 debian-12 debian-13`).

Usage: .venv/bin/python benchmarks/build_matrix.py [--no-binary :all:] [--skip-naive]
The brief's naive baseline is `--no-binary :all:` (every build dependency from source as well);
`--no-binary pyyaml,markupsafe` measures the lighter variant that takes build tools as wheels."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wheelfarm import hostenv

TARGETS = ("debian-11", "debian-12", "debian-13")
SPECS = ("pyyaml==6.0.2", "markupsafe==3.0.2")
NAIVE_SCRIPT = (
    "python3 -m venv /tmp/venv && /tmp/venv/bin/pip install --quiet --upgrade pip && "
    '/tmp/venv/bin/pip wheel --quiet --no-binary "$NO_BINARY" --wheel-dir /tmp/out "$@" && '
    "ls /tmp/out"
)


def naive(target: str, no_binary: str) -> tuple[float, list[str]]:
    """One fresh container that does it all; returns its time and the wheels it made."""
    settings = hostenv.from_host()
    args = ["docker", "run", "--rm", "--name", f"wf-test-bench-naive-{target}-{os.getpid()}"]
    for key, value in settings.env:
        args += ["-e", f"{key}={value}"]
    if settings.ca_bundle is not None:
        args += ["-v", f"{settings.ca_bundle}:{hostenv.CONTAINER_CA_PATH}:ro"]
    args += ["-e", f"NO_BINARY={no_binary}", "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1"]
    args += [f"wheelfarm/{target}:build", "sh", "-c", NAIVE_SCRIPT, "-", *SPECS]
    began = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"naive build on {target} failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout.split()


def wheelfarm(wheelhouse: Path, cache: Path, jobs: int | None) -> tuple[float, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env["XDG_CACHE_HOME"] = str(cache)
    command = [sys.executable, "-m", "wheelfarm", "build", *SPECS]
    for target in TARGETS:
        command += ["--target", target]
    command += ["--wheelhouse", str(wheelhouse), "--json", "--no-verify"]
    if jobs:
        command += ["--jobs", str(jobs)]
    began = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"wheelfarm build failed:\n{done.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return elapsed, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-binary", default=":all:", help="the naive pip's --no-binary value")
    parser.add_argument("--skip-naive", action="store_true", help="measure wheelfarm only")
    parser.add_argument("--jobs", type=int, default=None, help="wheelfarm build --jobs")
    options = parser.parse_args()

    for target in TARGETS:
        image = f"wheelfarm/{target}:build"
        found = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, check=False
        )
        if found.returncode:
            sys.exit(f"{image} is missing: wheelfarm images bootstrap {' '.join(TARGETS)}")

    rows: list[tuple[str, float, str]] = []
    naive_total = 0.0
    if not options.skip_naive:
        for target in TARGETS:
            elapsed, wheels = naive(target, options.no_binary)
            naive_total += elapsed
            rows.append((f"naive {target}", elapsed, " ".join(wheels)))
        rows.append(("naive, all targets", naive_total, f"--no-binary {options.no_binary}"))

    scratch = Path(tempfile.mkdtemp(prefix="wf-bench-"))
    try:
        wheelhouse, cache = scratch / "wheelhouse", scratch / "cache"
        cold, summary = wheelfarm(wheelhouse, cache, options.jobs)
        built = [r for r in summary["results"] if r["status"] == "built"]
        rows.append(("wheelfarm cold", cold, f"{len(built)} wheels built"))
        warm, summary = wheelfarm(wheelhouse, cache, options.jobs)
        rows.append(
            (
                "wheelfarm warm",
                warm,
                f"{summary['containers_started']} containers started, "
                + ", ".join(sorted({str(r["status"]) for r in summary["results"]})),
            )
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"{'run':<22} {'seconds':>9}  notes")
    for name, seconds, note in rows:
        print(f"{name:<22} {seconds:9.2f}  {note}")
    if naive_total:
        print(f"cold / naive = {cold / naive_total:.3f}   (goal <= 0.5)")
    print(f"warm / cold  = {warm / cold:.4f}  (goal <= 0.02)")


if __name__ == "__main__":
    main()
