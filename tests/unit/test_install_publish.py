"""`wheelfarm install` root choice and refusals, `wheelfarm publish` planning and refusals: the
parts that need no index server (those are in tests/integration/test_index_serve.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wf_cli import clean_env, run
from wf_wheels import make_sdist, make_wheel

from wheelfarm import install, publish, rules
from wheelfarm.errors import BadInput

D11 = "cp39-cp39-linux_x86_64_debian_11"
D12 = "cp311-cp311-linux_x86_64_debian_12"


def rocky(version: str) -> rules.TagSet:
    return rules.tag_set({"ID": "rocky", "VERSION_ID": version}, "x86_64", rules.image_sources([]))


def test_root_choice_host_then_default_build_then_build() -> None:
    tagset = rocky("9.3")
    everything = ["linux_x86_64_rhel_9", "linux_x86_64_rocky_9", "linux_x86_64_rocky_9_3"]
    assert install.choose_root(everything, tagset) == "linux_x86_64_rocky_9_3"
    assert install.choose_root(everything[:2], tagset) == "linux_x86_64_rocky_9"
    assert install.choose_root(everything[:1], tagset) == "linux_x86_64_rhel_9"
    with pytest.raises(BadInput) as caught:
        install.choose_root(["linux_x86_64_debian_12", "linux_x86_64_alpine_3_20"], tagset)
    assert "linux_x86_64_rocky_9_3, linux_x86_64_rocky_9, linux_x86_64_rhel_9" in str(caught.value)
    assert caught.value.hint is not None
    assert "linux_x86_64_debian_12, linux_x86_64_alpine_3_20" in caught.value.hint


def test_wheel_file_check(tmp_path: Path) -> None:
    tagset = rocky("9.3")
    accepted = make_wheel(tmp_path, "x", "1.0", "cp39-cp39-linux_x86_64_rhel_9")
    assert install.check_wheel(accepted, tagset) == "x-1.0-cp39-cp39-linux_x86_64.whl"
    plain = make_wheel(tmp_path, "y", "1.0", "cp39-cp39-linux_x86_64")
    assert install.check_wheel(plain, tagset) == plain.name
    refused = make_wheel(tmp_path, "z", "1.0", D12)
    with pytest.raises(BadInput, match="is for linux_x86_64_debian_12; this host"):
        install.check_wheel(refused, tagset)


def test_cli_refuses_a_wheel_this_host_does_not_accept(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "x", "1.0", "cp311-cp311-linux_x86_64_nosuchdistro_1")
    result = run("install", str(wheel))
    assert result.returncode == 2
    assert "is for linux_x86_64_nosuchdistro_1" in result.stderr
    assert "this host accepts: " in result.stderr
    assert "linux_x86_64" in result.stderr.split("this host accepts: ", 1)[1]


def test_cli_needs_an_index_to_install_by_name() -> None:
    result = run("install", "demo==1.0")
    assert result.returncode == 2
    assert "needs --index" in result.stderr


def test_cli_lists_the_roots_when_none_is_for_this_host(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    roots = [
        {"tag": None, "path": "simple/"},
        {"tag": "linux_x86_64_nosuchdistro_1", "path": "linux_x86_64_nosuchdistro_1/simple/"},
        {"tag": "linux_aarch64_nosuchdistro_2", "path": "linux_aarch64_nosuchdistro_2/simple/"},
    ]
    (site / "roots.json").write_text(json.dumps({"wheelfarm-site": 1, "roots": roots}))
    result = run("install", "demo", "--index", str(site))
    assert result.returncode == 2
    assert "the index has no root for this host" in result.stderr
    assert "linux_x86_64_nosuchdistro_1, linux_aarch64_nosuchdistro_2" in result.stderr


def test_cli_says_when_the_index_has_no_roots_listing(tmp_path: Path) -> None:
    result = run("install", "demo", "--index", str(tmp_path))
    assert result.returncode == 2
    assert "is not a wheelfarm site: it has no roots.json" in result.stderr


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    wh = tmp_path / "wheelhouse"
    wh.mkdir()
    make_wheel(wh, "demo", "1.0", D11)
    make_wheel(wh, "demo", "1.0", D12)
    make_wheel(wh, "demo", "1.0", "cp39-cp39-linux_x86_64_rhel_9")
    make_sdist(wh, "demo", "1.0")
    (wh / "broken-1.0-cp311-cp311-linux_x86_64_debian_12.whl").write_bytes(b"PK\x03\x04")
    return wh


def test_publish_plans_canonical_files_or_one_view(wheelhouse: Path) -> None:
    canonical = publish.plan_upload(wheelhouse, target=None, rule_files=[])
    assert canonical.consumer is None
    assert [name for _, name in canonical.files] == [
        f"demo-1.0-{D12}.whl",
        f"demo-1.0-{D11}.whl",
        "demo-1.0-cp39-cp39-linux_x86_64_rhel_9.whl",
        "demo-1.0.tar.gz",
    ]
    assert [p.filename for p in canonical.problems] == [
        "broken-1.0-cp311-cp311-linux_x86_64_debian_12.whl"
    ]
    view = publish.plan_upload(wheelhouse, target="debian-12", rule_files=[], arch="x86_64")
    assert view.consumer == "linux_x86_64_debian_12"
    assert [(path.name, name) for path, name in view.files] == [
        (f"demo-1.0-{D12}.whl", "demo-1.0-cp311-cp311-linux_x86_64.whl"),
        ("demo-1.0.tar.gz", "demo-1.0.tar.gz"),
    ]
    rhel = publish.plan_upload(wheelhouse, target="rockylinux-9", rule_files=[], arch="x86_64")
    assert rhel.consumer == "linux_x86_64_rhel_9"
    assert rhel.files[0][1] == "demo-1.0-cp39-cp39-linux_x86_64.whl"
    by_tag = publish.plan_upload(wheelhouse, target="linux_x86_64_debian_11", rule_files=[])
    assert by_tag.files[0][0].name == f"demo-1.0-{D11}.whl"


def test_publish_refuses_credentials_in_the_url(wheelhouse: Path) -> None:
    secret = "s3cr3t-do-not-print"
    result = run(
        "publish",
        str(wheelhouse),
        "--repository-url",
        f"http://ci:{secret}@127.0.0.1:9/",
        env=clean_env(),
    )
    assert result.returncode == 2
    assert "carries credentials" in result.stderr
    assert "TWINE_USERNAME" in result.stderr
    assert secret not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repository-url", "ftp://127.0.0.1/"], "is not an http(s) URL"),
        (["--repository-url", "http://127.0.0.1:9/", "--target", "nosuch-1"], "unknown target"),
        (["--repository-url", "http://127.0.0.1:9/", "--target", "linux_x86_64"], "distro"),
    ],
)
def test_publish_refusals(wheelhouse: Path, args: list[str], message: str) -> None:
    result = run("publish", str(wheelhouse), *args)
    assert result.returncode == 2
    assert message in result.stderr
