"""Engines per architecture, for real: a second dockerd on its own socket, data root, exec root and
bridge (no iptables rules of its own), started and stopped by this module. `--engine
x86_64=unix://...` sends debian-12's images there (`wheelfarm images send`), then its build and
verification: both engines are watched, the routed containers ran only on the second one and
none of them had a bind mount (the CA bundle, the caches and uv were copied in or kept in
volumes there). An engine that does not answer is exit 3 naming it, before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from localserver import pypiserver
from test_build_envs import c_project

from wheelfarm.targets import Target

pytestmark = pytest.mark.integration

SOCKET = "/run/wf-second.sock"
ADDRESS = f"unix://{SOCKET}"
DATA_ROOT = Path("/var/lib/wf-second")
EXEC_ROOT = Path("/run/wf-second-exec")
PIDFILE = Path("/run/wf-second.pid")
BRIDGE = "wf-second0"
BRIDGE_ADDRESS = "10.213.57.1/24"
ARCH = "x86_64"  # this machine's: the second engine runs it natively
IMAGES = ("wheelfarm/debian-12:runtime-x86_64", "wheelfarm/debian-12:build-x86_64")


def docker(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", address, *args], capture_output=True, text=True, check=False
    )


def local_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


class Daemon:
    """The second dockerd this module started, and how to stop it (only this one)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.address = ADDRESS

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)


@pytest.fixture(scope="module")
def second_daemon(engine: None) -> Iterator[Daemon]:
    """A dockerd of this module's own; its bridge is made here and removed with it. Its data
    root stays, so a later run finds the images it was sent."""
    made_bridge = _ip("link", "show", BRIDGE).returncode != 0
    if made_bridge:
        for args in (
            ("link", "add", "name", BRIDGE, "type", "bridge"),
            ("addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE),
            ("link", "set", BRIDGE, "up"),
        ):
            done = _ip(*args)
            assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"
    log = (DATA_ROOT.parent / "wf-second.log").open("w")
    daemon = subprocess.Popen(
        [
            "dockerd", "--host", ADDRESS, "--data-root", str(DATA_ROOT),
            "--exec-root", str(EXEC_ROOT), "--pidfile", str(PIDFILE), "--bridge", BRIDGE,
            "--iptables=false", "--ip-masq=false", "--ip-forward=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while docker(ADDRESS, "info").returncode != 0:
            assert daemon.poll() is None, "the second dockerd exited; see /var/lib/wf-second.log"
            assert time.monotonic() < deadline, "the second dockerd did not answer in 60 s"
            time.sleep(0.5)
        yield Daemon(daemon)
    finally:
        Daemon(daemon).stop()
        log.close()
        if made_bridge:
            _ip("link", "delete", BRIDGE)


class Watch:
    """Every wheelfarm container of one process on one engine, inspected while it lives."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.seen: dict[str, dict[str, object]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _poll(self) -> None:
        while not self._stop.is_set():
            listed = docker(self.address, "ps", "-q", "--filter", "label=org.wheelfarm.owner")
            for cid in listed.stdout.split():
                if cid in self.seen:
                    continue
                shown = docker(self.address, "inspect", cid)
                if shown.returncode == 0:
                    self.seen[cid] = json.loads(shown.stdout)[0]
            time.sleep(0.3)

    def of(self, pid: int) -> list[dict[str, object]]:
        return [
            c
            for c in self.seen.values()
            if (c["Config"] or {}).get("Labels", {}).get("org.wheelfarm.pid") == str(pid)  # type: ignore[union-attr]
        ]


@pytest.fixture
def second_engine(second_daemon: Daemon) -> str:
    assert second_daemon.process.poll() is None, "the second dockerd was stopped by a test"
    return second_daemon.address


def wheelfarm(
    *args: str, env: dict[str, str], timeout: float = 1800
) -> tuple[subprocess.Popen[str], str, str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate(timeout=timeout)
    return child, out, err


def environment(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env["XDG_CACHE_HOME"] = str(cache)
    return env


def test_an_engine_that_does_not_answer_is_exit_3_before_any_work(tmp_path: Path) -> None:
    nowhere = "unix:///run/wf-nobody-listens.sock"
    child, _out, err = wheelfarm(
        "build", "markupsafe==3.0.2", "--target", "debian-12", "--engine", f"{ARCH}={nowhere}",
        "--wheelhouse", str(tmp_path / "wh"), env=environment(tmp_path / "cache"),
    )  # fmt: skip
    assert child.returncode == 3, err
    assert f"the {ARCH} engine at {nowhere} does not answer" in err
    assert not (tmp_path / "wh").exists() or not list((tmp_path / "wh").glob("*.whl"))


def test_routed_work_runs_only_on_its_engine_without_bind_mounts(
    second_engine: str, debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    env = environment(tmp_path / "cache")
    route = ("--engine", f"{ARCH}={second_engine}")

    def ids_on(address: str) -> list[str]:
        return [docker(address, "image", "inspect", "-f", "{{.Id}}", ref).stdout for ref in IMAGES]

    # Sent when missing there, or when this machine's images were rebuilt since.
    if ids_on(second_engine) != ids_on(local_address()):
        child, out, err = wheelfarm("images", "send", "debian-12", *route, "--json", env=env)
        assert child.returncode == 0, err[-3000:]
        assert {r["image"] for r in json.loads(out)} >= set(IMAGES)
    assert ids_on(second_engine) == ids_on(local_address()), "the same images on both engines"

    # The build's requirements from a pypiserver on this host's loopback: the build container
    # then uses the host network, which the second engine shares (its bridge has no NAT).
    project = c_project(tmp_path / "src", "wf-test-routed")
    with pypiserver(setuptools_packages(tmp_path)) as url:
        env = loopback_index_env(tmp_path, url, env)
        with Watch(second_engine) as there, Watch(local_address()) as here:
            child, out, err = wheelfarm(
                "build", str(project), "--target", "debian-12", *route, "--json",
                "--wheelhouse", str(tmp_path / "wh"), env=env,
            )  # fmt: skip
    assert child.returncode == 0, err[-4000:]
    summary = json.loads(out)
    [result] = summary["results"]
    assert (result["status"], result["arch"]) == ("built", ARCH)
    assert [c["status"] for c in summary["verify"]["results"]] == ["pass"]
    routed = there.of(child.pid)
    jobs = sorted(str(c["Config"]["Labels"].get("org.wheelfarm.job", "")) for c in routed)  # type: ignore[index]
    assert any(j.startswith("build ") for j in jobs), jobs
    assert any(j.startswith("verify ") for j in jobs), jobs
    assert here.of(child.pid) == [], "nothing of the routed architecture ran on this engine"
    for c in routed:
        binds = [m for m in c["Mounts"] if m["Type"] == "bind"]  # type: ignore[union-attr,index]
        assert binds == [], (c["Name"], binds)
    # The caches stay on that engine, in volumes of their own.
    volumes = docker(second_engine, "volume", "ls", "-q").stdout.split()
    assert any(v.startswith("wheelfarm-cache-") for v in volumes), volumes


def loopback_index_env(tmp_path: Path, url: str, env: dict[str, str]) -> dict[str, str]:
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(f"[global]\nindex-url = {url}/simple/\n")
    found = {**env, "PIP_CONFIG_FILE": str(pip_conf)}
    found.pop("PIP_INDEX_URL", None)
    return found


def setuptools_packages(tmp_path: Path) -> Path:
    packages = tmp_path / "packages"
    packages.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
         "-d", str(packages), "setuptools==75.1.0"],
        check=True,
    )  # fmt: skip
    return packages


def test_an_engine_lost_mid_run_lets_the_other_arch_finish_then_exits_3(
    second_daemon: Daemon, debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    """x86_64 on this machine's engine, aarch64 on the second one (emulated there): the second
    engine is stopped once its build container runs. The x86_64 wheel is built and placed; the
    run exits 3 naming the aarch64 engine. Runs last in this module: it stops the daemon."""
    address = second_daemon.address
    env = environment(tmp_path / "cache")
    route = ("--engine", f"aarch64={address}")
    aarch64 = ("wheelfarm/debian-12:runtime-aarch64", "wheelfarm/debian-12:build-aarch64")

    def ids_on(where: str) -> list[str]:
        return [docker(where, "image", "inspect", "-f", "{{.Id}}", ref).stdout for ref in aarch64]

    if ids_on(address) != ids_on(local_address()):
        child, _out, err = wheelfarm(
            "images", "send", "debian-12", "--arch", "aarch64", *route, env=env
        )
        assert child.returncode == 0, err[-3000:]
    project = c_project(tmp_path / "src", "wf-test-lost-engine")
    stopper_done = threading.Event()

    def stop_when_building() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            listed = docker(address, "ps", "-q", "--filter", "label=org.wheelfarm.job")
            if listed.stdout.strip():
                time.sleep(3)  # well into the build
                second_daemon.stop()
                break
            time.sleep(0.3)
        stopper_done.set()

    with pypiserver(setuptools_packages(tmp_path)) as url:
        env = loopback_index_env(tmp_path, url, env)
        stopper = threading.Thread(target=stop_when_building, daemon=True)
        stopper.start()
        child, out, err = wheelfarm(
            "build", str(project), "--target", "debian-12", "--arch", "x86_64",
            "--arch", "aarch64", *route, "--json", "--wheelhouse", str(tmp_path / "wh"),
            env=env,
        )  # fmt: skip
        stopper.join(60)
    assert stopper_done.is_set() and second_daemon.process.poll() is not None
    assert child.returncode == 3, err[-4000:]
    assert f"the aarch64 engine at {address} stopped answering during the run" in err
    summary = json.loads(out)
    by_arch = {r["arch"]: r for r in summary["results"]}
    assert by_arch["x86_64"]["status"] == "built"
    assert by_arch["aarch64"]["status"] == "failed"
    assert f"the aarch64 engine at {address} stopped answering" in by_arch["aarch64"]["error"]
    assert (tmp_path / "wh" / by_arch["x86_64"]["wheel"]).is_file()
    assert summary["lost_engines"] == [{"engine": address, "arch": "aarch64"}]
