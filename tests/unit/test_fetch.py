"""fetch: reading sdists as data, hash checks, local sources, index settings (no network)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import wf_index

from wheelfarm import fetch, plan
from wheelfarm.errors import BadInput

PKG_INFO_TIME = 1_700_000_000


def make_sdist(path: Path, files: dict[str, bytes], top: str = "demo-1.0") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {"PKG-INFO": b"Metadata-Version: 2.1\nName: demo\n", **files}.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mtime = PKG_INFO_TIME if name == "PKG-INFO" else PKG_INFO_TIME + 50
            archive.addfile(info, io.BytesIO(data))
    return path


def test_inspect_pure_and_epoch(tmp_path: Path) -> None:
    sdist = make_sdist(
        tmp_path / "demo-1.0.tar.gz",
        {
            "pyproject.toml": b'[build-system]\nbuild-backend = "setuptools.build_meta"\n',
            "src/demo/__init__.py": b"",
            "tests/fixtures/sample.c": b"int main(void){return 0;}",
        },
    )
    found = fetch.inspect_archive(sdist)
    assert (found.top, found.source_date_epoch, found.pure) == ("demo-1.0", PKG_INFO_TIME, True)


@pytest.mark.parametrize(
    "files",
    [
        {"src/speedups.c": b""},
        {"yaml/_yaml.pyx": b""},
        {"Cargo.toml": b""},
        {"setup.py": b"from setuptools import Extension\n"},
        {"setup.py": b"setup(cffi_modules=['x.py:ffi'])"},
        {"pyproject.toml": b'[build-system]\nbuild-backend = "maturin"\n'},
    ],
)
def test_inspect_compiled(tmp_path: Path, files: dict[str, bytes]) -> None:
    assert not fetch.inspect_archive(make_sdist(tmp_path / "demo-1.0.tar.gz", files)).pure


def test_inspect_zip_sdist(tmp_path: Path) -> None:
    path = tmp_path / "demo-1.0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("demo-1.0/PKG-INFO", (2020, 1, 2, 3, 4, 6)), "x")
        archive.writestr("demo-1.0/demo.py", "")
    found = fetch.inspect_archive(path)
    assert found.top == "demo-1.0"
    assert found.pure


def test_inspect_refuses_several_tops_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "x-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name in ("a/PKG-INFO", "b/PKG-INFO"):
            info = tarfile.TarInfo(name)
            archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(BadInput, match="exactly one top directory"):
        fetch.inspect_archive(path)
    garbage = tmp_path / "y-1.0.tar.gz"
    garbage.write_bytes(b"not a tar file")
    with pytest.raises(BadInput, match="not a readable sdist"):
        fetch.inspect_archive(garbage)


def test_local_sdist_is_copied_and_hash_checked(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "demo-1.0.tar.gz", {"demo.py": b""})
    digest = fetch.file_hashes(sdist)["sha256"]
    wheelhouse = tmp_path / "wh"
    req = tmp_path / "r.txt"
    req.write_text(f"{sdist} --hash=sha256:{digest}\n")
    (spec,) = plan.parse_specs([], [req])
    source = fetch.fetch(spec, wheelhouse)
    assert source.path == wheelhouse / "demo-1.0.tar.gz"
    assert source.path.read_bytes() == sdist.read_bytes()
    assert (source.sha256, source.name, source.version) == (digest, "demo", "1.0")
    assert (wheelhouse / ".wheelfarm" / "demo-1.0.tar.gz.json").is_file()

    req.write_text(f"{sdist} --hash=sha256:{'0' * 64}\n")
    (wrong,) = plan.parse_specs([], [req])
    with pytest.raises(BadInput) as excinfo:
        fetch.fetch(wrong, tmp_path / "wh2")
    assert excinfo.value.exit_code == 2
    assert f"{req}:1" in excinfo.value.message
    assert "matches none of the given hashes" in excinfo.value.message
    assert not (tmp_path / "wh2" / "demo-1.0.tar.gz").exists()


def test_directory_packs_deterministically(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "src" / "p").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "2.0"\n')
    (project / "src" / "p" / "__init__.py").write_text("X = 1\n")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("junk")
    (spec,) = plan.parse_specs([str(project)])
    first = fetch.fetch(spec, tmp_path / "wh")
    second = fetch.fetch(spec, tmp_path / "wh-again")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.path.parent == tmp_path / "wh" / ".wheelfarm" / "sources"
    with tarfile.open(first.path) as archive:
        names = archive.getnames()
    assert "p-2.0/pyproject.toml" in names
    assert not any(".git" in n for n in names)
    assert first.pure
    # A changed file is a different source.
    (project / "src" / "p" / "__init__.py").write_text("X = 2\n")
    assert fetch.fetch(spec, tmp_path / "wh").sha256 != first.sha256


def test_known_sdist_is_reused_without_the_index(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wh"
    sdist = make_sdist(tmp_path / "demo-1.0.tar.gz", {"demo.py": b""})
    (local,) = plan.parse_specs([str(sdist)])
    fetch.fetch(local, wheelhouse)
    (pinned,) = plan.parse_specs(["demo==1.0"])
    # No index is reachable at this address; the wheelhouse's record is enough.
    found = fetch.fetch(pinned, wheelhouse)
    assert found.path == wheelhouse / "demo-1.0.tar.gz"
    # A file changed after it was recorded is not trusted.
    (wheelhouse / "demo-1.0.tar.gz").write_bytes(b"tampered")
    assert fetch._known_sdist(pinned, wheelhouse) is None


def test_index_settings(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://mirror.invalid/simple\n"
        "extra-index-url = file:///srv/wheels https://extra.invalid/simple\n"
    )
    env = {"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path)}
    found = fetch.index_settings(environ=env)
    assert found.indexes == ("https://mirror.invalid/simple", "https://extra.invalid/simple")
    env["PIP_INDEX_URL"] = "https://env.invalid/simple"
    assert fetch.index_settings(environ=env).indexes[0] == "https://env.invalid/simple"
    assert fetch.index_settings(("https://req.invalid/simple",), env).indexes == (
        "https://req.invalid/simple",
    )
    from pypi_simple import PYPI_SIMPLE_ENDPOINT

    bare = {"PIP_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)}
    assert fetch.index_settings(environ=bare).indexes == (PYPI_SIMPLE_ENDPOINT,)


# ------------------------------------------------------------------ Requires-Python


def test_requires_python_from_pkg_info_else_pyproject(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    declared = make_sdist(
        tmp_path / "a" / "demo-1.0.tar.gz",
        {"PKG-INFO": b"Metadata-Version: 2.1\nName: demo\nRequires-Python: >=3.9\n\nbody\n"},
    )
    assert fetch.inspect_archive(declared).requires_python == ">=3.9"
    (tmp_path / "b").mkdir()
    from_pyproject = make_sdist(
        tmp_path / "b" / "demo-1.0.tar.gz",
        {"pyproject.toml": b'[project]\nname = "demo"\nrequires-python = ">=3.10"\n'},
    )
    assert fetch.inspect_archive(from_pyproject).requires_python == ">=3.10"
    (tmp_path / "c").mkdir()
    bare = make_sdist(tmp_path / "c" / "demo-1.0.tar.gz", {})
    assert fetch.inspect_archive(bare).requires_python is None
    (local,) = plan.parse_specs([str(declared)])
    source = fetch.fetch(local, tmp_path / "wh")
    assert source.requires_python == ">=3.9"
    assert source.as_json()["requires_python"] == ">=3.9"
    assert fetch.requires_python(local) == ">=3.9"
    # A pinned spec whose sdist an earlier run fetched needs no index.
    (pinned,) = plan.parse_specs(["demo==1.0"])
    assert fetch.requires_python(pinned, wheelhouse=tmp_path / "wh") == ">=3.9"


def test_requires_python_of_a_source_directory(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "tree"\nversion = "1"\nrequires-python = ">=3.12"\n'
    )
    (spec,) = plan.parse_specs([str(tmp_path)])
    assert fetch.requires_python(spec) == ">=3.12"
    assert fetch.fetch(spec, tmp_path / "wh").requires_python == ">=3.12"


@pytest.fixture
def simple_index(tmp_path: Path) -> Iterator[str]:
    pages = {"demo": [("demo-1.0.tar.gz", ">=3.10"), ("demo-2.0.tar.gz", None)]}
    with wf_index.serve(tmp_path / "index", pages) as url:
        yield url


def specs_on(tmp_path: Path, index: str, *lines: str) -> list[plan.Spec]:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--index-url {index}\n" + "\n".join(lines) + "\n")
    return plan.parse_specs([], [requirements])


def test_requires_python_from_the_index_page_alone(tmp_path: Path, simple_index: str) -> None:
    (one,) = specs_on(tmp_path, simple_index, "demo==1.0")
    (two,) = specs_on(tmp_path, simple_index, "demo[extra]==2.0 ; os_name == 'posix'")
    # Nothing is downloaded: the files do not even exist on this index.
    assert fetch.requires_python(one) == ">=3.10"
    assert fetch.requires_python(two) is None
    found = fetch.requires_pythons([one, two])
    assert found.declared == {one: ">=3.10", two: None}
    assert found.unknown == ()
    (missing,) = specs_on(tmp_path, simple_index, "demo==9.9")
    with pytest.raises(BadInput) as excinfo:
        fetch.requires_python(missing)
    assert "no demo 9.9" in excinfo.value.message


def test_an_index_that_cannot_be_reached_leaves_the_spec_unknown(tmp_path: Path) -> None:
    (spec,) = specs_on(tmp_path, wf_index.closed_port_url(), "demo==1.0")
    with pytest.raises(fetch.FetchFailed):
        fetch.requires_python(spec, timeout=5)
    found = fetch.requires_pythons([spec], timeout=5)
    assert found.declared == {}
    ((unknown, why),) = found.unknown
    assert unknown == spec and "cannot read demo's page" in why
