"""Which host settings a container gets: the index, proxy and trust settings that mean
something inside it, never host-only paths, never a password on display."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from wheelfarm import hostenv

INDEX = "https://user:s3cret@index.example/simple"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return write(tmp_path / "ca.pem", "-----BEGIN CERTIFICATE-----\n")


def test_env_index_proxy_and_ca_are_passed(ca: Path) -> None:
    settings = hostenv.from_host(
        {
            "PIP_INDEX_URL": INDEX,
            "HTTPS_PROXY": "http://proxy.example:3128",
            "no_proxy": "localhost,127.0.0.1",
            "PIP_CERT": str(ca),
        },
        config_files=[],
    )
    env = settings.as_env()
    assert env["PIP_INDEX_URL"] == INDEX  # the container needs the credentials to use it
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://proxy.example:3128"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1"
    assert settings.ca_bundle == ca.resolve()
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        assert env[name] == hostenv.CONTAINER_CA_PATH
    assert str(ca) not in env.values(), "a host path means nothing inside the container"


def test_file_indexes_find_links_and_constraints_are_dropped(tmp_path: Path) -> None:
    conf = write(
        tmp_path / "pip.conf",
        "[global]\n"
        "index-url = file:///opt/pypi/simple\n"
        "extra-index-url = file:///opt/a/simple https://extra.example/simple /opt/b\n"
        "find-links = /opt/wheels\n"
        "constraint = /etc/xdg/pip/constraints.txt\n",
    )
    settings = hostenv.from_host({"PIP_FIND_LINKS": "/opt/wheels"}, config_files=[conf])
    env = settings.as_env()
    assert "PIP_INDEX_URL" not in env
    assert env["PIP_EXTRA_INDEX_URL"] == "https://extra.example/simple"
    assert not any(k in env for k in ("PIP_FIND_LINKS", "PIP_CONSTRAINT"))
    assert not any("file:" in v or "/opt/" in v for v in env.values())
    shown = "\n".join(settings.describe())
    assert "PIP_FIND_LINKS" in shown and "constraint" in shown and "file:///opt/a" in shown


def test_only_file_extra_indexes_leaves_no_extra_index(tmp_path: Path) -> None:
    conf = write(tmp_path / "pip.conf", "[global]\nextra-index-url = file:///opt/pypi/simple\n")
    assert "PIP_EXTRA_INDEX_URL" not in hostenv.from_host({}, config_files=[conf]).as_env()


def test_environment_wins_over_config_and_later_files_over_earlier(tmp_path: Path) -> None:
    first = write(tmp_path / "a.conf", "[global]\nindex-url = https://a.example/simple\n")
    second = write(
        tmp_path / "b.conf",
        "[global]\nindex-url = https://b.example/simple\ntrusted-host = b.example\n"
        "[install]\ntimeout = 60\n",
    )
    env = hostenv.from_host({}, config_files=[first, second]).as_env()
    assert env["PIP_INDEX_URL"] == "https://b.example/simple"
    assert env["PIP_TRUSTED_HOST"] == "b.example"
    assert env["PIP_DEFAULT_TIMEOUT"] == "60"
    env = hostenv.from_host(
        {"PIP_INDEX_URL": "https://env.example/simple"}, config_files=[first, second]
    ).as_env()
    assert env["PIP_INDEX_URL"] == "https://env.example/simple"


def test_cert_from_pip_config_when_the_environment_has_none(tmp_path: Path, ca: Path) -> None:
    conf = write(tmp_path / "pip.conf", f"[global]\ncert = {ca}\n")
    settings = hostenv.from_host({}, config_files=[conf])
    assert settings.ca_bundle == ca.resolve()


def test_a_cert_that_does_not_exist_is_not_mounted(tmp_path: Path) -> None:
    settings = hostenv.from_host({"SSL_CERT_FILE": str(tmp_path / "nope.pem")}, config_files=[])
    assert settings.ca_bundle is None
    assert "SSL_CERT_FILE" not in settings.as_env()


def test_unreadable_or_broken_config_is_skipped(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.conf", "index-url = no section header\n")
    assert hostenv.from_host({}, config_files=[broken, tmp_path / "missing.conf"]).env == ()


def test_pip_config_files_follow_pips_order(tmp_path: Path) -> None:
    """Global, user, site (the running environment's prefix), then PIP_CONFIG_FILE; a
    PIP_CONFIG_FILE that does not exist leaves the user files in, as pip does."""
    files = hostenv.pip_config_files(
        {"XDG_CONFIG_DIRS": "/x:/y", "PIP_CONFIG_FILE": "/z/pip.conf"},
        home=tmp_path,
        prefix=Path("/venv"),
    )
    assert files == [
        Path("/x/pip/pip.conf"),
        Path("/y/pip/pip.conf"),
        Path("/etc/pip.conf"),
        tmp_path / ".pip" / "pip.conf",
        tmp_path / ".config" / "pip" / "pip.conf",
        Path("/venv/pip.conf"),
        Path("/z/pip.conf"),
    ]
    assert hostenv.pip_config_files({"PIP_CONFIG_FILE": os.devnull}, home=tmp_path) == []
    default = hostenv.pip_config_files({}, home=tmp_path)
    assert Path(sys.prefix) / "pip.conf" in default


def test_a_pip_config_file_that_exists_turns_the_user_files_off(tmp_path: Path) -> None:
    named = tmp_path / "named.conf"
    named.write_text("[global]\nindex-url = https://named.invalid/simple\n")
    user = tmp_path / "home" / ".config" / "pip" / "pip.conf"
    user.parent.mkdir(parents=True)
    user.write_text("[global]\nindex-url = https://user.invalid/simple\nwf-test-key = 7\n")
    env = {"PIP_CONFIG_FILE": str(named), "HOME": str(tmp_path / "home")}
    files = hostenv.pip_config_files(env, prefix=tmp_path / "venv")
    assert user not in files and files[-1] == named
    options = hostenv.pip_options(env, files)
    assert options["index-url"] == "https://named.invalid/simple"
    assert "wf-test-key" not in options  # the user file's
    # Without it, pip reads the user file.
    del env["PIP_CONFIG_FILE"]
    files = hostenv.pip_config_files(env, prefix=tmp_path / "v")
    assert hostenv.pip_options(env, files)["wf-test-key"] == "7"


def test_the_site_file_is_read_and_the_environment_wins_once(tmp_path: Path) -> None:
    site = tmp_path / "venv"
    site.mkdir()
    (site / "pip.conf").write_text(
        "[global]\nindex-url = https://site.invalid/simple\n"
        "extra-index-url = https://extra.invalid/simple\n"
    )
    env = {"HOME": str(tmp_path / "nohome"), "XDG_CONFIG_DIRS": str(tmp_path / "none")}
    files = hostenv.pip_config_files(env, prefix=site)
    options = hostenv.pip_options(env, files)
    assert options["index-url"] == "https://site.invalid/simple"
    env["PIP_INDEX_URL"] = "https://env.invalid/simple"
    env["PIP_DEFAULT_TIMEOUT"] = "30"
    settings = hostenv.from_host(env, files).as_env()
    assert settings["PIP_INDEX_URL"] == "https://env.invalid/simple"
    assert settings["PIP_EXTRA_INDEX_URL"] == "https://extra.invalid/simple"
    assert settings["PIP_DEFAULT_TIMEOUT"] == "30"
    assert hostenv.pip_options(env, files)["index-url"] == "https://env.invalid/simple"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (INDEX, "https://user:***@index.example/simple"),
        ("https://tok3n@index.example/simple", "https://***@index.example/simple"),
        ("https://index.example/simple", "https://index.example/simple"),
        ("http://u:p@proxy.example:3128", "http://u:***@proxy.example:3128"),
        ("not a url", "not a url"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert hostenv.redact(url) == shown


def test_describe_never_shows_a_secret(ca: Path) -> None:
    settings = hostenv.from_host(
        {
            "PIP_INDEX_URL": INDEX,
            "PIP_EXTRA_INDEX_URL": "https://a:pw1@x.example/s https://b:pw2@y.example/s",
            "HTTP_PROXY": "http://p:pw3@proxy.example:3128",
            "PIP_FIND_LINKS": "https://c:pw4@z.example/links",
            "PIP_CERT": str(ca),
        },
        config_files=[],
    )
    shown = "\n".join(settings.describe())
    for secret in ("s3cret", "pw1", "pw2", "pw3", "pw4"):
        assert secret not in shown
    assert "user:***@index.example" in shown


def test_this_hosts_settings_carry_nothing_host_only() -> None:
    """On this very machine: its pip config has file:// extra indexes, find-links and a
    constraints file, and a CA bundle the container needs."""
    settings = hostenv.from_host()
    env = settings.as_env()
    for key in ("PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_REQUIREMENT", "PIP_NO_INDEX"):
        assert key not in env
    assert not any(v.startswith("file:") or " file:" in v for v in env.values())
    for value in env.values():
        for part in value.split():
            if part.startswith("/"):
                assert part == hostenv.CONTAINER_CA_PATH, f"host path {part} passed through"
