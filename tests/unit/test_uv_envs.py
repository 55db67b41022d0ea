"""uv as the maker of build environments, without Docker: the installer setting and its
precedence, the host index settings uv gets in place of pip's, when a build container needs the
host's network, and which architectures have a uv build."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelfarm import buildsteps, config, hostenv, plan, recipes, targets, uvtool
from wheelfarm.errors import ConfigError
from wheelfarm.fetch import Source


def project(directory: Path, body: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text(f'[project]\nname = "demo"\n\n[tool.wheelfarm]\n{body}', encoding="utf-8")
    return path


def test_uv_by_default_then_pyproject_env_and_flag_in_that_order(tmp_path: Path) -> None:
    assert config.resolve(env={}, cwd=tmp_path).installer == "uv"
    project(tmp_path, 'installer = "pip"\n')
    assert config.resolve(env={}, cwd=tmp_path).installer == "pip"
    assert config.resolve(env={"WHEELFARM_INSTALLER": "UV"}, cwd=tmp_path).installer == "uv"
    chosen = config.resolve({"installer": "pip"}, env={"WHEELFARM_INSTALLER": "uv"}, cwd=tmp_path)
    assert chosen.installer == "pip"
    assert chosen.origins["installer"] == "--installer"


@pytest.mark.parametrize(
    ("cli", "env", "body", "named"),
    [
        ({"installer": "conda"}, {}, "", "--installer"),
        ({}, {"WHEELFARM_INSTALLER": "poetry"}, "", "WHEELFARM_INSTALLER"),
        ({}, {}, "installer = 3\n", "key 'installer'"),
        ({}, {}, 'installer = "pipx"\n', "key 'installer'"),
    ],
)
def test_an_unknown_installer_is_bad_input_naming_where(
    tmp_path: Path, cli: dict[str, str], env: dict[str, str], body: str, named: str
) -> None:
    project(tmp_path, body)
    with pytest.raises(ConfigError, match=named):
        config.resolve(cli, env=env, cwd=tmp_path)


def test_the_hosts_pip_index_settings_become_uvs_own() -> None:
    env = uvtool.uv_environment(
        {
            "PIP_INDEX_URL": "https://user:token@mirror.example/simple/",
            "PIP_EXTRA_INDEX_URL": "https://a.example/simple/\nhttps://b.example/simple/",
            "PIP_TRUSTED_HOST": "a.example b.example",
            "PIP_DEFAULT_TIMEOUT": "60",
            "PIP_PROXY": "http://proxy.example:3128",
        }
    )
    assert env["UV_DEFAULT_INDEX"] == "https://user:token@mirror.example/simple/"
    assert env["UV_INDEX"] == "https://a.example/simple/ https://b.example/simple/"
    assert env["UV_INSECURE_HOST"] == "a.example b.example"
    assert env["UV_HTTP_TIMEOUT"] == "60"
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://proxy.example:3128"
    # Nothing the host did not set, and never a download of a Python by uv itself.
    plain = uvtool.uv_environment({})
    assert "UV_DEFAULT_INDEX" not in plain and "UV_INDEX" not in plain
    assert plain["UV_PYTHON_DOWNLOADS"] == "never"


def test_a_proxy_the_host_set_for_one_scheme_is_kept() -> None:
    env = uvtool.uv_environment(
        {"PIP_PROXY": "http://p.example:1", "HTTPS_PROXY": "http://q.example:2"}
    )
    assert env["HTTPS_PROXY"] == "http://q.example:2" and env["HTTP_PROXY"] == "http://p.example:1"


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080/simple/", True),
        ("http://127.9.0.3/simple/", True),
        ("http://localhost:3141/root/pypi/", True),
        ("http://[::1]:8000/simple/", True),
        ("https://mirror.example/simple/", False),
        ("http://10.0.0.5/simple/", False),
    ],
)
def test_an_index_on_the_hosts_loopback_needs_the_host_network(
    url: str, loopback: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "none.conf"))
    monkeypatch.setenv("PIP_INDEX_URL", url)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    assert hostenv.from_host().index_on_loopback is loopback


def test_uv_builds_exist_for_x86_64_and_aarch64_only() -> None:
    assert uvtool.available("x86_64") and uvtool.available("aarch64")
    assert not uvtool.available("s390x")
    assert uvtool.home("aarch64").name == f"uv-{uvtool.VERSION}-aarch64"


def test_the_installer_is_part_of_what_the_build_sees_and_of_its_key() -> None:
    recipe = recipes.parse("", "demo", "test")
    spec = plan.parse_spec("demo==1.0")
    source = Source(spec, Path("demo-1.0.tar.gz"), "0" * 64, "demo", "1.0", "demo-1.0", 1, False,
                    "test")  # fmt: skip
    debian, centos = targets.get("debian-12"), targets.get("centos-7")
    uv_env = buildsteps.build_env(source, recipe, debian, "uv")
    pip_env = buildsteps.build_env(source, recipe, debian, "pip")
    # A locale the target has: CentOS 7's glibc has no C.UTF-8.
    assert uv_env["LC_ALL"] == "C.UTF-8"
    assert buildsteps.build_env(source, recipe, centos)["LC_ALL"] == "en_US.UTF-8"
    assert uv_env["WHEELFARM_INSTALLER"] == "uv" and pip_env["WHEELFARM_INSTALLER"] == "pip"
    assert uv_env["HOME"] == "/wf/home/demo-1.0"
