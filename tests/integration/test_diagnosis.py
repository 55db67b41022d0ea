"""A failed build's summary names its cause, for real on debian-12: a local sdist including a
header no Debian package ships, and cryptography 43.0.3 with its crate registry made unreachable
by the test itself (cargo from Debian, every HTTP request of cargo's sent to a closed local
port), so the test behaves the same where the registry is reachable. Both fail early: the
compile of one C file, and cargo's first fetch."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_build import build_args, environment, run_wheelfarm, write_project

from wheelfarm.targets import Target

pytestmark = pytest.mark.integration

HEADER = "wf_no_such_package/none.h"  # no distro ships it
# cargo sends every request through this proxy: a discard port nothing listens on in the
# container, so the registry is unreachable wherever the test runs.
CRYPTOGRAPHY_RECIPE = """[build.packages]
apt = ["cargo"]

[build.env]
CARGO_HTTP_PROXY = "http://127.0.0.1:9"
"""


def test_a_missing_header_is_named_in_the_summary_and_the_json(
    debian_targets: dict[str, Target], no_leftover_containers: None, tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "missing-header",
        "wf-test-missing-header",
        "0.1",
        {
            "setup.py": "from setuptools import Extension, setup\n"
            "setup(ext_modules=[Extension('wf_test_missing_header', ['probe.c'])])\n",
            "probe.c": f"#include <{HEADER}>\nint probe;\n",
        },
    )
    run = run_wheelfarm(
        *build_args(str(project), "--target", "debian-12"),
        *("--wheelhouse", str(tmp_path / "wh"), "--json"),
        env=environment(tmp_path / "cache"),
        timeout=600,
    )
    assert run.code == 1, run.stderr[-3000:]
    (result,) = run.summary["results"]
    assert result["status"] == "failed"
    assert result["error"] == (
        f"build the wheel: missing header {HEADER} ({HEADER}: No such file or directory)"
    )
    cause = result["cause"]
    assert cause["kind"] == "missing-header"
    assert cause["missing"] == [{"kind": "header", "name": HEADER}]
    assert HEADER in cause["hint"] and "[build.packages]" in cause["hint"]
    # The human summary: the cause on the error line, its hint below it.
    assert f"missing header {HEADER}" in run.stderr
    assert f"to fix: {cause['hint']}" in run.stderr
    assert "Backend subprocess exited" not in result["error"]
    # The full log stays where it was, with the compiler's own words.
    log = (tmp_path / "wh" / result["log"]).read_text()
    assert f"fatal error: {HEADER}: No such file or directory" in log


def test_an_unreachable_crate_registry_is_named_as_the_failed_download(
    debian_targets: dict[str, Target], no_leftover_containers: None, tmp_path: Path
) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "cryptography.toml").write_text(CRYPTOGRAPHY_RECIPE)
    run = run_wheelfarm(
        *build_args("cryptography==43.0.3", "--target", "debian-12"),
        *("--recipes", str(recipes), "--wheelhouse", str(tmp_path / "wh"), "--json"),
        env=environment(tmp_path / "cache"),
        timeout=900,
    )
    assert run.code == 1, run.stderr[-3000:]
    (result,) = run.summary["results"]
    cause = result["cause"]
    assert cause["kind"] == "download", result
    assert result["error"].startswith("build the wheel: crate"), result["error"]
    assert "crates-io" in cause["summary"] or "as a dependency" in cause["summary"]
    assert "Backend subprocess exited" not in result["error"]
    assert "crate" in cause["hint"] and "[build.env]" in cause["hint"]
    assert cause["missing"] == []
