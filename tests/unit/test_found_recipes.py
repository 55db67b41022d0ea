"""The recipes discovery writes: a recipe recipes.py reads back, merged per target, and what
discovery found for a build kept in the cache by the key of the build without it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from wheelfarm import cache, config, foundrecipes, recipes, targets
from wheelfarm.errors import ConfigError
from wheelfarm.needs import Missing
from wheelfarm.providers import Choice

DEBIAN_11 = targets.get("debian-11")
DEBIAN_12 = targets.get("debian-12")


def wheel(tmp_path: Path, *members: str) -> Path:
    path = tmp_path / "x-1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            archive.writestr(member, "")
    return path


def record(build: list[str], runtime: list[str]) -> dict[str, object]:
    return {"recipe": {"packages": build}, "requires_external": runtime}


def test_the_imports_are_the_wheel_s_public_top_level_modules(tmp_path: Path) -> None:
    path = wheel(
        tmp_path,
        "PIL/__init__.py",
        "PIL/_imaging.cpython-311-x86_64-linux-gnu.so",
        "pycurl.cpython-311-x86_64-linux-gnu.so",
        "ldapurl.py",
        "_ldap.cpython-311-x86_64-linux-gnu.so",
        "x-1.0.dist-info/METADATA",
        "x-1.0.data/scripts/tool",
    )
    assert foundrecipes.wheel_imports(path) == ("PIL", "ldapurl", "pycurl")


def test_a_written_recipe_reads_back_and_merges_per_target(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    base = recipes.Recipe(project="python-ldap", build_env=(("X", 'a "quoted" value'),))
    path = foundrecipes.merge(
        house,
        DEBIAN_12,
        record(["libldap-dev", "libsasl2-dev"], ["libldap-2.5-0"]),
        base,
        wheel(tmp_path, "ldap/__init__.py"),
    )
    assert path == house / ".wheelfarm" / "recipes" / "python-ldap.toml"
    first = recipes.parse(path.read_text(), "python-ldap", str(path))
    assert first.packages_for(DEBIAN_12) == ("libldap-dev", "libsasl2-dev")
    assert first.packages_for(DEBIAN_11) == ("libldap-dev", "libsasl2-dev")  # the family's
    assert first.runtime_for(DEBIAN_12) == ("libldap-2.5-0",)
    assert first.imports == ("ldap",)
    assert first.env == {"X": 'a "quoted" value'}
    # Debian 11 found other packages: they go under its own name; the family list stays.
    foundrecipes.merge(
        house,
        DEBIAN_11,
        record(["libldap2-dev", "libsasl2-dev"], ["libldap-2.4-2"]),
        base,
        wheel(tmp_path, "ldap/__init__.py", "slapdtest/__init__.py"),
    )
    both = recipes.parse(path.read_text(), "python-ldap", str(path))
    assert both.packages_for(DEBIAN_12) == ("libldap-dev", "libsasl2-dev")
    assert both.packages_for(DEBIAN_11) == ("libldap2-dev", "libsasl2-dev")
    assert dict(both.build_packages) == {
        "apt": ("libldap-dev", "libsasl2-dev"),
        "debian-11": ("libldap2-dev", "libsasl2-dev"),
    }
    assert both.runtime_for(DEBIAN_11) == ("libldap-2.4-2",)
    assert both.imports == ("ldap", "slapdtest")
    # The same target again changes nothing.
    text = path.read_text()
    foundrecipes.merge(
        house,
        DEBIAN_11,
        record(["libldap2-dev", "libsasl2-dev"], ["libldap-2.4-2"]),
        base,
        wheel(tmp_path, "ldap/__init__.py", "slapdtest/__init__.py"),
    )
    assert path.read_text() == text


def test_with_packages_keys_a_target_and_changes_nothing_when_equal() -> None:
    recipe = recipes.Recipe(project="x", build_packages=(("apt", ("a",)),))
    assert recipe.with_packages(DEBIAN_12, ("a",)) is recipe
    more = recipe.with_packages(DEBIAN_12, ("a", "b"))
    assert more.packages_for(DEBIAN_12) == ("a", "b")
    assert more.packages_for(DEBIAN_11) == ("a",)
    assert more.build_digest(DEBIAN_12) != recipe.build_digest(DEBIAN_12)
    assert more.build_digest(DEBIAN_11) == recipe.build_digest(DEBIAN_11)


def test_what_discovery_found_is_kept_by_the_key_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.discovered("k" * 64) == cache.Discovered()
    found = (
        Choice(Missing("program", "curl-config"), "libcurl4-openssl-dev", ("a", "b"), "why"),
        Choice(Missing("header", "lber.h"), "libldap-dev", ("libldap-dev",), "only"),
    )
    cache.store_discovered("k" * 64, found, ("cython==3.0.11",))
    assert cache.discovered("k" * 64) == cache.Discovered(found, ("cython==3.0.11",))


def test_no_shipped_recipes_leaves_the_user_s(tmp_path: Path) -> None:
    assert recipes.load("lxml").source is not None  # shipped
    assert recipes.load("lxml", shipped=False).source is None
    (tmp_path / "lxml.toml").write_text('[build.packages]\napt = ["libxml2-dev"]\n')
    mine = recipes.load("lxml", tmp_path, shipped=False)
    assert mine.packages_for(DEBIAN_12) == ("libxml2-dev",)


@pytest.mark.parametrize(
    ("env", "expected"), [({}, True), ({"WHEELFARM_DISCOVER": "0"}, False),
                          ({"WHEELFARM_DISCOVER": "yes"}, True)]
)  # fmt: skip
def test_discover_follows_the_configuration_s_precedence(
    tmp_path: Path, env: dict[str, str], expected: bool
) -> None:
    assert config.resolve({}, env=env, cwd=tmp_path).discover is expected
    assert config.resolve({"discover": False}, env=env, cwd=tmp_path).discover is False


def test_discover_in_pyproject_and_bad_values(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.wheelfarm]\ndiscover = false\nshipped-recipes = false\n"
    )
    settings = config.resolve({}, env={}, cwd=tmp_path)
    assert settings.discover is False and settings.shipped_recipes is False
    with pytest.raises(ConfigError, match="WHEELFARM_DISCOVER: expected a boolean"):
        config.resolve({}, env={"WHEELFARM_DISCOVER": "maybe"}, cwd=tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.wheelfarm]\ndiscover = "no"\n')
    with pytest.raises(ConfigError, match="expected true or false"):
        config.resolve({}, env={}, cwd=tmp_path)


CONSTRAINED = """
[build]
constraints = ["setuptools<75", {versions = "<2.0", requires = ["cython<3.1"]}]
"""


def test_constraints_apply_to_the_versions_they_name() -> None:
    recipe = recipes.parse(CONSTRAINED, "x", "test")
    assert recipe.constraints_for("1.5") == ("setuptools<75", "cython<3.1")
    assert recipe.constraints_for("2.1") == ("setuptools<75",)
    assert recipe.build_digest(DEBIAN_12, "1.5") != recipe.build_digest(DEBIAN_12, "2.1")
    plain = recipes.Recipe(project="x")
    assert plain.build_digest(DEBIAN_12, "1.5") == plain.build_digest(DEBIAN_12)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[build]\nconstraints = "cython"\n', "must be a list"),
        ('[[build.constraints]]\nversions = "<<2"\nrequires = ["a"]\n', "no version specifier"),
        ('[[build.constraints]]\nrequires = ["not a requirement!"]\n', "not a requirement"),
        ('[[build.constraints]]\nversions = "<2"\n', "non-empty list"),
    ],
)
def test_bad_constraints_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        recipes.parse(text, "x", "test")


def test_the_pins_that_worked_are_written_scoped_to_the_version(tmp_path: Path) -> None:
    rec = {
        **record(["libhdf5-dev"], ["libhdf5-103-1"]),
        "spec": "h5py==3.12.1",
        "discovery": {"pinned": ["cython==3.0.11", "setuptools==75.1.0"]},
    }
    path = foundrecipes.merge(
        tmp_path,
        DEBIAN_12,
        rec,
        recipes.Recipe(project="h5py"),
        wheel(tmp_path, "h5py/__init__.py"),
    )
    written = recipes.parse(path.read_text(), "h5py", str(path))
    assert written.constraints_for("3.12.1") == ("cython==3.0.11", "setuptools==75.1.0")
    assert written.constraints_for("3.13.0") == ()


def test_recipes_merge_merges_each_target_s_written_recipes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from wf_cli import run_in_process

    for name, packages in (("debian-12", ["libldap-dev"]), ("debian-11", ["libldap2-dev"])):
        target = targets.get(name)
        foundrecipes.merge(
            tmp_path / name,
            target,
            record(packages, []),
            recipes.Recipe(project="python-ldap"),
            wheel(tmp_path, "ldap/__init__.py"),
        )
        written = foundrecipes.folder(tmp_path / name)
        result = run_in_process(
            capsys, monkeypatch, "recipes", "merge", str(written), "--target", name,
            "--into", str(tmp_path / "merged"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "merged python-ldap.toml" in result.stderr
    merged = recipes.load("python-ldap", tmp_path / "merged", shipped=False)
    assert merged.packages_for(DEBIAN_12) == ("libldap-dev",)
    assert merged.packages_for(DEBIAN_11) == ("libldap2-dev",)
    missing = run_in_process(
        capsys, monkeypatch, "recipes", "merge", str(tmp_path / "nowhere"), "--target",
        "debian-12", "--into", str(tmp_path / "merged"),
    )  # fmt: skip
    assert missing.returncode == 2


def test_pins_that_differ_by_target_are_merged_under_python_markers(tmp_path: Path) -> None:
    """A release-day retry resolves by Python: debian-11 (3.9) and debian-12 (3.11) pinned
    different setuptools for one version. Each target's rebuild must get its own pins."""
    house = tmp_path / "wheelhouse"
    base = recipes.Recipe(project="wf-old")

    def built(target: targets.Target, python: str, pins: list[str]) -> recipes.Recipe:
        found = {
            **record([], []),
            "python": python,
            "spec": "wf-old==1.0",
            "discovery": {"pinned": pins},
        }
        path = foundrecipes.merge(house, target, found, base, wheel(tmp_path, "wf_old.py"))
        return recipes.parse(path.read_text(), "wf-old", str(path))

    built(DEBIAN_11, "3.9", ["cython==3.0.11", "setuptools==75.1.0"])
    both = built(DEBIAN_12, "3.11", ["cython==3.0.11", "setuptools==75.3.0"])
    pins = both.constraints_for("1.0")
    assert pins == (
        "cython==3.0.11",
        'setuptools==75.1.0; python_version != "3.11"',
        'setuptools==75.3.0; python_version == "3.11"',
    )

    def applying(python: str) -> list[str]:
        kept = [Requirement(p) for p in pins]
        return sorted(
            f"{r.name}{r.specifier}"
            for r in kept
            if r.marker is None or r.marker.evaluate({"python_version": python})
        )

    assert applying("3.9") == ["cython==3.0.11", "setuptools==75.1.0"]
    assert applying("3.11") == ["cython==3.0.11", "setuptools==75.3.0"]
    # Each target again changes nothing; a third Python splits once more.
    assert built(DEBIAN_12, "3.11", ["cython==3.0.11", "setuptools==75.3.0"]) == both
    assert built(DEBIAN_11, "3.9", ["cython==3.0.11", "setuptools==75.1.0"]) == both
    three = built(targets.get("debian-13"), "3.13", ["cython==3.1.0", "setuptools==75.3.0"])
    pins = three.constraints_for("1.0")
    assert applying("3.9") == ["cython==3.0.11", "setuptools==75.1.0"]
    assert applying("3.11") == ["cython==3.0.11", "setuptools==75.3.0"]
    assert applying("3.13") == ["cython==3.1.0", "setuptools==75.3.0"]
