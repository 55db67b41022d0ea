"""How `wheelfarm index` scales: index 1,000 and 10,000 synthetic wheels (real, tiny zip files
with METADATA, WHEEL and RECORD) and print the times and the time per wheel. The goal is at most
2 s for 10,000 wheels, growing linearly. Prints figures only; asserts nothing.

Usage: .venv/bin/python benchmarks/index_scale.py [COUNT...]   (default: 1000 10000)"""

from __future__ import annotations

import base64
import hashlib
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
    per_project = len(_BUILDS) * _VERSIONS_PER_PROJECT
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
    assert made == count or per_project


def run(count: int) -> float:
    with tempfile.TemporaryDirectory(prefix="wf-bench-") as tmp:
        wheelhouse = Path(tmp) / "wheelhouse"
        wheelhouse.mkdir()
        make_wheelhouse(wheelhouse, count)
        start = time.perf_counter()
        result = index.build_site(wheelhouse, Path(tmp) / "site", arch="x86_64")
        elapsed = time.perf_counter() - start
        files = sum(len(r.files) for r in result.roots)
        again = time.perf_counter()
        index.build_site(wheelhouse, Path(tmp) / "site", arch="x86_64")
        unchanged = time.perf_counter() - again
        print(
            f"{count:>6} wheels: {elapsed:6.2f} s  ({elapsed / count * 1e6:6.1f} µs/wheel, "
            f"{len(result.roots)} roots, {files} served files); "
            f"unchanged rerun {unchanged:5.2f} s"
        )
        return elapsed


def main(argv: list[str]) -> None:
    counts = [int(a) for a in argv] or [1000, 10000]
    times = {count: run(count) for count in counts}
    if len(counts) >= 2:
        small, large = counts[0], counts[-1]
        ratio = times[large] / times[small]
        print(
            f"time ratio {large}/{small}: {ratio:.1f} for {large / small:.0f}× the wheels "
            f"(1.0 per unit = linear: {ratio / (large / small):.2f})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
