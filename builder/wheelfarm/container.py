"""The only module that talks to the container engine (the only importer of `docker`).

Everything else speaks a handful of verbs: check the engine, look an image up, build or import an
image, and `Container` — one long-lived container used as a context manager, with run, output,
copy in/out, read a file and cut the network. Containers are removed on exit, also when the block
raises or is interrupted, so `docker ps -a` stays clean."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import secrets
import shutil
import socket
import tarfile
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any

from wheelfarm import hostenv
from wheelfarm.errors import EngineUnavailable, EnvironmentProblem, WheelfarmError

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container as _DockerContainer

# The Docker SDK (with requests and urllib3) takes a good part of a warm run's time to import, so
# it is imported where a container or a build needs it; the questions an up-to-date run asks (is
# an engine there, which image id has this tag) go straight to the engine's unix socket.

# Every container wheelfarm starts carries this label, so leftovers can be found and removed.
OWNER_LABEL = "org.wheelfarm.owner"
# ...and the id of the process that started it, so a process can check what it left behind.
PID_LABEL = "org.wheelfarm.pid"
# Keeps a container alive between execs; tini (init=True) forwards the stop signal.
_IDLE_COMMAND = ["tail", "-f", "/dev/null"]

OutputCallback = Callable[[str], None]


class ContainerCommandFailed(WheelfarmError):
    """A command run with `Container.output` exited non-zero (exit 1)."""


def engine_address() -> str:
    """The local engine: DOCKER_HOST, else the default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


# Engines per architecture (--engine ARCH=URL): every image whose tag ends in -<arch>
# (wheelfarm/debian-12:build-aarch64, wheelfarm/base:debian-12-aarch64) lives on, is built on and
# runs on that architecture's engine; everything else on the local engine.
_ROUTES: dict[str, str] = {}


def route(engines: Mapping[str, str]) -> None:
    """Send each architecture's images and containers to its engine from now on."""
    _ROUTES.clear()
    _ROUTES.update(engines)


def _ref_arch(ref: str) -> str | None:
    name = ref.rpartition("/")[2]
    tag = name.rpartition(":")[2] if ":" in name else ""
    return next((arch for arch in _ROUTES if tag.endswith(f"-{arch}")), None)


def address_for(ref: str | None = None, *, arch: str | None = None) -> str:
    """The address of the engine that holds an image (by its tag's architecture) or serves an
    architecture."""
    chosen = arch if arch is not None else (_ref_arch(ref) if ref else None)
    return _ROUTES.get(chosen or "", engine_address())


def lost_engine(exc: BaseException) -> bool:
    """Whether an error says the engine stopped answering (connection refused, reset, gone):
    the SDK raises its HTTP library's ConnectionError then, not one of docker's errors."""
    if isinstance(exc, EngineUnavailable | ConnectionError):
        return True
    return any(cls.__name__ == "ConnectionError" for cls in type(exc).__mro__)


def is_remote(address: str) -> bool:
    """Another engine than the local one: nothing sent there may rely on this host's files."""
    return address != engine_address()


# Keyed by the engine's address: a process whose DOCKER_HOST changes (a test, an embedding tool)
# must not keep talking to, or keep believing in, the engine it asked first.
@lru_cache(maxsize=8)
def _client(address: str) -> docker.DockerClient:
    import docker
    import docker.errors

    try:
        # from_env honours DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (the SDK's TLS settings) for a
        # tcp:// engine; an ssh:// one goes through the ssh client.
        client = docker.from_env(
            environment={**os.environ, "DOCKER_HOST": address},
            timeout=600,
            use_ssh_client=address.startswith("ssh://"),
        )
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        raise _unavailable(exc, address) from None
    return client


def _unavailable(exc: BaseException, address: str | None = None) -> EngineUnavailable:
    text = str(exc)
    known = {
        "Connection refused": "connection refused",
        "No such file or directory": "no socket there",
        "Permission denied": "permission denied",
        "timed out": "timed out",
        "Name or service not known": "unknown host",
    }
    reasons = [reason for needle, reason in known.items() if needle in text]
    reason = reasons[0] if reasons else (text.splitlines()[0] if text else type(exc).__name__)
    address = address or engine_address()
    archs = [arch for arch, routed in _ROUTES.items() if routed == address]
    if archs:
        return EngineUnavailable(
            f"the {', '.join(archs)} engine at {address} does not answer ({reason[:120]})",
            hint=f"start it, or drop --engine {archs[0]}={address} to use this machine's engine",
        )
    return EngineUnavailable(
        f"no Docker engine answers at {address} ({reason[:120]})",
        hint="start one (scripts/setup starts dockerd when none answers) "
        "or point DOCKER_HOST at a running engine",
    )


def client(ref: str | None = None, *, arch: str | None = None) -> docker.DockerClient:
    """The client of the engine that holds `ref` (or serves `arch`; default: the local one),
    checked once per process and engine address."""
    return _client(address_for(ref, arch=arch))


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _quick_get(path: str, address: str | None = None) -> tuple[int, Any] | None:
    """GET an engine API path over a local unix socket with the standard library only: (status,
    parsed JSON or None). None when the engine is elsewhere (tcp, TLS, ssh) or this fails: the
    SDK then asks and reports."""
    address = address or engine_address()
    if not address.startswith("unix://"):
        return None
    connection = _UnixConnection(address[len("unix://") :])
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    except OSError:
        return None
    finally:
        connection.close()
    try:
        return response.status, json.loads(body) if body.strip() else None
    except ValueError:
        return response.status, None


def check_engine(arch: str | None = None) -> None:
    """Raise EngineUnavailable (exit 3, one-line hint) unless the engine (of `arch`, default the
    local one) answers."""
    _check_engine(address_for(arch=arch))


def check_engines() -> None:
    """The local engine and every routed one answer, before any work starts."""
    for address in dict.fromkeys([engine_address(), *_ROUTES.values()]):
        _check_engine(address)


@lru_cache(maxsize=8)
def _check_engine(address: str) -> None:
    answer = _quick_get("/_ping", address)
    if answer is None or answer[0] != 200:
        _client(address)  # the SDK says why, or finds the engine after all


def image_id(ref: str, *, local: bool = False) -> str | None:
    """The image's id on its engine (on this machine's when `local`), None when it is absent."""
    address = engine_address() if local else address_for(ref)
    answer = _quick_get(f"/images/{urllib.parse.quote(ref, safe='/:')}/json", address)
    if answer is not None and answer[0] == 404:
        return None
    if answer is not None and answer[0] == 200 and isinstance(answer[1], dict):
        return str(answer[1]["Id"])
    import docker.errors

    try:
        image = _client(address).images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise _unavailable(exc, address) from None
    return str(image.id)


def image_arch(ref: str) -> str | None:
    """The CPU architecture an image records (amd64, arm64...), None without the image."""
    import docker.errors

    try:
        image = client(ref).images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    return str(image.attrs.get("Architecture") or "") or None


def image_labels(ref: str) -> dict[str, str]:
    import docker.errors

    try:
        image = client(ref).images.get(ref)
    except docker.errors.ImageNotFound:
        return {}
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def image_created(ref: str) -> str | None:
    import docker.errors

    try:
        image = client(ref).images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    return str(image.attrs.get("Created", ""))


def engine_arch(ref: str | None = None) -> str:
    """The CPU architecture, as the engine names it (x86_64, aarch64), of the engine that holds
    `ref` (default: the local one)."""
    info = client(ref).info()
    return str(info.get("Architecture", "x86_64"))


# An in-memory scratch file system may grow to this share of the engine's memory: big enough for
# the build trees of most projects, small enough that a few at once leave the compilers room. A
# build that fills one is made again on disk (buildsteps.attempt_with_room).
MEMORY_SCRATCH_SHARE = 4


@lru_cache(maxsize=8)
def engine_memory(address: str) -> int:
    """The engine's memory in bytes (what its containers share)."""
    return int(_client(address).info().get("MemTotal") or 0)


def tmpfs_options(size: int) -> str:
    """The mount options of an in-memory scratch folder: programs run from it (build
    environments hold scripts and extension modules), it is root's (mode 755: only the folders
    wheelfarm hands BUILDER are BUILDER's), and it is capped at `size` bytes when known."""
    options = "rw,exec,nosuid,nodev,mode=755"
    return f"{options},size={size}" if size > 0 else options


def _tmpfs(engine: str, paths: Sequence[str], mib: int | None) -> dict[str, str]:
    if not paths:
        return {}
    size = mib * 2**20 if mib else engine_memory(engine) // MEMORY_SCRATCH_SHARE
    return dict.fromkeys(paths, tmpfs_options(size))


def build_image(
    context_dir: Path,
    *,
    tag: str,
    target: str,
    buildargs: Mapping[str, str],
    labels: Mapping[str, str],
    on_output: OutputCallback | None = None,
    nocache: bool = False,
    platform: str | None = None,
) -> str:
    """Build one stage of a Dockerfile with the engine's layer cache; return the image id.
    The build never gets the host's index or CA settings: what it needs is in the context.
    `platform` (linux/arm64) picks the base of that architecture; its RUN steps run under the
    engine's emulation when it is not the engine's own."""
    import docker.errors

    api = client(tag).api
    last_error: str | None = None
    try:
        for chunk in api.build(
            path=str(context_dir),
            tag=tag,
            target=target,
            buildargs=dict(buildargs),
            labels=dict(labels),
            rm=True,
            forcerm=True,
            pull=False,
            nocache=nocache,
            decode=True,
            platform=platform,
        ):
            if "stream" in chunk and on_output is not None:
                for line in str(chunk["stream"]).splitlines():
                    if line.strip():
                        on_output(line)
            if "error" in chunk:
                last_error = str(chunk["error"]).strip()
                if on_output is not None:
                    on_output(last_error)
    except docker.errors.APIError as exc:
        last_error = str(exc.explanation or exc)
    if last_error is not None:
        raise ImageBuildFailed(f"building {tag} failed: {last_error.splitlines()[-1][:300]}")
    found = image_id(tag)
    if found is None:
        raise ImageBuildFailed(f"building {tag} produced no image")
    return found


class ImageBuildFailed(WheelfarmError):
    """`docker build` of a target image failed (exit 1)."""


def load_rootfs(
    tar_path: Path, ref: str, *, arch: str, env: Sequence[str], cmd: Sequence[str]
) -> str:
    """Make an image of one layer (a root file system tarball) that records `arch` (Docker's
    name: amd64, arm64) and return its id. `docker import` records the engine's own
    architecture, and Docker 20.10's `--platform` needs experimental mode, so the image is
    written as `docker save` would (manifest, config, layer) and loaded."""
    import docker.errors

    with tempfile.TemporaryDirectory(prefix="wheelfarm-load-", dir=tar_path.parent) as tmp:
        image_tar = Path(tmp) / "image.tar"
        _write_image_tar(tar_path, image_tar, ref, arch=arch, env=env, cmd=cmd)
        try:
            with image_tar.open("rb") as stream:
                client(ref).api.load_image(stream, quiet=True)  # type: ignore[no-untyped-call]
        except docker.errors.APIError as exc:
            raise EnvironmentProblem(f"docker load of {ref} failed: {exc}") from None
    found = image_id(ref)
    if found is None:
        raise EnvironmentProblem(f"docker load did not create {ref}")
    return found


def _write_image_tar(
    layer: Path, destination: Path, ref: str, *, arch: str, env: Sequence[str], cmd: Sequence[str]
) -> None:
    """A `docker save`-shaped archive: the layer, an image config naming its diff id and the
    architecture, a manifest tagging it `ref`."""
    digest = hashlib.sha256()
    with layer.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    diff_id = f"sha256:{digest.hexdigest()}"
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    config = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {"Env": list(env), "Cmd": list(cmd)},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "wheelfarm: debootstrap"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = f"{digest.hexdigest()}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [layer_name]}]
    with tarfile.open(destination, "w") as archive:
        archive.add(str(layer), arcname=layer_name)
        for name, data in ((config_name, config_bytes), ("manifest.json", json.dumps(manifest))):
            raw = data if isinstance(data, bytes) else data.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))


def send_image(ref: str) -> str:
    """Copy an image from the local engine to the engine its architecture is routed to (what
    `docker save | docker load` does, streamed); return its id there."""
    import docker.errors

    target = address_for(ref)
    if not is_remote(target):
        raise EnvironmentProblem(f"{ref} has no engine of its own to be sent to")
    try:
        stream = _client(engine_address()).api.get_image(ref)
        _client(target).api.load_image(stream, quiet=True)  # type: ignore[no-untyped-call]
    except docker.errors.ImageNotFound:
        raise EnvironmentProblem(f"{ref} is not on this machine's engine") from None
    except docker.errors.APIError as exc:
        raise EnvironmentProblem(f"sending {ref} to {target} failed: {exc}") from None
    found = image_id(ref)
    if found is None:
        raise EnvironmentProblem(f"{ref} did not arrive at {target}")
    return found


def tag_image(image: str, ref: str) -> None:
    """Give an image (id or reference) another tag."""
    repository, _, tag = ref.rpartition(":")
    if not client(ref).api.tag(image, repository, tag):
        raise EnvironmentProblem(f"could not tag {image} as {ref}")


def remove_image(ref: str) -> None:
    """Remove a tag (and the image when no other tag holds it); missing is fine."""
    import docker.errors

    with contextlib.suppress(docker.errors.ImageNotFound):
        client(ref).images.remove(ref, noprune=False)


def _container_name(image: str) -> str:
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in image)
    return f"wheelfarm-{base}-{secrets.token_hex(4)}"


def _force_remove(docker_client: docker.DockerClient, ref: str) -> bool:
    """Remove container `ref` (id or name) and its anonymous volumes; False when there is no such
    container. A second Ctrl-C while removing must not leave the container behind."""
    import docker.errors

    for _ in range(3):
        try:
            docker_client.api.remove_container(ref, force=True, v=True)
            return True
        except docker.errors.NotFound:
            return False
        except KeyboardInterrupt:
            continue
        except docker.errors.APIError as exc:
            if "already in progress" in str(exc):
                return True
            raise
    return True


def _remove_after_failed_create(
    docker_client: docker.DockerClient, name: str, attempts: int
) -> None:
    """Remove the container called `name` if a create that failed or was interrupted made it
    anyway. An interrupted request may still be running in the engine, so a name not found yet
    is looked for again (`attempts` times, 0.2 s apart). Never raises: the create's own error is
    the one to report."""
    import docker.errors

    for attempt in range(attempts):
        try:
            if attempt:
                time.sleep(0.2)
            if _force_remove(docker_client, name):
                return
        except KeyboardInterrupt:
            continue
        except docker.errors.APIError:
            return


def _shell(argv: Sequence[str] | str) -> list[str]:
    return ["/bin/sh", "-c", argv] if isinstance(argv, str) else list(argv)


# Each exec's processes carry this variable (a fresh value per exec), which children inherit
# across setsid and double forks: how a timed-out exec's whole tree is found inside the container.
EXEC_MARKER = "WHEELFARM_EXEC"
# What run() returns for an exec whose timeout ran out, as GNU timeout does (build and verify
# read it as "timed out").
TIMED_OUT = 124
_END_MARKED = Path(__file__).parent / "data" / "end_marked.sh"


def exit_status(code: object, *, timed_out: bool) -> int:
    """run()'s exit status from the engine's ExitCode: TIMED_OUT when the deadline ended the
    exec (whatever signal status the kill left: 137, or 143 from a busybox), else the code, and
    -1 when the engine gives none."""
    if timed_out:
        return TIMED_OUT
    return int(code) if isinstance(code, int) else -1


def _end_marked_argv(marker: str) -> list[str]:
    return ["/bin/sh", "-c", _END_MARKED.read_text(encoding="utf-8"), "end_marked", marker]


def _stream_lines(stream: Any, on_output: OutputCallback | None) -> None:
    pending = b""
    for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if on_output is not None:
            for line in lines:
                on_output(line.decode("utf-8", "replace").rstrip("\r"))
    if pending and on_output is not None:
        on_output(pending.decode("utf-8", "replace").rstrip("\r"))


class _Deadline:
    """Calls `end` once `seconds` have passed inside the block (never, for None); `fired` says
    whether it did and `end` found the exec still running."""

    def __init__(self, seconds: float | None, end: Callable[[], bool]) -> None:
        self.fired = False
        self._end = end
        self._timer = threading.Timer(seconds, self._fire) if seconds is not None else None

    def _fire(self) -> None:
        try:
            self.fired = self._end()
        except Exception:
            # The engine could not be asked (the container was removed meanwhile): the exec is
            # over either way, and its time had run out.
            self.fired = True

    def __enter__(self) -> _Deadline:
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            # A kill under way finishes before the exit status is read.
            if self._timer.is_alive():
                self._timer.join()


def _remove_on(engine: str, container_id: str) -> None:
    try:
        _force_remove(_client(engine), container_id)
    except Exception as exc:
        # An engine of its own that went down took its containers with it (or keeps them where
        # this host cannot reach): the run goes on for the other architectures.
        if not (is_remote(engine) and lost_engine(exc)):
            raise


def _volumes(
    host_settings: hostenv.HostSettings | None,
    mounts: Mapping[str, str],
    readonly: Mapping[str, str],
    *,
    remote: bool = False,
) -> dict[str, dict[str, str]]:
    """Bind mounts: the host's CA bundle (read-only), the read-write and the read-only dirs. For
    another engine, only the caches' volumes there (the rest is copied in once started)."""
    if remote:
        return _engine_volumes(mounts)
    volumes: dict[str, dict[str, str]] = {}
    if host_settings is not None and host_settings.ca_bundle is not None:
        volumes[str(host_settings.ca_bundle)] = {"bind": hostenv.CONTAINER_CA_PATH, "mode": "ro"}
    for host_dir, container_dir in mounts.items():
        volumes[host_dir] = {"bind": container_dir, "mode": "rw"}
    for host_dir, container_dir in readonly.items():
        volumes[host_dir] = {"bind": container_dir, "mode": "ro"}
    return volumes


def _engine_volumes(mounts: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """For another engine: each read-write host dir (a cache) becomes a named volume on that
    engine, kept between runs there like the host dir is here; no bind mount."""
    volumes: dict[str, dict[str, str]] = {}
    for host_dir, container_dir in mounts.items():
        slug = "".join(c if c.isalnum() else "-" for c in Path(host_dir).name)[:40]
        digest = hashlib.sha256(host_dir.encode()).hexdigest()[:12]
        volumes[f"wheelfarm-cache-{slug}-{digest}"] = {"bind": container_dir, "mode": "rw"}
    return volumes


def _copy_host_files(
    live: _DockerContainer,
    host_settings: hostenv.HostSettings | None,
    readonly: Mapping[str, str],
) -> None:
    """For another engine: what a local container gets read-only from this host (the CA bundle,
    tools such as uv) is copied into the started container instead, at the same paths."""
    with tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024) as buffer:
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            if host_settings is not None and host_settings.ca_bundle is not None:
                archive.add(
                    str(host_settings.ca_bundle), arcname=hostenv.CONTAINER_CA_PATH.lstrip("/")
                )
            for host_dir, container_dir in readonly.items():
                archive.add(host_dir, arcname=container_dir.lstrip("/"))
        buffer.seek(0)
        if not live.put_archive("/", buffer):
            raise EnvironmentProblem(f"copying this host's files into {live.name} failed")


def _create(
    docker_client: docker.DockerClient,
    image: str,
    name: str,
    *,
    environment: Mapping[str, str],
    volumes: dict[str, dict[str, str]],
    network_mode: str,
    labels: Mapping[str, str],
    scratch: Sequence[str],
    tmpfs: Mapping[str, str],
) -> _DockerContainer:
    """Create (not start) the idle container; whatever goes wrong, no half-made one is left."""
    import docker.errors
    from docker.types import Mount

    try:
        return docker_client.containers.create(
            image,
            command=_IDLE_COMMAND,
            entrypoint=[],
            name=name,
            environment=dict(environment),
            volumes=volumes,
            network_mode=network_mode,
            labels=dict(labels),
            mounts=[Mount(path, None, type="volume", labels=dict(labels)) for path in scratch],
            # The legacy tmpfs setting, not a tmpfs Mount: only it takes `exec` on engine 20.10.
            tmpfs=dict(tmpfs),
            init=True,
            detach=True,
        )
    except docker.errors.ImageNotFound:
        raise EnvironmentProblem(f"image {image} is not present") from None
    except docker.errors.APIError as exc:
        # A name already taken (409) belongs to someone else: leave it alone.
        if exc.status_code != 409:
            _remove_after_failed_create(docker_client, name, attempts=1)
        raise EnvironmentProblem(f"cannot create a container from {image}: {exc}") from None
    except BaseException:
        # Ctrl-C (or a lost connection) while the engine creates it: the container may exist
        # though we never got its handle; the request may still be running in the engine.
        _remove_after_failed_create(docker_client, name, attempts=6)
        raise


class Container:
    """One long-lived container: started once, many execs, always removed on exit.

    with Container("wheelfarm/debian-12:build") as c:
        c.run(["python3", "-V"], on_output=print)

    `scratch` paths are anonymous volumes, removed with the container; --keep-on-failure's kept
    container needs `docker rm -fv` to remove its volumes too. `memory` paths (under a scratch
    path, or not) are in-memory file systems instead, each of at most `memory_mib` MiB (default:
    a quarter of the engine's memory), gone with the container; copy_in and
    copy_out cannot reach into them (the engine's archive calls see the layers and volumes only).
    """

    def __init__(
        self,
        image: str,
        *,
        name: str | None = None,
        network: bool = True,
        host_network: bool = False,
        env: Mapping[str, str] | None = None,
        host_settings: bool = True,
        keep_on_error: bool = False,
        labels: Mapping[str, str] | None = None,
        mounts: Mapping[str, str] | None = None,
        readonly: Mapping[str, str] | None = None,
        scratch: Sequence[str] = (),
        memory: Sequence[str] = (),
        memory_mib: int | None = None,
    ) -> None:
        self.image = image
        self.name = name or _container_name(image)
        self._network = network
        self._host_network = host_network
        self._env = dict(env or {})
        self._host_settings = hostenv.from_host() if host_settings else None
        self._keep_on_error = keep_on_error
        self._labels = {OWNER_LABEL: "wheelfarm", PID_LABEL: str(os.getpid()), **(labels or {})}
        self._mounts = {str(Path(h).resolve()): c for h, c in (mounts or {}).items()}
        self._readonly = {str(Path(h).resolve()): c for h, c in (readonly or {}).items()}
        # Container paths that get an anonymous volume of their own: writing many small files
        # there (unpacked sources, build environments, object files) skips the layered file
        # system's overhead, and the volume goes with the container (removed with v=True).
        self._scratch = tuple(scratch)
        self.in_memory = tuple(memory)  # many small files: far cheaper to write in memory
        self._memory_mib = memory_mib
        self._container: _DockerContainer | None = None
        self._lock = threading.Lock()
        self.kept = False
        # The engine of the image's architecture (--engine), else the local one.
        self.engine = address_for(image)

    @property
    def host_settings(self) -> hostenv.HostSettings | None:
        return self._host_settings

    @property
    def enter_command(self) -> str:
        return f"docker exec -it {self.name} sh"

    @property
    def remove_command(self) -> str:
        return f"docker rm -fv {self.name}"

    def __enter__(self) -> Container:
        docker_client = _client(self.engine)
        environment = self._host_settings.as_env() if self._host_settings is not None else {}
        environment.update(self._env)
        remote = is_remote(self.engine)
        self._container = _create(
            docker_client,
            self.image,
            self.name,
            environment=environment,
            volumes=_volumes(self._host_settings, self._mounts, self._readonly, remote=remote),
            network_mode="host" if self._host_network else ("bridge" if self._network else "none"),
            labels=self._labels,
            scratch=self._scratch,
            tmpfs=_tmpfs(self.engine, self.in_memory, self._memory_mib),
        )
        try:
            self._container.start()
            if remote:
                _copy_host_files(self._container, self._host_settings, self._readonly)
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        keep = (
            self._keep_on_error
            and exc_type is not None
            and not issubclass(exc_type, KeyboardInterrupt)
        )
        if keep:
            self.kept = True
            return
        self.remove()

    def remove(self) -> None:
        """Remove the container now (idempotent, thread-safe): a running exec in another thread
        then ends. __exit__ calls this; so may a main thread handling Ctrl-C."""
        with self._lock:
            container, self._container = self._container, None
        if container is not None:
            _remove_on(self.engine, str(container.id))

    @property
    def _live(self) -> _DockerContainer:
        if self._container is None:
            raise RuntimeError("the container is not running: use it inside its `with` block")
        return self._container

    @property
    def id(self) -> str:
        return str(self._live.id)

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        on_output: OutputCallback | None = None,
        timeout: float | None = None,
        user: str = "",
    ) -> int:
        """Run a command (argv list, or one shell string); stream its combined stdout and stderr
        line by line to on_output; return its exit code (TIMED_OUT when timeout seconds ran out).

        The timeout is kept here, on the host, not by a `timeout` inside the container (busybox's
        exits 143 and signals only its child): when it runs out, every process of this exec,
        found by the marker in its environment, is killed, setsid'd children ignoring SIGTERM
        included. It works the same on every image and on a remote engine."""
        api = _client(self.engine).api
        marker = secrets.token_hex(8)
        exec_id = api.exec_create(
            self.id,
            _shell(argv),
            stdout=True,
            stderr=True,
            environment={**(env or {}), EXEC_MARKER: marker},
            workdir=workdir,
            user=user,
        )["Id"]
        stream = api.exec_start(exec_id, stream=True, demux=False)
        with _Deadline(timeout, lambda: self._end_exec(exec_id, marker, user)) as deadline:
            _stream_lines(stream, on_output)
        return exit_status(api.exec_inspect(exec_id).get("ExitCode"), timed_out=deadline.fired)

    def _end_exec(self, exec_id: str, marker: str, user: str) -> bool:
        """Kill every process of one exec; False when it had already ended. The killer runs as
        the exec's own user: root in a container lacks CAP_SYS_PTRACE, so it may not read the
        environment of another user's process."""
        api = _client(self.engine).api
        if not api.exec_inspect(exec_id).get("Running"):
            return False
        ender = api.exec_create(self.id, _end_marked_argv(marker), user=user)["Id"]
        api.exec_start(ender)
        return True

    def output(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        check: bool = True,
    ) -> str:
        """Run a small query and return its stdout; non-zero exit raises ContainerCommandFailed
        with its stderr (unless check=False)."""
        api = _client(self.engine).api
        exec_id = api.exec_create(
            self.id,
            _shell(argv),
            stdout=True,
            stderr=True,
            environment=dict(env or {}),
            workdir=workdir,
        )["Id"]
        out, err = api.exec_start(exec_id, stream=False, demux=True)
        code = api.exec_inspect(exec_id).get("ExitCode")
        stdout = (out or b"").decode("utf-8", "replace")
        if check and code != 0:
            shown = argv if isinstance(argv, str) else " ".join(argv)
            stderr = (err or b"").decode("utf-8", "replace").strip()
            raise ContainerCommandFailed(
                f"`{shown}` exited {code} in {self.image}"
                + (f": {stderr[-500:]}" if stderr else "")
            )
        return stdout

    def copy_in(self, host_path: Path, container_dir: str) -> str:
        """Copy a host file or directory into container_dir (created if missing); return the
        path it has inside the container."""
        return _copy_in(self._live, Path(host_path), container_dir)

    def copy_out(self, container_path: str, host_dir: Path) -> Path:
        """Copy a file or directory out of the container into host_dir; return its host path.
        Atomic: extracted beside the destination first, then moved into place."""
        import docker.errors

        host_dir = Path(host_dir)
        host_dir.mkdir(parents=True, exist_ok=True)
        try:
            stream, _stat = self._live.get_archive(container_path)
        except docker.errors.NotFound:
            raise FileNotFoundError(f"{self.name}:{container_path}") from None
        staging = Path(tempfile.mkdtemp(prefix=".wheelfarm-copy-", dir=host_dir))
        try:
            with tempfile.TemporaryFile(dir=staging) as buffer:
                for chunk in stream:
                    buffer.write(chunk)
                buffer.seek(0)
                with tarfile.open(fileobj=buffer, mode="r") as archive:
                    _safe_extract(archive, staging)
            name = PurePosixPath(container_path).name
            destination = host_dir / name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            (staging / name).replace(destination)
            return destination
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def read_file(self, path: str) -> bytes | None:
        """A file's bytes (symlinks followed), or None when it does not exist."""
        return _read_file(self._live, path)

    def disconnect_network(self) -> None:
        """Cut every network of the running container (verification runs offline)."""
        self._live.reload()
        networks = (self._live.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        docker_client = _client(self.engine)
        for network_name in list(networks):
            if network_name == "none":
                continue
            docker_client.networks.get(network_name).disconnect(self._live, force=True)
        self._live.reload()

    def networks(self) -> list[str]:
        self._live.reload()
        networks = (self._live.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return [name for name in networks if name != "none"]


def _copy_in(live: _DockerContainer, host_path: Path, container_dir: str) -> str:
    """Container.copy_in: one tar archive, unpacked at / by the engine."""
    if not host_path.exists():
        raise FileNotFoundError(host_path)
    inside = PurePosixPath("/", container_dir)
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as buffer:
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            # Unpacked at /: the engine makes the missing folders on the way (no `mkdir -p`
            # exec, which costs more than the copy).
            archive.add(str(host_path), arcname=str(inside.relative_to("/") / host_path.name))
        buffer.seek(0)
        if not live.put_archive("/", buffer):
            raise EnvironmentProblem(f"copying {host_path} into {live.name} failed")
    return str(PurePosixPath(container_dir) / host_path.name)


def _read_file(live: _DockerContainer, path: str) -> bytes | None:
    """Container.read_file: follows up to 16 symlinks, each through the engine's archive API."""
    import docker.errors

    current = PurePosixPath(path)
    for _ in range(16):
        try:
            stream, _stat = live.get_archive(str(current))
        except docker.errors.NotFound:
            return None
        data = io.BytesIO(b"".join(stream))
        with tarfile.open(fileobj=data, mode="r") as archive:
            member = archive.next()
            if member is None:
                return None
            if member.issym():
                current = current.parent / member.linkname
                continue
            if not member.isfile():
                return None
            handle = archive.extractfile(member)
            return handle.read() if handle is not None else None
    return None


def _safe_extract(archive: tarfile.TarFile, destination: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        archive.extractall(destination, filter="data")
        return
    root = destination.resolve()
    for member in archive.getmembers():
        target = (destination / member.name).resolve()
        if root not in target.parents and target != root:
            raise EnvironmentProblem(f"refusing to extract {member.name!r} outside {destination}")
        if member.issym() or member.islnk():
            link = (target.parent / member.linkname).resolve()
            if root not in link.parents:
                raise EnvironmentProblem(f"refusing link {member.name!r} -> {member.linkname!r}")
    archive.extractall(destination)


def leftover_volumes(pid: int | None = None) -> list[str]:
    """Names of the volumes (scratch space) of wheelfarm's containers that still exist; only
    those of process `pid`'s containers when given."""
    wanted = [f"{OWNER_LABEL}=wheelfarm"]
    if pid is not None:
        wanted.append(f"{PID_LABEL}={pid}")
    found = client().volumes.list(filters={"label": wanted})
    return [str(v.name) for v in found]


def leftover_containers(pid: int | None = None) -> list[str]:
    """Names of containers (any state) wheelfarm started that still exist; only those started
    by process `pid` when given."""
    wanted = [f"{OWNER_LABEL}=wheelfarm"]
    if pid is not None:
        wanted.append(f"{PID_LABEL}={pid}")
    found = client().containers.list(all=True, filters={"label": wanted})
    return [str(c.name) for c in found]
