"""buildsteps.build_one against a fake container that replays what a real debian-12 build
container answered (tests/data/build-steps/*/capture.json, recorded by record.py there): the
steps make the same calls in the same order, and turn the answers into a wheel and its record,
or into the error the user sees."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay import Inline, Replay, context, load
from wheelfarm import buildsteps, fsutil

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "build-steps"


def replayed(name: str, tmp_path: Path) -> tuple[dict[str, object], Replay, buildsteps.BuildLog]:
    case = load(CAPTURES / name / "capture.json")
    fake = Replay(case["calls"], CAPTURES / name / "files")
    log = buildsteps.BuildLog(tmp_path / "wheelhouse", f"{name}.log")
    return case, fake, log


def test_a_build_with_system_packages_gives_the_retagged_wheel_and_its_record(
    tmp_path: Path,
) -> None:
    case, fake, log = replayed("built", tmp_path)
    ctx = context(case, fake, log)
    staging = tmp_path / "staging"
    staging.mkdir()
    sched = Inline(fake)
    built = buildsteps.build_one(ctx, sched, staging)
    log.close()
    assert fake.left == 0, "the steps stopped before the real run did"
    assert built.wheel.name == "markupsafe-3.0.2-cp311-cp311-linux_x86_64_debian_12.whl"
    assert fsutil.file_sha256(built.wheel) == case["result"]["sha256"]  # type: ignore[index]
    record = built.record
    assert record["platform_tag"] == "linux_x86_64_debian_12"
    assert record["recipe"]["packages"] == ["libyaml-dev"]
    assert record["requires_external"] == []  # markupsafe links nothing outside glibc
    assert "setuptools" in record["build_requires"]
    assert set(record["durations"]) == {"environment", "compile"}
    assert record["cache_key"] == case["key"]
    assert record["python"] == case["facts"]["pythons"]["3.11"]["version"]  # type: ignore[index]
    # Packages were installed, then the backend's requirements asked for, then the compile.
    text = log.final.read_text()
    order = ["install system packages", "extract the sdist", "build environment at",
             "the backend's requirements", "build the wheel", "ELF probe"]  # fmt: skip
    positions = [text.index(heading) for heading in order]
    assert positions == sorted(positions)
    assert sched.statuses[0] == "preparing the build environment"
    assert "building" in sched.statuses and "retagging" in sched.statuses


def test_a_failing_compile_names_the_compiler_error(tmp_path: Path) -> None:
    case, fake, log = replayed("compile-fails", tmp_path)
    ctx = context(case, fake, log)
    with pytest.raises(buildsteps.StepFailed) as failed:
        buildsteps.build_one(ctx, Inline(fake), tmp_path)
    log.close()
    assert failed.value.message == case["result"]["error"]  # type: ignore[index]
    assert failed.value.message.startswith("build the wheel: broken.c:1:2: error: #error")
    cause = failed.value.cause
    assert cause is not None and cause.kind == "compiler-error" and cause.missing == ()
    # A compiler's error is not traced again: the replay saw no strace call.
    assert fake.left == 0
    assert "#error wheelfarm test" in log.final.read_text()


def test_a_failing_package_install_names_the_package_managers_error(tmp_path: Path) -> None:
    case, fake, log = replayed("packages-fail", tmp_path)
    ctx = context(case, fake, log)
    with pytest.raises(buildsteps.StepFailed) as failed:
        buildsteps.build_one(ctx, Inline(fake), tmp_path)
    log.close()
    assert failed.value.message == (
        "install system packages: exit 100 (E: Unable to locate package wf-no-such-package)"
    )
    # The extraction and build environment ran beside the install and were waited for: no
    # compile was attempted.
    assert fake.left == 0
    assert "build the wheel" not in log.final.read_text()


def test_replay_refuses_a_call_the_real_run_did_not_make(tmp_path: Path) -> None:
    case, fake, log = replayed("built", tmp_path)
    ctx = context(case, fake, log)
    ctx = buildsteps.BuildContext(**{**ctx.__dict__, "env": {**ctx.env, "EXTRA": "1"}})
    with pytest.raises(AssertionError, match="env"):
        buildsteps.build_one(ctx, Inline(fake), tmp_path)
    log.close()
