"""recipes: the shipped recipes, lookup, and refusal of malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelfarm import recipes, resources, targets
from wheelfarm.errors import ConfigError

SHIPPED = ("pyyaml", "markupsafe", "lxml", "psycopg2", "cffi")
# Every recipe file wheelfarm ships, found on disk so that a new one is checked without editing
# this test.
SHIPPED_FILES = sorted(resources.recipes_dir().glob("*.toml"))
# Projects whose build needs nothing from the distro (their recipe only says how to verify).
NEEDS_NOTHING = {"markupsafe"}


@pytest.mark.parametrize("project", SHIPPED)
def test_shipped_recipes_parse_and_cover_every_family(project: str) -> None:
    recipe = recipes.load(project)
    assert recipe.source is not None
    assert Path(recipe.source).parent == resources.recipes_dir()
    assert recipe.imports, "verification needs import names"
    for target in targets.TARGETS:
        if project != "markupsafe":
            assert recipe.packages_for(target), f"{project}: no build packages for {target.name}"
            assert recipe.runtime_for(target), f"{project}: no runtime packages for {target.name}"


def test_debian_names() -> None:
    debian_12 = targets.get("debian-12")
    assert recipes.load("lxml").packages_for(debian_12) == (
        "libxml2-dev",
        "libxslt1-dev",
        "pkg-config",
    )
    assert recipes.load("psycopg2").runtime_for(debian_12) == ("libpq5",)
    # A target's own list beats its family's.
    cffi = recipes.load("cffi")
    assert cffi.runtime_for(targets.get("debian-11")) == ("libffi7",)
    assert cffi.runtime_for(debian_12) == ("libffi8",)


def test_missing_recipe_is_empty(tmp_path: Path) -> None:
    recipe = recipes.load("no-such-project-here", tmp_path)
    assert recipe.source is None
    assert recipe.packages_for(targets.get("debian-12")) == ()
    assert recipe.env == {}


def test_user_directory_wins_and_names_are_canonical(tmp_path: Path) -> None:
    (tmp_path / "PyYAML.toml").write_text('[build.packages]\napt = ["my-libyaml-dev"]\n')
    recipe = recipes.load("pyyaml", tmp_path)
    assert recipe.source == str(tmp_path / "PyYAML.toml")
    assert recipe.packages_for(targets.get("debian-12")) == ("my-libyaml-dev",)
    assert recipe.packages_for(targets.get("rockylinux-9")) == ()


def test_missing_directory_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        recipes.load("pyyaml", tmp_path / "nope")
    assert excinfo.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[bild]\n", "bild"),
        ("[build]\npackage = []\n", "build.package"),
        ("[build.packages]\nzypper = ['x']\n", "build.packages.zypper"),
        ("[build.packages]\napt = 'libx-dev'\n", "build.packages.apt"),
        ("[build.packages]\napt = ['bad name']\n", "build.packages.apt"),
        ("[build.env]\n'1X' = 'a'\n", "build.env.1X"),
        ("[build.env]\nX = 1\n", "build.env.X"),
        ("[runtime.packages]\n'debian-99' = ['x']\n", "runtime.packages.debian-99"),
        ("[verify]\nimports = ['not a module']\n", "verify.imports"),
        ("[verify]\ntest = ''\n", "verify.test"),
        ("[verify]\nimport = ['x']\n", "verify.import"),
        ("build = 3\n", "build"),
    ],
)
def test_bad_recipe_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "thing.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as excinfo:
        recipes.load("thing", tmp_path)
    assert excinfo.value.exit_code == 2
    assert excinfo.value.message.startswith(f"{path}: key {key!r}: "), excinfo.value.message


def test_invalid_toml(tmp_path: Path) -> None:
    (tmp_path / "thing.toml").write_text("[build\n")
    with pytest.raises(ConfigError) as excinfo:
        recipes.load("thing", tmp_path)
    assert "not valid TOML" in excinfo.value.message
    assert str(tmp_path / "thing.toml") in excinfo.value.message


def test_digests() -> None:
    lxml = recipes.load("lxml")
    debian_11, debian_12 = targets.get("debian-11"), targets.get("debian-12")
    rocky = targets.get("rockylinux-9")
    assert lxml.build_digest(debian_11) == lxml.build_digest(debian_12)
    assert lxml.build_digest(debian_12) != lxml.build_digest(rocky)
    changed = recipes.parse(
        '[build.packages]\napt = ["libxml2-dev"]\n', "lxml", "edited.toml"
    ).build_digest(debian_12)
    assert changed != lxml.build_digest(debian_12)
    assert len(lxml.digest) == 64


def test_the_library_is_large() -> None:
    # Issue 14: recipes for at least 25 projects that need a system library or toolchain.
    needing = [p for p in SHIPPED_FILES if p.stem not in NEEDS_NOTHING]
    assert len(needing) >= 25, [p.stem for p in needing]


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=lambda p: p.stem)
def test_every_shipped_recipe_is_complete(path: Path) -> None:
    """Build and runtime lists for all four families, imports and a test command, and a comment
    first that says what the system library is for."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), f"{path.name}: starts without a comment saying what it links"
    recipe = recipes.parse(text, path.stem, str(path))
    assert recipe.imports, f"{path.name}: no [verify] imports"
    assert recipe.test, f"{path.name}: no [verify] test exercising the library"
    build, runtime = dict(recipe.build_packages), dict(recipe.runtime_packages)
    if path.stem in NEEDS_NOTHING:
        assert not build and not runtime, f"{path.name}: listed as needing nothing"
        return
    for family in targets.FAMILIES:
        assert build.get(family), f"{path.name}: no build.packages.{family}"
        assert runtime.get(family), f"{path.name}: no runtime.packages.{family}"
    for target in targets.TARGETS:
        assert recipe.packages_for(target), f"{path.name}: no build packages for {target.name}"
        assert recipe.runtime_for(target), f"{path.name}: no runtime packages for {target.name}"
    # The file name is the project; a canonical lookup finds it.
    assert recipes.load(path.stem).source == str(path)
