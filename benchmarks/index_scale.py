"""How `wheelfarm index` scales: index 1,000 and 10,000 synthetic wheels (real, tiny zip files
with METADATA, WHEEL and RECORD) and print the times and the time per wheel. The goal is at most
2 s for 10,000 wheels, growing linearly. Prints figures only; asserts nothing.

Wall time depends on the disk as much as on wheelfarm (a cold index creates ~3 inodes per wheel),
so the CPU time of the process (user + system) is printed beside it.

Usage: .venv/bin/python benchmarks/index_scale.py [--dir DIR] [COUNT...]   (default: 1000 10000;
DIR: where the wheelhouse and site go, default the system temp dir)"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from wheelfarm import index

# One project version is built for these interpreter/platform pairs, like a real wheelhouse.
_BUILDS = (
    ("cp39", "linux_x86_64_debian_11"),
    ("cp311", "linux_x86_64_debian_12"),
    ("cp313", "linux_x86_64_debian_13"),
    ("cp312", "linux_x86_64_ubuntu_24_04"),
    ("cp39", "linux_x86_64_rhel_9"),
)
_VERSIONS_PER_PROJECT = 2


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(directory: Path, project: str, version: str, python: str, platform: str) -> Path:
    tag = f"{python}-{python}-{platform}"
    dist_info = f"{project}-{version}.dist-info"
    members = {
        f"{project}/__init__.py": b"VALUE = 1\n",
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
            "Requires-Python: >=3.9\n\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: index_scale\nRoot-Is-Purelib: false\nTag: {tag}\n"
        ).encode(),
    }
    record = [_record_line(n, d) for n, d in members.items()] + [f"{dist_info}/RECORD,,"]
    members[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{project}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
    return path


def make_wheelhouse(directory: Path, count: int) -> None:
    made = 0
    project = 0
    while made < count:
        for v in range(_VERSIONS_PER_PROJECT):
            for python, platform in _BUILDS:
                if made == count:
                    return
                make_wheel(directory, f"proj_{project:05d}", f"1.{v}", python, platform)
                made += 1
        project += 1


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def run(count: int, directory: str | None) -> float:
    with tempfile.TemporaryDirectory(prefix="wf-bench-", dir=directory) as tmp:
        wheelhouse = Path(tmp) / "wheelhouse"
        wheelhouse.mkdir()
        make_wheelhouse(wheelhouse, count)
        os.sync()  # the wheelhouse is on disk already, as it is after a build: no writeback now
        start, cpu = time.perf_counter(), _cpu()
        result = index.build_site(wheelhouse, Path(tmp) / "site", arch="x86_64")
        elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
        files = sum(len(r.files) for r in result.roots)
        again = time.perf_counter()
        index.build_site(wheelhouse, Path(tmp) / "site", arch="x86_64")
        unchanged = time.perf_counter() - again
        # One more project version in every 100 wheels: what a CI rebuild adds, then re-indexes.
        for n in range(count // 100):
            make_wheel(wheelhouse, f"proj_{n:05d}", "2.0", *_BUILDS[n % len(_BUILDS)])
        os.sync()
        grown = time.perf_counter()
        index.build_site(wheelhouse, Path(tmp) / "site", arch="x86_64")
        incremental = time.perf_counter() - grown
        print(
            f"{count:>6} wheels: {elapsed:6.2f} s wall, {cpu:6.2f} s CPU "
            f"({elapsed / count * 1e6:6.1f} µs/wheel; {len(result.roots)} roots, "
            f"{files} served files); unchanged rerun {unchanged:5.2f} s; "
            f"+1% wheels rerun {incremental:5.2f} s",
            flush=True,
        )
        return elapsed


def main(argv: list[str]) -> None:
    directory = None
    if argv[:1] == ["--dir"]:
        directory, argv = argv[1], argv[2:]
    counts = [int(a) for a in argv] or [1000, 10000]
    times = {count: run(count, directory) for count in counts}
    if len(counts) >= 2:
        small, large = counts[0], counts[-1]
        ratio = times[large] / times[small]
        print(
            f"time ratio {large}/{small}: {ratio:.1f} for {large / small:.0f}× the wheels "
            f"(1.0 per unit = linear: {ratio / (large / small):.2f})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
