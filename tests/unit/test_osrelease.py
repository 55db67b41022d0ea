"""os-release(5) parsing and tag normalisation: examples plus hypothesis properties."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wheelfarm import osrelease, tags
from wheelfarm.errors import BadInput

# Characters str.splitlines() treats as line ends: a value holding one cannot sit on one line.
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
values = st.text(st.characters(blacklist_characters=_LINE_BREAKS, blacklist_categories=("Cs",)))


def double_quoted(value: str) -> str:
    escaped = "".join("\\" + c if c in '"\\$`' else c for c in value)
    return f'"{escaped}"'


def single_quoted(value: str) -> str:
    # A single quote cannot appear inside '…': close, add an escaped one, reopen (as sh does).
    return "'" + value.replace("'", "'\\''") + "'"


def unquoted(value: str) -> str:
    return "".join(c if c.isalnum() else "\\" + c for c in value)


quoting = st.sampled_from([double_quoted, single_quoted, unquoted])
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]*", fullmatch=True)


def test_examples_as_distributions_write_them() -> None:
    text = (
        "# comment\n"
        "\n"
        'NAME="Debian GNU/Linux"\n'
        "ID=debian\n"
        "VERSION_ID='12'\n"
        'PRETTY_NAME="say \\"hi\\" for \\$5 and keep \\n"\n'
        "ID_LIKE=rhel\\ fedora\n"
        "TRAILING=spaces   \n"
        "  INDENTED=yes\n"
        'BROKEN="never closed\n'
        "not an assignment\n"
        "1BAD=key\n"
        "ID=debian2\n"
    )
    assert osrelease.parse(text) == {
        "NAME": "Debian GNU/Linux",
        "ID": "debian2",  # a later assignment wins
        "VERSION_ID": "12",
        "PRETTY_NAME": 'say "hi" for $5 and keep \\n',
        "ID_LIKE": "rhel fedora",
        "TRAILING": "spaces",
        "INDENTED": "yes",
    }


def test_trailing_blanks_after_a_quoted_value_are_not_part_of_it() -> None:
    # As in the real AlmaLinux 8.3 beta file (tests/data/os-release/almalinux-8.3-beta).
    assert osrelease.parse('X="AlmaLinux-8"                        \n') == {"X": "AlmaLinux-8"}


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        osrelease.read_file(tmp_path / "missing")


def test_host_falls_back_to_usr_lib(tmp_path: Path) -> None:
    usr_lib = tmp_path / "usr-lib-os-release"
    usr_lib.write_text("ID=alpine\nVERSION_ID=3.20.3\n")
    dangling = tmp_path / "etc-os-release"
    dangling.symlink_to(tmp_path / "gone")  # like /etc/os-release → ../usr/lib/os-release
    assert osrelease.read_host((dangling, usr_lib)) == {"ID": "alpine", "VERSION_ID": "3.20.3"}
    assert osrelease.read_host((dangling,)) is None


@given(key=keys, chunks=st.lists(st.tuples(quoting, values), min_size=1, max_size=4))
def test_quoted_values_round_trip(key: str, chunks: list[tuple[object, str]]) -> None:
    line = key + "=" + "".join(quote(value) for quote, value in chunks)  # type: ignore[operator]
    expected = "".join(value for _, value in chunks)
    assert osrelease.parse(f"# written by a test\n{line}\nOTHER=x\n") == {
        key: expected,
        "OTHER": "x",
    }


@given(st.text())
def test_parser_never_crashes(text: str) -> None:
    fields = osrelease.parse(text)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) for k in fields)
    assert all(isinstance(v, str) for v in fields.values())


@given(st.text())
def test_normalise_shape(text: str) -> None:
    out = tags.normalise(text)
    assert re.fullmatch(r"([a-z0-9]+(_[a-z0-9]+)*)?", out)
    assert tags.normalise(out) == out


@given(st.text())
def test_normalise_keeps_every_letter_and_digit(text: str) -> None:
    assert tags.normalise(text).replace("_", "") == re.sub(r"[^a-z0-9]", "", text.lower())


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("22.04", "22_04"),
        ("opensuse-leap", "opensuse_leap"),
        ("  RHEL  ", "rhel"),
        ("9.4 (Blue Onyx)", "9_4_blue_onyx"),
        ("--", ""),
        ("a..b__c", "a_b_c"),
    ],
)
def test_normalise_examples(raw: str, normalised: str) -> None:
    assert tags.normalise(raw) == normalised


@pytest.mark.parametrize(
    ("fields", "distro_id", "version", "release"),
    [
        ({}, "linux", "rolling", "rolling"),
        ({"ID": "--"}, "linux", "rolling", "rolling"),
        (
            {"ID": "debian", "VERSION_ID": "", "VERSION_CODENAME": "trixie"},
            "debian",
            "trixie",
            "trixie",
        ),
        ({"ID": "rhel", "VERSION_ID": "9.4"}, "rhel", "9.4", "9"),
        ({"ID": "ubuntu", "VERSION_ID": "24.04"}, "ubuntu", "24.04", "24.04"),
        ({"ID": "alpine", "VERSION_ID": "3.20.3"}, "alpine", "3.20.3", "3.20"),
        ({"ID": "nixos", "VERSION_ID": "24.05"}, "nixos", "24.05", "24.05"),
        ({"ID": "fedora", "VERSION_ID": "40"}, "fedora", "40", "40"),
    ],
)
def test_distro_version_and_release(
    fields: dict[str, str], distro_id: str, version: str, release: str
) -> None:
    distro = tags.Distro.from_os_release(fields)
    assert (distro.id, distro.version, distro.release) == (distro_id, version, release)


@given(arch=st.sampled_from(tags.KNOWN_ARCHES), distro_id=st.text(), version=st.text())
def test_distro_tags_are_recognised(arch: str, distro_id: str, version: str) -> None:
    distro = tags.Distro.from_os_release({"ID": distro_id, "VERSION_ID": version})
    tag = tags.host_tag(arch, distro)
    assert tags.is_distro_tag(tag)
    assert tags.split_platform(tag) is not None
    assert tags.split_platform(tag)[0] == arch  # type: ignore[index]


@pytest.mark.parametrize(("machine", "arch"), [("amd64", "x86_64"), ("ARM64", "aarch64")])
def test_arch_aliases(machine: str, arch: str) -> None:
    assert tags.normalise_arch(machine) == arch
