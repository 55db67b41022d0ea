"""Which package provides a missing thing: Contents lines, provides answers and the tie-break,
on lines and versions taken from Debian 12 (bookworm main, amd64 and all, 2026-12)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from wheelfarm import providers
from wheelfarm.needs import Missing
from wheelfarm.providers import Candidate, Known

DATA = Path(__file__).resolve().parents[1] / "data" / "providers"
# Real lines of bookworm's Contents-amd64 and Contents-all (and three the reduced index drops).
BOOKWORM = (DATA / "bookworm-contents.txt").read_text(encoding="utf-8").splitlines()
# `apt-cache show --no-all-versions` in the debian-12 image, 2026-12-01.
VERSIONS = {
    "cargo": "0.66.0+ds1-1",
    "cargo-web": "1.85.0+dfsg3-1~deb12u3",
    "rustc": "1.63.0+dfsg1-2",
    "rustc-web": "1.85.0+dfsg3-1~deb12u3",
    "g++": "4:12.2.0-3",
    "pentium-builder": "0.21+nmu2",
    "libcurl4-openssl-dev": "7.88.1-10+deb12u15",
    "libcurl4-gnutls-dev": "7.88.1-10+deb12u15",
    "libcurl4-nss-dev": "7.88.1-10+deb12u15",
}


def pick(missing: Missing, known: Known | None = None) -> providers.Choice | None:
    found = providers.apt_candidates(BOOKWORM, [missing])[missing]
    return providers.choose(missing, found, known or Known(versions=VERSIONS))


def test_curl_config_is_in_three_variants_and_openssl_is_picked() -> None:
    choice = pick(Missing("program", "curl-config"))
    assert choice is not None
    assert choice.candidates == ("libcurl4-gnutls-dev", "libcurl4-nss-dev", "libcurl4-openssl-dev")
    assert choice.package == "libcurl4-openssl-dev"
    assert "preferred implementation (openssl > gnutls > nss)" in choice.why


def test_the_same_variant_for_the_header_and_the_pkgconfig_module() -> None:
    for missing in (Missing("header", "curl/curl.h"), Missing("pkgconfig", "libcurl")):
        choice = pick(missing)
        assert choice is not None and choice.package == "libcurl4-openssl-dev"


def test_a_variant_chosen_earlier_in_the_build_wins_over_the_preference() -> None:
    known = Known(chosen=frozenset({"libcurl4-gnutls-dev"}), versions=VERSIONS)
    choice = pick(Missing("pkgconfig", "libcurl"), known)
    assert choice is not None and choice.package == "libcurl4-gnutls-dev"
    assert choice.why.startswith("already installed or chosen in this build")


def test_cargo_comes_from_cargo_web_whose_rust_is_new_enough() -> None:
    choice = pick(Missing("program", "cargo"))
    assert choice is not None
    assert choice.candidates == ("cargo", "cargo-web")
    assert choice.package == "cargo-web"
    assert choice.why.startswith("the newest version of the program")
    rustc = pick(Missing("program", "rustc"))
    assert rustc is not None and rustc.package == "rustc-web"


def test_without_versions_the_package_named_after_the_program_wins() -> None:
    choice = pick(Missing("program", "cargo"), Known())
    assert choice is not None and choice.package == "cargo"
    assert choice.why.startswith("named after it")


def test_a_program_from_its_own_package_over_a_wrapper_of_it() -> None:
    choice = pick(Missing("program", "g++"))
    assert choice is not None and choice.package == "g++"
    assert "over pentium-builder" in choice.why


@pytest.mark.parametrize(
    ("missing", "package"),
    [
        (Missing("header", "lber.h"), "libldap-dev"),
        (Missing("header", "ft2build.h"), "libfreetype-dev"),  # in freetype2/: -I from pkg-config
        (Missing("header", "mysql.h"), "libmariadb-dev"),
        (Missing("header", "openssl/ssl.h"), "libssl-dev"),
        (Missing("header", "tiffio.h"), "libtiff-dev"),
        (Missing("header", "zlib.h"), "zlib1g-dev"),
        (Missing("library", "z"), "zlib1g-dev"),
        (Missing("pkgconfig", "mysqlclient"), "libmariadb-dev-compat"),
        (Missing("program", "mysql_config"), "libmariadb-dev-compat"),
        (Missing("program", "cmake"), "cmake"),
        (Missing("program", "swig"), "swig"),
        (Missing("program", "gfortran"), "gfortran"),
        # CMake packages, both spellings of the config file, under lib/, lib/<arch>/, share/
        (Missing("cmake", "pybind11"), "pybind11-dev"),
        (Missing("cmake", "fmt"), "libfmt-dev"),
        (Missing("cmake", "Eigen3"), "libeigen3-dev"),
    ],
)
def test_real_cases(missing: Missing, package: str) -> None:
    choice = pick(missing)
    assert choice is not None and choice.package == package, choice


def test_a_header_shipped_by_many_packages_is_taken_where_the_compiler_looks() -> None:
    choice = pick(Missing("header", "openssl/ssl.h"))
    assert choice is not None
    assert choice.candidates == ("android-libboringssl-dev", "libssl-dev", "libwolfssl-dev")
    assert choice.why.startswith("found where the build looks without extra flags")


def test_multilib_and_plugin_libraries_are_not_the_linker_s() -> None:
    choice = pick(Missing("library", "z"))
    assert choice is not None and choice.package == "zlib1g-dev"
    assert "lib32z1-dev" in choice.candidates
    assert pick(Missing("library", "jpeg")) is None  # darktable's plugin is no -ljpeg


def test_nothing_found_is_none() -> None:
    assert pick(Missing("header", "no-such-header.h")) is None


def test_a_header_path_must_match_as_a_whole_component() -> None:
    # "ssl.h" alone matches usr/include/openssl/ssl.h, "l/ssl.h" does not.
    assert pick(Missing("header", "l/ssl.h")) is None
    assert pick(Missing("header", "ssl.h")) is not None


def test_the_tie_break_is_the_same_in_any_order() -> None:
    missing = Missing("program", "curl-config")
    found = providers.apt_candidates(BOOKWORM, [missing])[missing]
    first = providers.choose(missing, found, Known())
    again = providers.choose(missing, list(reversed(found)), Known())
    assert first == again


def test_contrib_is_an_archive_area() -> None:
    parsed = providers.parse_contents_line(BOOKWORM[-1])
    assert parsed == ("usr/share/sip/PyQt5/QtCore/qstring.sip", [("contrib", "pyqt5-dev")])
    main = Candidate("a-dev", "usr/include/x.h")
    contrib = Candidate("b-dev", "usr/include/x.h", "contrib")
    choice = providers.choose(Missing("header", "x.h"), [contrib, main], Known())
    assert choice is not None and choice.package == "a-dev"
    assert choice.why.startswith("from the distro's main archive area")


def test_the_reduced_index_keeps_what_discovery_asks_about() -> None:
    kept = [line for line in BOOKWORM if providers.KEPT_LINES.match(line)]
    dropped = [line.split()[0] for line in BOOKWORM if line not in kept]
    assert dropped == [
        "usr/share/doc/zlib1g-dev/changelog.gz",
        "usr/lib/x86_64-linux-gnu/darktable/plugins/imageio/format/libjpeg.so",
        "usr/share/sip/PyQt5/QtCore/qstring.sip",
    ]
    script = Path(providers.__file__).parent / "data" / "contents_index.py"
    tree = ast.parse(script.read_text(encoding="utf-8"))
    (value,) = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "KEPT_LINES" for t in node.targets)
    ]
    assert isinstance(value, ast.Call)
    assert ast.literal_eval(value.args[0]) == providers.KEPT_LINES.pattern


DNF_PROVIDES = """\
Last metadata expiration check: 0:01:02 ago on Tue Dec  1 22:00:00 2026.
libcurl-devel-7.76.1-29.el9_4.i686 : Files needed for building applications with libcurl
Repo        : appstream
Matched from:
Filename    : /usr/bin/curl-config

libcurl-devel-7.76.1-29.el9_4.x86_64 : Files needed for building applications with libcurl
Repo        : appstream
Matched from:
Filename    : /usr/bin/curl-config

openssl-devel-1:3.0.7-27.el9.x86_64 : Files for development of applications which will use OpenSSL
Repo        : appstream
Matched from:
Provide    : pkgconfig(openssl) = 3.0.7
"""


def test_dnf_provides_keeps_the_target_s_architecture() -> None:
    found = providers.parse_rpm_provides(DNF_PROVIDES, "x86_64")
    assert found == [
        Candidate("libcurl-devel", "/usr/bin/curl-config"),
        Candidate("openssl-devel", "pkgconfig(openssl) = 3.0.7"),
    ]


def test_provides_queries_per_family() -> None:
    assert providers.provides_queries("dnf", Missing("pkgconfig", "libcurl")) == [
        "pkgconfig(libcurl)"
    ]
    assert providers.provides_queries("yum", Missing("header", "lber.h")) == ["*/include/lber.h"]
    assert providers.provides_queries("apk", Missing("program", "curl-config")) == [
        "cmd:curl-config"
    ]
    assert providers.provides_queries("apk", Missing("library", "ldap")) == ["so:libldap.so*"]
    assert providers.provides_queries("dnf", Missing("cmake", "Arrow")) == [
        "cmake(Arrow)",
        "*/ArrowConfig.cmake",
        "*/arrow-config.cmake",
    ]
    assert providers.provides_queries("apk", Missing("cmake", "Arrow")) == []
    assert providers.provides_queries("dnf", Missing("pkgconfig", "OpenBLAS")) == [
        "pkgconfig(OpenBLAS)",
        "pkgconfig(openblas)",
    ]


def test_a_pkgconfig_module_is_found_in_any_case() -> None:
    """meson's `Dependency "OpenBLAS" not found (tried pkg-config)`: Debian ships openblas.pc."""
    lines = [
        "usr/lib/x86_64-linux-gnu/openblas-pthread/pkgconfig/openblas.pc "
        "libdevel/libopenblas-pthread-dev",
        "usr/lib/x86_64-linux-gnu/pkgconfig/openblas64.pc   libdevel/libopenblas64-dev",
    ]
    found = providers.apt_candidates(lines, [Missing("pkgconfig", "OpenBLAS")])
    assert [c.package for c in found[Missing("pkgconfig", "OpenBLAS")]] == [
        "libopenblas-pthread-dev"
    ]


def test_a_cmake_package_is_its_config_file_not_any_cmake_file() -> None:
    pattern = providers.contents_pattern(Missing("cmake", "Arrow"))
    assert pattern.match("usr/lib/x86_64-linux-gnu/cmake/Arrow/ArrowConfig.cmake")
    assert pattern.match("usr/share/arrow/cmake/arrow-config.cmake")
    assert not pattern.match("usr/lib/x86_64-linux-gnu/cmake/Arrow/ArrowTargets.cmake")
    assert not pattern.match("usr/lib/cmake/Parquet/NotArrowConfig.cmake")
    assert not pattern.match("usr/src/arrow/ArrowConfig.cmake")
    line = "usr/lib/x86_64-linux-gnu/cmake/arrow/arrow-config.cmake   libdevel/libarrow-dev"
    found = providers.apt_candidates([line], [Missing("cmake", "Arrow")])
    assert [c.package for c in found[Missing("cmake", "Arrow")]] == ["libarrow-dev"]


def test_apk_search_answers_and_dev_packages() -> None:
    assert providers.parse_apk_search("curl-dev-8.11.1-r0\nopenldap-2.6.8-r0\n") == [
        "curl-dev",
        "openldap",
    ]
    assert providers.apk_dev_package("openldap") == "openldap-dev"
