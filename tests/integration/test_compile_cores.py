"""The run's last build compiles on the cores the other builds left idle (setuptools' build_ext
builds its extensions in parallel), and a build whose own build_ext fails that way is built once
more on one core, as pip would build it: real debian-12 build containers, real setuptools."""

from __future__ import annotations

import os
from pathlib import Path

from test_build import environment, run_wheelfarm, write_project

from wheelfarm.targets import Target

JOBS = 2
# Two extensions, and a build_ext that says how parallel setuptools made it; with FAIL_PARALLEL
# it fails when parallel, as a build_ext that is not thread-safe would.
SETUP = """from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

class said(build_ext):
    def build_extensions(self):
        print("wf-test-cores: parallel=%s" % (self.parallel or 1,))
        if {fail} and self.parallel:
            raise SystemExit("wf-test-cores: not thread-safe")
        build_ext.build_extensions(self)

setup(cmdclass={{"build_ext": said}},
      ext_modules=[Extension("wf_cores_a", ["a.c"]), Extension("wf_cores_b", ["b.c"])])
"""
C_SOURCE = """#include <Python.h>
static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{module}", NULL, -1, NULL}};
PyMODINIT_FUNC PyInit_{module}(void) {{ return PyModule_Create(&def); }}
"""


def project(root: Path, name: str, *, fail_parallel: bool) -> Path:
    files = {
        "setup.py": SETUP.format(fail=fail_parallel),
        "a.c": C_SOURCE.format(module="wf_cores_a"),
        "b.c": C_SOURCE.format(module="wf_cores_b"),
    }
    return write_project(root / name, name, "1.0", files)


def build_alone(tmp_path: Path, source: Path, *, code: int = 0) -> tuple[str, list[str]]:
    """One spec on one target (the run's only build): its wheel's name (when built) and its
    log's lines."""
    wheelhouse = tmp_path / "wh"
    run = run_wheelfarm(
        "build", str(source), "--target", "debian-12", "--jobs", str(JOBS), "--no-verify",
        "--no-discover", "--json", "--wheelhouse", str(wheelhouse),
        env=environment(tmp_path / "cache"),
    )  # fmt: skip
    assert run.code == code, run.stderr[-3000:]
    [result] = run.summary["results"]  # type: ignore[index]
    assert result["status"] == ("built" if code == 0 else "failed"), result
    return str(result.get("wheel")), (wheelhouse / result["log"]).read_text().splitlines()


def test_the_runs_only_build_compiles_on_the_idle_cores(
    tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    cores = min(os.cpu_count() or 1, JOBS)
    wheel, log = build_alone(tmp_path, project(tmp_path / "src", "wf-cores", fail_parallel=False))
    said = [line for line in log if line.startswith("wf-test-cores: ")]
    assert said == [f"wf-test-cores: parallel={cores}"], said
    if cores > 1:
        assert any(f"build the wheel on {cores} cores" in line for line in log), log
        spread = f"wheelfarm: compiling on {cores} cores (setuptools' build_ext parallel"
        assert any(line.startswith(spread) for line in log), log
    assert (tmp_path / "wh" / wheel).is_file()


def test_a_build_that_fails_in_parallel_is_built_again_on_one_core(
    tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    if (os.cpu_count() or 1) < 2:
        return  # one core: nothing is spread, so nothing to fall back from (the test above)
    source = project(tmp_path / "src", "wf-cores-unsafe", fail_parallel=True)
    wheel, log = build_alone(tmp_path, source)
    said = [line for line in log if line.startswith("wf-test-cores: parallel=")]
    assert said == [
        f"wf-test-cores: parallel={min(os.cpu_count() or 1, JOBS)}",
        "wf-test-cores: parallel=1",
    ], said
    assert "wf-test-cores: not thread-safe" in log  # its stderr: it may come before its stdout
    assert any("build the wheel again, on one core (it failed on several)" in x for x in log)
    assert (tmp_path / "wh" / wheel).is_file()


def test_a_compile_failing_for_a_named_cause_is_not_built_again(
    tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    """A missing header is not the cores' doing: the build fails at once, as one that compiled on
    one core would, and says what is missing."""
    source = project(tmp_path / "src", "wf-cores-missing", fail_parallel=False)
    (source / "a.c").write_text("#include <wf_cores_missing.h>\n" + (source / "a.c").read_text())
    _, log = build_alone(tmp_path, source, code=1)
    assert any("wf_cores_missing.h" in line for line in log)
    assert not any("again, on one core" in line for line in log), log
