"""What `wheelfarm index` and `wheelfarm publish --target` make of a project's extra targets:
roots and views only for targets whose distro and version are known (shipped, or declared);
never for a release guessed from an image name like python:3.12-slim. And an output path
that cannot be made is exit 2 with a message, no traceback, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wf_cli import run
from wf_wheels import make_wheel

PROJECT = """\
[tool.wheelfarm]
wheelhouse = "wh"

[[tool.wheelfarm.extra-targets]]
name = "py-slim"
base = "python:3.12-slim"
family = "apt"
python = "3.12"

[[tool.wheelfarm.extra-targets]]
name = "fedora-40"
base = "fedora:40"
family = "dnf"
python = "3.12"
distro = "fedora"
version = "40"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(PROJECT, encoding="utf-8")
    (tmp_path / "wh").mkdir()
    # What python:3.12-slim really is (its os-release says Debian 12) tags its wheels.
    make_wheel(tmp_path / "wh", "demo", "1.0", "cp312-cp312-linux_x86_64_debian_12")
    return tmp_path


def root_tags(site: Path) -> set[str]:
    roots = json.loads((site / "roots.json").read_text(encoding="utf-8"))["roots"]
    return {r["tag"] for r in roots if r["tag"]}


def test_a_guessed_release_gets_no_root_a_declared_one_does(project: Path) -> None:
    made = run("index", "-o", "site", "--json", cwd=project)
    assert made.returncode == 0, made.stderr
    found = root_tags(project / "site")
    assert not any("python" in tag for tag in found), found
    assert "linux_x86_64_fedora_40" in found  # declared: the target's own root
    assert "linux_x86_64_debian_12" in found  # the tag the wheel carries
    # The slim image's wheel is served, under its plain name, by the root of its real distro.
    page = project / "site" / "linux_x86_64_debian_12" / "simple" / "demo" / "index.html"
    assert "demo-1.0-cp312-cp312-linux_x86_64.whl" in page.read_text(encoding="utf-8")


def test_publishing_the_view_of_a_guessed_release_is_refused(project: Path) -> None:
    # Refused before any upload: the URL below has nothing listening.
    refused = run(
        "publish", "--repository-url", "http://127.0.0.1:9/", "--target", "py-slim", cwd=project
    )
    assert refused.returncode == 2, refused.stderr
    assert "py-slim does not declare its distro and version" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize("below", ["sub", "sub/deeper"])
def test_an_output_that_cannot_be_made_is_exit_2_and_leaves_nothing(
    tmp_path: Path, below: str
) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    make_wheel(wh, "demo", "1.0", "cp311-cp311-linux_x86_64_debian_12")
    (tmp_path / "afile").write_text("a file, not a directory\n")
    output = tmp_path / "afile" / below
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run("index", str(wh), "-o", str(output))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(output) in result.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
