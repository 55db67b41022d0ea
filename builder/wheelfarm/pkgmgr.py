"""Package-manager commands per family (apk, apt, dnf, yum). Pure: it only writes commands and
reads their output; `Container.run`/`.output` executes them.

Used to install a recipe's system packages in a build or runtime container, to find which
package owns a shared library (ELF dependencies → Requires-External), and by the generic
Dockerfiles to name a Python's packages on a family."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from wheelfarm.errors import BadInput

FAMILIES = ("apk", "apt", "dnf", "yum")
# A package name, optionally with the family's version or arch qualifier; nothing a shell could
# take for syntax.
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._:@=<>~*/-]*$")
_APK_NAME_VERSION = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*)-r\d+$")
YUM_STRICT = "--setopt=skip_missing_names_on_install=False"
APT_RETRY_MESSAGE = "wheelfarm: the package lists in the image did not do; refreshing them"


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise BadInput(f"unknown package family {family!r}", hint=f"one of: {', '.join(FAMILIES)}")


def _check_packages(packages: Sequence[str]) -> list[str]:
    bad = [p for p in packages if not _PACKAGE.match(p)]
    if bad:
        raise BadInput(
            f"not a package name: {', '.join(repr(p) for p in bad)}",
            hint="system packages are plain names such as libxml2-dev or libpq-devel",
        )
    return list(dict.fromkeys(packages))


def install_command(family: str, packages: Sequence[str], *, ca_file: str | None = None) -> str:
    """One shell command that installs packages non-interactively. ca_file: a CA bundle for https
    repositories, for families that do not read SSL_CERT_FILE (apt, dnf, yum); apk's OpenSSL
    reads SSL_CERT_FILE itself.

    apt installs from the package lists the image keeps (wheelfarm's Debian and Ubuntu images do),
    which saves downloading them; when that fails (no lists, or stale ones naming .debs the mirror
    no longer has) it refreshes the lists and tries once more."""
    _check_family(family)
    wanted = _check_packages(packages)
    if not wanted:
        return "true"
    names = " ".join(shlex.quote(p) for p in wanted)
    if family == "apt":
        apt = "apt-get" + (f" -o Acquire::https::CAInfo={shlex.quote(ca_file)}" if ca_file else "")
        install = f"DEBIAN_FRONTEND=noninteractive {apt} install -y -qq --no-install-recommends"
        return (
            f"{install} {names} || {{ echo {shlex.quote(APT_RETRY_MESSAGE)}; "
            f"{apt} update -qq && {install} {names} ; }}"
        )
    if family == "apk":
        return f"apk add --no-cache {names}"
    options = f" --setopt=sslcacert={shlex.quote(ca_file)}" if ca_file else ""
    if family == "dnf":
        return f"dnf install -y -q --setopt=install_weak_deps=False{options} {names}"
    # yum (unlike dnf) skips a name no repository has and exits 0; a wrong recipe name must fail
    # here, not later as a missing header in the compile.
    return f"yum install -y -q {YUM_STRICT}{options} {names}"


def install_env(family: str) -> dict[str, str]:
    """Environment that keeps the package manager from asking questions."""
    _check_family(family)
    return {"DEBIAN_FRONTEND": "noninteractive"} if family == "apt" else {}


def owner_command(family: str, path: str) -> list[str]:
    """argv that prints which package owns a file (exit non-zero when none does)."""
    _check_family(family)
    if family == "apt":
        return ["dpkg", "-S", path]
    if family == "apk":
        return ["apk", "info", "--who-owns", path]
    return ["rpm", "-qf", "--queryformat", "%{NAME}\\n", path]


def owner_paths(path: str) -> list[str]:
    """The path and its merged-/usr twin: dpkg records a library under the path its package
    ships (/lib/... or /usr/lib/...), which on a merged-/usr system may not be the one the
    dynamic linker reports. Query each until one answers."""
    candidates = [path]
    if path.startswith("/usr/"):
        candidates.append(path[len("/usr") :])
    elif path.startswith(("/lib", "/bin", "/sbin")):
        candidates.append("/usr" + path)
    return candidates


def parse_owner(family: str, output: str) -> str | None:
    """The owning package's name from owner_command's output, or None."""
    _check_family(family)
    text = output.strip()
    if not text:
        return None
    first = text.splitlines()[0].strip()
    if family == "apt":
        # "libxml2:amd64: /usr/lib/x86_64-linux-gnu/libxml2.so.2" (or "a, b: path" when several
        # packages share a directory; a file has one owner, so take the first).
        if "diversion by" in first or ": " not in first:
            return None
        packages = first.split(": ", 1)[0]
        name = packages.split(",")[0].strip()
        return name.split(":")[0] or None
    if family == "apk":
        # "/usr/lib/libxml2.so.2 is owned by libxml2-2.12.7-r0"
        marker = " is owned by "
        if marker not in first:
            return None
        owner = first.split(marker, 1)[1].strip()
        match = _APK_NAME_VERSION.match(owner)
        return match.group("name") if match else owner
    if "not owned" in first or " " in first:
        return None
    return first


def version_command(family: str, package: str) -> list[str]:
    """argv that prints an installed package's version (exit non-zero when not installed)."""
    _check_family(family)
    (name,) = _check_packages([package])
    if family == "apt":
        return ["dpkg-query", "-W", "-f=${Version}", name]
    if family == "apk":
        return ["apk", "list", "--installed", name]
    return ["rpm", "-q", "--queryformat", "%{VERSION}-%{RELEASE}", name]


def parse_version(family: str, package: str, output: str) -> str | None:
    """The version from version_command's output, or None."""
    _check_family(family)
    text = output.strip()
    if not text:
        return None
    first = text.splitlines()[0].strip()
    if family != "apk":
        return first if " " not in first else None
    # "libxml2-2.12.7-r0 x86_64 {libxml2} (MIT) [installed]"
    word = first.split()[0]
    prefix = package + "-"
    return word[len(prefix) :] if word.startswith(prefix) else None


# Enterprise Linux rebuilds whose EPEL (patchelf, many -devel packages) installs from their own
# repositories with epel-release, and whose extra -devel repository is CRB (PowerTools on 8).
# ("rockylinux" is what a base image's name gives when an extra target declares no distro.)
EL_REBUILDS = ("rocky", "rockylinux", "almalinux", "centos")
EL = (*EL_REBUILDS, "rhel", "ol")
# Distros whose repositories have no patchelf and no EPEL wheelfarm can enable without naming a
# host (RHEL/UBI needs a subscription or a URL; Amazon Linux has no EPEL).
NO_PATCHELF = ("rhel", "amzn")


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _el7(distro: str, version: str) -> bool:
    return distro in EL and _major(version) == 7


def python_packages(family: str, version: str, stage: str, distro: str = "") -> list[str]:
    """The distro packages that give Python X.Y with venv and pip (runtime), plus headers, a
    C/C++ toolchain and strace, to see what a failed build looked for (build). Names follow
    each family's pattern for a versioned Python (python3.11, python3.11-venv, python3.11-devel);
    Alpine has one python3. On an EL 7 base (CentOS 7) there is no python3.X-pip: its python3
    is 3.6, and other versions come from Software Collections (rh-python38-python...). patchelf
    is left out where the distro's repositories lack it (auditwheel then inspects but cannot
    repair)."""
    _check_family(family)
    if stage not in ("runtime", "build"):
        raise ValueError(f"unknown stage {stage!r}")
    build = stage == "build"
    if family == "apt":
        runtime = ["ca-certificates", f"python{version}", f"python{version}-venv", "python3-pip"]
        tools = [f"python{version}-dev", "gcc", "g++", "make", "patchelf", "pkg-config", "strace"]
    elif family == "apk":
        runtime = ["ca-certificates", "python3", "py3-pip"]
        tools = ["python3-dev", "build-base", "linux-headers", "patchelf", "pkgconf", "strace"]
    else:
        # An EL distro on yum is EL 7 (8 and later are dnf).
        if family == "yum" and distro in EL and version == "3.6":
            prefix = "python3"
        elif family == "yum" and distro in EL:
            prefix = f"rh-python{version.replace('.', '')}-python"
        else:
            prefix = f"python{version}"
        runtime = [prefix, f"{prefix}-pip"]
        tools = [f"{prefix}-devel", "gcc", "gcc-c++", "make", "pkgconfig", "strace"]
        if family == "dnf" and distro not in NO_PATCHELF:
            tools.append("patchelf")
    return runtime + tools if build else runtime


def repository_setup(family: str, distro: str, version: str, pythons: Sequence[str]) -> str:
    """The shell command a generic image runs before installing anything, in both stages (so a
    verification container resolves what a build did): EPEL and CRB/PowerTools on an EL
    rebuild's dnf (patchelf is in EPEL only), Software Collections on CentOS 7 for a Python that
    is not its 3.6. "true" when nothing is needed. A yum base on another EL 7 (RHEL, Oracle)
    with a Python other than 3.6 is refused: its collections need a subscription or a host."""
    _check_family(family)
    major = _major(version)
    if family == "dnf" and distro in EL_REBUILDS and major is not None and major >= 8:
        extra = "powertools" if major == 8 else "crb"
        return (
            "dnf install -y -q --setopt=install_weak_deps=False dnf-plugins-core epel-release"
            f" && dnf config-manager --set-enabled {extra}"
        )
    if family == "yum" and _el7(distro, version) and any(p != "3.6" for p in pythons):
        if distro not in EL_REBUILDS:
            raise BadInput(
                f"a generic yum target on {distro} {version} cannot offer Python "
                f"{', '.join(p for p in pythons if p != '3.6')}: only CentOS's Software "
                "Collections are known here",
                hint="offer python 3.6 (the system python3), or use the shipped centos-7 target",
            )
        return f"yum install -y -q {YUM_STRICT} centos-release-scl-rh"
    return "true"
