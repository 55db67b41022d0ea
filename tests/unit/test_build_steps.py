"""buildsteps: the small pieces around the in-container PEP 517 steps (what the environment
held, the --timeout budget shared by the steps, the reason shown for a failed step)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelfarm import buildsteps


def test_the_last_environment_report_wins() -> None:
    lines = [
        "wheelfarm: creating the build environment /wf/env/x-1.0",
        'wheelfarm-build-env: {"setuptools": "80.0"}',
        "wheelfarm: the backend also needs: wheel",
        'wheelfarm-build-env: {"setuptools": "80.0", "wheel": "0.45.1"}',
        "done",
    ]
    assert buildsteps.env_report(lines) == {"setuptools": "80.0", "wheel": "0.45.1"}
    assert buildsteps.env_report(["no report", "wheelfarm-build-env: {not json"]) == {}


def log_of(tmp_path: Path, *lines: str) -> buildsteps.BuildLog:
    """A real step log in a scratch wheelhouse, fed these lines."""
    log = buildsteps.BuildLog(tmp_path, "x.log")
    for line in lines:
        log.line(line)
    log.close()
    return log


def test_the_budget_is_shared_by_the_steps_and_named_whole(tmp_path: Path) -> None:
    budget = buildsteps.Budget(20.0)
    assert budget.left() == 20.0
    budget.spend(12.5)
    assert budget.left() == 7.5
    budget.spend(30.0)
    assert budget.left() == 1.0  # the `timeout` wrapper needs at least a second
    log = log_of(tmp_path, "setup.py sleeping")
    with pytest.raises(buildsteps.StepFailed, match=r"build the wheel: timed out after 20s"):
        budget.check(124, "build the wheel", log)
    budget.check(0, "build the wheel", log)
    unlimited = buildsteps.Budget(None)
    assert unlimited.left() is None
    with pytest.raises(buildsteps.StepFailed, match=r"exit 124"):
        unlimited.check(124, "build the wheel", log)


def test_a_failed_step_names_pips_error_before_its_own_summary(tmp_path: Path) -> None:
    pip = [
        "Collecting wf-test-missing",
        "ERROR: Could not find a version that satisfies the requirement wf-test-missing",
        "ERROR: No matching distribution found for wf-test-missing",
        "wheelfarm: env failed: pip install exited 1",
    ]
    log = log_of(tmp_path, *pip)
    assert log.reason() == "ERROR: No matching distribution found for wf-test-missing"
    compiler = log_of(tmp_path, "gcc -c broken.c", "broken.c:1:2: error: #error nope", *pip)
    assert compiler.reason() == "broken.c:1:2: error: #error nope"


def test_steps_logged_after_they_ran_beside_another_keep_the_time_they_began(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Buffer's steps reach the log once the package install is done; their headings say when
    each step began (they used to show the time they were written: all the same)."""
    clock = iter([100.0, 101.5, 104.0, 112.0]).__next__
    monkeypatch.setattr(buildsteps.time, "monotonic", clock)
    log = buildsteps.BuildLog(tmp_path, "x.log")  # began at 100.0
    out = buildsteps.Buffer()
    out.heading("extract the sdist")  # 101.5
    out.line("unpacked")
    out.heading("build environment")  # 104.0
    log.heading("(while the packages installed:)")  # 112.0
    out.into(log)
    log.close()
    assert log.final.read_text().splitlines() == [
        "==> [  12.0s] (while the packages installed:)",
        "==> [   1.5s] extract the sdist",
        "unpacked",
        "==> [   4.0s] build environment",
    ]
