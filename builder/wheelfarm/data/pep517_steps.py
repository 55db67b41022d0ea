"""Run INSIDE a build container by the target's build venv Python (/opt/wheelfarm/venv-X.Y, which
holds the pinned `build` and pip; Python 3.8+, no wheelfarm there): one project's PEP 517 wheel
build, cut into steps, so that wheelfarm makes the isolated build environment while other
projects compile, holds a --jobs slot only for the compile, and runs the project's own code (its
backend's hooks) as an unprivileged user that cannot write to any cache or shared environment.

Usage: python pep517_steps.py SOURCE ENVS [--installer uv|pip] [--env ENV] [--out DIR]
       [--constraint REQ]... [--exclude-newer TIME] STEP...

  env       make the isolated environment with the project's build-system requires
            (pyproject.toml, or setuptools' legacy default) and say where it is
  requires  ask the backend what else it needs (get_requires_for_build_wheel, in ENV); it runs
            project code (setup.py), so it comes after the recipe's system packages
  extend    an environment with ENV's packages and these extra requirements (REQ... after the
            step), and say where it is
  wheel     build the wheel into DIR with the backend from ENV (on WHEELFARM_COMPILE_CORES
            cores where the backend has an option for it)

--constraint: pins for the build requirements (a recipe's [build] constraints); --exclude-newer
(uv only): resolve them as of that time, the sdist's upload time when today's releases break it.

With uv (the default; WHEELFARM_UV names the binary) an environment is keyed by the full
resolved set of packages in it: ENVS/<hash of the pins>, made once, complete before it is used,
never changed after (extend makes another one), and reused by every project whose set matches.
With pip, each project gets a fresh environment of its own at ENV, and extend installs into it.

A step that fails prints `wheelfarm: <step> failed: <why>` and exits 1; the backend's own output
(compiler errors included) comes first, as it runs."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterator
from pathlib import Path

# What the environment holds, for the build's record; where it is; what the backend asked for.
ENV_LINE = "wheelfarm-build-env: "
ENV_PATH_LINE = "wheelfarm-build-env-path: "
REQUIRES_LINE = "wheelfarm-backend-requires: "
COMPLETE = ".wheelfarm-complete"
# Set by wheelfarm for the run's last builds: how many cores the compile may spread over.
CORES_VARIABLE = "WHEELFARM_COMPILE_CORES"


def env_python(env: Path) -> str:
    return str(env / "bin" / "python")


def use_env(env: Path) -> None:
    """Backend hooks run with the environment's scripts first on PATH (cython, cmake, ninja
    installed as build requirements), and no PYTHONPATH from outside."""
    os.environ["PATH"] = str(env / "bin") + os.pathsep + os.environ.get("PATH", "")
    os.environ.pop("PYTHONPATH", None)


@contextlib.contextmanager
def requirements_file(requirements: list[str]) -> Iterator[str]:
    """A requirements file: pip and uv honour environment markers there."""
    handle, path = tempfile.mkstemp(prefix="wheelfarm-requires-", suffix=".txt")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write("\n".join(requirements) + "\n")
        yield path
    finally:
        Path(path).unlink()


# How the build requirements are pinned: --constraint lines and --exclude-newer (set by main).
CONSTRAINTS: list[str] = []
EXCLUDE_NEWER: list[str] = []


def pip_install(env: Path, requirements: list[str]) -> None:
    if not requirements:
        return
    print("wheelfarm: installing " + ", ".join(sorted(requirements)), flush=True)
    with requirements_file(requirements) as path, requirements_file(CONSTRAINTS) as pins:
        pip = [sys.executable, "-m", "pip", "--python", env_python(env)]
        options = ["--use-pep517", "--no-warn-script-location", "--no-compile", "--no-input"]
        subprocess.check_call([*pip, "install", *options, "-c", pins, "-r", path])


def uv(*args: str) -> list[str]:
    return [os.environ["WHEELFARM_UV"], *args]


def resolve(requirements: list[str]) -> list[str]:
    """The full set of pinned packages these requirements resolve to for this Python."""
    with requirements_file(requirements) as path, requirements_file(CONSTRAINTS) as fixed:
        command = uv("pip", "compile", "--python", sys.executable, "--no-header",
                     "--no-annotate", "--quiet", "-c", fixed, path)  # fmt: skip
        if EXCLUDE_NEWER:
            command += ["--exclude-newer", EXCLUDE_NEWER[0]]
        pins = subprocess.run(command, check=True, stdout=subprocess.PIPE).stdout.decode()
    return sorted(line.strip() for line in pins.splitlines() if line.strip())


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Two projects of one container needing the same environment: one makes it, one waits."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def uv_env(envs: Path, requirements: list[str]) -> Path:
    pins = resolve(requirements)
    env = envs / hashlib.sha256("\n".join(pins).encode()).hexdigest()[:16]
    envs.mkdir(parents=True, exist_ok=True)
    with locked(envs / f"{env.name}.lock"):
        if (env / COMPLETE).is_file():
            print(f"wheelfarm: reusing the build environment {env}", flush=True)
            return env
        shutil.rmtree(env, ignore_errors=True)  # an earlier attempt that did not finish
        print(f"wheelfarm: creating the build environment {env}", flush=True)
        subprocess.check_call(uv("venv", "--quiet", "--python", sys.executable, str(env)))
        if pins:
            print("wheelfarm: installing " + ", ".join(pins), flush=True)
            with requirements_file(pins) as path:
                # No .pyc files here: the hooks, which cannot write here, keep theirs under
                # their own PYTHONPYCACHEPREFIX, for only the modules they import.
                command = uv("pip", "sync", "--python", env_python(env), "--quiet", path)
                subprocess.check_call(command)
        (env / COMPLETE).write_text("\n".join(pins) + "\n")
    return env


def pip_env(env: Path, requirements: list[str]) -> Path:
    print(f"wheelfarm: creating the build environment {env}", flush=True)
    venv.EnvBuilder(symlinks=True, with_pip=False, clear=True).create(env)
    pip_install(env, requirements)
    return env


def installed(env: Path) -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for site in env.glob("lib/python*/site-packages"):
        for dist in metadata.distributions(path=[str(site)]):
            name = dist.metadata["Name"]
            if name:
                found[name.lower().replace("_", "-")] = dist.version
    return dict(sorted(found.items()))


def report(env: Path) -> None:
    print(ENV_PATH_LINE + str(env), flush=True)
    print(ENV_LINE + json.dumps(installed(env), sort_keys=True), flush=True)


def step_env(args: argparse.Namespace) -> None:
    from build import ProjectBuilder  # type: ignore[import-not-found,unused-ignore]

    requires = sorted(ProjectBuilder(args.source).build_system_requires)
    if args.installer == "uv":
        report(uv_env(args.envs, requires))
    else:
        report(pip_env(args.env, requires))


def step_requires(args: argparse.Namespace) -> None:
    from build import ProjectBuilder  # type: ignore[import-not-found,unused-ignore]

    builder = ProjectBuilder(args.source, python_executable=env_python(args.env))
    extra = sorted(builder.get_requires_for_build("wheel"))
    print("wheelfarm: the backend also needs: " + (", ".join(extra) or "nothing"), flush=True)
    print(REQUIRES_LINE + json.dumps(extra), flush=True)


def step_extend(args: argparse.Namespace) -> None:
    if not args.extra:
        report(args.env)
    elif args.installer == "uv":
        base = (args.env / COMPLETE).read_text().split()
        report(uv_env(args.envs, base + args.extra))
    else:
        pip_install(args.env, args.extra)
        report(args.env)


def spread_compile(cores: int) -> None:
    """Let the backend compile on `cores` cores where it has its own option for it and the
    build's environment does not set it already: setuptools' build_ext builds its extensions
    in parallel from a [build_ext] parallel setting (read through DIST_EXTRA_CONFIG, setuptools
    62.1 and newer), `cmake --build` from CMAKE_BUILD_PARALLEL_LEVEL. ninja (meson-python) and
    cargo use every core already; make is left alone (not every Makefile survives -j)."""
    said = []
    if "DIST_EXTRA_CONFIG" not in os.environ:
        config = Path(os.environ.get("HOME") or tempfile.gettempdir()) / "wheelfarm-parallel.cfg"
        config.write_text(f"[build_ext]\nparallel = {cores}\n")
        os.environ["DIST_EXTRA_CONFIG"] = str(config)
        said.append("setuptools' build_ext parallel")
    if "CMAKE_BUILD_PARALLEL_LEVEL" not in os.environ:
        os.environ["CMAKE_BUILD_PARALLEL_LEVEL"] = str(cores)
        said.append("CMAKE_BUILD_PARALLEL_LEVEL")
    if said:
        print(f"wheelfarm: compiling on {cores} cores ({', '.join(said)})", flush=True)


def step_wheel(args: argparse.Namespace) -> None:
    from build import ProjectBuilder  # type: ignore[import-not-found,unused-ignore]

    cores = int(os.environ.pop(CORES_VARIABLE, "1") or "1")
    if cores > 1:
        spread_compile(cores)

    built = ProjectBuilder(args.source, python_executable=env_python(args.env)).build(
        "wheel", args.out
    )
    print(f"wheelfarm: built {Path(built).name}", flush=True)


STEPS = {"env": step_env, "requires": step_requires, "extend": step_extend, "wheel": step_wheel}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("envs", type=Path)
    parser.add_argument("--installer", choices=("uv", "pip"), default="uv")
    parser.add_argument("--env", type=Path)
    parser.add_argument("--out")
    parser.add_argument("--constraint", action="append", default=[])
    parser.add_argument("--exclude-newer", default="")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    args.source = args.source.absolute()
    CONSTRAINTS.extend(args.constraint)
    if args.exclude_newer:
        if args.installer != "uv":
            print("wheelfarm: --exclude-newer needs uv; resolving as of today", flush=True)
        else:
            EXCLUDE_NEWER.append(args.exclude_newer)
            print(f"wheelfarm: build requirements as of {args.exclude_newer}", flush=True)
    if args.env is not None:
        use_env(args.env)
    try:
        STEPS[args.step](args)
    except subprocess.CalledProcessError as exc:
        tool = "uv" if args.installer == "uv" else "pip install"
        print(f"wheelfarm: {args.step} failed: {tool} exited {exc.returncode}", flush=True)
        return 1
    except Exception as exc:  # the build library's errors, a missing backend...
        cause = getattr(exc, "exception", None)
        why = f"{exc} ({type(cause).__name__}: {cause})" if cause is not None else str(exc)
        print(f"wheelfarm: {args.step} failed: {why}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
