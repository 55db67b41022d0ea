"""The contract's own examples, run through the CLI exactly as check-tags does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def wheelfarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args], capture_output=True, text=True, check=False
    )


def test_version() -> None:
    result = wheelfarm("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("wheelfarm ")


@pytest.mark.parametrize(
    ("text", "arch", "expected"),
    [
        (
            'ID="rocky"\nVERSION_ID="9.4"\n',
            "x86_64",
            [
                "linux_x86_64_rocky_9_4",
                "linux_x86_64_rocky_9",
                "linux_x86_64_rhel_9",
                "linux_x86_64",
            ],
        ),
        ("ID=ubuntu\nVERSION_ID=24.04\n", "arm64", ["linux_aarch64_ubuntu_24_04", "linux_aarch64"]),
    ],
)
def test_tags_json(tmp_path: Path, text: str, arch: str, expected: list[str]) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text(text)
    result = wheelfarm("tags", "--os-release", str(os_release), "--arch", arch, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["install"] == expected


def test_missing_os_release_is_bad_input(tmp_path: Path) -> None:
    result = wheelfarm("tags", "--os-release", str(tmp_path / "nope"), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "does not exist" in result.stderr
