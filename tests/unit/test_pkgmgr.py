"""Package-manager commands per family, and reading their answers (real output samples)."""

from __future__ import annotations

import shlex

import pytest

from wheelfarm import pkgmgr
from wheelfarm.errors import BadInput


def test_apt_install_refreshes_lists_and_never_asks() -> None:
    command = pkgmgr.install_command("apt", ["libxml2-dev", "libxslt1-dev"])
    install = (
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
        "libxml2-dev libxslt1-dev"
    )
    # The image's own package lists first; refreshed only when that install fails.
    assert command == (
        f"{install} || {{ echo '{pkgmgr.APT_RETRY_MESSAGE}'; apt-get update -qq && {install} ; }}"
    )
    assert pkgmgr.install_env("apt") == {"DEBIAN_FRONTEND": "noninteractive"}


def test_apk_install() -> None:
    assert pkgmgr.install_command("apk", ["libxml2-dev"]) == "apk add --no-cache libxml2-dev"
    assert pkgmgr.install_env("apk") == {}


def test_dnf_and_yum_install() -> None:
    assert pkgmgr.install_command("dnf", ["libpq-devel"]) == (
        "dnf install -y -q --setopt=install_weak_deps=False libpq-devel"
    )
    assert pkgmgr.install_command("yum", ["libpq-devel"]) == (
        "yum install -y -q --setopt=skip_missing_names_on_install=False libpq-devel"
    )


def test_yum_fails_on_a_name_no_repository_has() -> None:
    """yum's default skips unknown names with exit 0; every yum install must turn that off."""
    for ca_file in (None, "/etc/wheelfarm/host-ca.pem"):
        words = pkgmgr.install_command("yum", ["no-such-devel"], ca_file=ca_file).split()
        assert "--setopt=skip_missing_names_on_install=False" in words
        assert words.index("--setopt=skip_missing_names_on_install=False") < words.index(
            "no-such-devel"
        )


@pytest.mark.parametrize(
    ("family", "option"),
    [
        ("apt", "-o Acquire::https::CAInfo=/etc/wheelfarm/host-ca.pem"),
        ("dnf", "--setopt=sslcacert=/etc/wheelfarm/host-ca.pem"),
        ("yum", "--setopt=sslcacert=/etc/wheelfarm/host-ca.pem"),
    ],
)
def test_ca_bundle_reaches_package_managers_that_ignore_ssl_cert_file(
    family: str, option: str
) -> None:
    command = pkgmgr.install_command(family, ["zlib"], ca_file="/etc/wheelfarm/host-ca.pem")
    assert option in command


def test_apk_reads_ssl_cert_file_itself() -> None:
    assert "cacert" not in pkgmgr.install_command("apk", ["zlib"], ca_file="/x.pem")


def test_duplicates_are_dropped_and_nothing_to_install_is_a_no_op() -> None:
    assert pkgmgr.install_command("apk", ["a", "b", "a"]) == "apk add --no-cache a b"
    assert pkgmgr.install_command("apt", []) == "true"


@pytest.mark.parametrize("bad", ["libxml2; rm -rf /", "$(reboot)", "-y", "a b", ""])
def test_package_names_that_a_shell_could_read_as_syntax_are_refused(bad: str) -> None:
    with pytest.raises(BadInput, match="not a package name"):
        pkgmgr.install_command("apt", [bad])


def test_versioned_and_arch_qualified_names_are_names() -> None:
    command = pkgmgr.install_command("apt", ["libc6:amd64", "python3.11-dev", "libfoo=1.2-3"])
    words = shlex.split(command)
    names = ["libc6:amd64", "python3.11-dev", "libfoo=1.2-3"]
    # Both attempts (the image's lists, then refreshed ones) name them as they are.
    first = words.index("--no-install-recommends")
    second = words.index("--no-install-recommends", first + 1)
    assert words[first + 1 : first + 4] == names
    assert words[second + 1 : second + 4] == names
    assert pkgmgr.install_command("apk", names).split()[-3:] == names


def test_unknown_family_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown package family"):
        pkgmgr.install_command("pacman", ["x"])


def test_owner_commands() -> None:
    path = "/usr/lib/x86_64-linux-gnu/libxml2.so.2"
    assert pkgmgr.owner_command("apt", path) == ["dpkg", "-S", path]
    assert pkgmgr.owner_command("apk", path) == ["apk", "info", "--who-owns", path]
    assert pkgmgr.owner_command("dnf", path) == ["rpm", "-qf", "--queryformat", "%{NAME}\\n", path]
    assert pkgmgr.owner_command("yum", path) == pkgmgr.owner_command("dnf", path)


@pytest.mark.parametrize(
    ("family", "output", "expected"),
    [
        ("apt", "libxml2:amd64: /usr/lib/x86_64-linux-gnu/libxml2.so.2\n", "libxml2"),
        ("apt", "libssl3:amd64, libssl3:i386: /usr/lib/x86_64-linux-gnu/libssl.so.3", "libssl3"),
        ("apt", "zlib1g: /lib/x86_64-linux-gnu/libz.so.1", "zlib1g"),
        ("apt", "", None),
        ("apt", "diversion by libc6 from: /lib64/ld-linux-x86-64.so.2", None),
        ("apk", "/usr/lib/libxml2.so.2 is owned by libxml2-2.12.7-r0\n", "libxml2"),
        ("apk", "/usr/lib/libpq.so.5 is owned by libpq-16.4-r0", "libpq"),
        ("apk", "/usr/lib/libgcc_s.so.1 is owned by libgcc-13.2.1_git20240309-r0", "libgcc"),
        ("apk", "ERROR: /nope: Could not find owner package", None),
        ("dnf", "libxml2\n", "libxml2"),
        ("yum", "file /nope is not owned by any package\n", None),
    ],
)
def test_parse_owner(family: str, output: str, expected: str | None) -> None:
    assert pkgmgr.parse_owner(family, output) == expected


def test_owner_paths_cover_merged_usr() -> None:
    assert pkgmgr.owner_paths("/lib/x86_64-linux-gnu/libz.so.1") == [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
    ]
    assert pkgmgr.owner_paths("/usr/lib/libxml2.so.2") == [
        "/usr/lib/libxml2.so.2",
        "/lib/libxml2.so.2",
    ]
    assert pkgmgr.owner_paths("/opt/x/lib.so") == ["/opt/x/lib.so"]


def test_version_commands_and_parsing() -> None:
    assert pkgmgr.version_command("apt", "libxml2") == [
        "dpkg-query",
        "-W",
        "-f=${Version}",
        "libxml2",
    ]
    assert pkgmgr.parse_version("apt", "libxml2", "2.9.14+dfsg-1.3~deb12u1") == (
        "2.9.14+dfsg-1.3~deb12u1"
    )
    assert pkgmgr.parse_version(
        "apk", "libxml2", "libxml2-2.12.7-r0 x86_64 {libxml2} (MIT) [installed]\n"
    ) == ("2.12.7-r0")
    assert pkgmgr.parse_version("dnf", "libxml2", "2.9.13-6.el9_4") == "2.9.13-6.el9_4"
    assert pkgmgr.parse_version("dnf", "x", "package x is not installed") is None
    with pytest.raises(BadInput):
        pkgmgr.version_command("apt", "x;y")


@pytest.mark.parametrize(
    ("family", "runtime", "build"),
    [
        (
            "apt",
            {"python3.12", "python3.12-venv"},
            {"python3.12-dev", "gcc", "g++", "make", "patchelf"},
        ),
        ("apk", {"python3", "py3-pip"}, {"python3-dev", "build-base", "patchelf"}),
        ("dnf", {"python3.12", "python3.12-pip"}, {"python3.12-devel", "gcc", "gcc-c++"}),
        ("yum", {"python3.12", "python3.12-pip"}, {"python3.12-devel", "gcc", "make"}),
    ],
)
def test_python_packages(family: str, runtime: set[str], build: set[str]) -> None:
    runtime_packages = pkgmgr.python_packages(family, "3.12", "runtime")
    build_packages = pkgmgr.python_packages(family, "3.12", "build")
    assert runtime <= set(runtime_packages)
    assert build <= set(build_packages)
    assert set(runtime_packages) <= set(build_packages)
    compilers = {"gcc", "g++", "gcc-c++", "build-base", "make"}
    assert not compilers & set(runtime_packages), "a runtime image has no compilers"


# ------------------------------------------------------------------ generic images on EL bases


@pytest.mark.parametrize(
    ("distro", "version", "extra"),
    [("rocky", "8", "powertools"), ("almalinux", "9", "crb"), ("rockylinux", "10", "crb")],
)
def test_el_dnf_bases_get_epel_and_crb_for_patchelf(distro: str, version: str, extra: str) -> None:
    build = pkgmgr.python_packages("dnf", "3.12", "build", distro)
    assert "patchelf" in build
    setup = pkgmgr.repository_setup("dnf", distro, version, ["3.12"])
    assert "epel-release" in setup.split()
    assert setup.endswith(f"dnf config-manager --set-enabled {extra}")
    assert "dnf-plugins-core" in setup.split()  # config-manager comes with it


def test_fedora_needs_no_repository_and_rhel_gets_no_patchelf() -> None:
    assert pkgmgr.repository_setup("dnf", "fedora", "42", ["3.13"]) == "true"
    assert "patchelf" in pkgmgr.python_packages("dnf", "3.13", "build", "fedora")
    # UBI/RHEL: EPEL needs a subscription or a URL; auditwheel inspects without repairing.
    assert "patchelf" not in pkgmgr.python_packages("dnf", "3.12", "build", "rhel")
    assert pkgmgr.repository_setup("dnf", "rhel", "9", ["3.12"]) == "true"


def test_centos_7_names_its_own_python_packages() -> None:
    """CentOS 7 has no python3.X-pip: its python3 is 3.6, others are Software Collections."""
    assert pkgmgr.python_packages("yum", "3.6", "build", "centos") == [
        "python3", "python3-pip", "python3-devel", "gcc", "gcc-c++", "make", "pkgconfig", "strace",
    ]  # fmt: skip
    assert pkgmgr.python_packages("yum", "3.8", "runtime", "centos") == [
        "rh-python38-python",
        "rh-python38-python-pip",
    ]
    assert pkgmgr.repository_setup("yum", "centos", "7", ["3.6"]) == "true"
    setup = pkgmgr.repository_setup("yum", "centos", "7", ["3.8"])
    assert setup.split()[-1] == "centos-release-scl-rh"
    assert "--setopt=skip_missing_names_on_install=False" in setup.split()


def test_another_el7_with_a_software_collections_python_is_refused() -> None:
    with pytest.raises(BadInput) as excinfo:
        pkgmgr.repository_setup("yum", "rhel", "7", ["3.8"])
    assert "cannot offer Python 3.8" in excinfo.value.message
    assert excinfo.value.hint is not None and "centos-7" in excinfo.value.hint
