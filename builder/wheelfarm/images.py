"""Target images: list, build, bootstrap without a registry, and `require` for the build step.

Each target has a Dockerfile (images/<target>/, or images/generic-<family>/ for a user-declared
target) with two stages, `runtime` and `build`, tagged per architecture
`wheelfarm/<target>:runtime-<arch>` and `:build-<arch>` (`wheelfarm/debian-12:build-aarch64`).
A foreign architecture is built by the local engine under QEMU's user-mode emulation
(emulation.py says whether it works here). What the build stage needs from PyPI (the pinned
pip/build/wheel/auditwheel) is downloaded on the host, with the host's pip settings, into the
build context: no index, proxy or CA ever reaches an image layer.

With no reachable registry, `bootstrap` makes a Debian base with `debootstrap --variant=minbase`
from a Debian mirror (default: the host's apt sources) for the target's architecture, loads it as
`wheelfarm/base:<target>-<arch>` recording that architecture (container.load_rootfs), then builds
both stages on it. Images made before names carried the architecture (`wheelfarm/debian-12:build`)
are adopted under the new names when they are of the right architecture, not rebuilt."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from wheelfarm import emulation, runner, tags
from wheelfarm.errors import BadInput, EnvironmentProblem, ImageMissing, WheelfarmError
from wheelfarm.reporter import Reporter
from wheelfarm.resources import images_dir
from wheelfarm.targets import (
    DEBIAN_ARCHES,
    IMAGE_REPOSITORY,
    LABEL_PREFIX,
    TARGETS,
    Target,
    select,
)

STAGES = ("runtime", "build")  # build order: the build stage starts FROM runtime
BASE_REPOSITORY = f"{IMAGE_REPOSITORY}/base"
CONTEXT_LABEL = f"{LABEL_PREFIX}.context"
COMMON_DIR = "common"
CONTEXT_SUBDIR = "wheelfarm"  # what the Dockerfiles COPY: the install script, pins, wheels
BUILD_TOOLS = "build-tools.txt"
APT_SOURCES = Path("/etc/apt")
# Debian suites that are overlays of a release, never a release debootstrap can start from.
_OVERLAY_SUITE = re.compile(r"-(security|updates|backports|proposed-updates)$|^experimental$")

Progress = Callable[[str, str], None]  # (target name, step description)


def _no_progress(name: str, step: str) -> None:
    pass


# ---------------------------------------------------------------------------------------------
# Where a target's Dockerfile is, and what its build needs


def dockerfile_dir(target: Target, root: Path | None = None) -> Path:
    """images/<target>/ for a shipped target, else the family's images/generic-<family>/."""
    root = root if root is not None else images_dir()
    own = root / target.name
    if (own / "Dockerfile").is_file():
        return own
    generic = root / f"generic-{target.family}"
    if (generic / "Dockerfile").is_file():
        return generic
    raise BadInput(
        f"no Dockerfile for target {target.name} (family {target.family!r})",
        hint=f"families with a generic Dockerfile: {', '.join(generic_families(root))}",
    )


def generic_families(root: Path | None = None) -> list[str]:
    root = root if root is not None else images_dir()
    return sorted(p.name.removeprefix("generic-") for p in root.glob("generic-*") if p.is_dir())


def os_release_tag(target: Target, arch: str) -> str:
    """The default build tag the target's os-release gives (before any rules)."""
    return tags.default_build_tag(arch, tags.Distro(target.distro, target.version))


def pythons_label(target: Target) -> str:
    return ",".join(p.version for p in target.pythons)


def is_generic(target: Target, root: Path | None = None) -> bool:
    return dockerfile_dir(target, root).name.startswith("generic-")


def generic_packages(target: Target) -> dict[str, str]:
    """RUNTIME_PACKAGES / BUILD_PACKAGES / REPO_SETUP for a generic Dockerfile: every offered
    Python's packages for the target's distro, and what enables the repositories they come from;
    the build stage starts FROM runtime, so it lists only what runtime lacks."""
    from wheelfarm import pkgmgr

    runtime: list[str] = []
    build: list[str] = []
    for python in target.pythons:
        runtime += pkgmgr.python_packages(target.family, python.version, "runtime", target.distro)
        build += pkgmgr.python_packages(target.family, python.version, "build", target.distro)
    runtime = list(dict.fromkeys(runtime))
    build = [p for p in dict.fromkeys(build) if p not in runtime]
    args = {"RUNTIME_PACKAGES": " ".join(runtime), "BUILD_PACKAGES": " ".join(build)}
    if target.family in ("dnf", "yum"):  # the families whose generic Dockerfile takes it
        args["REPO_SETUP"] = pkgmgr.repository_setup(
            target.family, target.distro, target.version, [p.version for p in target.pythons]
        )
    return args


def build_args(target: Target, base: str, arch: str, root: Path | None = None) -> dict[str, str]:
    args = {
        "BASE": base,
        "WHEELFARM_TARGET": target.name,
        "WHEELFARM_PYTHONS": pythons_label(target),
        "WHEELFARM_TAG": os_release_tag(target, arch),
    }
    if is_generic(target, root):
        args.update(generic_packages(target))
    return args


def labels(target: Target, arch: str, context_key: str) -> dict[str, str]:
    return {
        f"{LABEL_PREFIX}.target": target.name,
        f"{LABEL_PREFIX}.pythons": pythons_label(target),
        f"{LABEL_PREFIX}.tag": os_release_tag(target, arch),
        CONTEXT_LABEL: context_key,
    }


def _files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def context_key(target: Target, args: dict[str, str], base_id: str | None, root: Path) -> str:
    """A hash of everything the build context and arguments are made of, stored as a label so
    an image built from the same inputs is reused and a changed Dockerfile is rebuilt."""
    digest = hashlib.sha256()
    for directory in (dockerfile_dir(target, root), root / COMMON_DIR):
        for path in _files_under(directory):
            digest.update(str(path.relative_to(directory)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for key, value in sorted(args.items()):
        digest.update(f"{key}={value}\0".encode())
    digest.update((base_id or "").encode())
    return digest.hexdigest()[:32]


def tools_cache_dir() -> Path:
    import platformdirs

    return platformdirs.user_cache_path("wheelfarm") / "image-tools"


def pins_for(python_version: str, pins_text: str) -> list[str]:
    """The lock lines (name==version) whose markers hold for some X.Y.z release of a Python.
    pip cannot do this itself: `pip download --python-version` still evaluates markers for the
    interpreter that runs it."""
    from packaging.requirements import Requirement

    environments = [
        {"python_version": python_version, "python_full_version": f"{python_version}.{micro}"}
        for micro in (0, 99)
    ]
    chosen: list[str] = []
    for raw in pins_text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate(env) for env in environments):
            chosen.append(f"{requirement.name}{requirement.specifier}")
    return chosen


def lock_path(root: Path | None = None) -> Path:
    """The build tools' lock (images/common/build-tools.txt)."""
    return (root if root is not None else images_dir()) / COMMON_DIR / BUILD_TOOLS


@dataclass
class HostTools:
    """The host programs (debootstrap, tar, pip) and image builds one images command's workers
    run. A SIGTERM reaches wheelfarm alone and Ctrl-C only the terminal's foreground group, so
    `stop` ends every program still running, with its children (debootstrap's wget would go on
    writing into the root file system), and makes each image build give up at its next output
    line (the engine cancels a build whose client went away); each worker then removes its own
    temp dir on the way out."""

    stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: set[subprocess.Popen[str]] = field(default_factory=set)

    def run(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """`subprocess.run(command, capture_output=True, text=True)` that `stop` can end."""
        self.check()
        with subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group, for stop to end as a whole
        ) as process:
            try:
                with self._lock:
                    self._running.add(process)
                out, err = process.communicate()
            except BaseException:  # Ctrl-C or SIGTERM in the thread that runs it
                _end_group(process)
                raise
            finally:
                with self._lock:
                    self._running.discard(process)
        self.check()
        return subprocess.CompletedProcess(list(command), process.returncode, out, err)

    def check(self) -> None:
        if self.stopping.is_set():
            raise runner.Cancelled

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            running = list(self._running)
        for process in running:
            _end_group(process)


def _end_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)


def download_build_tools(
    python_version: str, root: Path | None = None, tools: HostTools | None = None
) -> Path:
    """The pinned build tools' wheels for one Python, downloaded on the host with the host's pip
    settings (its index, proxy and CA), cached by the lock's hash. Returns the wheel directory."""
    pins = lock_path(root).read_text(encoding="utf-8")
    pins_hash = hashlib.sha256(pins.encode()).hexdigest()[:16]
    destination = tools_cache_dir() / pins_hash / f"py{python_version}"
    if destination.is_dir():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=destination.parent))
    try:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            python_version,
            "--dest",
            str(staging),
            *pins_for(python_version, pins),
        ]
        result = (tools or HostTools()).run(command)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise EnvironmentProblem(
                f"could not download the build tools for Python {python_version} on this host: "
                + " | ".join(line[:200] for line in tail),
                hint="check that pip on this host reaches its index (pip config list)",
            )
        staging.replace(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def prepare_context(
    target: Target, destination: Path, root: Path | None = None, tools: HostTools | None = None
) -> None:
    """Fill an empty directory with the target's build context: its Dockerfile directory, plus
    wheelfarm/ (install script, pins, and wheels/pyX.Y/ for each offered Python)."""
    root = root if root is not None else images_dir()
    shutil.copytree(dockerfile_dir(target, root), destination, dirs_exist_ok=True)
    ours = destination / CONTEXT_SUBDIR
    shutil.copytree(root / COMMON_DIR, ours, dirs_exist_ok=True)
    for python in target.pythons:
        wheels = download_build_tools(python.version, root, tools)
        shutil.copytree(wheels, ours / "wheels" / f"py{python.version}")


# ---------------------------------------------------------------------------------------------
# What exists, and what to tell the user when it does not


@dataclass(frozen=True)
class ImageState:
    ref: str
    id: str | None

    @property
    def present(self) -> bool:
        return self.id is not None


def make_command(target: Target) -> str:
    """The exact command that makes a target's images on this kind of host."""
    verb = "bootstrap" if target.can_bootstrap else "build"
    arch = f" --arch {target.arch}" if target.foreign else ""
    return f"wheelfarm images {verb} {target.name}{arch}"


def check_runnable(targets: Iterable[Target]) -> None:
    """Before any work: an architecture sent to an engine of its own (--engine) needs that
    engine to answer (EngineUnavailable naming it, exit 3); a foreign one on this machine's
    engine needs a working emulator (EmulationMissing with the command that fixes it, exit 3)."""
    from wheelfarm import container

    by_arch = {t.arch: t for t in targets}
    for arch, target in by_arch.items():
        if container.is_remote(container.address_for(arch=arch)):
            container.check_engine(arch)
        elif target.foreign:
            emulation.require(arch)


def legacy_ref(ref: str, arch: str) -> str | None:
    """The name an image had before names carried the architecture (wheelfarm/debian-12:build,
    wheelfarm/base:debian-12), for an image of `arch`'s; None for another name."""
    suffix = f"-{arch}"
    return ref.removesuffix(suffix) if ref.endswith(suffix) else None


def adopt_legacy(target: Target, refs: Iterable[str]) -> None:
    """Tag images made under the names without the architecture with the new names, when the
    new name is missing and the old image records the target's architecture: cheaper than a
    rebuild, and the old names stay for whoever still uses them."""
    from wheelfarm import container

    for ref in refs:
        old = legacy_ref(ref, target.arch)
        if old is None or container.is_remote(container.address_for(ref)):
            continue  # the old names were only ever on this machine's engine
        if container.image_id(ref) is not None or container.image_id(old) is None:
            continue
        if container.image_arch(old) == target.docker_arch:
            container.tag_image(old, ref)


def require(target: Target, stage: str) -> str:
    """The id of the target's image for a stage; ImageMissing (exit 3) with the command that
    makes it when it is absent. Checks the engine first (EngineUnavailable, exit 3)."""
    from wheelfarm import container

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    ref = target.image(stage)
    found = container.image_id(ref)
    if found is None:
        adopt_legacy(target, [ref])
        found = container.image_id(ref)
    if found is None:
        raise ImageMissing(
            f"image {ref} for target {target.name} is not present",
            hint=f"make it with: {make_command(target)}",
        )
    return found


def list_images(targets: Sequence[Target]) -> list[dict[str, object]]:
    from wheelfarm import container

    container.check_engine()
    rows: list[dict[str, object]] = []
    for target in targets:
        row: dict[str, object] = {
            "target": target.name,
            "arch": target.arch,
            "base": target.base,
            "family": target.family,
            "pythons": [p.version for p in target.pythons],
            "bootstrap": target.can_bootstrap,
            "note": target.note,
        }
        if target.can_bootstrap:
            row["bootstrapped_base"] = {
                "image": bootstrap_base_ref(target),
                "id": container.image_id(bootstrap_base_ref(target)),
            }
        for stage in STAGES:
            ref = target.image(stage)
            found = container.image_id(ref)
            row[stage] = {"image": ref, "present": found is not None, "id": found}
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Building


@dataclass(frozen=True)
class BuiltImage:
    target: str
    arch: str
    stage: str
    ref: str
    id: str
    reused: bool
    seconds: float

    @property
    def unit(self) -> str:
        return f"{self.target}-{self.arch}"


def bootstrap_base_ref(target: Target) -> str:
    return f"{BASE_REPOSITORY}:{target.unit}"


def _base_for(target: Target, base: str | None) -> str:
    """--base when given, else a bootstrapped base when one exists, else the registry image."""
    from wheelfarm import container

    if base:
        return base
    if target.can_bootstrap and container.image_id(bootstrap_base_ref(target)) is not None:
        return bootstrap_base_ref(target)
    return target.base


def build_target(
    target: Target,
    *,
    base: str,
    force: bool = False,
    progress: Progress = _no_progress,
    root: Path | None = None,
    tools: HostTools | None = None,
) -> list[BuiltImage]:
    """Both stages of one target on the given base; a stage whose image was built from the same
    inputs is reused unless force."""
    from wheelfarm import container

    root = root if root is not None else images_dir()
    arch = target.arch
    adopt_legacy(target, [target.image(stage) for stage in STAGES])
    args = build_args(target, base, arch, root)
    key = context_key(target, args, container.image_id(base), root)
    wanted = labels(target, arch, key)
    stale = [
        stage
        for stage in STAGES
        if force
        or container.image_id(target.image(stage)) is None
        or container.image_labels(target.image(stage)).get(CONTEXT_LABEL) != key
    ]
    results: list[BuiltImage] = []
    if not stale:
        for stage in STAGES:
            found = container.image_id(target.image(stage))
            results.append(
                BuiltImage(
                    target.name, target.arch, stage, target.image(stage), found or "", True, 0
                )
            )
        return results

    progress(target.unit, "preparing the build context (build tools downloaded on the host)")
    recent: collections.deque[str] = collections.deque(maxlen=40)
    with tempfile.TemporaryDirectory(prefix="wheelfarm-context-") as tmp:
        context = Path(tmp)
        prepare_context(target, context, root, tools)
        for stage in STAGES:
            started = time.monotonic()

            def on_output(line: str, stage: str = stage) -> None:
                if tools is not None:
                    tools.check()
                recent.append(line)
                if line.startswith("Step "):
                    progress(target.unit, f"{stage}: {line[:100]}")

            try:
                built = container.build_image(
                    context,
                    tag=target.image(stage),
                    target=stage,
                    buildargs=args,
                    labels=wanted,
                    on_output=on_output,
                    nocache=force,
                    platform=f"linux/{target.docker_arch}",
                )
            except WheelfarmError as exc:
                hint = "\n".join(recent)
                if "pull access denied" in hint or "not found" in exc.message:
                    hint += f"\nno registry reachable? {make_command(target)}"
                raise type(exc)(exc.message, hint=hint) from None
            results.append(
                BuiltImage(
                    target.name,
                    target.arch,
                    stage,
                    target.image(stage),
                    built,
                    False,
                    time.monotonic() - started,
                )
            )
    return results


def build(
    targets: Sequence[Target],
    *,
    base: str | None = None,
    force: bool = False,
    progress: Progress = _no_progress,
) -> list[BuiltImage]:
    from wheelfarm import container

    check_runnable(targets)
    container.check_engine()
    results: list[BuiltImage] = []
    for target in targets:
        adopt_legacy(target, [bootstrap_base_ref(target)])
        chosen = _base_for(target, base)
        progress(target.unit, f"building on {chosen}")
        results.extend(build_target(target, base=chosen, force=force, progress=progress))
    return results


# ---------------------------------------------------------------------------------------------
# Registry-less bootstrap (Debian family)


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]


def parse_deb822(text: str) -> list[AptSource]:
    """`deb` stanzas of a deb822 .sources file (Types/URIs/Suites; Enabled: no skipped)."""
    sources: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key is not None:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        sources.extend(AptSource(uri, suites) for uri in fields.get("uris", "").split())
    return sources


def parse_sources_list(text: str) -> list[AptSource]:
    """`deb` lines of a one-line-style sources.list (options in [...] allowed)."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line[4:])
        words = line.split()
        if len(words) >= 2:
            sources.append(AptSource(words[0], (words[1],)))
    return sources


def host_apt_sources(apt_dir: Path = APT_SOURCES) -> list[AptSource]:
    found: list[AptSource] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        found.extend(parse_deb822(_read(path)))
    found.extend(parse_sources_list(_read(apt_dir / "sources.list")))
    for path in sorted((apt_dir / "sources.list.d").glob("*.list")):
        found.extend(parse_sources_list(_read(path)))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# Release suites that only a Debian archive serves: an apt source for another distro (Ubuntu's
# jammy, a vendor's repository) is not a mirror debootstrap can make a Debian base from.
_DEBIAN_SUITES = frozenset(
    {t.suite for t in TARGETS if t.suite is not None}
    | {"buster", "forky", "duke", "sid", "oldoldstable", "oldstable", "stable", "testing"}
    | {"unstable"}
)


def default_mirror(apt_dir: Path = APT_SOURCES) -> str:
    """The host's Debian mirror: the first apt source that serves a Debian release suite (not
    -security/-updates/-backports, not another distro's suite)."""
    for source in host_apt_sources(apt_dir):
        if source.uri.startswith(("http://", "https://")) and any(
            not _OVERLAY_SUITE.search(suite) and suite in _DEBIAN_SUITES for suite in source.suites
        ):
            return source.uri.rstrip("/")
    raise EnvironmentProblem(
        f"no Debian mirror found in {apt_dir}/sources.list or {apt_dir}/sources.list.d/*.sources"
        " (a source serving a Debian suite such as bookworm)",
        hint="give one: wheelfarm images bootstrap TARGET --mirror URL",
    )


def bootstrappable(targets: Iterable[Target]) -> list[Target]:
    return [t for t in targets if t.can_bootstrap]


def check_bootstrappable(requested: Sequence[Target], catalogue: Sequence[Target]) -> None:
    cannot = [t.name for t in requested if not t.can_bootstrap]
    if cannot:
        can = ", ".join(t.name for t in bootstrappable(catalogue))
        raise BadInput(
            f"cannot bootstrap {', '.join(cannot)}: only Debian targets can be made from a "
            "Debian mirror without a registry",
            hint=f"targets that can be bootstrapped: {can}; others: wheelfarm images build NAME",
        )


def debootstrap_command(suite: str, directory: Path, mirror: str, arch: str) -> list[str]:
    """debootstrap for a target architecture (tags' name); a foreign one runs its maintainer
    scripts under the registered emulator, so no --foreign second stage is needed."""
    debian_arch = DEBIAN_ARCHES.get(arch, arch)
    return [
        "debootstrap",
        f"--arch={debian_arch}",
        "--variant=minbase",
        suite,
        str(directory),
        mirror,
    ]


# Image settings a registry's Debian image has and a bare root file system lacks.
BASE_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
BASE_CMD = ("bash",)


def _check_tools() -> None:
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem(
            "debootstrap is not installed",
            hint="apt-get install -y debootstrap (scripts/setup does this)",
        )
    if os.geteuid() != 0:
        raise EnvironmentProblem(
            "debootstrap needs root", hint="run wheelfarm images bootstrap as root"
        )


def pack_rootfs(rootfs: Path, tarball: Path, tools: HostTools | None = None) -> None:
    """Pack a bootstrapped root file system for `docker import`, without the downloaded .debs and
    package lists; a tar failure (a full disk, a vanished directory) is an EnvironmentProblem."""
    packed = (tools or HostTools()).run(
        [
            "tar",
            "--numeric-owner",
            "--exclude=./var/cache/apt/archives/*.deb",
            "--exclude=./var/lib/apt/lists/*_Packages",
            "-C",
            str(rootfs),
            "-cf",
            str(tarball),
            ".",
        ]
    )
    if packed.returncode != 0:
        raise EnvironmentProblem(
            f"packing the root file system {rootfs} failed (tar exit {packed.returncode})",
            hint="\n".join(packed.stderr.strip().splitlines()[-15:]) or None,
        )


def make_base(
    target: Target,
    mirror: str,
    progress: Progress = _no_progress,
    tools: HostTools | None = None,
) -> str:
    """debootstrap a minbase root file system of the target's architecture and load it as
    wheelfarm/base:<target>-<arch>, recording that architecture."""
    from wheelfarm import container

    assert target.suite is not None
    _check_tools()
    if target.foreign:
        # debootstrap runs the new system's maintainer scripts here, whichever engine gets it.
        emulation.require(target.arch)
    work = Path(tempfile.mkdtemp(prefix=f"wheelfarm-bootstrap-{target.name}-", dir="/var/tmp"))
    try:
        rootfs = work / "rootfs"
        progress(target.unit, f"debootstrap {target.suite} ({target.arch}) from {mirror}")
        tools = tools or HostTools()
        result = tools.run(debootstrap_command(target.suite, rootfs, mirror, target.arch))
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise EnvironmentProblem(
                f"debootstrap {target.suite} from {mirror} failed (exit {result.returncode})",
                hint=tail,
            )
        progress(target.unit, "docker load")
        tarball = work / "rootfs.tar"
        pack_rootfs(rootfs, tarball, tools)
        return container.load_rootfs(
            tarball,
            bootstrap_base_ref(target),
            arch=target.docker_arch,
            env=BASE_ENV,
            cmd=BASE_CMD,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bootstrap(
    targets: Sequence[Target],
    catalogue: Sequence[Target],
    *,
    mirror: str | None = None,
    force: bool = False,
    progress: Progress = _no_progress,
    jobs: int = 2,
) -> list[BuiltImage]:
    """Make each target's base from a Debian mirror (reused when present), then both stages."""
    from wheelfarm import container

    check_bootstrappable(targets, catalogue)
    check_runnable(targets)
    container.check_engine()
    chosen_mirror = mirror or default_mirror()

    def one(target: Target) -> list[BuiltImage]:
        base_ref = bootstrap_base_ref(target)
        adopt_legacy(target, [base_ref])
        started = time.monotonic()
        reused = not force and container.image_id(base_ref) is not None
        if reused:
            progress(target.unit, f"reusing base {base_ref}")
            base_id = container.image_id(base_ref) or ""
        else:
            base_id = make_base(target, chosen_mirror, progress, tools)
        made = [
            BuiltImage(
                target.name,
                target.arch,
                "base",
                base_ref,
                base_id,
                reused,
                time.monotonic() - started,
            )
        ]
        return made + build_target(
            target, base=base_ref, force=force, progress=progress, tools=tools
        )

    tools = HostTools()
    # Bases are network-bound, builds CPU-bound: two at a time keeps a 2-core machine busy.
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = [pool.submit(one, t) for t in targets]
        results: list[BuiltImage] = []
        for future in futures:
            results.extend(future.result())
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (raised as one): the other targets stop too. A failed target does
        # not stop them; its error is raised once they are done.
        tools.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


# ---------------------------------------------------------------------------------------------
# The commands: targets named by the user, progress through a reporter, the images as data


def list_named(
    names: Sequence[str], catalogue: Sequence[Target] = TARGETS
) -> list[dict[str, object]]:
    """`wheelfarm images list`: the named targets (default: all) and their images."""
    return list_images(select(names, catalogue) if names else list(catalogue))


def build_named(
    names: Sequence[str],
    base: str | None,
    force: bool,
    reporter: Reporter,
    catalogue: Sequence[Target] = TARGETS,
) -> list[BuiltImage]:
    """`wheelfarm images build`: both stages of each named target."""
    chosen = select(names, catalogue)
    if base and len(chosen) > 1:
        raise BadInput("--base applies to one target at a time", hint="build targets one by one")
    return _on_board(
        reporter,
        [t.unit for t in chosen],
        lambda step: build(chosen, base=base, force=force, progress=step),
    )


def bootstrap_named(
    names: Sequence[str],
    mirror: str | None,
    force: bool,
    reporter: Reporter,
    catalogue: Sequence[Target] = TARGETS,
) -> list[BuiltImage]:
    """`wheelfarm images bootstrap`: a base from a Debian mirror, then both stages."""
    chosen = select(names, catalogue)
    check_bootstrappable(chosen, catalogue)
    return _on_board(
        reporter,
        [t.unit for t in chosen],
        lambda step: bootstrap(chosen, catalogue, mirror=mirror, force=force, progress=step),
    )


def send_named(
    names: Sequence[str], reporter: Reporter, catalogue: Sequence[Target] = TARGETS
) -> list[BuiltImage]:
    """`wheelfarm images send`: each named target's images (base when present, both stages)
    from this machine's engine to the engine its architecture is sent to (--engine)."""
    from wheelfarm import container

    chosen = select(names, catalogue)
    unrouted = sorted(
        {t.arch for t in chosen if not container.is_remote(container.address_for(arch=t.arch))}
    )
    if unrouted:
        raise BadInput(
            f"no engine of its own for {', '.join(unrouted)}: nothing to send the images to",
            hint=f"name one: --engine {unrouted[0]}=ssh://user@host (or tcp://, unix://)",
        )
    container.check_engines()

    def send(step: Progress) -> list[BuiltImage]:
        sent: list[BuiltImage] = []
        for target in chosen:
            refs = [bootstrap_base_ref(target), *(target.image(stage) for stage in STAGES)]
            for stage, ref in zip(("base", *STAGES), refs, strict=True):
                if stage == "base" and container.image_id(ref, local=True) is None:
                    continue  # a base made elsewhere (a registry's) is not needed there
                started = time.monotonic()
                step(target.unit, f"sending {ref} to {container.address_for(ref)}")
                made = container.send_image(ref)
                sent.append(
                    BuiltImage(
                        target.name,
                        target.arch,
                        stage,
                        ref,
                        made,
                        False,
                        time.monotonic() - started,
                    )
                )
        return sent

    return _on_board(reporter, [t.unit for t in chosen], send)


def _on_board(
    reporter: Reporter, names: Sequence[str], work: Callable[[Progress], list[BuiltImage]]
) -> list[BuiltImage]:
    with reporter.board(names) as board, runner.sigterm_as_interrupt():
        try:
            results = work(board.step)
        except (WheelfarmError, KeyboardInterrupt):
            for name in names:
                board.finish(name, False, "stopped")
            raise
        for name in names:
            mine = [r for r in results if r.unit == name]
            done = "reused" if all(r.reused for r in mine) else "built"
            board.finish(name, True, done)
    return results
