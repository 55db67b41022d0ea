"""Expected failures as a user sees them: one `error:` line (and a hint), the documented exit
code, never a traceback; and text from users and tools printed exactly as given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from wf_cli import Result, run, run_in_process
from wf_wheels import make_wheel

from wheelfarm import images, ui
from wheelfarm.errors import EnvironmentProblem


def assert_refused(result: Result, code: int, *phrases: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "error" in result.stderr.lower()
    for phrase in phrases:
        assert phrase in result.stderr


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("not a directory\n")
    return path


def test_an_output_path_under_a_file_is_bad_input(tmp_path: Path, a_file: Path) -> None:
    (tmp_path / "wh").mkdir()
    assert_refused(run("index", str(tmp_path / "wh"), "-o", str(a_file / "sub")), 2, "afile")
    wheel = make_wheel(tmp_path, "x", "1.0", "cp311-cp311-linux_x86_64")
    retagged = run(
        "retag", str(wheel), "--platform", "linux_x86_64_debian_12", "-o", str(a_file / "sub")
    )
    assert_refused(retagged, 2, "afile")


def test_an_output_site_where_nothing_can_be_written(tmp_path: Path) -> None:
    (tmp_path / "wh").mkdir()
    assert_refused(run("index", str(tmp_path / "wh"), "-o", "/proc/site"), 2, "/proc/")


@pytest.mark.parametrize("port", ["99999", "-5", "65536"])
def test_serve_port_out_of_range(tmp_path: Path, port: str) -> None:
    assert_refused(run("serve", str(tmp_path), "--port", port), 2, "--port")


def test_pip_args_with_broken_quoting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_in_process(
        capsys, monkeypatch, "install", "foo", "--index", str(tmp_path), "--pip-args", '"x'
    )
    assert_refused(result, 2, "--pip-args", "No closing quotation")


def test_empty_arch_is_bad_input() -> None:
    assert_refused(run("tags", "--arch", ""), 2, "unknown architecture ''")


@pytest.mark.parametrize("content", [b"", b"# only a comment\n", b"\x7fELF\x02\x01\x01\x00"])
def test_an_os_release_file_with_no_keys_is_bad_input(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "os-release"
    path.write_bytes(content)
    assert_refused(run("tags", "--os-release", str(path)), 2, f"no os-release keys in {path}")


def test_a_binary_as_os_release_is_bad_input() -> None:
    assert_refused(run("tags", "--os-release", "/bin/ls"), 2, "no os-release keys in /bin/ls")


def test_a_failed_tar_of_the_bootstrapped_root_is_an_environment_problem(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem) as caught:
        images.pack_rootfs(tmp_path / "vanished", tmp_path / "rootfs.tar")
    assert caught.value.exit_code == 3
    assert "tar exit 2" in caught.value.message
    assert caught.value.hint is not None
    assert "vanished" in caught.value.hint


VERBATIM = [
    "_yaml.c:100:5: error: unknown type name 'yaml_char_t'",
    "set it in [tool.wheelfarm] or [bold]here[/bold]",
    "sha256:abc123 :smile: :thumbs_up: trailing backslash \\",
]


def test_messages_and_hints_are_printed_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    for text in VERBATIM:
        ui.error(text, hint=text)
        ui.warn(text)
        ui.info(text)
        ui.detail(text)
        ui.success(text)
        err = capsys.readouterr().err
        assert err.count(text) == 6, err
        assert f"error: {text}\nhint: {text}\n" in err


def test_table_cells_and_step_lines_are_printed_verbatim(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui.console, "width", 200)
    ui.table(["[col]"], [[t] for t in VERBATIM], title="[title] :100:")
    err = capsys.readouterr().err
    for text in [*VERBATIM, "[col]", "[title] :100:"]:
        assert text in err, err
    with ui.StepBoard(["job [1]"]) as board:  # not a terminal: one plain line per step
        board.step("job [1]", VERBATIM[0])
        board.finish("job [1]", False, VERBATIM[1])
    err = capsys.readouterr().err
    assert f"job [1] {VERBATIM[0]} (" in err
    assert f"✗ job [1] {VERBATIM[1]} (" in err


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """`wheelfarm tags --json | head -c 1`: the closed pipe is the reader's choice, not an
    error, so no message and no traceback, and the shell's SIGPIPE status."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    done = subprocess.run(
        [sys.executable, "-m", "wheelfarm", "tags", "--json"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
