"""`wheelfarm tags` as a user sees it: the table, the JSON, and a machine with no os-release."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from wf_cli import OS_RELEASE, clean_env, run

from wheelfarm import rules


def test_table_says_which_source_decided(tmp_path: Path) -> None:
    result = run("tags", "--os-release", str(OS_RELEASE / "almalinux-9.1"), "--arch", "x86_64")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # the table is for people: stderr
    lines = {line.split("│")[1].strip(): line for line in result.stderr.splitlines() if "│" in line}
    assert "linux_x86_64_almalinux_9_1" in lines["host tag"]
    assert "linux_x86_64_rhel_9" in lines["build tag"]
    assert (
        f"defaults ({rules.DEFAULTS_PATH}), entry linux_x86_64_almalinux_9" in lines["decided by"]
    )

    given = tmp_path / "mine.cfg"
    given.write_text(
        json.dumps({"linux_x86_64_almalinux_9_1": {"build": "linux_x86_64_alma", "why": "mine"}})
    )
    result = run(
        "tags", "--os-release", str(OS_RELEASE / "almalinux-9.1"), "--arch", "x86_64",
        "--rules", str(given),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"--rules ({given}), entry linux_x86_64_almalinux_9_1: mine" in result.stderr
    assert "rules read" in result.stderr


def test_table_when_no_rule_applies() -> None:
    result = run("tags", "--os-release", str(OS_RELEASE / "debian-12"), "--arch", "aarch64")
    assert result.returncode == 0, result.stderr
    assert "no rule applies" in result.stderr
    assert "linux_aarch64_debian_12" in result.stderr


def test_running_machine_applies_its_virtualenv(tmp_path: Path) -> None:
    first = run("tags", "--json", env=clean_env(VIRTUAL_ENV=str(tmp_path)))
    assert first.returncode == 0, first.stderr
    before = json.loads(first.stdout)
    # The running machine's accepted tags include what packaging gives it, before linux_<arch>.
    assert before["install"][-1].startswith("linux_")
    assert any(t.startswith(("manylinux", "musllinux")) for t in before["install"])
    arch = before["install"][-1].removeprefix("linux_")
    (tmp_path / rules.FILE_NAME).write_text(
        json.dumps({before["default_build"]: {"build": f"linux_{arch}_from_venv"}})
    )
    second = run("tags", "--json", env=clean_env(VIRTUAL_ENV=str(tmp_path)))
    assert second.returncode == 0, second.stderr
    after = json.loads(second.stdout)
    assert after["build"] == f"linux_{arch}_from_venv"
    expected = list(dict.fromkeys([before["host"], before["default_build"], after["build"]]))
    assert after["install"][: len(expected)] == expected


# Stands in for a machine without /etc/os-release or /usr/lib/os-release: the one probe of the
# host (osrelease.HOST_PATHS) points at files that do not exist; everything else is the real CLI.
NO_OS_RELEASE = """
import pathlib, sys
from wheelfarm import osrelease
osrelease.HOST_PATHS = (pathlib.Path(sys.argv[1]) / "etc-os-release",
                        pathlib.Path(sys.argv[1]) / "usr-lib-os-release")
sys.argv = ["wheelfarm", *sys.argv[2:]]
from wheelfarm.cli import main
main()
"""


def run_without_os_release(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", NO_OS_RELEASE, str(tmp_path), *args],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(VIRTUAL_ENV=str(tmp_path)),
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_no_os_release_gives_plain_tag_and_a_warning(tmp_path: Path) -> None:
    code, out, err = run_without_os_release(tmp_path, "tags", "--json", "--arch", "x86_64")
    assert code == 0, err
    data = json.loads(out)  # exactly one JSON object, the warning is not in it
    assert data["host"] == data["default_build"] == data["build"] == "linux_x86_64"
    assert data["install"][-1] == "linux_x86_64"
    assert "warning" not in out
    assert "not a distro wheelfarm can tag" in err

    code, _, err = run_without_os_release(tmp_path, "tags", "--arch", "x86_64")
    assert code == 0
    assert "not a distro wheelfarm can tag" in err
    assert "linux_x86_64" in err


def test_show_default_rules_prints_the_shipped_file() -> None:
    result = run("tags", "--show-default-rules")
    assert result.returncode == 0
    assert json.loads(result.stdout) == json.loads(rules.DEFAULTS_PATH.read_text())
    assert str(rules.DEFAULTS_PATH) in result.stderr
