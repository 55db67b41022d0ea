"""cache keys and entries; the build's tag decision from an image's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelfarm import build, cache

BASE = {
    "image_id": "sha256:aaa",
    "sdist_sha256": "b" * 64,
    "recipe_digest": "c" * 64,
    "rules": {"build": "linux_x86_64_debian_12"},
    "build_env": {"SOURCE_DATE_EPOCH": "1"},
    "python": "3.11",
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
    tag_set = build.tag_set_for({"os_release": CENTOS_7, "rules": None}, "x86_64", [])
    assert tag_set.build == "linux_x86_64_rhel_7"
    applied = build.rules_applied(tag_set)
    assert applied["source"].startswith("defaults")
    assert applied["key"] == "linux_x86_64_centos_7"


def test_image_rules_file_and_user_rules(tmp_path: Path) -> None:
    debian = 'ID=debian\nVERSION_ID="12"\n'
    image_rules = '{"linux_x86_64_debian_12": {"build": "linux_x86_64_debian_bookworm"}}'
    tag_set = build.tag_set_for({"os_release": debian, "rules": image_rules}, "x86_64", [])
    assert tag_set.build == "linux_x86_64_debian_bookworm"
    user = tmp_path / "rules.cfg"
    user.write_text('{"linux_x86_64_debian_12": {"build": "linux_x86_64_mine_1"}}')
    tag_set = build.tag_set_for({"os_release": debian, "rules": image_rules}, "x86_64", [user])
    assert tag_set.build == "linux_x86_64_mine_1"
    plain = build.tag_set_for({"os_release": debian, "rules": None}, "x86_64", [])
    assert plain.build == "linux_x86_64_debian_12"
    assert build.rules_applied(plain)["source"] is None


def _state(tmp_path: Path, order: list[str]) -> build._Run:
    from wheelfarm import config

    return build._Run(
        options=build.Options(config.Settings(wheelhouse=tmp_path)),
        wheelhouse=tmp_path,
        sources={},
        recipes={},
        owners={},
        image_ids={},
        board=None,
        order=order,
    )


def test_same_file_name_from_two_targets_keeps_the_first_planned(tmp_path: Path) -> None:
    """rockylinux-9 and almalinux-9 both build rhel_9 wheels: the earlier target in the plan
    keeps the file, whichever finished first."""
    state = _state(tmp_path / "wh", ["rockylinux-9", "almalinux-9"])
    state.wheelhouse.mkdir()
    name = "x-1.0-cp39-cp39-linux_x86_64_rhel_9.whl"
    alma, rocky = tmp_path / "alma" / name, tmp_path / "rocky" / name
    for path, data in ((alma, b"alma"), (rocky, b"rocky")):
        path.parent.mkdir()
        path.write_bytes(data)
    sha = {alma: "a", rocky: "r"}
    assert build._install(state, alma, {"target": "almalinux-9", "sha256": sha[alma]}) == "placed"
    assert build._install(state, rocky, {"target": "rockylinux-9", "sha256": sha[rocky]}) == (
        "placed"
    )
    assert build._install(state, alma, {"target": "almalinux-9", "sha256": sha[alma]}) == (
        "rockylinux-9"
    )
    assert (state.wheelhouse / name).read_bytes() == b"rocky"
    record = (state.wheelhouse / ".wheelfarm" / f"{name}.json").read_text()
    assert "rockylinux-9" in record
    assert not (state.wheelhouse / ".wheelfarm" / "tmp").exists() or not any(
        (state.wheelhouse / ".wheelfarm" / "tmp").iterdir()
    )
