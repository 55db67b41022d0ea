"""Verification against building, in the same run: build PyYAML 6.0.2 and MarkupSafe 3.0.2 on
debian-11, -12 and -13 (6 wheels) from cold caches with `--no-verify`, then `wheelfarm verify`
them on the same 3 targets (a matrix of 18 cells: 6 applicable under the default rules, each in a
fresh runtime container), then `wheelfarm verify` again (cached: no container). Prints the times
and the ratio verify/build; the goal is <= 1. Prints figures only; asserts nothing.

Each command runs as a user runs it (a subprocess), with its own XDG_CACHE_HOME, so nothing from
an earlier run is reused: the verification reads the runtime images' facts and downloads the
package lists it needs like a first run does. Needs the Debian images (scripts/setup makes them).

Usage: .venv/bin/python benchmarks/verify_matrix.py [--jobs N]"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SPECS = ("pyyaml==6.0.2", "markupsafe==3.0.2")
TARGETS = ("debian-11", "debian-12", "debian-13")


def wheelfarm(*args: str, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"wheelfarm {args[0]} exited {done.returncode}")
    data: dict[str, Any] = json.loads(done.stdout or "{}")
    return seconds, data


def main() -> None:
    jobs = sys.argv[sys.argv.index("--jobs") + 1] if "--jobs" in sys.argv else None
    extra = ["--jobs", jobs] if jobs else []
    targets = [arg for name in TARGETS for arg in ("--target", name)]
    with tempfile.TemporaryDirectory(prefix="wheelfarm-bench-") as temp:
        root = Path(temp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
        env["XDG_CACHE_HOME"] = str(root / "cache")
        wheelhouse = root / "wheelhouse"
        build_s, built = wheelfarm(
            "build", *SPECS, *targets, "--wheelhouse", str(wheelhouse), "--no-verify", *extra,
            env=env,
        )  # fmt: skip
        wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
        verify_s, verified = wheelfarm("verify", str(wheelhouse), *targets, *extra, env=env)
        again_s, again = wheelfarm("verify", str(wheelhouse), *targets, *extra, env=env)

    counts = verified["counts"]
    print(f"cores: {os.cpu_count()}, jobs: {jobs or 'default (the number of cores)'}")
    print(f"build  {len(wheels)} wheels on {len(TARGETS)} targets: {build_s:6.1f} s "
          f"({built['containers_started']} containers)")  # fmt: skip
    print(
        f"verify {len(verified['results'])} cells ({counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['n/a']} n/a): {verify_s:6.1f} s "
        f"({verified['containers_started']} containers)"
    )
    print(f"verify again (cached): {again_s:6.1f} s ({again['containers_started']} containers)")
    print(f"ratio verify/build: {verify_s / build_s:.2f} (goal <= 1)")


if __name__ == "__main__":
    main()
