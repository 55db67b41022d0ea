"""`wheelfarm build` for real on debian-11, -12 and -13: compiled wheels with distro tags,
Requires-External from the ELF analysis, a pure project built once, a failing build that does not
stop the others, hash-checked requirement files, the cache (an unchanged rerun starts no
container), reproducible bytes, --timeout, --keep-on-failure and Ctrl-C.

The expensive build runs once per session (`session_build`), from cold caches (its own
XDG_CACHE_HOME); the other tests read its wheelhouse or rerun against its cache."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wheelfarm import container, recipes, targets
from wheelfarm.targets import Target

pytestmark = pytest.mark.integration

PYTHONS = {"debian-11": "cp39", "debian-12": "cp311", "debian-13": "cp313"}
COMPILED = ("pyyaml==6.0.2", "markupsafe==3.0.2", "psycopg2==2.9.10")

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
"""


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    pid: int
    created: tuple[str, ...]  # containers the process created, from the engine's event stream

    @property
    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data


def run_wheelfarm(*args: str, env: dict[str, str], timeout: float = 1800) -> Run:
    """`wheelfarm ARGS` in a child process, watching the engine's events meanwhile: every
    container the child creates carries its pid as a label. (The engine keeps only its last few
    hundred events, so they are streamed live rather than queried afterwards.)"""
    fields = '{{.Actor.Attributes.name}} {{index .Actor.Attributes "org.wheelfarm.pid"}}'
    watcher = subprocess.Popen(
        [
            *("docker", "events", "--since", f"{time.time() - 1:.3f}", "--format", fields),
            *("--filter", "type=container", "--filter", "event=create"),
            *("--filter", "label=org.wheelfarm.owner=wheelfarm"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "wheelfarm", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stdout, stderr = child.communicate(timeout=timeout)
        time.sleep(1)  # let the engine deliver the last events
    finally:
        watcher.terminate()
        events, _ = watcher.communicate(timeout=30)
    created = tuple(
        name
        for name, _, pid in (line.partition(" ") for line in events.splitlines())
        if pid == str(child.pid)
    )
    return Run(child.returncode, stdout, stderr, child.pid, created)


def build_args(*args: str) -> list[str]:
    """`build ARGS`, without verification when the build command verifies by default: these
    tests are about building (verification has its own)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "wheelfarm", "build", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return ["build", *args, *(["--no-verify"] if "--no-verify" in help_text else [])]


def environment(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env["XDG_CACHE_HOME"] = str(cache)
    return env


def containers_of(pid: int) -> list[str]:
    return container.leftover_containers(pid)


def volumes_of(pid: int) -> list[str]:
    """The scratch volumes (/wf) of the containers process `pid` started, still there."""
    return container.leftover_volumes(pid)


def write_project(root: Path, name: str, version: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(name=name, version=version))
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def pure_project(root: Path) -> Path:
    return write_project(root, "wf-test-pure", "1.0", {"src/wf_test_pure/__init__.py": "X = 1\n"})


def broken_project(root: Path) -> Path:
    return write_project(
        root,
        "wf-test-broken",
        "0.1",
        {
            "setup.py": "from setuptools import Extension, setup\n"
            "setup(ext_modules=[Extension('wf_test_broken', ['broken.c'])])\n",
            "broken.c": '#error "wf-test-broken does not compile, on purpose"\n',
        },
    )


def slow_project(root: Path) -> Path:
    """Sleeps in setup.py; its C file makes it look compiled, so every target builds it."""
    return write_project(
        root,
        "wf-test-slow",
        "1.0",
        {
            "setup.py": "import time\nfrom setuptools import setup\ntime.sleep(600)\nsetup()\n",
            "unused.c": "int unused;\n",
        },
    )


def record_problems(wheel: Path) -> list[str]:
    """Every way the wheel's RECORD disagrees with its members (empty: valid)."""
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        (record_name,) = [n for n in names if n.endswith(".dist-info/RECORD")]
        rows = list(csv.reader(io.StringIO(archive.read(record_name).decode())))
        listed = {row[0]: row for row in rows if row}
        for name in names:
            if name not in listed:
                problems.append(f"{name} missing from RECORD")
                continue
            _path, digest, size = listed[name]
            if name == record_name:
                continue
            data = archive.read(name)
            algorithm, _, expected = digest.partition("=")
            actual = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest())
            if actual.rstrip(b"=").decode() != expected or int(size) != len(data):
                problems.append(f"{name}: RECORD hash or size is wrong")
        problems.extend(f"{n} listed but absent" for n in listed if n not in names)
    return problems


def member(wheel: Path, suffix: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
        return archive.read(name).decode()


@dataclass(frozen=True)
class SessionBuild:
    run: Run
    wheelhouse: Path
    cache: Path
    pure: Path
    broken: Path


@pytest.fixture(scope="session")
def session_build(
    debian_targets: dict[str, Target], tmp_path_factory: pytest.TempPathFactory
) -> SessionBuild:
    """One cold build of everything on debian-11/12/13: three compiled projects from the index,
    a pure local project and a local one that fails to compile."""
    root = tmp_path_factory.mktemp("build")
    pure = pure_project(root / "pure")
    broken = broken_project(root / "broken")
    wheelhouse = root / "wheelhouse"
    cache = root / "cache"
    targets_args = [arg for name in debian_targets for arg in ("--target", name)]
    run = run_wheelfarm(
        *build_args(*COMPILED, str(pure), str(broken), *targets_args),
        "--wheelhouse",
        str(wheelhouse),
        "--json",
        env=environment(cache),
    )
    return SessionBuild(run, wheelhouse, cache, pure, broken)


def results(build: SessionBuild) -> list[dict[str, Any]]:
    return list(build.run.summary["results"])


def test_failing_build_fails_the_command_but_not_the_others(session_build: SessionBuild) -> None:
    run = session_build.run
    assert run.code == 1, run.stderr[-3000:]
    summary = run.summary
    assert summary["ok"] is False
    failed = [r for r in summary["results"] if r["status"] == "failed"]
    assert sorted(r["target"] for r in failed) == sorted(PYTHONS)
    assert {r["spec"] for r in failed} == {str(session_build.broken)}
    for result in failed:
        log = session_build.wheelhouse / result["log"]
        assert "does not compile, on purpose" in log.read_text()
        assert "does not compile, on purpose" in result["error"]
        assert result["log"] in run.stderr  # the human summary says where the log is
    built = [r for r in summary["results"] if r["status"] == "built"]
    assert len(built) == 3 * len(COMPILED) + 1
    assert "wf-test-broken" not in " ".join(p.name for p in session_build.wheelhouse.iterdir())


@pytest.mark.parametrize("target", sorted(PYTHONS))
@pytest.mark.parametrize("project", ["pyyaml", "markupsafe", "psycopg2"])
def test_compiled_wheels_carry_the_distro_tag(
    session_build: SessionBuild, target: str, project: str
) -> None:
    cp = PYTHONS[target]
    tag = f"linux_x86_64_{target.replace('-', '_')}"
    (wheel,) = session_build.wheelhouse.glob(f"{project}-*-{cp}-{cp}-{tag}.whl")
    suffix = f".cpython-{cp[2:]}-x86_64-linux-gnu.so"
    with zipfile.ZipFile(wheel) as archive:
        compiled = [n for n in archive.namelist() if n.endswith(suffix)]
    assert compiled, f"no compiled extension in {wheel.name}"
    assert record_problems(wheel) == []
    wheel_file = member(wheel, ".dist-info/WHEEL")
    assert f"Tag: {cp}-{cp}-{tag}" in wheel_file.splitlines()
    metadata = member(wheel, ".dist-info/METADATA")
    needs = [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-External:")
    ]
    if project == "psycopg2":
        assert "libpq5" in needs
    if project == "pyyaml":
        assert needs == ["libyaml-0-2"]
    if project == "markupsafe":
        assert needs == []  # libc only: wherever Python runs, it is there

    record = json.loads(
        (session_build.wheelhouse / ".wheelfarm" / f"{wheel.name}.json").read_text()
    )
    assert record["target"] == target
    assert record["platform_tag"] == tag
    assert record["os_release_tag"]["build"] == tag
    assert record["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    sdist = session_build.wheelhouse / record["sdist"]["file"]
    assert record["sdist"]["sha256"] == hashlib.sha256(sdist.read_bytes()).hexdigest()
    assert record["image_id"].startswith("sha256:")
    assert record["python"].startswith(f"{cp[2]}.{cp[3:]}.")
    assert record["requires_external"] == needs
    assert record["build_env"]["SOURCE_DATE_EPOCH"].isdigit()
    assert {"pip", "wheelfarm", "gcc"} <= set(record["tools"])
    assert (session_build.wheelhouse / record["log"]).is_file()
    assert record["started_at"] <= record["finished_at"]
    assert record["recipe"]["source"].endswith(f"{project}.toml")


def test_pure_project_is_built_once_and_left_untouched(session_build: SessionBuild) -> None:
    wheels = sorted(session_build.wheelhouse.glob("wf_test_pure-*.whl"))
    assert [w.name for w in wheels] == ["wf_test_pure-1.0-py3-none-any.whl"]
    rows = [r for r in results(session_build) if r["spec"] == str(session_build.pure)]
    assert len(rows) == 1
    assert rows[0]["status"] == "built"
    logs = list((session_build.wheelhouse / ".wheelfarm" / "logs").glob("wf-test-pure-*"))
    assert len(logs) == 1, "built on more than one target"
    assert "Tag: py3-none-any" in member(wheels[0], ".dist-info/WHEEL")
    assert "Requires-External" not in member(wheels[0], ".dist-info/METADATA")
    assert record_problems(wheels[0]) == []


def test_sdists_are_kept_in_the_wheelhouse(session_build: SessionBuild) -> None:
    names = {p.name for p in session_build.wheelhouse.glob("*.tar.gz")}
    assert names == {"pyyaml-6.0.2.tar.gz", "markupsafe-3.0.2.tar.gz", "psycopg2-2.9.10.tar.gz"}
    leftovers = [p for p in session_build.wheelhouse.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    assert not (session_build.wheelhouse / ".wheelfarm" / "tmp").exists()


def test_pip_downloads_are_shared_and_built_wheels_are_not(session_build: SessionBuild) -> None:
    cache = session_build.cache / "wheelfarm"
    assert any((cache / "pip").rglob("*")), "pip's download cache was not used"
    # One folder per target and architecture (debian-12-x86_64): a wheel built from an sdist on
    # one is wrong on another.
    arch = targets.host_arch()
    assert sorted(p.name for p in (cache / "pip-wheels").iterdir()) == sorted(
        f"{name}-{arch}" for name in PYTHONS
    )
    shared_wheels = cache / "pip" / "wheels"
    assert not shared_wheels.exists() or not any(shared_wheels.iterdir())


def test_no_container_is_left_behind(session_build: SessionBuild) -> None:
    # One per target, and one per spec and target that installs system packages (its recipe's:
    # what one spec installs never reaches another's build).
    installing = [
        (spec, target)
        for spec in COMPILED
        for target in map(targets.get, PYTHONS)
        if recipes.load(spec.split("==")[0]).packages_for(target)
    ]
    assert len(installing) == 2 * len(PYTHONS)  # pyyaml's libyaml-dev, psycopg2's libpq-dev
    expected = len(PYTHONS) + len(installing)
    assert session_build.run.summary["containers_started"] == expected
    assert containers_of(session_build.run.pid) == []
    assert volumes_of(session_build.run.pid) == []
    assert len(session_build.run.created) == expected


def test_the_record_says_what_the_build_environment_held(session_build: SessionBuild) -> None:
    """Each wheel's isolated build environment: pyyaml's build-system requires with the versions
    resolved for that target's Python, and the time it took to make and to compile, apart."""
    for target, cp in PYTHONS.items():
        tag = f"linux_x86_64_{target.replace('-', '_')}"
        name = f"pyyaml-6.0.2-{cp}-{cp}-{tag}.whl"
        record = json.loads((session_build.wheelhouse / ".wheelfarm" / f"{name}.json").read_text())
        held = record["build_requires"]
        assert {"setuptools", "wheel", "cython"} <= set(held), held
        assert record["durations"]["compile"] > 0
        assert record["durations"]["environment"] > 0
        log = (session_build.wheelhouse / record["log"]).read_text()
        # uv made it, under /wf/envs/<hash of the packages in it> (issue 16)
        assert re.search(r"build environment at /wf/envs/[0-9a-f]{16}\n", log), log[-2000:]
        assert "==> " in log and "build the wheel" in log


def test_unchanged_rerun_starts_no_container(session_build: SessionBuild) -> None:
    specs = [*COMPILED, str(session_build.pure)]
    targets_args = [arg for name in sorted(PYTHONS) for arg in ("--target", name)]
    before = {p.name: p.stat().st_mtime_ns for p in session_build.wheelhouse.glob("*.whl")}
    run = run_wheelfarm(
        *build_args(*specs, *targets_args),
        "--wheelhouse",
        str(session_build.wheelhouse),
        "--json",
        env=environment(session_build.cache),
    )
    assert run.code == 0, run.stderr[-3000:]
    assert {r["status"] for r in run.summary["results"]} == {"up to date"}
    assert len(run.summary["results"]) == 3 * len(COMPILED) + 1
    assert run.summary["containers_started"] == 0
    assert run.created == ()
    after = {p.name: p.stat().st_mtime_ns for p in session_build.wheelhouse.glob("*.whl")}
    assert after == before


def test_empty_wheelhouse_is_restored_from_the_cache(
    session_build: SessionBuild, tmp_path: Path
) -> None:
    run = run_wheelfarm(
        *build_args("markupsafe==3.0.2", "--target", "debian-12"),
        "--wheelhouse",
        str(tmp_path / "wh"),
        "--json",
        env={**environment(session_build.cache), "PIP_FIND_LINKS": "/wf-test/links"},
    )
    assert run.code == 0, run.stderr[-3000:]
    (result,) = run.summary["results"]
    assert result["status"] == "restored"
    assert run.summary["containers_started"] == 0
    original = session_build.wheelhouse / result["wheel"]
    assert (tmp_path / "wh" / result["wheel"]).read_bytes() == original.read_bytes()
    # The record's log is in this wheelhouse too (copied from the cache), not a dangling path.
    record = json.loads((tmp_path / "wh" / ".wheelfarm" / f"{result['wheel']}.json").read_text())
    assert record["log"] == result["log"]
    restored_log = tmp_path / "wh" / result["log"]
    assert restored_log.read_text() == (session_build.wheelhouse / result["log"]).read_text()
    assert "build the wheel" in restored_log.read_text()
    assert not list((tmp_path / "wh").rglob(".tmp*"))
    # Host-only pip settings are said once, redacted, not passed.
    notes = [ln for ln in run.stderr.splitlines() if "not passed to containers (host-only)" in ln]
    assert "note: not passed to containers (host-only): PIP_FIND_LINKS=/wf-test/links" in notes
    assert len(notes) == len(set(notes))


def test_requirement_file_with_hashes(session_build: SessionBuild, tmp_path: Path) -> None:
    wheelhouse = session_build.wheelhouse
    digest = {
        name: hashlib.sha256((wheelhouse / f"{name}.tar.gz").read_bytes()).hexdigest()
        for name in ("pyyaml-6.0.2", "markupsafe-3.0.2")
    }
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# pip-compile --generate-hashes style\n"
        "markupsafe==3.0.2 \\\n"
        f"    --hash=sha256:{'0' * 64} \\\n"
        f"    --hash=sha256:{digest['markupsafe-3.0.2']}\n"
        "    # via jinja2\n"
        f"pyyaml==6.0.2 --hash=sha256:{digest['pyyaml-6.0.2']}\n"
    )
    good = run_wheelfarm(
        *build_args("-r", str(requirements), "--target", "debian-12"),
        "--wheelhouse",
        str(wheelhouse),
        "--json",
        env=environment(session_build.cache),
    )
    assert good.code == 0, good.stderr[-3000:]
    assert {r["status"] for r in good.summary["results"]} == {"up to date"}

    requirements.write_text(
        f"markupsafe==3.0.2 --hash=sha256:{digest['markupsafe-3.0.2']}\n"
        f"pyyaml==6.0.2 \\\n    --hash=sha256:{'f' * 64}\n"
    )
    bad_wheelhouse = tmp_path / "bad"
    bad = run_wheelfarm(
        *build_args("-r", str(requirements), "--target", "debian-12"),
        "--wheelhouse",
        str(bad_wheelhouse),
        "--json",
        env=environment(session_build.cache),
    )
    assert bad.code == 2, bad.stderr
    assert bad.stdout == ""
    assert f"{requirements}:2" in bad.stderr
    assert "matches none of the given hashes" in bad.stderr
    assert bad.created == ()
    assert not list(bad_wheelhouse.glob("pyyaml*"))


def test_reproducible_bytes(session_build: SessionBuild, tmp_path: Path) -> None:
    """pyyaml built again on the same image, from scratch (--force), gives the same bytes, also
    with a SOURCE_DATE_EPOCH on the host (not part of the cache key, so never used)."""
    run = run_wheelfarm(
        *build_args("pyyaml==6.0.2", "--target", "debian-12", "--force"),
        "--wheelhouse",
        str(tmp_path / "again"),
        "--json",
        env={**environment(session_build.cache), "SOURCE_DATE_EPOCH": "not-a-number"},
    )
    assert run.code == 0, run.stderr[-3000:]
    (result,) = run.summary["results"]
    assert result["status"] == "built"
    first = session_build.wheelhouse / result["wheel"]
    second = tmp_path / "again" / result["wheel"]
    if first.read_bytes() != second.read_bytes():
        with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
            differ = [
                f"{x.filename} (bytes {'same' if a.read(x) == b.read(y) else 'differ'}, "
                f"time {x.date_time} vs {y.date_time}, mode {x.external_attr:o} vs "
                f"{y.external_attr:o})"
                for x, y in zip(a.infolist(), b.infolist(), strict=False)
                if (a.read(x), x.date_time, x.external_attr, x.filename)
                != (b.read(y), y.date_time, y.external_attr, y.filename)
            ]
        pytest.fail("rebuilt wheel differs: " + "; ".join(differ or ["zip structure"]))


def test_timeout(debian_targets: dict[str, Target], tmp_path: Path) -> None:
    slow = slow_project(tmp_path / "slow")
    run = run_wheelfarm(
        *build_args(str(slow), "--target", "debian-12", "--timeout", "20"),
        "--wheelhouse",
        str(tmp_path / "wh"),
        "--json",
        env=environment(tmp_path / "cache"),
        timeout=300,
    )
    assert run.code == 1, run.stderr[-3000:]
    (result,) = run.summary["results"]
    assert result["status"] == "failed"
    assert "timed out after 20s" in result["error"]
    assert containers_of(run.pid) == []


def test_keep_on_failure_leaves_the_container(
    debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    broken = broken_project(tmp_path / "broken")
    run = run_wheelfarm(
        *build_args(str(broken), "--target", "debian-12", "--keep-on-failure"),
        "--wheelhouse",
        str(tmp_path / "wh"),
        env=environment(tmp_path / "cache"),
        timeout=600,
    )
    kept = containers_of(run.pid)
    try:
        assert run.code == 1, run.stderr[-3000:]
        assert len(kept) == 1
        assert f"docker exec -it {kept[0]} sh" in run.stderr
        assert f"docker rm -fv {kept[0]}" in " ".join(run.stderr.split())
        probe = subprocess.run(
            ["docker", "exec", kept[0], "ls", "/wf/src/wf-test-broken-0.1/broken.c"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
    finally:
        for name in kept:
            subprocess.run(["docker", "rm", "-fv", name], capture_output=True, check=False)
    assert volumes_of(run.pid) == []


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_interrupt_leaves_no_container_and_no_partial_file(
    debian_targets: dict[str, Target], tmp_path: Path, signal_name: str
) -> None:
    """Ctrl-C (SIGINT), or SIGTERM from a cancelled CI job, while two containers build."""
    wheelhouse = tmp_path / "wh"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wheelfarm",
            *build_args(str(slow_project(tmp_path / "slow")), "--target", "debian-11"),
            *("--target", "debian-12", "--wheelhouse", str(wheelhouse)),
        ],
        env=environment(tmp_path / "cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(containers_of(child.pid)) < 2:
            time.sleep(0.5)
        assert len(containers_of(child.pid)) == 2, "the build never started its containers"
        time.sleep(8)  # well into the build (setup.py sleeping in the backend's hook)
        child.send_signal(getattr(signal, signal_name))
        _out, err = child.communicate(timeout=120)
        left = containers_of(child.pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for name in containers_of(child.pid):
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    assert child.returncode == 128 + getattr(signal, signal_name), err[-3000:]
    assert "interrupted" in err
    assert left == []
    assert volumes_of(child.pid) == []
    assert list(wheelhouse.glob("*.whl")) == []
    partial = [p for p in wheelhouse.rglob("*") if p.name.startswith(".tmp") or p.name == "tmp"]
    assert partial == []


def test_bad_inputs_exit_2_before_any_container(
    debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    env = environment(tmp_path / "cache")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "pyyaml.toml").write_text('[build.packages]\napt = "libyaml-dev"\n')
    cases = [
        (["pyyaml>=6"], "is a range, not one version"),
        (["pyyaml==6.0.2", "--target", "debian-99"], "known targets: "),
        (["pyyaml==6.0.2", "--recipes", str(recipes)], f"{recipes / 'pyyaml.toml'}: key "),
        (["no-such-project-wf-test==1.0", "--target", "debian-12"], "no project"),
        # ubuntu-22.04's Python: no Debian image offers it.
        (["pyyaml==6.0.2", "--python", "3.10"], "no target whose build image is present offers"),
        (["pyyaml==6.0.2", "--python", "3.99"], "no target offers Python 3.99"),
        (["pyyaml==6.0.2", "--target", "debain-12"], "unknown target: debain-12"),
    ]
    for args, expected in cases:
        run = run_wheelfarm(*build_args(*args), "--wheelhouse", str(tmp_path / "wh"), env=env)
        assert run.code == 2, (args, run.stderr)
        assert expected in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr
        assert run.created == ()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    run = run_wheelfarm(
        *build_args("pyyaml==6.0.2", "--target", "debian-12"), "--wheelhouse", str(a_file), env=env
    )
    assert run.code == 2, run.stderr
    assert f"wheelhouse {a_file} is not a directory" in run.stderr
    assert "Traceback" not in run.stderr and run.created == ()


def test_missing_image_exits_3_with_the_command(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.wheelfarm]\n[[tool.wheelfarm.extra-targets]]\nname = "wf-test-absent"\n'
        'base = "debian:12"\nfamily = "apt"\npython = "3.11"\n'
    )
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "wheelfarm",
            *build_args("markupsafe==3.0.2", "--target", "wf-test-absent"),
        ],
        cwd=project,
        env=environment(tmp_path / "cache"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 3, child.stderr
    assert "wheelfarm images build wf-test-absent" in child.stderr


def test_a_spec_whose_requires_python_excludes_the_target_is_skipped_at_once(
    tmp_path: Path, debian_targets: dict[str, Target]
) -> None:
    """numpy 2.1 needs Python 3.10; debian-11 builds for 3.9: planned as skipped from the index's
    Requires-Python, with the reason, exit 0, no container."""
    run = run_wheelfarm(
        *build_args("numpy==2.1.3", "--target", "debian-11", "--json"),
        "--wheelhouse",
        str(tmp_path / "wh"),
        env=environment(tmp_path / "cache"),
    )
    assert run.code == 0, run.stderr[-3000:]
    [result] = run.summary["results"]
    assert result["status"] == "skipped"
    assert result["note"] == "numpy 2.1.3 requires Python >=3.10; debian-11 builds for 3.9"
    assert run.summary["ok"] is True and run.summary["containers_started"] == 0
    assert run.created == ()
    assert not list((tmp_path / "wh").glob("numpy-*"))  # nothing fetched either
