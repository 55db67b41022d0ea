"""Distro platform tags (docs/design.md, "The tag contract"). Pure, except
`running_machine_tags`, the one probe of the running interpreter, kept apart and cached like
packaging does."""

from __future__ import annotations

import functools
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}
# Distros whose X.Y is a release of its own, not a point release of X.
_MINOR_IS_RELEASE = frozenset({"ubuntu", "alpine", "nixos"})
_MAJOR = re.compile(r"\d+")
_MAJOR_MINOR = re.compile(r"\d+(\.\d+)?")

# Arch names that may appear in a linux_<arch>_… tag. Several contain "_", so a tag cannot be
# split on "_" alone; longest names first so "x86_64" wins over a hypothetical "x86".
KNOWN_ARCHES = tuple(
    sorted(
        {
            "x86_64",
            "i686",
            "aarch64",
            "armv7l",
            "armv6l",
            "ppc64le",
            "ppc64",
            "s390x",
            "riscv64",
            "loongarch64",
        },
        key=len,
        reverse=True,
    )
)


def normalise(part: str) -> str:
    """Lowercase; each run of characters outside [a-z0-9] becomes one "_"; no "_" at the ends."""
    return _NON_ALNUM.sub("_", part.lower()).strip("_")


def normalise_arch(machine: str) -> str:
    lowered = machine.lower()
    return normalise(_ARCH_ALIASES.get(lowered, lowered))


@dataclass(frozen=True)
class Distro:
    id: str
    version: str  # raw, as os-release gives it

    @classmethod
    def from_os_release(cls, fields: Mapping[str, str]) -> Distro:
        distro_id = normalise(fields.get("ID", "")) or "linux"
        version = fields.get("VERSION_ID") or fields.get("VERSION_CODENAME") or "rolling"
        return cls(distro_id, version)

    @property
    def release(self) -> str:
        """The release part of the version: "9.4" → "9"; Ubuntu "22.04" stays; "trixie" stays."""
        pattern = _MAJOR_MINOR if self.id in _MINOR_IS_RELEASE else _MAJOR
        match = pattern.match(self.version)
        return match.group(0) if match else self.version


def plain_tag(arch: str) -> str:
    return f"linux_{arch}"


def distro_tag(arch: str, distro_id: str, version: str) -> str:
    return f"linux_{arch}_{normalise(distro_id)}_{normalise(version) or 'rolling'}"


def host_tag(arch: str, distro: Distro) -> str:
    return distro_tag(arch, distro.id, distro.version)


def default_build_tag(arch: str, distro: Distro) -> str:
    return distro_tag(arch, distro.id, distro.release)


def split_platform(tag: str) -> tuple[str, str] | None:
    """`linux_x86_64_debian_12` → ("x86_64", "debian_12"); `linux_x86_64` → ("x86_64", "");
    None for anything that is not a plain or distro Linux platform tag."""
    if not tag.startswith("linux_"):
        return None
    rest = tag[len("linux_") :]
    for arch in KNOWN_ARCHES:
        if rest == arch:
            return arch, ""
        if rest.startswith(arch + "_") and len(rest) > len(arch) + 1:
            return arch, rest[len(arch) + 1 :]
    return None


def is_distro_tag(tag: str) -> bool:
    """True for `linux_<known arch>_<distro…>` whose distro part is already normalised."""
    parts = split_platform(tag)
    return parts is not None and bool(parts[1]) and normalise(parts[1]) == parts[1]


def is_standard_linux_tag(tag: str) -> bool:
    """manylinux/musllinux and friends: tags PyPI already has a meaning for."""
    return tag.startswith(("manylinux", "musllinux"))


def unique(tags: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tags))


def running_arch() -> str:
    return normalise_arch(platform.machine())


@functools.lru_cache(maxsize=1)
def running_machine_tags() -> tuple[str, ...]:
    """manylinux/musllinux platform tags the running interpreter accepts, best first."""
    from packaging.tags import platform_tags

    return tuple(t for t in platform_tags() if is_standard_linux_tag(t))
