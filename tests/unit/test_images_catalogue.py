"""The target catalogue and the Dockerfiles that make its images agree: every target has a
Dockerfile whose defaults are the target's base, Pythons and os-release tag; the build-tool lock
pins each tool once for every Python a target offers; the CLI refuses what cannot be done."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wheelfarm import images, resources, targets
from wheelfarm.errors import EXIT_BAD_INPUT, BadInput, EnvironmentProblem
from wheelfarm.targets import TARGETS, Python, Target

IMAGES = resources.images_dir()
ISSUE_TARGETS = {
    "alpine-3.20",
    "alpine-3.21",
    "alpine-3.22",
    "alpine-3.23",
    "alpine-3.24",
    "alpine-3.25",
    "debian-11",
    "debian-12",
    "debian-13",
    "ubuntu-22.04",
    "ubuntu-24.04",
    "ubuntu-26.04",
    "centos-7",
    "rockylinux-8",
    "rockylinux-9",
    "rockylinux-10",
    "almalinux-8",
    "almalinux-9",
    "almalinux-10",
}


def arg_default(dockerfile: str, name: str) -> str | None:
    match = re.search(rf"^ARG {name}(?:=(\S*))?$", dockerfile, re.MULTILINE)
    assert match is not None, f"no ARG {name}"
    return match.group(1)


def stages(dockerfile: str) -> list[tuple[str, str]]:
    return re.findall(r"^FROM (\S+) AS (\S+)$", dockerfile, re.MULTILINE)


def test_catalogue_has_exactly_the_targets_the_project_offers() -> None:
    assert set(targets.names()) == ISSUE_TARGETS
    assert len(targets.names()) == len(set(targets.names()))


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_target_is_well_formed(target: Target) -> None:
    assert target.family in targets.FAMILIES
    assert target.pythons, "a target offers at least one Python"
    assert len({p.version for p in target.pythons}) == len(target.pythons)
    for python in target.pythons:
        assert re.fullmatch(r"3\.\d+", python.version)
        assert python.executable.startswith("/") and python.executable.endswith(python.version)
        assert python.build_venv == f"/opt/wheelfarm/venv-{python.version}"
    assert target.build_image == f"wheelfarm/{target.name}:build-{target.arch}"
    assert target.runtime_image == f"wheelfarm/{target.name}:runtime-{target.arch}"
    assert target.with_arch("aarch64").build_image == f"wheelfarm/{target.name}:build-aarch64"
    assert target.with_arch("aarch64").unit == f"{target.name}-aarch64"
    # DESIGN: never older than 3.9 where the distro ships a newer python3.X (CentOS 7 aside).
    if target.name != "centos-7":
        assert all(tuple(map(int, p.version.split("."))) >= (3, 9) for p in target.pythons)
    assert target.can_bootstrap == (target.distro == "debian")


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_shipped_dockerfile_defaults_match_the_catalogue(target: Target) -> None:
    directory = images.dockerfile_dir(target)
    assert directory == IMAGES / target.name
    text = (directory / "Dockerfile").read_text()
    assert arg_default(text, "BASE") == target.base
    assert arg_default(text, "WHEELFARM_TARGET") == target.name
    assert arg_default(text, "WHEELFARM_PYTHONS") == images.pythons_label(target)
    assert arg_default(text, "WHEELFARM_TAG") == images.os_release_tag(target, "x86_64")
    assert stages(text) == [("${BASE}", "runtime"), ("runtime", "build")]
    for label in ("target", "pythons", "tag", "stage"):
        assert f"org.wheelfarm.{label}=" in text
    assert "install-venvs.sh" in text.split("AS build", 1)[1]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_each_image_runs_under_the_locale_its_target_names(target: Target) -> None:
    """Build and verify run their processes under target.locale; the image sets the same LANG,
    and it is one the distro has (CentOS 7's glibc 2.17 has no C.UTF-8)."""
    text = (images.dockerfile_dir(target) / "Dockerfile").read_text()
    assert re.findall(r"^ENV LANG=(\S+)$", text, re.MULTILINE) == [target.locale]
    if target.name == "centos-7":
        assert target.locale == "en_US.UTF-8"


def test_os_release_tags_follow_the_tag_rules() -> None:
    by_name = {t.name: images.os_release_tag(t, "x86_64") for t in TARGETS}
    assert by_name["debian-12"] == "linux_x86_64_debian_12"
    assert by_name["ubuntu-22.04"] == "linux_x86_64_ubuntu_22_04"
    assert by_name["alpine-3.21"] == "linux_x86_64_alpine_3_21"
    assert by_name["rockylinux-9"] == "linux_x86_64_rocky_9"
    assert by_name["centos-7"] == "linux_x86_64_centos_7"


@pytest.mark.parametrize("family", targets.FAMILIES)
def test_each_family_has_a_generic_dockerfile_for_extra_targets(family: str) -> None:
    extra = Target(
        "fancy-1", "fancy", "1", "fancy:1", family, (Python("3.12", "/usr/bin/python3.12"),)
    )
    directory = images.dockerfile_dir(extra)
    assert directory == IMAGES / f"generic-{family}"
    text = (directory / "Dockerfile").read_text()
    assert arg_default(text, "BASE") is None, "a generic image has no default base"
    assert stages(text) == [("${BASE}", "runtime"), ("runtime", "build")]
    args = images.build_args(extra, extra.base, "x86_64")
    assert args["BASE"] == "fancy:1"
    assert args["WHEELFARM_TAG"] == "linux_x86_64_fancy_1"
    assert args["RUNTIME_PACKAGES"] and args["BUILD_PACKAGES"]
    assert not set(args["RUNTIME_PACKAGES"].split()) & set(args["BUILD_PACKAGES"].split())
    for name in ("RUNTIME_PACKAGES", "BUILD_PACKAGES", "WHEELFARM_PYTHONS", "WHEELFARM_TAG"):
        assert f"${{{name}}}" in text


def test_a_generic_el_target_enables_what_its_packages_need() -> None:
    rocky = Target("my-rocky-9", "rocky", "9", "rockylinux/rockylinux:9", "dnf",
                   (Python("3.12", "/usr/bin/python3.12"),))  # fmt: skip
    args = images.build_args(rocky, rocky.base, "x86_64")
    assert "patchelf" in args["BUILD_PACKAGES"].split()
    assert args["REPO_SETUP"].endswith("--set-enabled crb")
    centos = Target("my-centos-7", "centos", "7", "centos:7", "yum",
                    (Python("3.8", "/opt/rh/rh-python38/root/usr/bin/python3.8"),))  # fmt: skip
    args = images.build_args(centos, centos.base, "x86_64")
    assert args["RUNTIME_PACKAGES"].split() == ["rh-python38-python", "rh-python38-python-pip"]
    assert "centos-release-scl-rh" in args["REPO_SETUP"]
    assert centos.locale == "en_US.UTF-8"  # the family's: EL 7 has no C.UTF-8
    for family in ("dnf", "yum"):
        text = (IMAGES / f"generic-{family}" / "Dockerfile").read_text()
        assert 'RUN sh -c "${REPO_SETUP}"' in text.split("AS build", 1)[0]
    debian = Target("my-debian", "debian", "12", "debian:12", "apt", (Python("3.11", "/x3.11"),))
    assert "REPO_SETUP" not in images.build_args(debian, debian.base, "x86_64")


def test_shipped_targets_get_no_package_arguments() -> None:
    args = images.build_args(targets.get("debian-12"), "debian:12", "x86_64")
    assert set(args) == {"BASE", "WHEELFARM_TARGET", "WHEELFARM_PYTHONS", "WHEELFARM_TAG"}


def test_unknown_family_has_no_dockerfile() -> None:
    odd = Target("odd-1", "odd", "1", "odd:1", "pacman", (Python("3.12", "/usr/bin/python3.12"),))
    with pytest.raises(BadInput, match="no Dockerfile"):
        images.dockerfile_dir(odd)


LOCK = (IMAGES / "common" / "build-tools.txt").read_text()


@pytest.mark.parametrize(
    "version", sorted({p.version for t in TARGETS for p in t.pythons}, key=lambda v: (len(v), v))
)
def test_build_tool_lock_pins_each_tool_once_per_offered_python(version: str) -> None:
    pins = images.pins_for(version, LOCK)
    names = [p.split("==")[0] for p in pins]
    for tool in ("pip", "build", "wheel", "auditwheel", "packaging", "pyelftools"):
        assert names.count(tool) == 1, (version, pins)
    assert all(re.fullmatch(r"[a-z0-9-]+==[0-9][0-9a-z.]*", p) for p in pins), pins


def test_build_tool_lock_follows_each_pythons_support() -> None:
    assert "pip==25.0.1" in images.pins_for("3.8", LOCK)
    assert "tomli==2.5.0" in images.pins_for("3.9", LOCK)
    assert "tomli==2.5.0" not in images.pins_for("3.12", LOCK)
    # 3.10.0 and 3.10.1 need importlib-metadata for build; later 3.10 releases do not: both in.
    assert any(p.startswith("importlib-metadata==") for p in images.pins_for("3.10", LOCK))


def test_context_key_changes_with_the_dockerfile_and_the_base(tmp_path: Path) -> None:
    root = tmp_path / "images"
    shutil.copytree(IMAGES, root)
    target = targets.get("debian-12")
    args = images.build_args(target, "debian:12", "x86_64", root)
    first = images.context_key(target, args, "sha256:aaa", root)
    assert first == images.context_key(target, args, "sha256:aaa", root)
    assert first != images.context_key(target, args, "sha256:bbb", root)
    dockerfile = root / "debian-12" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# changed\n")
    assert first != images.context_key(target, args, "sha256:aaa", root)


def test_make_command_names_the_way_each_target_is_made() -> None:
    assert images.make_command(targets.get("debian-13")) == "wheelfarm images bootstrap debian-13"
    assert images.make_command(targets.get("alpine-3.20")) == "wheelfarm images build alpine-3.20"


def test_only_debian_targets_can_be_bootstrapped() -> None:
    with pytest.raises(BadInput) as caught:
        images.check_bootstrappable([targets.get("alpine-3.20")], TARGETS)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "alpine-3.20" in caught.value.message
    assert caught.value.hint is not None
    assert "debian-11, debian-12, debian-13" in caught.value.hint


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wheelfarm", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_cli_bootstrap_of_a_non_debian_target_exits_2_listing_the_ones_that_can() -> None:
    result = run_cli("images", "bootstrap", "ubuntu-24.04")
    assert result.returncode == 2
    assert "cannot bootstrap ubuntu-24.04" in result.stderr
    assert "debian-11, debian-12, debian-13" in result.stderr
    assert result.stdout == ""


def test_cli_unknown_target_exits_2() -> None:
    result = run_cli("images", "build", "debian-99")
    assert result.returncode == 2
    assert "unknown target" in result.stderr


def test_cli_unreachable_engine_exits_3_with_a_one_line_hint() -> None:
    import os

    env = dict(os.environ, DOCKER_HOST="tcp://127.0.0.1:9")
    result = run_cli("images", "list", env=env)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: no Docker engine answers at tcp://127.0.0.1:9")
    assert len(lines) == 2 and lines[1].startswith("hint:") and "DOCKER_HOST" in lines[1]
    assert "Traceback" not in result.stderr


# --- where the data directories are ------------------------------------------------------


def test_data_dir_in_a_checkout(tmp_path: Path) -> None:
    package = tmp_path / "builder" / "wheelfarm"
    package.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "images").mkdir()
    assert resources.data_dir("images", package) == tmp_path / "images"


def test_data_dir_in_an_installed_wheel(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "wheelfarm"
    (package / "recipes").mkdir(parents=True)
    assert resources.data_dir("recipes", package) == package / "recipes"


def test_data_dir_missing_is_an_environment_problem(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="images/ directory is missing"):
        resources.data_dir("images", tmp_path / "wheelfarm")


def test_the_real_data_dirs_are_found() -> None:
    assert (resources.images_dir() / "debian-12" / "Dockerfile").is_file()
    assert resources.recipes_dir().is_dir()


# --- the host's Debian mirror ------------------------------------------------------------


def test_default_mirror_from_deb822_skips_security_and_disabled(tmp_path: Path) -> None:
    sources = tmp_path / "sources.list.d"
    sources.mkdir()
    (sources / "a.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "# comment\nTypes: deb-src deb\nURIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert images.default_mirror(tmp_path) == "http://mirror.example/debian"


def test_default_mirror_from_sources_list(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] https://mirror.example/debian bookworm main\n"
    )
    assert images.default_mirror(tmp_path) == "https://mirror.example/debian"


def test_another_distros_source_is_not_taken_for_a_debian_mirror(tmp_path: Path) -> None:
    """An Ubuntu host's archive serves jammy, not a Debian suite: debootstrap of bookworm from it
    would fail far later with less to say."""
    (tmp_path / "sources.list").write_text(
        "deb http://archive.example/ubuntu jammy main\n"
        "deb http://vendor.example/repo stable-extras main\n"
    )
    with pytest.raises(EnvironmentProblem) as caught:
        images.default_mirror(tmp_path)
    assert "Debian suite" in caught.value.message
    (tmp_path / "sources.list").write_text(
        "deb http://archive.example/ubuntu jammy main\n"
        "deb http://mirror.example/debian trixie main\n"
    )
    assert images.default_mirror(tmp_path) == "http://mirror.example/debian"


def test_no_mirror_is_an_environment_problem_with_the_flag_in_the_hint(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem) as caught:
        images.default_mirror(tmp_path)
    assert caught.value.hint is not None and "--mirror URL" in caught.value.hint


def test_this_hosts_mirror_is_read_from_its_apt_sources() -> None:
    found = images.host_apt_sources()
    if not found:
        pytest.fail("this Debian host has no apt sources: cannot check the default mirror")
    assert images.default_mirror() in [s.uri.rstrip("/") for s in found]


def test_debootstrap_command_is_minbase_for_the_targets_arch() -> None:
    command = images.debootstrap_command(
        "trixie", Path("/tmp/x"), "http://m.example/debian", "aarch64"
    )
    assert command == [
        "debootstrap",
        "--arch=arm64",
        "--variant=minbase",
        "trixie",
        "/tmp/x",
        "http://m.example/debian",
    ]
