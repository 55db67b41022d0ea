"""Whether a foreign architecture runs here: the kernel's binfmt_misc entry for QEMU, read as
the kernel writes it, and the exit 3 with the command that fixes it before any engine is asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from wf_cli import run_in_process

from wheelfarm import emulation

ENABLED = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: {flags}
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def binfmt(tmp_path: Path, entries: dict[str, str], mounted: bool = True) -> Path:
    directory = tmp_path / "binfmt_misc"
    directory.mkdir()
    if mounted:
        (directory / "register").write_text("")
        (directory / "status").write_text("enabled\n")
    for name, text in entries.items():
        (directory / name).write_text(text)
    return directory


def test_a_registered_emulator_with_the_f_flag_runs(tmp_path: Path) -> None:
    directory = binfmt(tmp_path, {"qemu-aarch64": ENABLED.format(flags="POF")})
    assert emulation.problem("aarch64", directory) is None
    emulation.require("aarch64", directory)


@pytest.mark.parametrize(
    ("entries", "mounted", "said"),
    [
        ({}, False, "binfmt_misc is not mounted"),
        ({}, True, "no qemu-aarch64 emulator is registered"),
        ({"qemu-aarch64": "disabled\nflags: F\n"}, True, "registered but disabled"),
        ({"qemu-aarch64": ENABLED.format(flags="P")}, True, "without the F flag"),
    ],
)
def test_what_keeps_an_architecture_from_running_is_said(
    tmp_path: Path, entries: dict[str, str], mounted: bool, said: str
) -> None:
    directory = binfmt(tmp_path, entries, mounted)
    why = emulation.problem("aarch64", directory)
    assert why is not None and said in why
    with pytest.raises(emulation.EmulationMissing) as caught:
        emulation.require("aarch64", directory)
    assert caught.value.exit_code == 3
    assert "scripts/setup --arch aarch64" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "argv",
    [
        ["images", "bootstrap", "debian-12", "--arch", "arm64"],
        ["images", "build", "alpine-3.20", "--arch", "aarch64"],
    ],
)
def test_a_foreign_arch_without_an_emulator_exits_3_with_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    """Checked before the engine is asked (none is needed to say so) and before any debootstrap."""
    monkeypatch.setattr(emulation, "BINFMT_DIR", binfmt(tmp_path, {}, mounted=False))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.setattr("wheelfarm.targets.host_arch", lambda: "x86_64")
    result = run_in_process(capsys, monkeypatch, *argv)
    assert result.returncode == 3, result.stderr
    assert "cannot run aarch64 images on this machine's engine" in result.stderr
    assert "scripts/setup --arch aarch64" in result.stderr
