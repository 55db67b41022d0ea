"""elfdeps: from the in-container probe's JSON to Requires-External."""

from __future__ import annotations

import subprocess

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
