"""The catalogue of shipped targets. Pure data: what each target is, which image it runs from,
which package manager and Pythons it has. Images are built by `images.py`; plans read this."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from wheelfarm import tags
from wheelfarm.errors import BadInput

IMAGE_REPOSITORY = "wheelfarm"
LABEL_PREFIX = "org.wheelfarm"
# In the build image each offered Python X.Y has a venv here with pip, build, wheel, auditwheel.
BUILD_VENV = "/opt/wheelfarm/venv-{version}"
# The architectures wheelfarm makes images for, as tags name them, with the names Docker's image
# config (GOARCH) and Debian's archive give them.
DOCKER_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x"}
DEBIAN_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64el", "s390x": "s390x"}


def host_arch() -> str:
    """This machine's architecture as tags name it (x86_64, aarch64): every target's default."""
    return tags.running_arch()


def check_arch(raw: str, where: str = "--arch") -> str:
    """An architecture as tags name it (amd64 → x86_64, arm64 → aarch64); BadInput (exit 2)
    naming `where` for one wheelfarm makes no images for."""
    arch = tags.normalise_arch(raw.strip())
    if arch not in DOCKER_ARCHES:
        raise BadInput(
            f"{where}: unknown architecture {raw!r}",
            hint=f"one of {', '.join(DOCKER_ARCHES)} (amd64 and arm64 work too)",
        )
    return arch


@dataclass(frozen=True)
class Python:
    version: str  # "3.12"
    executable: str  # the distro's interpreter, e.g. "/usr/bin/python3.12"

    @property
    def build_venv(self) -> str:
        return BUILD_VENV.format(version=self.version)

    @property
    def cpython_tag(self) -> str:
        return "cp" + self.version.replace(".", "")


@dataclass(frozen=True)
class Target:
    name: str  # "debian-12", named like the Docker image
    distro: str  # os-release ID, e.g. "debian", "rocky"
    version: str  # os-release VERSION_ID release part, e.g. "12", "22.04", "3.20"
    base: str  # default base image, e.g. "debian:12"
    family: str  # package manager: "apk", "apt", "dnf", "yum"
    pythons: tuple[Python, ...]  # the first is the default
    suite: str | None = None  # Debian suite when the base can be made with debootstrap
    note: str = ""
    # False when distro/version were guessed from the base image's name (an extra target that
    # declares neither): good for listings, never for choosing index roots or views.
    release_known: bool = True
    # The LC_ALL/LANG its processes run under: a locale the image has (CentOS 7's glibc 2.17
    # has no C.UTF-8, and every shell would print setlocale warnings into the logs). Empty:
    # the family's (en_US.UTF-8 for yum, EL 7; C.UTF-8 elsewhere).
    locale: str = ""
    # The CPU architecture this target is built and verified for (x86_64, aarch64): a target
    # and an architecture are one unit everywhere (plan, images, keys, logs, reports). Empty:
    # this machine's.
    arch: str = ""

    def __post_init__(self) -> None:
        if not self.arch:
            object.__setattr__(self, "arch", host_arch())
        if not self.locale:
            family_locale = "en_US.UTF-8" if self.family == "yum" else "C.UTF-8"
            object.__setattr__(self, "locale", family_locale)

    @property
    def python(self) -> Python:
        return self.pythons[0]

    def python_for(self, version: str | None) -> Python:
        if version is None:
            return self.python
        for candidate in self.pythons:
            if candidate.version == version:
                return candidate
        offered = ", ".join(p.version for p in self.pythons)
        raise BadInput(
            f"target {self.name} has no Python {version}",
            hint=f"{self.name} offers Python {offered}",
        )

    @property
    def unit(self) -> str:
        """The target and its architecture as one name (debian-12-aarch64): keys, file names,
        rows of a report."""
        return f"{self.name}-{self.arch}"

    def with_arch(self, arch: str) -> Target:
        return self if arch == self.arch else replace(self, arch=arch)

    @property
    def docker_arch(self) -> str:
        return DOCKER_ARCHES.get(self.arch, self.arch)

    @property
    def foreign(self) -> bool:
        """Not this machine's architecture: run under emulation unless an engine of its own."""
        return self.arch != host_arch()

    def image(self, stage: str) -> str:
        return f"{IMAGE_REPOSITORY}/{self.name}:{stage}-{self.arch}"

    @property
    def build_image(self) -> str:
        return self.image("build")

    @property
    def runtime_image(self) -> str:
        return self.image("runtime")

    @property
    def can_bootstrap(self) -> bool:
        return self.suite is not None


def _py(*versions: str, prefix: str = "/usr/bin/python") -> tuple[Python, ...]:
    return tuple(Python(v, f"{prefix}{v}") for v in versions)


TARGETS: tuple[Target, ...] = (
    Target("alpine-3.20", "alpine", "3.20", "alpine:3.20", "apk", _py("3.12")),
    Target("alpine-3.21", "alpine", "3.21", "alpine:3.21", "apk", _py("3.12")),
    Target("alpine-3.22", "alpine", "3.22", "alpine:3.22", "apk", _py("3.12")),
    Target("alpine-3.23", "alpine", "3.23", "alpine:3.23", "apk", _py("3.12")),
    Target("alpine-3.24", "alpine", "3.24", "alpine:3.24", "apk", _py("3.14")),
    Target("alpine-3.25", "alpine", "3.25", "alpine:3.25", "apk", _py("3.14")),
    Target("debian-11", "debian", "11", "debian:11", "apt", _py("3.9"), suite="bullseye"),
    Target("debian-12", "debian", "12", "debian:12", "apt", _py("3.11"), suite="bookworm"),
    Target("debian-13", "debian", "13", "debian:13", "apt", _py("3.13"), suite="trixie"),
    Target("ubuntu-22.04", "ubuntu", "22.04", "ubuntu:22.04", "apt", _py("3.10")),
    Target("ubuntu-24.04", "ubuntu", "24.04", "ubuntu:24.04", "apt", _py("3.12")),
    Target("ubuntu-26.04", "ubuntu", "26.04", "ubuntu:26.04", "apt", _py("3.14")),
    Target(
        "centos-7",
        "centos",
        "7",
        "centos:7",
        "yum",
        _py("3.8", prefix="/opt/rh/rh-python38/root/usr/bin/python"),
        note="best effort: EOL since 2024, packages from the CentOS vault; Python 3.8 from "
        "Software Collections (the newest CentOS 7 ships), GCC 10 from devtoolset-10; no "
        "patchelf (EPEL only), so auditwheel can inspect but not repair",
    ),
    # Rocky Linux publishes its images as rockylinux/rockylinux:N (10 only there; the plain
    # rockylinux:N tags are no longer updated).
    Target("rockylinux-8", "rocky", "8", "rockylinux/rockylinux:8", "dnf", _py("3.12", "3.11")),
    Target(
        "rockylinux-9", "rocky", "9", "rockylinux/rockylinux:9", "dnf", _py("3.9", "3.12", "3.11")
    ),
    Target("rockylinux-10", "rocky", "10", "rockylinux/rockylinux:10", "dnf", _py("3.12")),
    Target("almalinux-8", "almalinux", "8", "almalinux:8", "dnf", _py("3.12", "3.11")),
    Target("almalinux-9", "almalinux", "9", "almalinux:9", "dnf", _py("3.9", "3.12", "3.11")),
    Target("almalinux-10", "almalinux", "10", "almalinux:10", "dnf", _py("3.12")),
)

FAMILIES = ("apk", "apt", "dnf", "yum")


def names(targets: Iterable[Target] = TARGETS) -> list[str]:
    return [t.name for t in targets]


def get(name: str, catalogue: Sequence[Target] = TARGETS) -> Target:
    for target in catalogue:
        if target.name == name:
            return target
    raise BadInput(
        f"unknown target {name!r}",
        hint="known targets: " + ", ".join(names(catalogue)),
    )


def select(requested: Sequence[str], catalogue: Sequence[Target] = TARGETS) -> list[Target]:
    """Targets by name, in the order given, without duplicates; unknown names fail together. A
    catalogue that holds a name once per architecture gives every one of them."""
    unknown = [n for n in requested if n not in names(catalogue)]
    if unknown:
        raise BadInput(
            f"unknown target{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint="known targets: " + ", ".join(dict.fromkeys(names(catalogue))),
        )
    return [t for n in dict.fromkeys(requested) for t in catalogue if t.name == n]


def per_arch(catalogue: Iterable[Target], archs: Sequence[str]) -> tuple[Target, ...]:
    """Every target once per architecture, target by target (debian-12 x86_64, debian-12
    aarch64, debian-13 x86_64, ...); no architectures: each target's own."""
    if not archs:
        return tuple(catalogue)
    return tuple(t.with_arch(a) for t in catalogue for a in dict.fromkeys(archs))
