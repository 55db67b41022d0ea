"""Build pyyaml 6.0.2 + markupsafe 3.0.2 for debian-11, -12 and -13 in one run and on the same
images, the naive way and with wheelfarm, and print the times and ratios:

- naive (the baseline): a fresh `docker run --rm` per target, one after the other as a shell loop
  would, doing the same work as wheelfarm and making equivalent wheels: install the recipes'
  system packages as wheelfarm does (`apt-get install` from the lists the images keep, `apt-get
  update` first only when that fails: libyaml-dev, so pyyaml gets its C extension as wheelfarm's
  does), make a venv, upgrade pip, and `pip wheel --no-binary
  pyyaml,markupsafe` for both packages (build tools as wheels), with the host's CA bundle mounted
  so that pip reaches the index. The script checks that both ways made wheels with the same
  compiled members (`.so` files) on every target;
- naive, light (extra information only): the same without the system packages; its pyyaml falls
  back to pure Python (no `.so`), so it does less work and is not a fair baseline;
- wheelfarm cold: `wheelfarm build` with an empty wheelhouse and every cache empty: wheelfarm's
  own cache is a fresh XDG_CACHE_HOME, and pip's and uv's caches live inside it (wheelfarm mounts
  them from there; it makes no named volumes, and the containers' scratch volumes go with them),
  so every download, package install and compile happens;
- wheelfarm warm: the same command again, nothing changed;
- wheelfarm warm, verifying (the command's default, information): after `wheelfarm verify` has
  checked the wheels once (not timed), `wheelfarm build` without `--no-verify`, nothing changed;
- the work alone (the floor): on each target, one step at a time, the CPU of the system packages'
  install and of each spec's hooks (get_requires_for_build_wheel, then build_wheel, called by
  `build --no-isolation` with the build tools installed beforehand): the work no way of building
  these wheels can skip, and the floor it puts under any run on this machine's cores.

Goals: cold <= 0.30 x naive, warm <= 0.03 x cold. Wall-clock times are printed, never asserted.
Also printed: the compiles alone (each wheel's record says how long its backend's build_wheel
took), their total and the critical path they make on this machine's cores, so the overhead
left above the compiles is visible; and the CPU work of the naive and cold runs (busy
core-seconds of the whole machine, from /proc/stat), with the floor that work puts under cold on
this many cores however it is scheduled.
Needs the Debian images (`wheelfarm images bootstrap debian-11 debian-12 debian-13`).

Usage: .venv/bin/python benchmarks/build_matrix.py [--jobs N] [--no-binary :all:]
                                                  [--skip-naive] [--skip-light] [--skip-alone]
`--no-binary :all:` makes the naive pip build every build dependency from source as well
(setuptools, Cython...): far slower, and more work than wheelfarm does."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

from wheelfarm import hostenv, recipes, targets

TARGETS = ("debian-11", "debian-12", "debian-13")
SPECS = ("pyyaml==6.0.2", "markupsafe==3.0.2")
OUT = "/wf-out"
NAIVE_SCRIPT = """set -e
export DEBIAN_FRONTEND=noninteractive
install_packages() {
  apt-get $APT_OPTIONS install -y -qq --no-install-recommends $PACKAGES >/dev/null
}
# The images keep their apt lists, so install straight away as wheelfarm does; refresh the lists
# only when they are stale.
if [ -n "$PACKAGES" ]; then
  install_packages 2>/dev/null || { apt-get $APT_OPTIONS update -qq && install_packages; }
fi
python3 -m venv /tmp/venv
/tmp/venv/bin/pip install --quiet --upgrade pip
/tmp/venv/bin/pip wheel --quiet --no-binary "$NO_BINARY" --wheel-dir "$OUT" "$@"
"""
# The work alone: the same hooks with nothing else around them. The build tools are installed
# first (untimed) and `build --no-isolation` calls the hooks wheelfarm calls
# (get_requires_for_build_wheel, which makes pyyaml's egg_info cythonize, then build_wheel).
# bash's `time` gives the CPU of everything a step starts (user, system).
ALONE_SCRIPT = """set -e
export DEBIAN_FRONTEND=noninteractive
TIMEFORMAT='%3U %3S'
install_packages() {
  apt-get $APT_OPTIONS install -y -qq --no-install-recommends $PACKAGES >/dev/null 2>&1
}
if [ -n "$PACKAGES" ]; then
  { time { install_packages || { apt-get $APT_OPTIONS update -qq && install_packages; }; }; } \
    2>/tmp/apt.time
  echo "apt $(cat /tmp/apt.time)"
fi
python3 -m venv /tmp/venv
/tmp/venv/bin/pip install --quiet --upgrade pip
# As wheels, as wheelfarm's environments have them; upgraded, as the venv's own setuptools (Debian
# 11's) is too old for markupsafe's setup.py.
/tmp/venv/bin/pip install --quiet --upgrade --only-binary :all: build $BUILD_TOOLS
# No isolated environment for the sdists' metadata: under --no-binary :all: pip compiled Cython
# for it, minutes per target (untimed, but the benchmark waited).
/tmp/venv/bin/pip download --quiet --no-deps --no-build-isolation --no-binary :all: \
  --dest /tmp/sdists "$@"
for sdist in /tmp/sdists/*.tar.gz; do
  name=$(basename "$sdist" .tar.gz)
  mkdir -p "/tmp/src/$name" && tar -xzf "$sdist" -C "/tmp/src/$name" --strip-components=1
  { time /tmp/venv/bin/python -m build --no-isolation --skip-dependency-check --wheel \
      --outdir /tmp/out "/tmp/src/$name" >/dev/null 2>&1; } 2>/tmp/hooks.time
  echo "hooks $name $(cat /tmp/hooks.time)"
done
"""
# The build-system requirements of SPECS (pyyaml: setuptools, wheel, Cython; markupsafe:
# setuptools), installed beforehand for the work-alone measurement.
BUILD_TOOLS = "setuptools wheel Cython"


def busy_core_seconds() -> float:
    """CPU time the whole machine has spent busy (user, system, interrupts: everything but idle
    and I/O wait), summed over the cores, from /proc/stat: what a run costs whoever does the
    work (containers, dockerd, wheelfarm itself)."""
    with Path("/proc/stat").open() as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def recipe_packages(target_name: str) -> list[str]:
    """The system packages wheelfarm's recipes install for both specs on this target."""
    target = targets.get(target_name)
    found: list[str] = []
    for spec in SPECS:
        found += recipes.load(spec.split("==")[0]).packages_for(target)
    return list(dict.fromkeys(found))


def docker_run(what: str, target: str, packages: list[str]) -> list[str]:
    """`docker run` of the target's build image with the host's index settings and CA bundle,
    and the packages to install in PACKAGES; the image and command follow."""
    settings = hostenv.from_host()
    args = ["docker", "run", "--rm", "--name", f"wf-test-bench-{what}-{target}-{os.getpid()}"]
    for key, value in settings.env:
        args += ["-e", f"{key}={value}"]
    apt_options = ""
    if settings.ca_bundle is not None:
        args += ["-v", f"{settings.ca_bundle}:{hostenv.CONTAINER_CA_PATH}:ro"]
        apt_options = f"-o Acquire::https::CAInfo={hostenv.CONTAINER_CA_PATH}"
    args += ["-e", f"PACKAGES={' '.join(packages)}", "-e", f"APT_OPTIONS={apt_options}"]
    return [*args, "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1"]


def naive(target: str, no_binary: str, packages: list[str], out: Path) -> float:
    """One fresh container that does it all; returns its time. Its wheels land in `out`."""
    out.mkdir(parents=True)
    args = docker_run("naive", target, packages)
    args += ["-v", f"{out}:{OUT}", "-e", f"OUT={OUT}", "-e", f"NO_BINARY={no_binary}"]
    args += [targets.get(target).build_image, "sh", "-c", NAIVE_SCRIPT, "-", *SPECS]
    began = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"naive build on {target} failed:\n{done.stderr[-3000:]}")
    return elapsed


def alone(target: str, packages: list[str]) -> dict[str, float]:
    """The CPU (core-seconds) of the work itself on one target, one step at a time: "apt" and,
    for each spec, its sdist's name."""
    args = [*docker_run("alone", target, packages), "-e", f"BUILD_TOOLS={BUILD_TOOLS}"]
    args += [targets.get(target).build_image, "bash", "-c", ALONE_SCRIPT, "-", *SPECS]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the work alone on {target} failed:\n{done.stderr[-3000:]}")
    found = {}
    for line in done.stdout.splitlines():
        *what, user, system = line.split()
        found[what[-1]] = float(user) + float(system)
    return found


def wheelfarm_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env["XDG_CACHE_HOME"] = str(cache)
    return env


def wheelfarm(
    wheelhouse: Path, cache: Path, jobs: int | None, *, verify: bool = False
) -> tuple[float, dict[str, Any]]:
    env = wheelfarm_env(cache)
    command = [sys.executable, "-m", "wheelfarm", "build", *SPECS]
    for target in TARGETS:
        command += ["--target", target]
    command += ["--wheelhouse", str(wheelhouse), "--json"]
    if not verify:
        command.append("--no-verify")
    if jobs:
        command += ["--jobs", str(jobs)]
    began = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"wheelfarm build failed:\n{done.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return elapsed, summary


def compile_times(wheelhouse: Path, summary: dict[str, Any]) -> list[float]:
    times = []
    for result in summary["results"]:
        if result["status"] == "built":
            record = json.loads((wheelhouse / ".wheelfarm" / f"{result['wheel']}.json").read_text())
            times.append(float(record["durations"]["compile"]))
    return times


def critical_path(times: list[float], cores: int) -> float:
    """The longest-first schedule of these compiles on `cores` (wheelfarm's slot order): the
    time the compiles alone would take."""
    loads = [0.0] * max(1, cores)
    for seconds in sorted(times, reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)


def describe_warm(summary: dict[str, Any]) -> str:
    statuses = ", ".join(sorted({str(r["status"]) for r in summary["results"]}))
    return f"{summary['containers_started']} containers started, {statuses}"


def compiled_members(wheel: Path) -> tuple[str, ...]:
    with zipfile.ZipFile(wheel) as archive:
        return tuple(sorted(n for n in archive.namelist() if n.endswith(".so")))


def by_project(wheels: list[Path]) -> dict[str, Path]:
    return {str(canonicalize_name(parse_wheel_filename(w.name)[0])): w for w in wheels}


def compare(naive_dir: Path, ours: list[Path], target: str) -> list[str]:
    """One line per project: the compiled members of both wheels; exits when they differ."""
    theirs = by_project(sorted(naive_dir.glob("*.whl")))
    mine = by_project(ours)
    lines = []
    for project in sorted(mine):
        a, b = compiled_members(theirs[project]), compiled_members(mine[project])
        if a != b:
            sys.exit(
                f"{project} on {target}: naive wheel {theirs[project].name} has {a or 'no .so'}, "
                f"wheelfarm's {mine[project].name} has {b or 'no .so'}: not the same work"
            )
        lines.append(f"  {target} {project}: same compiled members {', '.join(a) or '(none)'}")
    return lines


def report_alone(
    work: dict[str, dict[str, float]], cores: int, cold: float, naive_total: float
) -> None:
    """The floor the work itself puts under any run on this many cores: its CPU spread over
    every core, or its longest single step, whichever is longer."""
    for target, steps in work.items():
        shown = ", ".join(f"{step} {seconds:.1f}" for step, seconds in steps.items())
        print(f"the work alone on {target}, core-s: {shown}")
    total = sum(sum(steps.values()) for steps in work.values())
    longest = max(max(steps.values()) for steps in work.values())
    floor = max(total / cores, longest)
    print(
        f"the work alone: {total:.1f} core-s, longest step {longest:.1f}s; its floor on {cores} "
        f"cores {floor:.1f}s (no environments, containers or wheelfarm); cold above it "
        f"{cold - floor:.1f}s"
    )
    if naive_total:
        print(f"the work alone's floor / naive = {floor / naive_total:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--no-binary",
        default="pyyaml,markupsafe",
        help="the naive pip's --no-binary value (default: pyyaml,markupsafe; :all: builds the "
        "build tools from source too)",
    )
    parser.add_argument("--skip-naive", action="store_true", help="measure wheelfarm only")
    parser.add_argument("--skip-light", action="store_true", help="skip the light naive variant")
    parser.add_argument(
        "--skip-alone", action="store_true", help="skip measuring the work alone (the floor)"
    )
    parser.add_argument("--jobs", type=int, default=None, help="wheelfarm build --jobs")
    options = parser.parse_args()

    for target in TARGETS:
        image = targets.get(target).build_image
        found = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, check=False
        )
        if found.returncode:
            sys.exit(f"{image} is missing: wheelfarm images bootstrap {' '.join(TARGETS)}")

    rows: list[tuple[str, float, str]] = []
    checks: list[str] = []
    naive_total = light_total = naive_cpu = 0.0
    scratch = Path(tempfile.mkdtemp(prefix="wf-bench-"))
    try:
        naive_dirs: dict[str, Path] = {}
        if not options.skip_naive:
            for target in TARGETS:
                packages = recipe_packages(target)
                naive_dirs[target] = scratch / "naive" / target
                cpu_before = busy_core_seconds()
                elapsed = naive(target, options.no_binary, packages, naive_dirs[target])
                naive_cpu += busy_core_seconds() - cpu_before
                naive_total += elapsed
                rows.append((f"naive {target}", elapsed, f"apt: {' '.join(packages) or '-'}"))
            rows.append(
                (
                    "naive, all targets",
                    naive_total,
                    f"--no-binary {options.no_binary}, with the recipes' packages",
                )
            )
            if not options.skip_light:
                for target in TARGETS:
                    out = scratch / "light" / target
                    light_total += naive(target, "pyyaml,markupsafe", [], out)
                    wheels = sorted(out.glob("*.whl"))
                    shown = ", ".join(f"{w.name}: {len(compiled_members(w))} .so" for w in wheels)
                    checks.append(f"  light {target}: {shown}")
                rows.append(
                    (
                        "naive light (info)",
                        light_total,
                        "no system packages: pyyaml without its C extension",
                    )
                )

        wheelhouse, cache = scratch / "wheelhouse", scratch / "cache"
        print(f"cold: wheelfarm's cache (with pip's and uv's) starts empty at {cache}", flush=True)
        cpu_before = busy_core_seconds()
        cold, summary = wheelfarm(wheelhouse, cache, options.jobs)
        cold_cpu = busy_core_seconds() - cpu_before
        compiles = compile_times(wheelhouse, summary)
        built = [r for r in summary["results"] if r["status"] == "built"]
        rows.append(("wheelfarm cold", cold, f"{len(built)} wheels built"))
        for target, naive_dir in naive_dirs.items():
            ours = [wheelhouse / r["wheel"] for r in built if r["target"] == target]
            checks[:0] = compare(naive_dir, ours, target)
        warm, summary = wheelfarm(wheelhouse, cache, options.jobs)
        rows.append(("wheelfarm warm", warm, describe_warm(summary)))
        verify = [sys.executable, "-m", "wheelfarm", "verify", str(wheelhouse)]
        verify += [arg for target in TARGETS for arg in ("--target", target)]
        checked = subprocess.run(
            verify, env=wheelfarm_env(cache), capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            sys.exit(f"wheelfarm verify failed:\n{checked.stderr[-3000:]}")
        warm_verifying, summary = wheelfarm(wheelhouse, cache, options.jobs, verify=True)
        rows.append(("wheelfarm warm, verify", warm_verifying, describe_warm(summary)))
        work = {} if options.skip_alone else {t: alone(t, recipe_packages(t)) for t in TARGETS}
    finally:
        # The containers wrote as root into the naive output folders.
        shutil.rmtree(scratch, ignore_errors=True)

    jobs = options.jobs or f"default (the number of cores + 1, {(os.cpu_count() or 1) + 1})"
    print(f"cores: {os.cpu_count()}, wheelfarm --jobs: {jobs}")
    print(f"{'run':<22} {'seconds':>9}  notes")
    for name, seconds, note in rows:
        print(f"{name:<22} {seconds:9.2f}  {note}")
    print("\n".join(checks))
    cores = min(options.jobs or os.cpu_count() or 1, os.cpu_count() or 1)
    path = critical_path(compiles, cores)
    print(f"compiles: {sum(compiles):.1f}s in all; critical path on {cores} cores {path:.1f}s; ")
    print(f"cold above the compiles' critical path: {cold - path:.1f}s")
    if naive_total:
        print(f"cold / naive = {cold / naive_total:.3f}   (goal <= 0.30)")
        print(f"compiles' critical path / naive = {path / naive_total:.3f}   (the floor)")
    if light_total:
        print(f"cold / light = {cold / light_total:.3f}   (information: the light naive does less)")
    # However well it is scheduled, a run cannot take less than its CPU work spread over every
    # core: the part of the ratio that scheduling cannot remove.
    ncpu = os.cpu_count() or 1
    print(
        f"CPU work, all cores: cold {cold_cpu:.1f} core-s (cores busy {cold_cpu / ncpu / cold:.0%} "
        f"of its {cold:.1f}s); its floor on {ncpu} cores {cold_cpu / ncpu:.1f}s"
    )
    if naive_total:
        print(
            f"CPU work, naive: {naive_cpu:.1f} core-s; cold's CPU floor / naive = "
            f"{cold_cpu / ncpu / naive_total:.3f}"
        )
    if work:
        report_alone(work, ncpu, cold, naive_total)
    print(f"warm / cold  = {warm / cold:.4f}  (goal <= 0.03)")
    print(f"warm, verify / cold = {warm_verifying / cold:.4f}  (information: the default command)")


if __name__ == "__main__":
    main()
