"""PEP 725: an sdist's [external] table read from the archive and mapped to each family's
packages (shipped mappings, and the user's over them)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from wheelfarm import external, recipes, targets
from wheelfarm.errors import ConfigError
from wheelfarm.needs import Missing

PYPROJECT = """[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "wf-ext"
version = "1.0"

[external]
build-requires = ["virtual:compiler/c", "virtual:compiler/rust", "pkg:generic/pkg-config"]
host-requires = ["pkg:generic/openssl@>=3", "pkg:generic/libcurl", "pkg:generic/unheard-of"]
dependencies = ["pkg:generic/openssl"]
"""


def sdist(tmp_path: Path, pyproject: str | None) -> Path:
    path = tmp_path / "wf_ext-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        files = {"PKG-INFO": "Metadata-Version: 2.1\nName: wf-ext\nVersion: 1.0\n"}
        if pyproject is not None:
            files["pyproject.toml"] = pyproject
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"wf_ext-1.0/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_the_external_table_is_read_from_the_sdist(tmp_path: Path) -> None:
    found = external.read(sdist(tmp_path, PYPROJECT), "wf_ext-1.0")
    assert found.build == (
        "virtual:compiler/c",
        "virtual:compiler/rust",
        "pkg:generic/pkg-config",
        "pkg:generic/openssl@>=3",
        "pkg:generic/libcurl",
        "pkg:generic/unheard-of",
    )
    assert found.runtime == ("pkg:generic/openssl",)
    assert external.read(sdist(tmp_path, None), "wf_ext-1.0") == external.External()


def test_identifiers_map_to_each_family_and_tools_are_found(tmp_path: Path) -> None:
    found = external.read(sdist(tmp_path, PYPROJECT), "wf_ext-1.0")
    mapped = external.map_external(found, external.mappings())
    lists = dict(mapped.packages)
    assert lists["apt"] == ("pkg-config", "libssl-dev", "libcurl4-openssl-dev")
    assert lists["dnf"] == ("pkgconf-pkg-config", "openssl-devel", "libcurl-devel")
    assert lists["apk"] == ("pkgconf", "openssl-dev", "curl-dev")
    assert lists["yum"] == ("pkgconfig", "openssl-devel", "libcurl-devel")
    # Compilers come from the target's own index, like a missing program.
    assert mapped.find == (Missing("program", "gcc"), Missing("program", "cargo"))
    assert mapped.unmapped == ("pkg:generic/unheard-of",)


def test_the_user_s_mappings_win(tmp_path: Path) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text(
        json.dumps({"mappings": {"pkg:generic/openssl": {"apt": ["libssl3-dev-custom"]}}})
    )
    mapped = external.map_external(
        external.External(("pkg:generic/openssl",)), external.mappings(mine)
    )
    assert dict(mapped.packages) == {"apt": ("libssl3-dev-custom",)}
    mine.write_text(json.dumps({"mappings": {"pkg:generic/x": {"pacman": ["x"]}}}))
    with pytest.raises(ConfigError, match="unknown pacman"):
        external.mappings(mine)


def test_mapped_packages_follow_the_recipe_s_own() -> None:
    recipe = recipes.Recipe(project="x", build_packages=(("apt", ("a",)), ("debian-11", ("b",))))
    mapped = external.Mapped(packages=(("apt", ("libssl-dev",)), ("dnf", ("openssl-devel",))))
    applied = external.apply(recipe, mapped)
    assert applied.packages_for(targets.get("debian-12")) == ("a", "libssl-dev")
    assert applied.packages_for(targets.get("debian-11")) == ("b", "libssl-dev")
    assert applied.packages_for(targets.get("rockylinux-9")) == ("openssl-devel",)
    assert external.apply(recipe, external.Mapped()) is recipe
