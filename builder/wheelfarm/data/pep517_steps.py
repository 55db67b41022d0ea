"""Run INSIDE a build container by the target's build venv Python (/opt/wheelfarm/venv-X.Y, which
holds the pinned `build` and pip; Python 3.8+, no wheelfarm there): one project's PEP 517 wheel
build, cut into steps, so that wheelfarm prepares the isolated build environment while other
projects compile and holds a --jobs slot only for the compile itself.

Usage: python pep517_steps.py SOURCE ENV [--out DIR] STEP...

  env       make a fresh venv at ENV (no pip in it: the build venv's pip installs into it, as
            `build` does) and install the project's build-system requires (pyproject.toml, or
            setuptools' legacy default without one)
  requires  ask the backend what else it needs to build a wheel (get_requires_for_build_wheel)
            and install that; the hook runs project code (setup.py), so it comes after the
            recipe's system packages
  wheel     build the wheel into DIR with the backend from ENV

A step that fails prints `wheelfarm: <step> failed: <why>` and exits 1; the backend's own output
(compiler errors included) comes first, as it runs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

# The last line of `env` and `requires`: what the environment holds, for the build's record.
ENV_LINE = "wheelfarm-build-env: "


def env_python(env: Path) -> str:
    return str(env / "bin" / "python")


def use_env(env: Path) -> None:
    """Backend hooks run with the environment's scripts first on PATH (cython, cmake, ninja
    installed as build requirements), and no PYTHONPATH from outside."""
    os.environ["PATH"] = str(env / "bin") + os.pathsep + os.environ.get("PATH", "")
    os.environ.pop("PYTHONPATH", None)


def install(env: Path, requirements: list[str]) -> None:
    if not requirements:
        return
    print("wheelfarm: installing " + ", ".join(sorted(requirements)), flush=True)
    # A requirements file, since pip honours environment markers there and not on the command
    # line. No .pyc files: the first hook writes those it imports, far fewer than all.
    handle, path = tempfile.mkstemp(prefix="wheelfarm-requires-", suffix=".txt")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write("\n".join(requirements) + "\n")
        pip = [sys.executable, "-m", "pip", "--python", env_python(env)]
        options = ["--use-pep517", "--no-warn-script-location", "--no-compile", "--no-input"]
        subprocess.check_call([*pip, "install", *options, "-r", path])
    finally:
        Path(path).unlink()


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
    print(ENV_LINE + json.dumps(installed(env), sort_keys=True), flush=True)


def step_env(source: Path, env: Path) -> None:
    from build import ProjectBuilder  # type: ignore[import-not-found,unused-ignore]

    print(f"wheelfarm: creating the build environment {env}", flush=True)
    venv.EnvBuilder(symlinks=True, with_pip=False, clear=True).create(env)
    requires = sorted(ProjectBuilder(source).build_system_requires)
    install(env, requires)


def step_requires(source: Path, env: Path) -> None:
    from build import ProjectBuilder  # type: ignore[import-not-found,unused-ignore]

    builder = ProjectBuilder(source, python_executable=env_python(env))
    extra = sorted(builder.get_requires_for_build("wheel"))
    print("wheelfarm: the backend also needs: " + (", ".join(extra) or "nothing"), flush=True)
    install(env, extra)


def step_wheel(source: Path, env: Path, out: str) -> None:
    from build import ProjectBuilder  # type: ignore[import-not-found,unused-ignore]

    built = ProjectBuilder(source, python_executable=env_python(env)).build("wheel", out)
    print(f"wheelfarm: built {Path(built).name}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("env")
    parser.add_argument("--out")
    parser.add_argument("steps", nargs="+", choices=("env", "requires", "wheel"))
    args = parser.parse_args()
    source = Path(args.source).absolute()
    env = Path(args.env).absolute()
    use_env(env)
    for step in args.steps:
        try:
            if step == "env":
                step_env(source, env)
            elif step == "requires":
                step_requires(source, env)
            else:
                step_wheel(source, env, args.out)
            if step != "wheel":
                report(env)
        except subprocess.CalledProcessError as exc:
            print(f"wheelfarm: {step} failed: pip install exited {exc.returncode}", flush=True)
            return 1
        except Exception as exc:  # the build library's errors, a missing backend...
            cause = getattr(exc, "exception", None)
            why = f"{exc} ({type(cause).__name__}: {cause})" if cause is not None else str(exc)
            print(f"wheelfarm: {step} failed: {why}", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
