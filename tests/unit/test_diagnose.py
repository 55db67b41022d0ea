"""diagnose: the cause of a failed build, read off its log (real logs of builds that failed on
debian-12 for want of a system package, under tests/data/diagnose/, and a line in each tool's
wording) and off a strace of the failed step (real traces, and the format's corners)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelfarm import diagnose
from wheelfarm.needs import Missing

DATA = Path(__file__).resolve().parent.parent / "data" / "diagnose"


def log(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# ---------------------------------------------------------------- real logs

REAL_LOGS = [
    # file, kind, summary starts with, what is missing
    (
        "python-ldap-3.4.4.log",
        "missing-header",
        "missing header lber.h (lber.h: No such file or directory)",
        (Missing("header", "lber.h"),),
    ),
    (
        "wf-missing-header-0.1.log",
        "missing-header",
        "missing header wheelfarm_nonexistent/none.h",
        (Missing("header", "wheelfarm_nonexistent/none.h"),),
    ),
    (
        "pycurl-7.45.3.log",
        "missing-program",
        "missing program curl-config ([Errno 2] No such file or directory: 'curl-config')",
        (Missing("program", "curl-config"),),
    ),
    (
        "mysqlclient-2.2.6.log",
        "missing-pkgconfig",
        "missing pkg-config module mysqlclient",
        tuple(
            Missing("pkgconfig", name)
            for name in ("mysqlclient", "mariadb", "libmariadb", "perconaserverclient")
        ),
    ),
    (
        "pillow-11.0.0.log",
        "missing-library",
        "missing headers or library of jpeg (The headers or library files could not be found",
        (),
    ),
    (
        "lxml-5.3.0.log",
        "missing-library",
        "missing development packages (Error: Please make sure the libxml2 and libxslt",
        (),
    ),
    (
        "cryptography-43.0.3-no-rust.log",
        "missing-program",
        "missing programs cargo and rustc (Rust not found, installing into a temporary",
        (Missing("program", "cargo"), Missing("program", "rustc")),
    ),
    (
        "cryptography-43.0.3-registry-unreachable.log",
        "download",
        "crate registry unreachable: crates-io (error: Unable to update registry `crates-io`)",
        (),
    ),
    (
        # scikit-build-core's CMake run, no Arrow C++ (not in Debian 12): not the probes the
        # trace would find (git, dlltool, ccache...)
        "pyarrow-26.0.1-no-arrow.log",
        "missing-cmake",
        'missing CMake package Arrow (find a package configuration file provided by "Arrow")',
        (Missing("cmake", "Arrow"),),
    ),
    (
        "cryptography-43.0.3-offline.log",
        "download",
        "crate not available from the registry: openssl-sys",
        (),
    ),
    (
        # meson-python, a bare subproject('pybind11') whose wrap cannot be fetched: the
        # download, not the urllib warning before it, nor the word after "failed to download"
        "python-poppler-0.4.1-wrap-offline.log",
        "download",
        "meson could not download a subproject's source: "
        "https://git.example/pybind/pybind11/archive/refs/tags/v2.10.3.tar.gz",
        (),
    ),
]


@pytest.mark.parametrize(("name", "kind", "summary", "missing"), REAL_LOGS, ids=str)
def test_a_real_failed_build_log_names_its_cause(
    name: str, kind: str, summary: str, missing: tuple[Missing, ...]
) -> None:
    found = diagnose.read_log(log(name))
    primary = found.primary
    assert primary is not None
    assert primary.kind == kind
    assert primary.summary.startswith(summary)
    assert found.missing == missing
    assert "Backend subprocess exited" not in primary.summary
    assert primary.hint and "\n" not in primary.summary
    assert primary.line and primary.line in log(name)
    assert not found.traced and found.note == "log only"


def test_a_meson_subproject_download_is_not_traced_and_names_the_wrap() -> None:
    primary = diagnose.read_log(log("python-poppler-0.4.1-wrap-offline.log")).primary
    assert primary is not None
    # strace would only see meson's optional probes (ccache, sccache, git): nothing to install
    assert not primary.traceable
    assert "wrap file under subprojects/" in primary.hint
    assert "download failed: with" not in primary.summary


def test_a_crate_download_failure_is_hinted_at_cargos_own_settings() -> None:
    primary = diagnose.read_log(log("cryptography-43.0.3-registry-unreachable.log")).primary
    assert primary is not None and "[build.env]" in primary.hint and "crate" in primary.hint
    # The warnings before cargo gave up are causes too, below cargo's own words.
    causes = diagnose.read_log(log("cryptography-43.0.3-registry-unreachable.log")).causes
    assert causes[0].summary.startswith("download at build time (warning: spurious network")
    assert causes[0] is not primary


def test_the_hints_name_the_recipe_keys_and_the_thing_not_a_package() -> None:
    header = diagnose.read_log(log("python-ldap-3.4.4.log")).primary
    assert header is not None
    assert "[build.packages]" in header.hint and "lber.h" in header.hint
    assert "libldap" not in header.hint  # no guessed package names
    pc = diagnose.read_log(log("mysqlclient-2.2.6.log")).primary
    assert pc is not None and "mysqlclient.pc" in pc.hint and "PKG_CONFIG_PATH" in pc.hint


# ---------------------------------------------------------------- each tool's wording

SUBPROCESS = (
    '  File "/usr/lib/python3.11/subprocess.py", line 1901, in _execute_child\n'
    "    raise child_exception_type(errno_num, err_msg, err_filename)\n"
)
WORDING = [
    # text, kind, missing, summary fragment
    ("a.c:3:10: fatal error: jpeglib.h: No such file or directory", "missing-header",
     (Missing("header", "jpeglib.h"),), "missing header jpeglib.h"),
    ("a.c:1:10: fatal error: 'ffi.h' file not found", "missing-header",
     (Missing("header", "ffi.h"),), "missing header ffi.h"),
    ("Package libffi was not found in the pkg-config search path.", "missing-pkgconfig",
     (Missing("pkgconfig", "libffi"),), "missing pkg-config module libffi"),
    ("Package 'libxml-2.0', required by 'virtual:world', not found", "missing-pkgconfig",
     (Missing("pkgconfig", "libxml-2.0"),), "libxml-2.0"),
    ("No package 'gtk+-3.0' found", "missing-pkgconfig",
     (Missing("pkgconfig", "gtk+-3.0"),), "gtk+-3.0"),
    ('meson.build:5:0: ERROR: Dependency "openblas" not found, tried pkgconfig and cmake',
     "missing-pkgconfig", (Missing("pkgconfig", "openblas"),), "openblas"),
    ("subprocess.CalledProcessError: Command '['pkg-config', '--cflags', '--libs', "
     "'libxml-2.0']' returned non-zero exit status 1.", "missing-pkgconfig",
     (Missing("pkgconfig", "libxml-2.0"),), "libxml-2.0"),
    ("  Could NOT find PkgConfig (missing: PKG_CONFIG_EXECUTABLE)", "missing-program",
     (Missing("program", "pkg-config"),), "missing program pkg-config"),
    (SUBPROCESS + "FileNotFoundError: [Errno 2] No such file or directory: 'pg_config'",
     "missing-program", (Missing("program", "pg_config"),), "missing program pg_config"),
    ("/bin/sh: 1: mysql_config: not found", "missing-program",
     (Missing("program", "mysql_config"),), "missing program mysql_config"),
    ("bash: line 1: cmake: command not found", "missing-program",
     (Missing("program", "cmake"),), "cmake"),
    ("./configure: line 5: gfortran: command not found", "missing-program",
     (Missing("program", "gfortran"),), "gfortran"),
    ("error: command 'swig' failed: No such file or directory", "missing-program",
     (Missing("program", "swig"),), "missing program swig"),
    ("error: command '/usr/bin/swig' failed: No such file or directory", "missing-program",
     (Missing("program", "swig"),), "missing program swig"),
    ("unable to execute 'x86_64-linux-gnu-gcc': No such file or directory", "missing-program",
     (Missing("program", "x86_64-linux-gnu-gcc"),), "x86_64-linux-gnu-gcc"),
    ("g++: fatal error: cannot execute 'cc1plus': execvp: No such file or directory",
     "missing-program", (Missing("program", "cc1plus"),), "cc1plus"),
    ("meson.build:10:0: ERROR: Program 'cython' not found or not executable", "missing-program",
     (Missing("program", "cython"),), "cython"),
    ("meson.build:1:0: ERROR: Unknown compiler(s): [['gfortran'], ['flang']]", "missing-program",
     (Missing("program", "gfortran"),), "gfortran"),
    ("error: linker `cc` not found", "missing-program", (Missing("program", "cc"),), "cc"),
    ("error: can't find Rust compiler", "missing-program",
     (Missing("program", "cargo"), Missing("program", "rustc")), "cargo and rustc"),
    ("/usr/bin/ld: cannot find -lldap: No such file or directory", "missing-library",
     (Missing("library", "ldap"),), "missing library -lldap"),
    ("/usr/bin/ld: cannot find -lssl", "missing-library", (Missing("library", "ssl"),), "-lssl"),
    ("  No CMAKE_Fortran_COMPILER could be found.", "missing-program", (), "missing compiler"),
    ("  Could NOT find OpenSSL, try to set the path to OpenSSL root folder in the",
     "missing-library", (), "CMake could not find OpenSSL"),
    ('  Could not find a package configuration file provided by "Eigen3" with any of',
     "missing-cmake", (Missing("cmake", "Eigen3"),), "missing CMake package Eigen3"),
    ("The headers or library files could not be found for zlib,", "missing-library", (),
     "missing headers or library of zlib"),
    ("error: failed to get `asn1` as a dependency of package `x v0.1.0 (/wf/src/x)`",
     "download", (), "crate download failed: asn1"),
    ("error: failed to download `asn1 v0.16.2`", "download", (), "download failed: asn1 v0.16.2"),
    ("Failed to download https://files.example/libfoo-1.2.tar.gz", "download", (),
     "download failed: https://files.example/libfoo-1.2.tar.gz"),
    ("error: Unable to update registry `crates-io`", "download", (), "crate registry unreachable"),
    ("../meson.build:16:16: ERROR: could not get https://files.example/x-1.0.tar.gz; is the "
     "internet available?", "download", (),
     "meson could not download a subproject's source: https://files.example/x-1.0.tar.gz"),
    ("  failed to fetch `https://index.example/crates`", "download", (),
     "download failed: https://index.example/crates"),
    ("error: no matching package named `pyo3` found", "download", (), "pyo3"),
    ("info: downloading installer", "download", (), "toolchain download"),
    ("Downloading rustup-init from https://toolchain.example/rustup-init", "download", (),
     "toolchain download"),
    ("WARNING: Could not fetch URL https://index.example/simple/foo/: connection error",
     "download", (), "package index unreachable: https://index.example/simple/foo/"),
    ("ERROR: No matching distribution found for numpy>=2", "download", (),
     "no distribution found for numpy>=2"),
    ("ERROR: Could not find a version that satisfies the requirement cython<3 (from versions: "
     "none)", "download", (), "no version found for cython<3"),
    ("  ╰─▶ Because wf-nothing was not found in the package registry and you require "
     "wf-nothing, we can conclude that your requirements are unsatisfiable.", "download", (),
     "no version found for wf-nothing"),
    ("  file DOWNLOAD cannot compute hash on failed download", "download", (),
     "download at build time"),
    ("  Failed to clone repository: 'https://git.example/zstd.git'", "download", (),
     "download at build time"),
    ("CMake Error at /usr/share/cmake-3.25/Modules/FetchContent.cmake:1624 (message): Build "
     "step for googletest failed: 2", "download", (), "download at build time"),
    ("fatal: unable to access 'https://git.example/x.git/': Could not resolve host: git.example",
     "download", (), "git fetch at build time"),
    ("Cloning into 'vendor/zstd'...", "download", (), "git fetch at build time"),
    ("urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>",
     "download", (), "download at build time"),
    ("curl: (6) Could not resolve host: files.example", "download", (), "download at build time"),
    ('Cannot find "gdal-config"', "missing-program", (Missing("program", "gdal-config"),),
     "cannot find gdal-config"),
    ("Error: Please make sure the libxml2 and libxslt development packages are installed.",
     "missing-library", (), "missing development packages"),
    ("src/x.c:12:5: error: 'FOO' undeclared (first use in this function)", "compiler-error", (),
     "src/x.c:12:5: error: 'FOO' undeclared"),
    ("error[E0425]: cannot find value `x` in this scope", "compiler-error", (),
     "error[E0425]: cannot find value"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "kind", "missing", "summary"), WORDING, ids=lambda v: str(v)[:50])
def test_each_tools_wording_is_read(
    text: str, kind: str, missing: tuple[Missing, ...], summary: str
) -> None:
    found = diagnose.read_log(text)
    primary = found.primary
    assert primary is not None, text
    assert (primary.kind, primary.missing, found.missing) == (kind, missing, missing)
    assert summary in primary.summary
    assert primary.hint


def test_every_row_of_the_table_is_exercised_by_a_line_above() -> None:
    lines = [line.strip() for text, *_ in WORDING for line in text.splitlines()]
    for pattern in diagnose.PATTERNS:
        assert any(pattern.regex.search(line) for line in lines), pattern.regex.pattern
        assert pattern.kind in diagnose.CAUSE_KINDS


@pytest.mark.parametrize(
    "text",
    [
        # wheelfarm's own wrapper line and headings are never the cause
        "wheelfarm: wheel failed: Backend subprocess exited when trying to invoke build_wheel",
        "==> [   2.1s] build the wheel",
        # CMake's status line for an optional package
        "-- Could NOT find OpenMP_C (missing: OpenMP_C_FLAGS OpenMP_C_LIB_NAMES)",
        "-- Could NOT find PkgConfig (missing: PKG_CONFIG_EXECUTABLE)",
        # a data file that is not there, outside any subprocess frames
        "FileNotFoundError: [Errno 2] No such file or directory: 'README'",
        "running build_ext",
        "",
    ],
)
def test_lines_that_are_no_cause(text: str) -> None:
    found = diagnose.read_log(text)
    assert found.causes == () and found.primary is None and found.missing == ()


def test_a_missing_thing_beats_prose_beats_a_download_beats_a_compiler_error() -> None:
    compiler = "x.c:1:2: error: unknown type name 'xmlDoc'"
    download = "error: failed to download `asn1 v0.16.2`"
    prose = "Error: Please make sure the libxml2 and libxslt development packages are installed."
    header = "x.c:1:10: fatal error: libxml/parser.h: No such file or directory"
    network = "curl: (6) Could not resolve host: files.example"
    lines = [compiler, network, download, prose, header]

    def primary(*chosen: str) -> str:
        cause = diagnose.read_log("\n".join(chosen)).primary
        assert cause is not None
        return cause.line

    assert primary(*lines) == header
    assert primary(compiler, network, download, prose) == prose
    assert primary(compiler, network, download) == download
    assert primary(compiler, network) == network
    # Among equals, the first in the log.
    other = "y.c:2:10: fatal error: zlib.h: No such file or directory"
    assert primary(compiler, other, header) == other
    assert len(diagnose.read_log("\n".join(lines)).causes) == 5


def test_the_same_thing_said_twice_is_one_cause() -> None:
    found = diagnose.read_log(log("pillow-11.0.0.log"))  # pillow says it twice
    assert len(found.causes) == 1
    curl = diagnose.read_log(log("pycurl-7.45.3.log"))  # the traceback and the error's message
    assert len(curl.causes) == 1 and curl.missing == (Missing("program", "curl-config"),)


def test_a_cause_as_json_lists_what_is_missing() -> None:
    primary = diagnose.read_log(log("python-ldap-3.4.4.log")).primary
    assert primary is not None
    assert primary.as_json() == {
        "kind": "missing-header",
        "summary": "missing header lber.h (lber.h: No such file or directory)",
        "hint": primary.hint,
        "missing": [{"kind": "header", "name": "lber.h"}],
    }


def test_names_whose_spelling_says_what_they_are() -> None:
    assert diagnose.missing_of_shape("foo/bar.h") == Missing("header", "foo/bar.h")
    assert diagnose.missing_of_shape("/usr/lib/pkgconfig/libffi.pc") == Missing(
        "pkgconfig", "libffi"
    )
    assert diagnose.missing_of_shape("libssl.so.3") == Missing("library", "ssl")
    assert diagnose.missing_of_shape("libz.a") == Missing("library", "z")
    assert diagnose.missing_of_shape("xslt-config") == Missing("program", "xslt-config")
    assert diagnose.missing_of_shape("libxml2") is None


# ---------------------------------------------------------------- traces

REAL_TRACES = [
    ("lxml-5.3.0.trace", (Missing("pkgconfig", "libxml-2.0"), Missing("program", "xml2-config"))),
    ("python-ldap-3.4.4.trace", (Missing("header", "lber.h"),)),
    ("gcc-nested-header.trace", (Missing("header", "libxml/parser.h"),)),
    ("ld-missing-library.trace", (Missing("library", "wf_nonexistent"),)),
    ("sh-missing-programs.trace",
     (Missing("program", "wf-no-such-tool"), Missing("program", "cmake"))),
    # g++ compiling <vector> probes tbb/tbb.h with __has_include, collect2 looks for gnm and
    # gstrip before nm and strip: a successful build, nothing missing.
    ("gxx-has-include-probe.trace", ()),
]  # fmt: skip


@pytest.mark.parametrize(("name", "missing"), REAL_TRACES, ids=lambda v: str(v)[:40])
def test_a_real_trace_names_what_was_looked_for_and_found_nowhere(
    name: str, missing: tuple[Missing, ...]
) -> None:
    assert diagnose.read_trace(log(name)) == missing


def enoent(pid: int, call: str, path: str) -> str:
    args = f'"{path}", [], 0x0 /* 3 vars */' if call == "execve" else f'AT_FDCWD, "{path}", 0'
    return f"{pid}   {call}({args}) = -1 ENOENT (No such file or directory)"


def ok(pid: int, call: str, path: str) -> str:
    args = f'"{path}", [], 0x0 /* 3 vars */' if call == "execve" else f'AT_FDCWD, "{path}", 0'
    return f"{pid}   {call}({args}) = 3"


def test_a_program_is_missing_when_every_lookup_failed_and_none_found_it() -> None:
    walk = [enoent(7, "newfstatat", f"{d}/swig") for d in ("/usr/local/bin", "/usr/bin", "/bin")]
    assert diagnose.read_trace("\n".join(walk)) == (Missing("program", "swig"),)
    # found later (by another process, too): not missing
    assert diagnose.read_trace("\n".join([*walk, ok(9, "execve", "/opt/swig/bin/swig")])) == ()
    # one folder is no PATH walk (Python's startup looks for files beside its binary)
    assert diagnose.read_trace(enoent(7, "newfstatat", "/usr/bin/pybuilddir.txt")) == ()
    # a failed exec is a lookup on its own
    assert diagnose.read_trace(enoent(7, "execve", "/usr/bin/pg_config")) == (
        Missing("program", "pg_config"),
    )


def test_the_compiler_drivers_own_probes_are_not_causes() -> None:
    trace = [
        ok(5, "execve", "/usr/bin/gcc"),
        enoent(5, "execve", "/usr/lib/gcc/x86_64-linux-gnu/12/../bin/as"),
        enoent(5, "newfstatat", "/usr/local/bin/gnm"),
        enoent(5, "newfstatat", "/usr/bin/gnm"),
        ok(5, "execve", "/usr/bin/as"),
    ]
    assert diagnose.read_trace("\n".join(trace)) == ()


def test_a_compiler_stops_at_the_header_it_cannot_find_and_probes_before_it_do_not_count() -> None:
    trace = [
        ok(8, "execve", "/usr/lib/gcc/x86_64-linux-gnu/12/cc1"),
        enoent(8, "openat", "/usr/local/include/optional.h"),
        enoent(8, "openat", "/usr/include/optional.h"),
        ok(8, "openat", "/usr/include/stdio.h"),
        enoent(8, "openat", "src/wanted.h"),
        enoent(8, "openat", "/usr/local/include/wanted.h"),
        enoent(8, "openat", "/usr/include/wanted.h"),
        ok(8, "openat", "/usr/include/stdio.h"),  # opened again to quote it: no new lookup
    ]
    assert diagnose.read_trace("\n".join(trace)) == (Missing("header", "wanted.h"),)


def test_headers_found_in_a_later_folder_and_pc_files_are_read_as_such() -> None:
    trace = [
        enoent(3, "openat", "/usr/local/include/zlib.h"),
        ok(3, "openat", "/usr/include/zlib.h"),
        enoent(4, "openat", "/usr/lib/pkgconfig/libffi-uninstalled.pc"),
        enoent(4, "openat", "/usr/lib/pkgconfig/libffi.pc"),
        enoent(4, "openat", "/usr/share/pkgconfig/libffi.pc"),
        enoent(6, "openat", "/usr/lib/x86_64-linux-gnu/libffi.so"),
        enoent(6, "openat", "/usr/lib/x86_64-linux-gnu/libffi.a"),
        enoent(6, "openat", "/usr/lib/x86_64-linux-gnu/libc.so.6"),  # the loader's, versioned
    ]
    assert diagnose.read_trace("\n".join(trace)) == (
        Missing("pkgconfig", "libffi"),
        Missing("library", "ffi"),
    )


def test_interrupted_calls_and_the_pid_bracket_format_are_joined() -> None:
    trace = "\n".join(
        [
            '12 openat(AT_FDCWD, "/usr/lib/pkgconfig/libpq.pc", O_RDONLY <unfinished ...>',
            '13 openat(AT_FDCWD, "/usr/include/foo.h", O_RDONLY) = 3',
            "12 <... openat resumed>) = -1 ENOENT (No such file or directory)",
            '[pid    14] execve("/usr/bin/pg_config", ["pg_config"], 0x0 /* 3 vars */) = -1 '
            "ENOENT (No such file or directory)",
            "15 <... openat resumed>) = -1 ENOENT (No such file or directory)",  # no start seen
            "garbage line",
            "+++ exited with 1 +++",
        ]
    )
    assert diagnose.read_trace(trace) == (
        Missing("pkgconfig", "libpq"),
        Missing("program", "pg_config"),
    )


def test_a_trace_turns_prose_into_the_things_it_names() -> None:
    from_log = diagnose.read_log(log("lxml-5.3.0.log"))
    merged = from_log.with_trace(diagnose.read_trace(log("lxml-5.3.0.trace")), "log and trace")
    primary = merged.primary
    assert primary is not None and merged.traced and merged.note == "log and trace"
    assert primary.kind == "missing-pkgconfig"
    assert primary.summary.startswith(
        "missing pkg-config module libxml-2.0, program xml2-config (looked for and found nowhere"
    )
    assert (
        primary.missing
        == merged.missing
        == (
            Missing("pkgconfig", "libxml-2.0"),
            Missing("program", "xml2-config"),
        )
    )
    # the log's own prose stays among the causes
    assert from_log.causes[0] in merged.causes
    nothing = from_log.with_trace((), "log and trace")
    assert nothing.primary == from_log.primary and nothing.traced
    assert from_log.noted("log only: ptrace refused").note == "log only: ptrace refused"


def test_prose_naming_what_it_lacks_picks_those_among_the_traced_lookups() -> None:
    # Pillow looks for every optional library before it says which required one it lacks.
    from_log = diagnose.read_log(log("pillow-11.0.0.log"))
    traced = [
        Missing("pkgconfig", "libjpeg"),
        Missing("pkgconfig", "libopenjp2"),
        Missing("pkgconfig", "libtiff-4"),
        Missing("header", "jpeglib.h"),
        Missing("header", "tiff.h"),
    ]
    primary = from_log.with_trace(traced, "log and trace").primary
    assert primary is not None
    assert primary.missing == (Missing("pkgconfig", "libjpeg"), Missing("header", "jpeglib.h"))
    assert primary.summary == (
        "missing pkg-config module libjpeg, header jpeglib.h (looked for and found nowhere, traced)"
    )
    # None of them named: all of them, the summary naming the first three.
    other = from_log.with_trace(traced[1:3] + traced[4:], "log and trace").primary
    assert other is not None and len(other.missing) == 3
    many = from_log.with_trace([Missing("pkgconfig", f"m{i}") for i in range(5)], "x").primary
    assert many is not None and len(many.missing) == 5
    assert many.summary.startswith("missing pkg-config module m0, pkg-config module m1, ")
    assert "and 2 more (looked for" in many.summary
