"""wheelname: the one wheel-name type (build tags, compressed tag sets, normalised names)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version
from wf_cli import run

from wheelfarm import wheelname
from wheelfarm.errors import EXIT_BAD_INPUT, BadInput


def test_a_name_with_a_build_tag_and_a_compressed_tag_set() -> None:
    wheel = wheelname.parse(
        "Foo.Bar-1.0-1build-cp39-cp39-linux_aarch64_ubuntu_22_04.linux_aarch64.whl"
    )
    assert wheel.name == "foo-bar"
    assert wheel.version == Version("1.0")
    assert wheel.build == (1, "build")
    assert wheel.platforms == ("linux_aarch64_ubuntu_22_04", "linux_aarch64")
    assert wheel.tags == {
        Tag("cp39", "cp39", "linux_aarch64_ubuntu_22_04"),
        Tag("cp39", "cp39", "linux_aarch64"),
    }
    assert wheel.interpreter_abi == {("cp39", "cp39")}
    assert wheel.plain_filename == "Foo.Bar-1.0-1build-cp39-cp39-linux_aarch64.whl"


def test_with_platform_keeps_the_rest_of_the_name_as_spelled() -> None:
    wheel = wheelname.parse("PyYAML-6.0.2-2-cp311-cp311-linux_x86_64.whl")
    assert wheel.with_platform("linux_x86_64_debian_12") == (
        "PyYAML-6.0.2-2-cp311-cp311-linux_x86_64_debian_12.whl"
    )
    pure = wheelname.parse("six-1.16.0-py2.py3-none-any.whl")
    assert pure.platforms == ("any",)
    assert pure.plain_filename == pure.filename
    assert pure.interpreter_abi == {("py2", "none"), ("py3", "none")}


@pytest.mark.parametrize(
    "filename",
    [
        "lxml-5.3.0.tar.gz",
        "lxml-5.3.0-cp311-linux_x86_64.whl",
        "lxml-not.a.version-py3-none-any.whl",
    ],
)
def test_what_is_not_a_wheel_name_is_bad_input(filename: str) -> None:
    with pytest.raises(BadInput, match="not a valid wheel file name") as caught:
        wheelname.parse(filename)
    assert caught.value.exit_code == EXIT_BAD_INPUT


_SPREAD = [
    "six-1.16.0-py2.py3-none-any.whl",
    "Foo_Bar-2.0rc1-7-cp312-abi3-linux_x86_64_debian_12.linux_x86_64.whl",
    "foo-1.0-cp39-cp39-LINUX_X86_64.whl",
    "foo-1.0-1-2-py3-none-any.whl",  # one dash too many
    "foo-1.0-x1-py3-none-any.whl",  # a build tag must start with a digit
    "foo__bar-1.0-py3-none-any.whl",
    "foo-1.0--none-any.whl",
    "-1.0-py3-none-any.whl",
    "foo-1.0-py3-none-any.zip",
]


@pytest.mark.parametrize("filename", _SPREAD)
def test_parsing_names_in_parts_agrees_with_parsing_them_whole(filename: str) -> None:
    """parse() parses a name's head and its tags apart, each once per wheelhouse; the result,
    and packaging's message when it fails, are those of the whole name."""
    for _ in range(2):  # the second time from the shared parts
        try:
            expected = parse_wheel_filename(filename)
        except InvalidWheelFilename as exc:
            with pytest.raises(BadInput) as caught:
                wheelname.parse(filename)
            assert caught.value.message == f"{filename}: not a valid wheel file name ({exc})"
            continue
        wheel = wheelname.parse(filename)
        assert (wheel.name, wheel.version, wheel.build, wheel.tags) == expected


def test_wheels_of_one_version_share_its_parsed_version_and_tags() -> None:
    first = wheelname.parse("pkg-3.1-cp311-cp311-linux_x86_64_debian_12.whl")
    second = wheelname.parse("pkg-3.1-cp311-cp311-linux_x86_64_debian_12.whl")
    other = wheelname.parse("pkg-3.1-cp39-cp39-linux_x86_64_debian_11.whl")
    assert first.version is second.version is other.version
    assert first.tags is second.tags
    assert first.interpreter_abi is second.interpreter_abi


def test_a_misnamed_wheel_given_to_install_is_exit_2(tmp_path: Path) -> None:
    misnamed = tmp_path / "lxml-5.3.0-cp311-linux_x86_64.whl"
    misnamed.write_bytes(b"PK")
    result = run("install", str(misnamed))
    assert result.returncode == 2
    assert f"{misnamed.name}: not a valid wheel file name" in result.stderr
    assert "Traceback" not in result.stderr
