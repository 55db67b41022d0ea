"""How `wheelfarm index` scales: index 1,000 and 10,000 synthetic wheels (real, tiny zip files
with METADATA, WHEEL and RECORD) and print the times and the time per wheel. The goal is at most
2 s for 10,000 wheels, growing linearly. Prints figures only; asserts nothing.

Figures per size:
- cold: the first index of the wheelhouse into a fresh site (every file read and checked, every
  page, METADATA file and directory created). The headline figure.
- unchanged rerun: the same again; files whose size, mtime and inode match the previous tree's
  scan record are not read again, and the tree comes out the same, so nothing is written.
- +1% rerun: one new project version per 100 wheels, then re-index: the new files are read, a
  new tree is written (unchanged files linked from the old one) and the old tree removed.
- reading: `index.scan` alone over the same wheelhouse with no scan record (every file read and
  checked, nothing written), CPU time: how much of the cold figure is reading wheels.

Wall time depends on the disk as much as on wheelfarm (a cold index creates ~2 inodes per wheel),
so the CPU time of the process (user + system) is printed beside it, and so is what creating an
empty file costs on that disk right now: on ext4 without a journal (as on the development
machine) it grows ~50x for minutes after many files were deleted nearby, whoever deleted them.
Hence the order: every wheelhouse is made first and left 2 s (files younger than that at a scan
are read again by the next run, see index.py), then every size's cold run, then the reruns;
nothing is deleted until the end.

Usage: .venv/bin/python benchmarks/index_scale.py [--dir DIR] [--targets NAME,...] [COUNT...]
(default: 1000 10000; DIR: where the wheelhouse and site go, default the system temp dir;
--targets: index with only these targets of the catalogue, to compare with a version of
wheelfarm that knew fewer: each target adds a root, and every root its pages)"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from wheelfarm import index, targets

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


def _timed(action: Callable[[], index.SiteResult]) -> tuple[float, float, index.SiteResult]:
    start, cpu = time.perf_counter(), _cpu()
    result = action()
    return time.perf_counter() - start, _cpu() - cpu, result


def _reading_cpu(wheelhouse: Path) -> float:
    cpu = _cpu()
    index.scan(wheelhouse)
    return _cpu() - cpu


def _file_creation_cost(directory: Path, count: int = 2000) -> float:
    """Seconds per empty file created in a new directory there (left for the final clean-up:
    deleting them now would slow what comes next)."""
    probe = directory / "probe"
    probe.mkdir()
    start = time.perf_counter()
    for n in range(count):
        os.close(os.open(probe / str(n), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return (time.perf_counter() - start) / count


def main(argv: list[str]) -> None:
    directory = None
    catalogue: list[targets.Target] = list(targets.TARGETS)
    while argv[:1] in (["--dir"], ["--targets"]):
        if argv[0] == "--dir":
            directory = argv[1]
        else:
            catalogue = [t for t in targets.TARGETS if t.name in argv[1].split(",")]
        argv = argv[2:]
    counts = [int(a) for a in argv] or [1000, 10000]
    with tempfile.TemporaryDirectory(prefix="wf-bench-", dir=directory) as tmp:
        work = Path(tmp)
        wheelhouses = {}
        for count in counts:
            wheelhouses[count] = work / f"wheelhouse-{count}"
            wheelhouses[count].mkdir()
            make_wheelhouse(wheelhouses[count], count)
        os.sync()  # the wheelhouses are on disk already, as after a build: no writeback now
        time.sleep(2)
        print(f"creating an empty file here: {_file_creation_cost(work) * 1e6:.0f} µs")

        def index_it(count: int) -> index.SiteResult:
            return index.build_site(
                wheelhouses[count], work / f"site-{count}", catalogue=catalogue, arch="x86_64"
            )

        cold = {count: _timed(lambda count=count: index_it(count)) for count in counts}
        unchanged = {count: _timed(lambda count=count: index_it(count))[0] for count in counts}
        for count in counts:
            # One more project version in every 100 wheels: what a CI rebuild adds.
            for n in range(count // 100):
                make_wheel(wheelhouses[count], f"proj_{n:05d}", "2.0", *_BUILDS[n % len(_BUILDS)])
        os.sync()
        grown = {count: _timed(lambda count=count: index_it(count))[0] for count in counts}
        reading = {count: _reading_cpu(wheelhouses[count]) for count in counts}
        for count in counts:
            elapsed, cpu, result = cold[count]
            files = sum(len(r.files) for r in result.roots)
            print(
                f"{count:>6} wheels: {elapsed:6.2f} s wall, {cpu:6.2f} s CPU "
                f"({elapsed / count * 1e6:6.1f} µs/wheel; {len(result.roots)} roots, "
                f"{files} served files); unchanged rerun {unchanged[count]:5.2f} s; "
                f"+1% wheels rerun {grown[count]:5.2f} s; reading {reading[count]:5.2f} s CPU",
                flush=True,
            )
        print("cleaning up …", flush=True)
    if len(counts) >= 2:
        small, large = counts[0], counts[-1]
        ratio = cold[large][0] / cold[small][0]
        cpu_ratio = cold[large][1] / cold[small][1]
        print(
            f"time ratio {large}/{small}: {ratio:.1f} for {large / small:.0f}× the wheels "
            f"(1.0 per unit = linear: {ratio / (large / small):.2f}; CPU time ratio "
            f"{cpu_ratio:.1f})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
