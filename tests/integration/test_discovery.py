"""Discovery for real on debian-12, without the shipped recipes: pillow, pycurl, python-ldap,
mysqlclient and orjson (Rust: its sdist vendors its crates) build and verify with what the
distro's own package index says provides what each lacked; the recipes written rebuild them with
--no-discover from a fresh cache; an unchanged rerun starts no container; and what one spec's
discovery installed never reaches another spec's wheel (two local projects, in both orders)."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_build import Run, environment, run_wheelfarm, write_project

from wheelfarm import recipes, targets
from wheelfarm.targets import Target

pytestmark = pytest.mark.integration

SPECS = (
    "pillow==11.0.0",
    "pycurl==7.45.3",
    "python-ldap==3.4.4",
    "mysqlclient==2.2.6",
    "orjson==3.10.12",
)
TARGET = ("--target", "debian-12")
NEEDS_LBER = """#include <Python.h>
#include <lber.h>
static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "wf_needs_lber", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_wf_needs_lber(void) { return PyModule_Create(&m); }
"""
# Built differently when lber.h happens to be there: what pillow does with freetype or webp.
SEES_LBER = """#include <Python.h>
#if __has_include(<lber.h>)
#define SAW "lber.h was there"
#else
#define SAW "no lber.h"
#endif
static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "wf_sees_lber", SAW, -1, NULL};
PyMODINIT_FUNC PyInit_wf_sees_lber(void) { return PyModule_Create(&m); }
"""


def extension(name: str, source: str) -> dict[str, str]:
    return {
        "setup.py": "from setuptools import Extension, setup\n"
        f"setup(ext_modules=[Extension('{name}', ['{name}.c'])])\n",
        f"{name}.c": source,
    }


@dataclass(frozen=True)
class Discovered:
    run: Run
    wheelhouse: Path
    cache: Path
    root: Path


@pytest.fixture(scope="module")
def discovered(
    debian_targets: dict[str, Target], tmp_path_factory: pytest.TempPathFactory
) -> Discovered:
    root = tmp_path_factory.mktemp("discovery")
    wheelhouse, cache = root / "wheelhouse", root / "cache"
    run = run_wheelfarm(
        "build", *SPECS, *TARGET, "--no-shipped-recipes", "--wheelhouse", str(wheelhouse),
        "--json", env=environment(cache),
    )  # fmt: skip
    return Discovered(run, wheelhouse, cache, root)


def records(wheelhouse: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in (wheelhouse / ".wheelfarm").glob("*.whl.json"):
        record = json.loads(path.read_text())
        found[record["spec"]] = record
    return found


def test_discovery_builds_and_verifies_them_without_recipes(discovered: Discovered) -> None:
    run = discovered.run
    assert run.code == 0, run.stderr[-4000:]
    summary = run.summary
    assert sorted(r["spec"] for r in summary["results"] if r["status"] == "built") == sorted(SPECS)
    assert summary["verify"]["ok"] is True
    found = records(discovered.wheelhouse)
    for spec in SPECS:
        discovery = found[spec]["discovery"]
        assert discovery["installed"], spec  # each of them lacked something on debian-12
        assert 2 <= discovery["rounds"] <= 6
        assert found[spec]["recipe"]["source"] is None  # no recipe: discovery found it all
        assert set(discovery["installed"]) <= set(found[spec]["recipe"]["packages"])
    pycurl = found["pycurl==7.45.3"]["discovery"]
    assert "libcurl4-openssl-dev" in pycurl["installed"]
    (curl,) = [c for c in pycurl["choices"] if c["package"] == "libcurl4-openssl-dev"]
    assert set(curl["of"]) >= {"libcurl4-gnutls-dev", "libcurl4-nss-dev"}
    assert "openssl > gnutls > nss" in curl["why"]
    orjson = found["orjson==3.10.12"]["discovery"]
    assert "cargo-web" in orjson["installed"]  # a Rust new enough, not the download
    assert "libldap-dev" in found["python-ldap==3.4.4"]["discovery"]["installed"]
    log = (discovered.wheelhouse / found["python-ldap==3.4.4"]["log"]).read_text()
    assert "discovery: missing header" in log and "→ libldap-dev" in log
    assert "round 2 of at most 6" in log


def test_the_written_recipes_name_what_was_found(discovered: Discovered) -> None:
    folder = discovered.wheelhouse / ".wheelfarm" / "recipes"
    found = records(discovered.wheelhouse)
    debian_12 = targets.get("debian-12")
    for spec in SPECS:
        project = spec.split("==")[0]
        path = folder / f"{project}.toml"
        recipe = recipes.parse(path.read_text(), project, str(path))
        assert dict(recipe.build_packages) == {"apt": tuple(found[spec]["recipe"]["packages"])}
        assert recipe.runtime_for(debian_12) == tuple(found[spec]["requires_external"])
        assert recipe.imports
    ldap = recipes.load("python-ldap", folder, shipped=False)
    assert "ldap" in ldap.imports


def test_an_unchanged_rerun_neither_rediscovers_nor_starts_a_container(
    discovered: Discovered,
) -> None:
    run = run_wheelfarm(
        "build", *SPECS, *TARGET, "--no-shipped-recipes", "--wheelhouse",
        str(discovered.wheelhouse), "--json", "--no-verify", env=environment(discovered.cache),
    )  # fmt: skip
    assert run.code == 0, run.stderr[-3000:]
    assert run.created == ()
    assert run.summary["containers_started"] == 0
    assert {r["status"] for r in run.summary["results"]} == {"up to date"}


def test_the_written_recipes_rebuild_without_discovery_from_a_fresh_cache(
    discovered: Discovered,
) -> None:
    folder = discovered.wheelhouse / ".wheelfarm" / "recipes"
    wheelhouse = discovered.root / "rebuilt"
    run = run_wheelfarm(
        "build", *SPECS, *TARGET, "--no-shipped-recipes", "--no-discover", "--recipes",
        str(folder), "--wheelhouse", str(wheelhouse), "--json", "--no-verify",
        env=environment(discovered.root / "fresh-cache"),
    )  # fmt: skip
    assert run.code == 0, run.stderr[-4000:]
    first, again = records(discovered.wheelhouse), records(wheelhouse)
    for spec in SPECS:
        discovery = again[spec]["discovery"]
        assert (discovery["enabled"], discovery["rounds"], discovery["installed"]) == (
            False, 1, []
        )  # fmt: skip
        assert again[spec]["recipe"]["packages"] == first[spec]["recipe"]["packages"]
        assert again[spec]["requires_external"] == first[spec]["requires_external"]


def test_what_one_spec_installed_never_reaches_another_spec_s_wheel(
    debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    needs = write_project(
        tmp_path / "needs", "wf-needs-lber", "1.0", extension("wf_needs_lber", NEEDS_LBER)
    )
    sees = write_project(
        tmp_path / "sees", "wf-sees-lber", "1.0", extension("wf_sees_lber", SEES_LBER)
    )
    hashes = []
    for order in ((needs, sees), (sees, needs)):
        wheelhouse = tmp_path / f"wheelhouse-{order[0].name}"
        run = run_wheelfarm(
            "build", *map(str, order), *TARGET, "--jobs", "1", "--wheelhouse", str(wheelhouse),
            "--json", "--no-verify", env=environment(tmp_path / f"cache-{order[0].name}"),
        )  # fmt: skip
        assert run.code == 0, run.stderr[-3000:]
        found = records(wheelhouse)
        assert found[str(needs)]["discovery"]["installed"] == ["libldap-dev"]
        assert found[str(sees)]["discovery"]["installed"] == []
        (wheel,) = wheelhouse.glob("wf_sees_lber-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            (so,) = [n for n in archive.namelist() if n.endswith(".so")]
            assert b"no lber.h" in archive.read(so)  # the other spec's libldap-dev never reached it
        hashes.append(hashlib.sha256(wheel.read_bytes()).hexdigest())
    assert hashes[0] == hashes[1]


def test_an_external_table_s_packages_are_installed_before_the_first_attempt(
    debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "ext", "wf-ext-lber", "1.0", extension("wf_needs_lber", NEEDS_LBER)
    )
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[external]\nhost-requires = ["pkg:generic/openldap"]\n')
    wheelhouse = tmp_path / "wheelhouse"
    run = run_wheelfarm(
        "build", str(project), *TARGET, "--wheelhouse", str(wheelhouse), "--json", "--no-verify",
        env=environment(tmp_path / "cache"),
    )  # fmt: skip
    assert run.code == 0, run.stderr[-3000:]
    (record,) = records(wheelhouse).values()
    assert record["recipe"]["packages"] == ["libldap-dev"]  # from the shipped mapping
    assert record["discovery"]["rounds"] == 1 and record["discovery"]["installed"] == []


def test_an_old_release_that_today_s_cython_breaks_builds_with_its_release_day_tools(
    debian_targets: dict[str, Target], tmp_path: Path
) -> None:
    """PyYAML 6.0 (October 2021) asks for an unpinned Cython; Cython 3 removed what its setup.py
    calls (`'build_ext' object has no attribute 'cython_sources'`). The retry resolves its build
    requirements as of the sdist's upload on the index, builds, and keeps the pins for that
    version in the written recipe."""
    wheelhouse = tmp_path / "wh"
    run = run_wheelfarm(
        "build", "pyyaml==6.0", "--target", "debian-11", "--no-verify", "--json",
        "--wheelhouse", str(wheelhouse), env=environment(tmp_path / "cache"),
    )  # fmt: skip
    assert run.code == 0, run.stderr[-4000:]
    record = records(wheelhouse)["pyyaml==6.0"]
    discovery = record["discovery"]
    assert discovery["rounds"] == 2
    assert discovery["build_requirements_as_of"].startswith("2021-10-13")
    pins = dict(pin.split("==") for pin in discovery["pinned"])
    assert pins["cython"].startswith("0.29.")  # the Cython of its day
    log = (wheelhouse / record["log"]).read_text()
    assert "cython_sources" in log and "release-day retry: build requirements as of" in log
    folder = wheelhouse / ".wheelfarm" / "recipes"
    written = recipes.load("pyyaml", folder, shipped=False)
    assert written.constraints_for("6.0") == tuple(discovery["pinned"])
    assert written.constraints_for("6.0.1") == ()  # scoped to the version it worked for
