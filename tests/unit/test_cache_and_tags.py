"""cache keys and entries; the build's tag decision from an image's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelfarm import cache, imagefacts, provenance, wheelhouse

BASE = {
    "image_id": "sha256:aaa",
    "sdist_sha256": "b" * 64,
    "recipe_digest": "c" * 64,
    "rules": {"build": "linux_x86_64_debian_12"},
    "build_env": {"SOURCE_DATE_EPOCH": "1"},
    "python": "3.11",
    "arch": "x86_64",
}


def test_key_changes_with_every_input() -> None:
    key = cache.build_key(**BASE)  # type: ignore[arg-type]
    assert key == cache.build_key(**BASE)  # type: ignore[arg-type]
    changes = {
        "image_id": "sha256:bbb",
        "sdist_sha256": "d" * 64,
        "recipe_digest": "e" * 64,
        "rules": {"build": "linux_x86_64_rhel_7"},
        "build_env": {"SOURCE_DATE_EPOCH": "2"},
        "python": "3.12",
        "arch": "aarch64",
    }
    for name, value in changes.items():
        assert cache.build_key(**{**BASE, name: value}) != key, name  # type: ignore[arg-type]
    assert cache.build_key(**BASE, version="9.9") != key  # type: ignore[arg-type]


def test_cache_dir_honours_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.root() == tmp_path / "xdg" / "wheelfarm"


def test_store_and_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel bytes")
    assert cache.lookup("k" * 64) is None
    stored = cache.store("k" * 64, wheel, {"wheel": wheel.name, "sha256": "s"})
    found = cache.lookup("k" * 64)
    assert found is not None
    assert found.wheel == stored.wheel
    assert found.wheel.read_bytes() == b"wheel bytes"
    assert found.provenance["sha256"] == "s"
    assert not list((tmp_path / "xdg" / "wheelfarm" / "builds").glob(".tmp-*"))
    cache.store_image_facts("sha256:abc", {"os_release": "ID=debian\n"})
    assert cache.image_facts("sha256:abc") == {"os_release": "ID=debian\n"}
    assert cache.image_facts("sha256:other") is None


CENTOS_7 = (
    'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'
)


def test_compile_times_are_merged_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.compile_times() == {}
    cache.store_compile_times({("pyyaml", "debian-12"): 8.5, ("markupsafe", "debian-12"): 2.0})
    cache.store_compile_times({("pyyaml", "debian-12"): 9.0, ("pyyaml", "debian-11"): 7.0})
    assert cache.compile_times() == {
        ("pyyaml", "debian-12"): 9.0,
        ("markupsafe", "debian-12"): 2.0,
        ("pyyaml", "debian-11"): 7.0,
    }
    (tmp_path / "xdg" / "wheelfarm" / "compile-times.json").write_text("{not json")
    assert cache.compile_times() == {}


def test_centos_7_builds_rhel_7_wheels() -> None:
    tag_set = facts(CENTOS_7, None).tag_set([])
    assert tag_set.build == "linux_x86_64_rhel_7"
    applied = provenance.rules_applied(tag_set)
    assert applied["source"].startswith("defaults")
    assert applied["key"] == "linux_x86_64_centos_7"


def test_image_rules_file_and_user_rules(tmp_path: Path) -> None:
    debian = 'ID=debian\nVERSION_ID="12"\n'
    image_rules = '{"linux_x86_64_debian_12": {"build": "linux_x86_64_debian_bookworm"}}'
    tag_set = facts(debian, image_rules).tag_set([])
    assert tag_set.build == "linux_x86_64_debian_bookworm"
    user = tmp_path / "rules.cfg"
    user.write_text('{"linux_x86_64_debian_12": {"build": "linux_x86_64_mine_1"}}')
    tag_set = facts(debian, image_rules).tag_set([user])
    assert tag_set.build == "linux_x86_64_mine_1"
    plain = facts(debian, None).tag_set([])
    assert plain.build == "linux_x86_64_debian_12"
    assert provenance.rules_applied(plain)["source"] is None


def facts(os_release: str, image_rules: str | None) -> imagefacts.ImageFacts:
    return imagefacts.ImageFacts("img", "sha256:0", os_release, image_rules, "x86_64")


def test_same_file_name_from_two_targets_keeps_the_first_planned(tmp_path: Path) -> None:
    """rockylinux-9 and almalinux-9 both build rhel_9 wheels: the earlier target in the plan
    keeps the file, whichever finished first."""
    state = wheelhouse.Wheelhouse(tmp_path / "wh", ["rockylinux-9", "almalinux-9"])
    state.path.mkdir()
    name = "x-1.0-cp39-cp39-linux_x86_64_rhel_9.whl"
    alma, rocky = tmp_path / "alma" / name, tmp_path / "rocky" / name
    for path, data in ((alma, b"alma"), (rocky, b"rocky")):
        path.parent.mkdir()
        path.write_bytes(data)
    sha = {alma: "a", rocky: "r"}
    assert state.place(alma, {"target": "almalinux-9", "sha256": sha[alma]}, "almalinux-9") == (
        "placed"
    )
    assert state.place(rocky, {"target": "rockylinux-9", "sha256": sha[rocky]}, "rockylinux-9") == (
        "placed"
    )
    assert state.place(alma, {"target": "almalinux-9", "sha256": sha[alma]}, "almalinux-9") == (
        "rockylinux-9"
    )
    assert (state.path / name).read_bytes() == b"rocky"
    record = (state.path / ".wheelfarm" / f"{name}.json").read_text()
    assert "rockylinux-9" in record
    assert not (state.path / ".wheelfarm" / "tmp").exists() or not any(
        (state.path / ".wheelfarm" / "tmp").iterdir()
    )
