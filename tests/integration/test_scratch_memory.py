"""A build's busiest folders (source and object files, build environment, home) are held in
memory, and a build that fills them is built again with its files on disk: real debian-12 build
containers, real setuptools, the file system the build's own setup.py finds itself on."""

from __future__ import annotations

from pathlib import Path

from test_build import environment, run_wheelfarm, write_project

from wheelfarm.targets import Target

# Says which file system its build tree is on (from the kernel's own mount table), then writes
# {megabytes} MiB of scratch next to its sources before building a small extension.
SETUP = """import os
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

def file_system(path):
    found, kind = "", "?"
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point, fs = line.split()[1:3]
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) > len(found):
                found, kind = point, fs
    return kind

class scratching(build_ext):
    def build_extensions(self):
        print("wf-test-scratch: on %s" % file_system(os.getcwd()), flush=True)
        with open("scratch.bin", "wb") as out:
            for _ in range({megabytes}):
                out.write(b"\\0" * 2**20)
        os.remove("scratch.bin")
        build_ext.build_extensions(self)

setup(cmdclass={{"build_ext": scratching}}, ext_modules=[Extension("wf_scratch", ["wf.c"])])
"""
C_SOURCE = """#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "wf_scratch", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_wf_scratch(void) { return PyModule_Create(&def); }
"""


def build(tmp_path: Path, megabytes: int, *flags: str) -> tuple[str, list[str]]:
    """The wheel's name and the build's log lines."""
    name = f"wf-scratch-{megabytes}"
    source = write_project(
        tmp_path / "src",
        name,
        "1.0",
        {"setup.py": SETUP.format(megabytes=megabytes), "wf.c": C_SOURCE},
    )
    wheelhouse = tmp_path / "wh"
    run = run_wheelfarm(
        "build", str(source), "--target", "debian-12", "--no-verify", "--no-discover", "--json",
        "--wheelhouse", str(wheelhouse), *flags, env=environment(tmp_path / "cache"),
    )  # fmt: skip
    assert run.code == 0, run.stderr[-3000:]
    [result] = run.summary["results"]  # type: ignore[index]
    assert result["status"] == "built", result
    assert (wheelhouse / result["wheel"]).is_file()
    return str(result["wheel"]), (wheelhouse / result["log"]).read_text().splitlines()


def said(log: list[str]) -> list[str]:
    return [line for line in log if line.startswith("wf-test-scratch: ")]


def test_a_build_runs_in_memory(tmp_path: Path, debian_targets: dict[str, Target]) -> None:
    _wheel, log = build(tmp_path, 4)
    assert said(log) == ["wf-test-scratch: on tmpfs"], log
    assert not any("with its files on disk" in line for line in log), log


def test_a_build_that_fills_its_memory_is_built_again_on_disk(
    tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    wheel, log = build(tmp_path, 24, "--scratch-memory", "16")
    first, again = said(log)
    assert first == "wf-test-scratch: on tmpfs", log
    assert again.startswith("wf-test-scratch: on ") and again != first, log
    assert any("No space left on device" in line for line in log), log
    moved = [line for line in log if "building it again with its files on disk" in line]
    assert len(moved) == 1 and "/wf/src" in moved[0], log
    assert wheel.startswith("wf_scratch_24-1.0-")
