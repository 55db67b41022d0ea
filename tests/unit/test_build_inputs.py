"""What `wheelfarm build`, `verify` and `probe` say before any container starts (no engine here:
DOCKER_HOST points nowhere), what the build's JSON and summary carry, the host settings a run
says it leaves out, and the wheels verify skips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from wf_cli import Result, clean_env, run_in_process
from wf_wheels import make_wheel

from wheelfarm import build, buildview, elfdeps, verify, verifyplan
from wheelfarm.errors import EnvironmentProblem

NO_ENGINE = "unix:///nonexistent/wf-test-docker.sock"


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("WHEELFARM_TARGETS", raising=False)
    monkeypatch.chdir(tmp_path)


def refused(result: Result, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_unknown_target_is_bad_input_even_without_an_engine(
    no_engine: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_in_process(capsys, monkeypatch, "build", "pyyaml==6.0.2", "--target", "debain-12")
    refused(result, "unknown target: debain-12", "known targets: ", "debian-12")
    assert "engine" not in result.stderr


def test_a_python_no_target_offers_is_bad_input(
    no_engine: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_in_process(capsys, monkeypatch, "build", "pyyaml==6.0.2", "--python", "3.99")
    refused(result, "no target offers Python 3.99", "3.9, ", "3.11", "3.13")
    assert "images" not in result.stderr  # no advice to bootstrap an image that cannot help
    result = run_in_process(
        capsys, monkeypatch, "build", "pyyaml==6.0.2", "--python", "3.99", "--target", "debian-12"
    )
    refused(result, "target debian-12 has no Python 3.99", "debian-12 offers Python 3.11")


def test_a_wheelhouse_that_is_a_file_is_bad_input(
    no_engine: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a_file = tmp_path / "wheelhouse"
    a_file.write_text("not a directory")
    result = run_in_process(
        capsys, monkeypatch, "build", "pyyaml==6.0.2", "--target", "debian-12",
        "--wheelhouse", str(a_file),
    )  # fmt: skip
    refused(result, f"wheelhouse {a_file} is not a directory")
    result = run_in_process(
        capsys, monkeypatch, "build", "pyyaml==6.0.2", "--target", "debian-12",
        "--wheelhouse", str(a_file / "sub"),
    )  # fmt: skip
    refused(result, f"wheelhouse {a_file / 'sub'} is not a directory ({a_file} is a file)")
    for command in ("verify", "probe"):
        result = run_in_process(capsys, monkeypatch, command, str(a_file))
        refused(result, f"wheelhouse {a_file} is not a directory")
        assert "does not exist" not in result.stderr
    assert a_file.read_text() == "not a directory"


# ------------------------------------------------------------------ wheels verify skips


def test_a_bad_wheel_is_skipped_with_a_warning_not_the_whole_run(
    no_engine: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    house = tmp_path / "house"
    house.mkdir()
    good = make_wheel(house, "demo", "1.0", "cp311-cp311-linux_x86_64_debian_12")
    (house / "broken-1.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"not a zip")
    (house / "badly_named.whl").write_bytes(good.read_bytes())

    wheels, skipped = verifyplan.find_wheels(house)
    assert [w.filename for w in wheels] == [good.name]
    assert {s.file for s in skipped} == {
        "broken-1.0-cp311-cp311-linux_x86_64.whl",
        "badly_named.whl",
    }
    reasons = {s.file: s.reason for s in skipped}
    assert "not a readable wheel" in reasons["broken-1.0-cp311-cp311-linux_x86_64.whl"]
    assert "not a valid wheel file name" in reasons["badly_named.whl"]

    # The CLI gets past the bad files (to the engine check, exit 3 here), warning about each.
    result = run_in_process(capsys, monkeypatch, "verify", str(house))
    assert result.returncode == 3, result.stderr
    assert "warning: skipped badly_named.whl: " in result.stderr
    assert "warning: skipped broken-1.0-cp311-cp311-linux_x86_64.whl: " in result.stderr

    # Nothing but bad files: exit 2 saying so.
    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    (only_bad / "junk-1.0-py3-none-any.whl").write_bytes(b"junk")
    result = run_in_process(capsys, monkeypatch, "verify", str(only_bad))
    refused(result, "warning: skipped junk-1.0-py3-none-any.whl", "(1 file(s) skipped)")


def test_skipped_files_are_listed_in_the_reports(tmp_path: Path) -> None:
    good = make_wheel(tmp_path, "demo", "1.0", "cp311-cp311-linux_x86_64_debian_12")
    skipped = (verifyplan.SkippedFile("junk.whl", "junk.whl: not a valid wheel file name (x)"),)
    report = verifyplan.Report(
        tmp_path, (verifyplan.read_wheel(good),), (), (), 0.0, 0, skipped=skipped
    )
    data = report.as_json()
    assert data["skipped"] == [
        {"file": "junk.whl", "reason": "junk.whl: not a valid wheel file name (x)"}
    ]
    text = verify.markdown(report)
    assert "## Skipped files" in text
    assert "- `junk.whl`: junk.whl: not a valid wheel file name (x)" in text
    json_path, md_path = verify.write_reports(report)
    assert json.loads(json_path.read_text())["skipped"] == data["skipped"]
    assert "## Skipped files" in md_path.read_text()


# ------------------------------------------------------------------ host settings left out


def test_verify_says_which_host_settings_containers_do_not_get(
    no_engine: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIP_FIND_LINKS", "/wf-test/links")
    monkeypatch.setenv(
        "PIP_EXTRA_INDEX_URL", "file:///wf-test/simple https://u:s3cret@example.invalid/simple"
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    house = tmp_path / "house"
    house.mkdir()
    result = run_in_process(capsys, monkeypatch, "verify", str(house))
    assert result.returncode == 2
    notes = [line for line in result.stderr.splitlines() if "not passed to containers" in line]
    assert notes == [
        "note: not passed to containers (host-only): PIP_FIND_LINKS=/wf-test/links",
        "note: not passed to containers (host-only): PIP_CONFIG_FILE=/dev/null",
        "note: not passed to containers (host-only): PIP_EXTRA_INDEX_URL entry file:///wf-test/simple",
    ]
    assert "s3cret" not in result.stderr


# ------------------------------------------------------------------ the build's result


def outcome(**kw: object) -> build.Outcome:
    values: dict[str, object] = {
        "spec": "demo==1.0",
        "target": "debian-12",
        "status": "built",
        "wheel": "demo-1.0-cp311-cp311-linux_x86_64_debian_12.whl",
    }
    values.update(kw)
    return build.Outcome(**values)  # type: ignore[arg-type]


def test_incomplete_requires_external_is_warned_about_and_in_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    external = {
        "libraries": [
            {"elf": "demo/_c.so", "soname": "libfoo.so.1", "path": None, "package": None},
            {
                "elf": "demo/_c.so",
                "soname": "libbar.so.2",
                "path": "/opt/x/libbar.so.2",
                "package": None,
            },
            {
                "elf": "demo/_c.so",
                "soname": "libz.so.1",
                "path": "/lib/libz.so.1",
                "package": "zlib1g",
            },
        ],
        "unresolved": ["libfoo.so.1"],
    }
    gaps = elfdeps.gaps(external)
    assert gaps == [
        "libfoo.so.1 (needed by demo/_c.so): the loader found no file",
        "libbar.so.2 (needed by demo/_c.so): /opt/x/libbar.so.2 belongs to no package",
    ]
    assert elfdeps.gaps(None) == [] and elfdeps.gaps({"libraries": [], "unresolved": []}) == []
    report = build.Report(
        tmp_path, (outcome(warnings=tuple(gaps)), outcome(target="debian-13")), 1.0, 1
    )
    assert report.as_json()["results"][0]["warnings"] == gaps
    assert report.as_json()["results"][1]["warnings"] == []
    capsys.readouterr()
    buildview.show(report)
    err = capsys.readouterr().err
    assert (
        "warning: demo-1.0-cp311-cp311-linux_x86_64_debian_12.whl (debian-12): "
        "Requires-External may be incomplete: libbar.so.2 (needed by demo/_c.so): "
        "/opt/x/libbar.so.2 belongs to no package"
    ) in err
    assert "(debian-13): Requires-External" not in err


def test_the_build_json_carries_the_verification_and_ok_covers_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = build.Report(tmp_path, (outcome(),), 1.0, 1)
    buildview.finish(report, True, {"ok": False, "counts": {"pass": 0, "fail": 1, "n/a": 0}})
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["verify"]["counts"]["fail"] == 1
    buildview.finish(report, True, {"ok": True})
    assert json.loads(capsys.readouterr().out)["ok"] is True
    buildview.finish(report, True)
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and "verify" not in data


# ------------------------------------------------------------------ pip for staging


def test_pip_is_a_declared_dependency_and_its_absence_is_an_environment_problem() -> None:
    import importlib.metadata

    requires = importlib.metadata.requires("wheelfarm") or []
    assert any(r.replace(" ", "").startswith("pip>=23") for r in requires), requires
    verify.require_pip()  # installed here
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['pip'] = None\n"
            "from wheelfarm import verify\n"
            "from wheelfarm.errors import EnvironmentProblem\n"
            "try:\n    verify.require_pip()\nexcept EnvironmentProblem as exc:\n"
            "    print(exc.exit_code, exc.message, '|', exc.hint)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    )
    assert child.stdout.startswith(f"{EnvironmentProblem.exit_code} pip is not installed for ")
    assert "-m ensurepip" in child.stdout
