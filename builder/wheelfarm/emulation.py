"""Whether this machine can run another architecture's programs: the kernel's binfmt_misc entry
for QEMU's user-mode emulator. A foreign-architecture image runs on the local engine only
through it, and only with the F flag (the kernel opens the emulator when it is registered, so it
works inside a container, whose file system has no emulator).

Reads /proc only; no engine, no terminal. What fixes it is said in the error's hint."""

from __future__ import annotations

from pathlib import Path

from wheelfarm.errors import EnvironmentProblem

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


class EmulationMissing(EnvironmentProblem):
    """No working emulator for a foreign architecture (exit 3)."""


def entry_name(arch: str) -> str:
    """The binfmt_misc entry Debian's qemu-user-static registers for an architecture."""
    return f"qemu-{arch}"


def fix_command(arch: str) -> str:
    return f"scripts/setup --arch {arch}"


def problem(arch: str, binfmt_dir: Path | None = None) -> str | None:
    """Why `arch`'s programs cannot run here, or None when they can."""
    binfmt_dir = BINFMT_DIR if binfmt_dir is None else binfmt_dir
    if not (binfmt_dir / "register").exists():
        return f"binfmt_misc is not mounted at {binfmt_dir}"
    entry = binfmt_dir / entry_name(arch)
    try:
        text = entry.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"no {entry_name(arch)} emulator is registered ({entry} is missing)"
    lines = text.splitlines()
    if not lines or lines[0].strip() != "enabled":
        return f"the {entry_name(arch)} emulator is registered but disabled"
    flags = next((line.split(":", 1)[1] for line in lines if line.startswith("flags:")), "")
    if "F" not in flags:
        return (
            f"the {entry_name(arch)} emulator is registered without the F flag, so it cannot "
            "run inside containers"
        )
    return None


def require(arch: str, binfmt_dir: Path | None = None) -> None:
    """EmulationMissing (exit 3) with the command that fixes it, unless `arch` runs here."""
    why = problem(arch, binfmt_dir)
    if why is not None:
        raise EmulationMissing(
            f"cannot run {arch} images on this machine's engine: {why}",
            hint=f"make emulation work with: {fix_command(arch)} (installs qemu-user-static and "
            f"registers it with binfmt_misc), or send {arch} to an engine of its own "
            f"(--engine {arch}=ssh://HOST)",
        )
