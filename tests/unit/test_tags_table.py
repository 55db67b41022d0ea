"""Real os-release files (tests/data/os-release, provenance in SOURCES.md) → the tags
docs/design.md gives them. Expected values are worked out by hand from the contract, not
produced by the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wf_cli import OS_RELEASE, run

from wheelfarm import hosttags

# file → (host tag, default build tag, build tag, rules' install list), for x86_64 with only the
# shipped defaults. The install order is host → default build → build → install list → plain.
EXPECTED: dict[str, tuple[str, str, str, list[str]]] = {
    "debian-11": ("debian_11", "debian_11", "debian_11", []),
    "debian-12": ("debian_12", "debian_12", "debian_12", []),
    "debian-13": ("debian_13", "debian_13", "debian_13", []),
    # sid has no VERSION_ID: its codename is the version, used whole.
    "debian-sid": ("debian_forky", "debian_forky", "debian_forky", []),
    "ubuntu-20.04": ("ubuntu_20_04", "ubuntu_20_04", "ubuntu_20_04", []),
    "ubuntu-22.04": ("ubuntu_22_04", "ubuntu_22_04", "ubuntu_22_04", []),
    "ubuntu-24.04": ("ubuntu_24_04", "ubuntu_24_04", "ubuntu_24_04", []),
    # Alpine's X.Y is a release of its own; the patch level is not.
    "alpine-3.23.2": ("alpine_3_23_2", "alpine_3_23", "alpine_3_23", []),
    "centos-7": ("centos_7", "centos_7", "rhel_7", ["rhel_7"]),
    "rocky-8.4": ("rocky_8_4", "rocky_8", "rhel_8", ["rhel_8"]),
    "rocky-9.3": ("rocky_9_3", "rocky_9", "rhel_9", ["rhel_9"]),
    "almalinux-8.3-beta": ("almalinux_8_3", "almalinux_8", "rhel_8", ["rhel_8"]),
    "almalinux-9.1": ("almalinux_9_1", "almalinux_9", "rhel_9", ["rhel_9"]),
    "rhel-9.6": ("rhel_9_6", "rhel_9", "rhel_9", []),
    "fedora-42": ("fedora_42", "fedora_42", "fedora_42", []),
    "amzn-2023": ("amzn_2023", "amzn_2023", "amzn_2023", []),
    "opensuse-leap-15.2": ("opensuse_leap_15_2", "opensuse_leap_15", "opensuse_leap_15", []),
    # Arch has neither VERSION_ID nor VERSION_CODENAME.
    "arch": ("arch_rolling", "arch_rolling", "arch_rolling", []),
}


def expected_install(arch: str, host: str, default: str, build: str, extra: list[str]) -> list[str]:
    ordered = [f"linux_{arch}_{t}" for t in (host, default, build, *extra)] + [f"linux_{arch}"]
    return list(dict.fromkeys(ordered))


def test_every_data_file_is_in_the_table() -> None:
    files = {p.name for p in OS_RELEASE.iterdir() if p.name != "SOURCES.md"}
    assert files == set(EXPECTED)
    assert len(files) >= 12
    sources = (OS_RELEASE / "SOURCES.md").read_text()
    for name in files:
        assert f"`{name}`" in sources, f"{name} has no provenance in SOURCES.md"


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tags_of_real_os_release_files(name: str, arch: str) -> None:
    host, default, build, extra = EXPECTED[name]
    result = hosttags.describe(OS_RELEASE / name, arch, [])
    assert result.host == f"linux_{arch}_{host}"
    assert result.default_build == f"linux_{arch}_{default}"
    assert result.build == f"linux_{arch}_{build}"
    assert list(result.install) == expected_install(arch, host, default, build, extra)


@pytest.mark.parametrize(
    ("name", "arch", "build", "plain"),
    [
        ("rocky-9.3", "amd64", "linux_x86_64_rhel_9", "linux_x86_64"),
        ("ubuntu-22.04", "arm64", "linux_aarch64_ubuntu_22_04", "linux_aarch64"),
        ("debian-sid", "x86_64", "linux_x86_64_debian_forky", "linux_x86_64"),
    ],
)
def test_cli_json_is_one_object_on_stdout(name: str, arch: str, build: str, plain: str) -> None:
    result = run("tags", "--os-release", str(OS_RELEASE / name), "--arch", arch, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["host", "default_build", "build", "install"]
    assert data["build"] == build
    assert data["install"][-1] == plain
    assert "warning" not in result.stderr


def test_unknown_arch_is_bad_input() -> None:
    result = run("tags", "--os-release", str(OS_RELEASE / "debian-12"), "--arch", "sparc", "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "unknown architecture 'sparc'" in result.stderr


def test_os_release_directory_is_bad_input(tmp_path: Path) -> None:
    result = run("tags", "--os-release", str(tmp_path), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert str(tmp_path) in result.stderr
