"""elfdeps: from the in-container probe's JSON to Requires-External."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wheelfarm import elfdeps
from wheelfarm.errors import BadInput

PROBE = {
    "method": "lddtree",
    "elfs": {
        "psycopg2/_psycopg.cpython-311-x86_64-linux-gnu.so": {
            "needed": ["libpq.so.5", "libc.so.6", "libbundled.so.1"],
            "resolved": {
                "libpq.so.5": "/usr/lib/x86_64-linux-gnu/libpq.so.5.15",
                "libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
                "libbundled.so.1": None,
            },
        },
        "psycopg2.libs/libbundled.so.1": {
            "needed": ["libz.so.1"],
            "resolved": {"libz.so.1": "/lib/x86_64-linux-gnu/libz.so.1.2.13"},
        },
        "extra/_missing.so": {"needed": ["libgone.so.3"], "resolved": {"libgone.so.3": None}},
    },
    "interpreter": "/usr/bin/python3.11",
    "interpreter_libs": {
        "libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
        "libm.so.6": "/lib/x86_64-linux-gnu/libm.so.6",
    },
}


def test_outside_libraries_skip_the_wheel_and_the_interpreter() -> None:
    libs = elfdeps.outside_libraries(PROBE)
    assert [(lib.elf.split("/")[-1], lib.soname) for lib in libs] == [
        ("_missing.so", "libgone.so.3"),
        ("libbundled.so.1", "libz.so.1"),
        ("_psycopg.cpython-311-x86_64-linux-gnu.so", "libpq.so.5"),
    ]


def test_analyse_maps_packages_and_drops_the_interpreters() -> None:
    owners = elfdeps.parse_owners(
        "apt",
        "/usr/lib/x86_64-linux-gnu/libpq.so.5.15\tlibpq5:amd64: /usr/lib/...\n"
        "/lib/x86_64-linux-gnu/libc.so.6\tlibc6:amd64: /lib/x86_64-linux-gnu/libc.so.6\n"
        "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13\tzlib1g:amd64: /usr/lib/...\n"
        "/lib/x86_64-linux-gnu/libm.so.6\tlibc6:amd64: /lib/x86_64-linux-gnu/libm.so.6\n"
        "/lib/nothing\t\n",
    )
    analysis = elfdeps.analyse(PROBE, "apt", owners)
    assert analysis.requires_external == ("libpq5", "zlib1g")
    assert analysis.unresolved == ("libgone.so.3",)
    by_soname = {lib.soname: lib.package for lib in analysis.libraries}
    # /lib/... resolved path found through its /usr twin
    assert by_soname["libz.so.1"] == "zlib1g"


@pytest.mark.parametrize(
    ("family", "line", "package"),
    [
        ("apt", "/p\tlibxml2:amd64: /p", "libxml2"),
        ("apt", "/p\tlibc6:amd64, libc6-dev:amd64: /p", "libc6"),
        ("apk", "/p\t/p is owned by libpq-16.4-r0", "libpq"),
        ("apk", "/p\t/p is owned by libxml2-2.12.10-r0", "libxml2"),
        ("dnf", "/p\tlibpq", "libpq"),
        ("yum", "/p\tpostgresql-libs", "postgresql-libs"),
        ("yum", "/p\tfile /p is not owned by any package", None),
        ("apt", "/p\t", None),
    ],
)
def test_parse_owners(family: str, line: str, package: str | None) -> None:
    assert elfdeps.parse_owners(family, line + "\n").get("/p") == package


def test_owner_script_is_valid_shell_and_quotes_paths() -> None:
    for family in ("apt", "apk", "dnf", "yum"):
        script = elfdeps.owner_script(family, ["/a b/lib's.so", "/usr/lib/x.so"])
        assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0
    with pytest.raises(BadInput):
        elfdeps.owner_script("zypper", ["/x"])


def test_owner_script_runs_one_line_per_path() -> None:
    # With a package database that knows none of the paths, every path gets an empty answer.
    script = elfdeps.owner_script("yum", ["/nonexistent/b.so", "/nonexistent/a b.so"])
    out = subprocess.run(
        ["sh", "-c", script.replace("rpm ", "false ")], capture_output=True, text=True, check=True
    ).stdout
    assert out == "/nonexistent/a b.so\t\n/nonexistent/b.so\t\n"


# ------------------------------------------------------------------ the CPU of every ELF file


def _elf_header(machine: int, *, big_endian: bool = False) -> bytes:
    """The first 64 bytes of an ELF64 shared object for `machine` (the rest of a real one is
    not read to tell its CPU)."""
    order = "big" if big_endian else "little"
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1]) + bytes(9)
    return ident + (3).to_bytes(2, order) + machine.to_bytes(2, order) + bytes(44)


def _crafted_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_the_probe_reads_each_elf_files_machine_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    """A wheel whose extension was built for aarch64 and a helper library for x86_64, probed as
    the build container probes it (data/probe_elf.py, with this Python)."""
    wheel = _crafted_wheel(
        tmp_path / "crafted-1.0-cp311-cp311-linux_x86_64.whl",
        {
            "crafted/_speedups.cpython-311-x86_64-linux-gnu.so": _elf_header(183),
            "crafted.libs/libhelper.so.1": _elf_header(62),
            "crafted/s390x.so": _elf_header(22, big_endian=True),
            "crafted/__init__.py": b"",
            "crafted-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\n",
        },
    )
    probe_script = Path(elfdeps.__file__).parent / "data" / elfdeps.PROBE_NAME
    result = subprocess.run(
        [sys.executable, str(probe_script), str(wheel)], capture_output=True, text=True, check=True
    )
    probe = json.loads(result.stdout)
    machines = {name: info["machine"] for name, info in probe["elfs"].items()}
    assert machines == {
        "crafted/_speedups.cpython-311-x86_64-linux-gnu.so": 183,
        "crafted.libs/libhelper.so.1": 62,
        "crafted/s390x.so": 22,
    }
    assert elfdeps.foreign_elfs(probe, "x86_64") == [
        "crafted/_speedups.cpython-311-x86_64-linux-gnu.so (aarch64)",
        "crafted/s390x.so (s390x)",
    ]
    assert elfdeps.foreign_elfs(probe, "aarch64") == [
        "crafted.libs/libhelper.so.1 (x86_64)",
        "crafted/s390x.so (s390x)",
    ]


def test_a_probe_without_machines_says_nothing_about_the_cpu() -> None:
    assert elfdeps.foreign_elfs(PROBE, "aarch64") == []
    unknown = {"elfs": {"x.so": {"machine": 9999, "needed": [], "resolved": {}}}}
    assert elfdeps.foreign_elfs(unknown, "x86_64") == ["x.so (e_machine 9999)"]
