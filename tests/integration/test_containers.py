"""The container layer and the Debian target images, for real: containers from each image run
Python, copy files both ways, reach an index through the host's settings, lose the network when
it is cut, and are gone after a block that raises or is interrupted."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from wheelfarm import container, hostenv, images, osrelease, tags
from wheelfarm.container import Container, ContainerCommandFailed
from wheelfarm.errors import EXIT_ENVIRONMENT, EnvironmentProblem, ImageMissing
from wheelfarm.targets import Python, Target


def docker_names(prefix: str) -> list[str]:
    """Names of containers (any state) whose name starts with prefix, straight from the CLI."""
    shown = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={prefix}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [n for n in shown.stdout.split() if n.startswith(prefix)]


def unique(prefix: str) -> str:
    return f"wf-test-{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


# --- the images ----------------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftover_containers")
def test_runtime_image_runs_its_python_and_makes_a_venv(debian_target: Target) -> None:
    with Container(debian_target.runtime_image, network=False) as box:
        version = box.output(["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        assert version.strip() == debian_target.python.version
        assert box.run("python3 -m venv /tmp/v && /tmp/v/bin/python -m pip --version") == 0
        assert box.run("command -v gcc || command -v cc") != 0, "runtime images have no compiler"


@pytest.mark.usefixtures("no_leftover_containers")
def test_build_image_has_compilers_and_the_pinned_build_tools(debian_target: Target) -> None:
    python = debian_target.python
    with Container(debian_target.build_image, network=False) as box:
        frozen = box.output([f"{python.build_venv}/bin/python", "-m", "pip", "freeze", "--all"])
        installed = dict(line.split("==") for line in frozen.split())
        pins = dict(
            p.split("==") for p in images.pins_for(python.version, images.lock_path().read_text())
        )
        for tool in ("pip", "build", "wheel", "auditwheel"):
            assert installed.get(tool) == pins[tool], (tool, frozen)
        for tool in ("gcc", "g++", "make", "patchelf"):
            assert box.run(["sh", "-c", f"command -v {tool}"]) == 0, tool
        assert box.run([f"{python.build_venv}/bin/python", "-m", "auditwheel", "--version"]) == 0


def test_image_labels_agree_with_the_images_own_os_release(debian_target: Target) -> None:
    arch = tags.normalise_arch(container.engine_arch())
    for ref in (debian_target.build_image, debian_target.runtime_image):
        labels = container.image_labels(ref)
        assert labels["org.wheelfarm.target"] == debian_target.name
        assert labels["org.wheelfarm.pythons"] == images.pythons_label(debian_target)
        with Container(ref, network=False) as box:
            text = box.read_file("/etc/os-release")
        assert text is not None
        distro = tags.Distro.from_os_release(osrelease.parse(text.decode()))
        assert labels["org.wheelfarm.tag"] == tags.default_build_tag(arch, distro)


def test_images_list_json_shows_the_present_images(debian_targets: dict[str, Target]) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "wheelfarm", "images", "list", "--json", *debian_targets],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {row["target"]: row for row in json.loads(shown.stdout)}
    assert set(rows) == set(debian_targets)
    for name, target in debian_targets.items():
        for stage in images.STAGES:
            assert rows[name][stage]["present"] is True
            assert rows[name][stage]["id"] == container.image_id(target.image(stage))


def test_bootstrap_again_reuses_every_image(debian_targets: dict[str, Target]) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "wheelfarm", "images", "bootstrap", "--json", *debian_targets],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    results = json.loads(shown.stdout)
    assert len(results) == 3 * len(debian_targets)  # base, runtime, build
    assert all(r["reused"] for r in results), results


def _processes_naming(text: str) -> list[int]:
    """Pids of live processes whose command line holds `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_bootstrap_leaves_no_debootstrap_and_no_root_file_system(
    debian_targets: dict[str, Target], signal_name: str
) -> None:
    """A mirror on 127.0.0.1 that accepts connections and never answers holds debootstrap at its
    first download. The signal goes to wheelfarm alone (as a cancelled CI job's SIGTERM does):
    debootstrap and its downloader must end with it, its root file system must go, and the
    images stay as they were."""
    target = next(iter(debian_targets.values()))
    base = images.bootstrap_base_ref(target)
    base_id = container.image_id(base)
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    mirror = f"http://127.0.0.1:{hanging.getsockname()[1]}/debian"
    before = set(Path("/var/tmp").glob("wheelfarm-bootstrap-*"))
    command = [sys.executable, "-m", "wheelfarm", "images", "bootstrap", target.name, "--force"]
    child = subprocess.Popen(
        [*command, "--mirror", mirror],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _processes_naming(mirror)[1:]:
            time.sleep(0.2)  # wheelfarm itself names the mirror; wait for debootstrap too
        assert _processes_naming(mirror)[1:], "debootstrap never started"
        time.sleep(1)
        child.send_signal(getattr(signal, signal_name))
        _out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        hanging.close()
    assert child.returncode == 128 + getattr(signal, signal_name), err[-3000:]
    assert "Traceback" not in err
    assert _processes_naming(mirror) == []
    assert set(Path("/var/tmp").glob("wheelfarm-bootstrap-*")) == before
    assert container.image_id(base) == base_id


def test_a_missing_image_names_the_command_that_makes_it(engine: None) -> None:
    ghost = Target(
        "wf-test-ghost-12",
        "debian",
        "12",
        "debian:12",
        "apt",
        (Python("3.11", "/usr/bin/python3.11"),),
        suite="bookworm",
    )
    with pytest.raises(ImageMissing) as caught:
        images.require(ghost, "build")
    assert caught.value.exit_code == EXIT_ENVIRONMENT
    assert caught.value.hint == "make it with: wheelfarm images bootstrap wf-test-ghost-12"
    other = Target("wf-test-ghost-a", "alpine", "3.20", "alpine:3.20", "apk", ghost.pythons)
    with pytest.raises(ImageMissing, match="wf-test-ghost-a:runtime"):
        images.require(other, "runtime")


# --- the container verbs ---------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftover_containers")
def test_run_streams_lines_returns_exit_codes_and_honours_env_and_workdir(
    debian_targets: dict[str, Target],
) -> None:
    lines: list[str] = []
    with Container(debian_targets["debian-12"].runtime_image, network=False) as box:
        code = box.run(
            'echo "one $WF_GREETING"; pwd; printf "two\\nthree"; exit 7',
            env={"WF_GREETING": "hello"},
            workdir="/tmp",
            on_output=lines.append,
        )
        assert code == 7
        assert lines == ["one hello", "/tmp", "two", "three"]
        assert box.run(["python3", "-c", "print(1)"]) == 0
        assert box.run("sleep 30", timeout=1) == 124
        with pytest.raises(ContainerCommandFailed, match="exited 3"):
            box.output("echo oops >&2; exit 3")
        assert box.output("echo quiet; exit 3", check=False) == "quiet\n"


@pytest.mark.usefixtures("no_leftover_containers")
def test_copy_in_and_out_round_trips_files_and_directories(
    debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 1000
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    (source / "blob.bin").write_bytes(payload)
    (source / "sub" / "note.txt").write_text("inside\n")
    single = tmp_path / "single.txt"
    single.write_text("one file\n")
    with Container(debian_targets["debian-11"].runtime_image, network=False) as box:
        assert box.copy_in(single, "/work/deep/dir") == "/work/deep/dir/single.txt"
        assert box.read_file("/work/deep/dir/single.txt") == b"one file\n"
        assert box.copy_in(source, "/work") == "/work/in"
        digest = box.output(["sha256sum", "/work/in/blob.bin"]).split()[0]
        assert digest == hashlib.sha256(payload).hexdigest()
        box.run("echo made inside > /work/in/sub/made.txt")
        out = box.copy_out("/work/in", tmp_path / "out")
        assert out == tmp_path / "out" / "in"
        assert (out / "blob.bin").read_bytes() == payload
        assert (out / "sub" / "made.txt").read_text() == "made inside\n"
        assert box.read_file("/no/such/file") is None
        with pytest.raises(FileNotFoundError):
            box.copy_out("/no/such/file", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["in"], "no staging left"


# --- host settings and the network ---------------------------------------------------------


def make_wheel(directory: Path, name: str, version: str) -> Path:
    """A minimal, valid pure-Python wheel."""
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: wf-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    wheel = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture
def local_index(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A PEP 503 index on 127.0.0.1 serving one wheel; yields (index URL, request log)."""
    root = tmp_path / "index"
    project = root / "simple" / "wf-test-pkg"
    project.mkdir(parents=True)
    wheel = make_wheel(project, "wf_test_pkg", "1.0")
    (project / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://wf:t0ken@127.0.0.1:{server.server_address[1]}/simple/", requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.usefixtures("no_leftover_containers")
def test_the_hosts_index_setting_reaches_pip_inside(
    debian_targets: dict[str, Target],
    local_index: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, requests = local_index
    monkeypatch.setenv("PIP_INDEX_URL", url)
    monkeypatch.setenv("PIP_TRUSTED_HOST", "127.0.0.1")
    image = debian_targets["debian-13"].runtime_image
    with Container(image, host_network=True) as box:
        assert box.host_settings is not None
        assert all("t0ken" not in line for line in box.host_settings.describe())
        code = box.run(
            "python3 -m venv /tmp/v && /tmp/v/bin/pip install --no-cache-dir wf-test-pkg "
            "&& /tmp/v/bin/python -c 'import wf_test_pkg; print(wf_test_pkg.VALUE)'",
            on_output=print,
        )
    assert code == 0
    assert any("wf_test_pkg-1.0-py3-none-any.whl" in r for r in requests), requests


@pytest.mark.usefixtures("no_leftover_containers")
def test_pip_reaches_the_public_index_with_the_hosts_trust_settings(
    debian_target: Target,
) -> None:
    settings = hostenv.from_host()
    with Container(debian_target.runtime_image) as box:
        env = dict(line.split("=", 1) for line in box.output(["env"]).splitlines() if "=" in line)
        for key, value in settings.env:
            assert env.get(key) == value
        assert not any(v.startswith("file:") for v in env.values())
        if settings.ca_bundle is not None:
            inside = box.read_file(hostenv.CONTAINER_CA_PATH)
            assert inside == settings.ca_bundle.read_bytes()
            assert box.run(f"touch {hostenv.CONTAINER_CA_PATH}") != 0, "CA is mounted read-only"
        lines: list[str] = []
        code = box.run(
            "python3 -m venv /tmp/v && /tmp/v/bin/pip download --no-cache-dir --no-deps "
            "-d /tmp/dl 'six==1.17.0' && ls /tmp/dl",
            on_output=lines.append,
        )
        assert code == 0, "\n".join(lines)
        assert "six-1.17.0-py2.py3-none-any.whl" in lines


PROBE = (
    "import socket,sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], 80), timeout=5)\n"
    "except OSError as e:\n"
    "    print('cut', type(e).__name__); sys.exit(1)\n"
    "print('reachable')\n"
)


def mirror_host() -> str:
    from urllib.parse import urlsplit

    return urlsplit(images.default_mirror()).hostname or ""


@pytest.mark.usefixtures("no_leftover_containers")
def test_cutting_the_network_of_a_running_container(debian_targets: dict[str, Target]) -> None:
    host = mirror_host()
    with Container(debian_targets["debian-12"].runtime_image) as box:
        assert box.networks() == ["bridge"]
        assert box.run(["python3", "-c", PROBE, host]) == 0, "reachable before the cut"
        box.disconnect_network()
        assert box.networks() == []
        lines: list[str] = []
        assert box.run(["python3", "-c", PROBE, host], on_output=lines.append) == 1
        assert lines and lines[0].startswith("cut")
        assert box.output("ls /sys/class/net").split() == ["lo"]


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_container_started_without_network_has_none(debian_targets: dict[str, Target]) -> None:
    with Container(debian_targets["debian-11"].runtime_image, network=False) as box:
        assert box.networks() == []
        assert box.run(["python3", "-c", PROBE, mirror_host()]) == 1


# --- nothing left behind -------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftover_containers")
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_no_container_is_left_after_a_block_that_raises(
    debian_targets: dict[str, Target], error: type[BaseException]
) -> None:
    name = unique("raise")
    with (
        pytest.raises(error),
        Container(debian_targets["debian-12"].runtime_image, name=name, network=False) as box,
    ):
        assert docker_names(name) == [name]
        box.run("true")
        raise error("boom")
    assert docker_names(name) == []


@pytest.mark.usefixtures("no_leftover_containers")
def test_ctrl_c_as_the_engine_answers_create_leaves_no_container(
    debian_targets: dict[str, Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst moment for Ctrl-C: the engine made the container (and its scratch volume) but
    its handle never reached us. The real create runs; the interrupt is injected after it."""
    from docker.models.containers import ContainerCollection

    real_create = ContainerCollection.create

    def create_then_interrupt(self: ContainerCollection, *args: object, **kwargs: object) -> None:
        real_create(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(ContainerCollection, "create", create_then_interrupt)
    name = unique("interrupted-create")
    box = Container(
        debian_targets["debian-12"].runtime_image, name=name, network=False, scratch=["/scratch"]
    )
    with pytest.raises(KeyboardInterrupt), box:
        pytest.fail("the block must not run")
    assert docker_names(name) == []
    assert container.leftover_volumes(os.getpid()) == []


@pytest.mark.usefixtures("no_leftover_containers")
def test_a_name_already_taken_is_refused_and_the_other_container_kept(
    debian_targets: dict[str, Target],
) -> None:
    image = debian_targets["debian-12"].runtime_image
    name = unique("taken")
    with Container(image, name=name, network=False):
        with (
            pytest.raises(EnvironmentProblem, match="cannot create a container"),
            Container(image, name=name, network=False),
        ):
            pytest.fail("the block must not run")
        assert docker_names(name) == [name]
    assert docker_names(name) == []


@pytest.mark.usefixtures("no_leftover_containers")
def test_keep_on_error_keeps_the_container_and_says_how_to_enter_it(
    debian_targets: dict[str, Target],
) -> None:
    name = unique("keep")
    box = Container(
        debian_targets["debian-12"].runtime_image, name=name, network=False, keep_on_error=True
    )
    try:
        with pytest.raises(RuntimeError), box:
            raise RuntimeError("build failed")
        assert box.kept
        assert docker_names(name) == [name]
        assert box.enter_command == f"docker exec -it {name} sh"
    finally:
        box.remove()
    assert docker_names(name) == []


@pytest.mark.usefixtures("no_leftover_containers")
def test_ctrl_c_during_a_command_leaves_no_container(debian_targets: dict[str, Target]) -> None:
    """A real process, a real SIGINT while a command runs inside the container."""
    name = unique("sigint")
    script = textwrap.dedent(
        f"""
        import sys
        from wheelfarm.container import Container
        with Container({debian_targets["debian-12"].runtime_image!r}, name={name!r},
                       network=False) as box:
            print("started", flush=True)
            box.run("sleep 120")
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        assert docker_names(name) == [name]
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in (child.stderr.read() if child.stderr else "")
    assert docker_names(name) == []


# --- --timeout, enforced from the host ---------------------------------------------------------

# setup.py starts a daemon the way some builds do (a compiler server, a test database): it calls
# setsid, ignores SIGTERM and sleeps; then setup.py itself hangs. It writes the daemon's pid where
# the test can read it back.
DAEMON_SETUP = """\
import os, signal, time
from setuptools import setup
if os.fork() == 0:
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open("/tmp/wf-daemon.pid", "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(3600)
    os._exit(0)
time.sleep(3600)
setup()
"""
DAEMON_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "wf-test-daemon"
version = "1.0"
"""
# Every process in a container, one per line: pid and command line, read from /proc (the images
# have no ps).
PROCESSES = 'for d in /proc/[0-9]*; do echo "${d#/proc/} $(tr "\\000" " " < $d/cmdline)"; done'


def daemon_sdist(directory: Path) -> Path:
    import io
    import tarfile

    path = directory / "wf_test_daemon-1.0.tar.gz"
    files = {
        "PKG-INFO": "Metadata-Version: 2.1\nName: wf-test-daemon\nVersion: 1.0\n",
        "pyproject.toml": DAEMON_PYPROJECT,
        "setup.py": DAEMON_SETUP,
        "daemon.c": "int daemon_unused;\n",  # looks compiled, so it is built
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"wf_test_daemon-1.0/{name}")
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_timed_out_build_leaves_no_process_of_its_tree(
    debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    """`--timeout` ends the exec's whole tree from the host, a setsid child that ignores SIGTERM
    included; the build says timed out, and the kept container has nothing of it left."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    child = subprocess.Popen(
        [sys.executable, "-m", "wheelfarm", "build", str(daemon_sdist(tmp_path)),
         "--target", "debian-12", "--timeout", "60", "--keep-on-failure", "--no-verify",
         "--wheelhouse", str(tmp_path / "wh"), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out, err = child.communicate(timeout=400)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    kept = container.leftover_containers(child.pid)
    try:
        assert child.returncode == 1, err[-3000:]
        (result,) = json.loads(out)["results"]
        assert result["status"] == "failed"
        assert "timed out after 60s" in result["error"]
        assert len(kept) == 1, kept
        shown = subprocess.run(
            ["docker", "exec", kept[0], "sh", "-c", f"cat /tmp/wf-daemon.pid; echo; {PROCESSES}"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
    finally:
        for name in kept:
            subprocess.run(["docker", "rm", "-fv", name], capture_output=True, check=False)
    daemon, *processes = shown
    assert daemon.isdigit(), "the daemon never started: the timeout came before setup.py ran"
    pids = {line.split()[0] for line in processes}
    assert daemon not in pids
    # Left: the container's init and idle command, and this exec's own shell and tr.
    assert [line for line in processes if "python" in line or "sleep" in line] == []
