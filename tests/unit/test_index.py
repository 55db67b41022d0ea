"""`wheelfarm index`: the site it writes, read back the way pip and uv read it (PEP 503 anchors,
PEP 691 JSON, PEP 658/714 metadata), its atomic swap, idempotence and corrupt-file handling."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from wf_cli import run
from wf_wheels import make_sdist, make_wheel

from wheelfarm import index, rules, views
from wheelfarm.errors import BadInput

D11 = "cp39-cp39-linux_x86_64_debian_11"
D12 = "cp311-cp311-linux_x86_64_debian_12"
D13 = "cp313-cp313-linux_x86_64_debian_13"
RHEL9 = "cp39-cp39-linux_x86_64_rhel_9"
ROCKY9 = "cp39-cp39-linux_x86_64_rocky_9"


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.meta: dict[str, str | None] = {}
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = dict(attrs)
        elif tag == "meta":
            found = dict(attrs)
            if found.get("name"):
                self.meta[str(found["name"])] = found.get("content")

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.anchors.append((self._open, data))
            self._open = None


def anchors(path: Path) -> Anchors:
    parser = Anchors()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(site: Path) -> dict[str, bytes]:
    root = site.resolve()
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    wh = tmp_path / "wheelhouse"
    wh.mkdir()
    make_wheel(wh, "Demo.Pkg", "1.0", D11)
    make_wheel(wh, "Demo.Pkg", "1.0", D12, requires_python=">=3.11,<4")
    make_wheel(wh, "Demo.Pkg", "1.0", D13)
    make_wheel(wh, "Demo.Pkg", "0.9", "cp311-cp311-linux_x86_64")
    make_wheel(wh, "Demo.Pkg", "1.0", RHEL9)
    make_wheel(wh, "other", "2.0", "cp311-cp311-linux_x86_64_fedora_40")
    make_sdist(wh, "Demo.Pkg", "1.0")
    (wh / ".wheelfarm").mkdir()
    (wh / ".wheelfarm" / "ignored.whl").write_bytes(b"not a wheel, not at the top")
    return wh


def build(wh: Path, site: Path, **kwargs: object) -> index.SiteResult:
    return index.build_site(wh, site, arch="x86_64", **kwargs)  # type: ignore[arg-type]


def test_canonical_root_lists_every_distribution_under_its_own_name(
    wheelhouse: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    build(wheelhouse, site)
    page = site / "simple" / "demo-pkg" / "index.html"
    names = sorted(text for _, text in anchors(page).anchors)
    assert names == sorted(
        [
            f"demo_pkg-1.0-{D11}.whl",
            f"demo_pkg-1.0-{D12}.whl",
            f"demo_pkg-1.0-{D13}.whl",
            "demo_pkg-0.9-cp311-cp311-linux_x86_64.whl",
            f"demo_pkg-1.0-{RHEL9}.whl",
            "demo_pkg-1.0.tar.gz",
        ]
    )
    listing = anchors(site / "simple" / "index.html").anchors
    assert [(a["href"], text) for a, text in listing] == [
        ("demo-pkg/", "demo-pkg"),
        ("other/", "other"),
    ]


def test_each_consumer_root_serves_its_best_wheels_under_plain_names(
    wheelhouse: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    build(wheelhouse, site)
    d12 = site / "linux_x86_64_debian_12" / "simple" / "demo-pkg"
    assert sorted(text for _, text in anchors(d12 / "index.html").anchors) == [
        "demo_pkg-0.9-cp311-cp311-linux_x86_64.whl",
        "demo_pkg-1.0-cp311-cp311-linux_x86_64.whl",
        "demo_pkg-1.0.tar.gz",
    ]
    served = d12 / "demo_pkg-1.0-cp311-cp311-linux_x86_64.whl"
    canonical = wheelhouse / f"demo_pkg-1.0-{D12}.whl"
    # A renamed hardlink: the same inode, so the same bytes and sha256 as the canonical file.
    assert served.stat().st_ino == canonical.stat().st_ino
    with zipfile.ZipFile(served) as zf:
        assert "Tag: " + D12 in zf.read("demo_pkg-1.0.dist-info/WHEEL").decode()
    d11 = site / "linux_x86_64_debian_11" / "simple" / "demo-pkg"
    assert (d11 / "demo_pkg-1.0-cp39-cp39-linux_x86_64.whl").stat().st_ino == (
        (wheelhouse / f"demo_pkg-1.0-{D11}.whl").stat().st_ino
    )
    rhel = site / "linux_x86_64_rhel_9" / "simple" / "demo-pkg"
    assert (rhel / "demo_pkg-1.0-cp39-cp39-linux_x86_64.whl").is_file()


def test_roots_exist_for_every_target_and_every_distro_tag_present(
    wheelhouse: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    result = build(wheelhouse, site)
    tags_ = [r.name for r in result.roots]
    for expected in (
        "linux_x86_64_debian_11",
        "linux_x86_64_debian_12",
        "linux_x86_64_debian_13",
        "linux_x86_64_ubuntu_24_04",
        "linux_x86_64_alpine_3_20",
        "linux_x86_64_rhel_9",  # rocky-9 and almalinux-9 build rhel_9 under the shipped rules
        "linux_x86_64_fedora_40",  # no target, but the wheelhouse has one
    ):
        assert expected in tags_
        assert (site / expected / "simple" / "index.json").is_file()
    assert "linux_x86_64_rocky_9" not in tags_
    listing = json.loads((site / "roots.json").read_text())
    by_tag = {r["tag"]: r for r in listing["roots"]}
    assert by_tag[None]["path"] == "simple/"
    assert by_tag["linux_x86_64_debian_12"]["path"] == "linux_x86_64_debian_12/simple/"
    assert by_tag["linux_x86_64_debian_12"]["install"][-1] == "linux_x86_64"
    # A root with no distro wheel for it still has the sdist and the plain linux_x86_64 wheel
    # (every consumer accepts linux_<arch>, last).
    alpine = site / "linux_x86_64_alpine_3_20" / "simple" / "demo-pkg" / "index.html"
    assert [text for _, text in anchors(alpine).anchors] == [
        "demo_pkg-0.9-cp311-cp311-linux_x86_64.whl",
        "demo_pkg-1.0.tar.gz",
    ]
    # Roots serving the same files have the same bytes, kept once (one inode).
    alpine_next = site / "linux_x86_64_alpine_3_21" / "simple" / "demo-pkg" / "index.html"
    assert alpine_next.read_bytes() == alpine.read_bytes()
    assert alpine_next.stat().st_ino == alpine.stat().st_ino


def test_a_wheel_tagged_by_a_rule_source_gets_a_root_that_follows_the_rules(
    tmp_path: Path,
) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    make_wheel(wh, "x", "1.0", ROCKY9)
    make_wheel(wh, "x", "1.0", "cp312-cp312-linux_x86_64_rhel_9")
    site = tmp_path / "site"
    build(wh, site)
    rocky = site / "linux_x86_64_rocky_9" / "simple" / "x" / "index.html"
    # The rocky_9 consumer accepts rocky_9 first, then rhel_9 (shipped rule), one per python.
    assert sorted(t for _, t in anchors(rocky).anchors) == [
        "x-1.0-cp312-cp312-linux_x86_64.whl",
        "x-1.0-cp39-cp39-linux_x86_64.whl",
    ]
    rhel = site / "linux_x86_64_rhel_9" / "simple" / "x" / "index.html"
    assert [t for _, t in anchors(rhel).anchors] == ["x-1.0-cp312-cp312-linux_x86_64.whl"]


def test_rules_files_change_what_a_root_accepts(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    make_wheel(wh, "x", "1.0", D12)
    rules_file = tmp_path / "rules.cfg"
    rules_file.write_text(
        json.dumps({"linux_x86_64_ubuntu_24_04": {"install": ["linux_x86_64_debian_12"]}})
    )
    site = tmp_path / "site"
    build(wh, site, rule_files=[rules_file])
    ubuntu = site / "linux_x86_64_ubuntu_24_04" / "simple" / "x" / "index.html"
    assert [t for _, t in anchors(ubuntu).anchors] == ["x-1.0-cp311-cp311-linux_x86_64.whl"]


def test_html_anchors_carry_hashes_requires_python_and_metadata_hashes(
    wheelhouse: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    build(wheelhouse, site)
    for root in ("simple", "linux_x86_64_debian_12/simple"):
        project = site / root / "demo-pkg"
        parsed = anchors(project / "index.html")
        assert parsed.meta["pypi:repository-version"] == "1.1"
        for attrs, text in parsed.anchors:
            href = str(attrs["href"])
            filename, _, fragment = href.partition("#")
            assert filename == text
            assert fragment == f"sha256={sha256(project / filename)}"
            assert attrs["data-requires-python"]
            if filename.endswith(".whl"):
                meta = project / f"{filename}.metadata"
                expected = f"sha256={sha256(meta)}"
                assert attrs["data-dist-info-metadata"] == expected
                assert attrs["data-core-metadata"] == expected
                version = filename.split("-")[1]
                with zipfile.ZipFile(project / filename) as zf:
                    inside = zf.read(f"demo_pkg-{version}.dist-info/METADATA")
                assert meta.read_bytes() == inside
            else:
                assert "data-core-metadata" not in attrs
    raw = (site / "linux_x86_64_debian_12/simple/demo-pkg/index.html").read_text()
    assert 'data-requires-python="&gt;=3.11,&lt;4"' in raw


def test_json_pages_follow_pep_691_and_700(wheelhouse: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(wheelhouse, site)
    listing = json.loads((site / "simple" / "index.json").read_text())
    assert listing == {
        "meta": {"api-version": "1.1"},
        "projects": [{"name": "demo-pkg"}, {"name": "other"}],
    }
    project = site / "linux_x86_64_debian_12" / "simple" / "demo-pkg"
    page = json.loads((project / "index.json").read_text())
    assert page["meta"] == {"api-version": "1.1"}
    assert page["name"] == "demo-pkg"
    assert page["versions"] == ["0.9", "1.0"]
    by_name = {f["filename"]: f for f in page["files"]}
    wheel = by_name["demo_pkg-1.0-cp311-cp311-linux_x86_64.whl"]
    path = project / wheel["filename"]
    assert wheel["url"] == wheel["filename"]
    assert wheel["hashes"] == {"sha256": sha256(path)}
    assert wheel["size"] == path.stat().st_size
    assert wheel["requires-python"] == ">=3.11,<4"
    meta_hash = {"sha256": sha256(project / f"{wheel['filename']}.metadata")}
    assert wheel["core-metadata"] == meta_hash
    # Never the old PEP 658 JSON key: pip 22.3-23.1 (Debian 12's pip) crash on it (PEP 714).
    assert "dist-info-metadata" not in wheel
    assert wheel["yanked"] is False
    sdist = by_name["demo_pkg-1.0.tar.gz"]
    assert "core-metadata" not in sdist
    assert sdist["requires-python"] == ">=3.9"


def test_base_url_makes_file_links_absolute(wheelhouse: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(wheelhouse, site, base_url="https://wheels.invalid/farm/")
    page = json.loads((site / "linux_x86_64_debian_12/simple/demo-pkg/index.json").read_text())
    urls = sorted(f["url"] for f in page["files"])
    assert urls[0] == (
        "https://wheels.invalid/farm/linux_x86_64_debian_12/simple/demo-pkg/"
        "demo_pkg-0.9-cp311-cp311-linux_x86_64.whl"
    )
    listing = json.loads((site / "roots.json").read_text())
    assert listing["roots"][0]["url"] == "https://wheels.invalid/farm/simple/"
    with pytest.raises(BadInput, match="not an absolute URL"):
        build(wheelhouse, site, base_url="wheels/")


def test_regenerating_is_idempotent_byte_for_byte(wheelhouse: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    first = build(wheelhouse, site)
    before = snapshot(site)
    second = build(wheelhouse, site)
    assert second.changed is False
    assert second.tree == first.tree
    assert snapshot(site) == before
    # A separate site from the same wheelhouse has the very same bytes and tree name.
    other = build(wheelhouse, tmp_path / "elsewhere" / "site")
    assert snapshot(tmp_path / "elsewhere" / "site") == before
    assert other.tree.name.split(".")[-1] == first.tree.name.split(".")[-1]


def test_regenerating_swaps_the_site_symlink_and_removes_the_old_tree(
    wheelhouse: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    first = build(wheelhouse, site)
    assert site.is_symlink()
    assert site.readlink().name == first.tree.name
    make_wheel(wheelhouse, "newcomer", "1.0", D12)
    second = build(wheelhouse, site)
    assert second.changed is True
    assert site.readlink().name == second.tree.name
    assert not first.tree.exists()
    assert (site / "linux_x86_64_debian_12" / "simple" / "newcomer" / "index.html").is_file()
    # Nothing else is left beside the site: no temporary tree, no temporary link.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["wheelhouse", "site", second.tree.name]
    )


def test_regenerating_reuses_unchanged_files_of_the_previous_tree(
    wheelhouse: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    build(wheelhouse, site)
    page = "linux_x86_64_debian_12/simple/demo-pkg/index.json"
    meta = f"simple/demo-pkg/demo_pkg-1.0-{D12}.whl.metadata"
    listing = "simple/index.json"
    before = {rel: (site / rel).stat().st_ino for rel in (page, meta, listing)}
    make_wheel(wheelhouse, "newcomer", "1.0", D12)
    build(wheelhouse, site)
    # Same bytes: the same inode, linked from the old tree. Changed bytes: a new file.
    assert (site / page).stat().st_ino == before[page]
    assert (site / meta).stat().st_ino == before[meta]
    assert (site / listing).stat().st_ino != before[listing]
    fresh = build(wheelhouse, tmp_path / "fresh")
    assert snapshot(site) == snapshot(tmp_path / "fresh")
    assert fresh.tree.name.split(".")[-1] == site.resolve().name.split(".")[-1]


def test_a_failed_regeneration_leaves_the_old_site_and_no_debris(
    wheelhouse: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    build(wheelhouse, site)
    before = snapshot(site)
    entries = sorted(p.name for p in tmp_path.iterdir())
    # A new wheel that vanishes between the scan and the write (a concurrent clean-up).
    newcomer = make_wheel(wheelhouse, "newcomer", "1.0", D12)
    tree = index.render_site(index.plan_roots(*_scan(wheelhouse)), None)
    newcomer.unlink()
    with pytest.raises(FileNotFoundError):
        index.publish_tree(tree, site)
    assert snapshot(site) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == entries


def _scan(wh: Path) -> tuple[list[index.Dist], list[rules.RulesSource], str]:
    dists, _ = index.scan(wh)
    return dists, rules.image_sources([]), "x86_64"


def _bzip2_wheel(wh: Path, name: str) -> Path:
    """A wheel whose members are bzip2-compressed: valid, but only zipfile reads it."""
    source = make_wheel(wh, name, "1.0", D12)
    with zipfile.ZipFile(source) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(source, "w", zipfile.ZIP_BZIP2) as zf:
        for info, data in members:
            info.compress_type = zipfile.ZIP_BZIP2
            zf.writestr(info, data)
    return source


def test_archives_the_fast_reader_declines_are_checked_by_zipfile(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    good = _bzip2_wheel(wh, "bzgood")
    bad = _bzip2_wheel(wh, "bzbad")
    with zipfile.ZipFile(bad) as zf:
        info = zf.getinfo("bzbad-1.0.dist-info/METADATA")
    data = bytearray(bad.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode())
    data[start + info.compress_size // 2] ^= 0x10
    bad.write_bytes(bytes(data))
    dists, problems = index.scan(wh)
    assert [d.filename for d in dists] == [good.name]
    assert dists[0].metadata is not None and b"Name: bzgood" in dists[0].metadata
    assert [p.filename for p in problems] == [bad.name]


def _corrupt_crc(wh: Path) -> str:
    path = make_wheel(wh, "crc", "1.0", D12)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("crc-1.0.dist-info/METADATA")
    data = bytearray(path.read_bytes())
    # Flip a bit inside METADATA's compressed bytes: the zip still opens, its CRC fails.
    start = info.header_offset + 30 + len(info.filename.encode())
    data[start + info.compress_size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return path.name


def _flip_member_bit(path: Path, member: str) -> None:
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _with_extra_member(wh: Path, project: str, content: bytes, compression: int) -> Path:
    path = make_wheel(wh, project, "1.0", D12)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(zipfile.ZipInfo(f"{project}/data.bin"), content, compress_type=compression)
    return path


def _corrupt_code_member(wh: Path) -> str:
    # Not only METADATA is checked: every member's CRC-32 is.
    path = make_wheel(wh, "codecrc", "1.0", D12)
    _flip_member_bit(path, "codecrc/__init__.py")
    return path.name


def _corrupt_stored_member(wh: Path) -> str:
    path = _with_extra_member(wh, "storedcrc", b"stored bytes " * 40, zipfile.ZIP_STORED)
    _flip_member_bit(path, "storedcrc/data.bin")
    return path.name


def _corrupt_big_member(wh: Path) -> str:
    # Bigger than what is inflated in one go: checked by zipfile's own reader.
    path = _with_extra_member(wh, "bigcrc", os.urandom(3 << 20), zipfile.ZIP_DEFLATED)
    _flip_member_bit(path, "bigcrc/data.bin")
    return path.name


def _renamed_member(wh: Path) -> str:
    path = make_wheel(wh, "renamed", "1.0", D12)
    data = path.read_bytes()
    # The local header of the first member names another file than the central directory.
    path.write_bytes(data.replace(b"renamed/__init__.py", b"renamed/__init__.pz", 1))
    return path.name


def _truncated(wh: Path) -> str:
    path = make_wheel(wh, "truncated", "1.0", D12)
    path.write_bytes(path.read_bytes()[:-30])
    return path.name


def _no_metadata(wh: Path) -> str:
    path = wh / f"nometa-1.0-{D12}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("nometa-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        zf.writestr("nometa-1.0.dist-info/RECORD", "")
    return path.name


def _wrong_name(wh: Path) -> str:
    return make_wheel(wh, "liar", "1.0", D12, metadata_name="somebody-else").name


def _bad_filename(wh: Path) -> str:
    path = wh / "not-a-wheel.whl"
    path.write_bytes(b"PK")
    return path.name


def _bad_sdist(wh: Path) -> str:
    path = wh / "broken-1.0.tar.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    return path.name


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_corrupt_crc, "CRC"),
        (_corrupt_code_member, "codecrc/__init__.py"),
        (_corrupt_stored_member, "CRC"),
        (_corrupt_big_member, "bigcrc/data.bin"),
        (_renamed_member, "renamed/__init__.py"),
        (_truncated, "zip"),
        (_no_metadata, "METADATA is missing"),
        (_wrong_name, "its metadata says somebody-else 1.0"),
        (_bad_filename, "not a valid wheel file name"),
        (_bad_sdist, "not a readable archive"),
    ],
)
def test_a_corrupt_distribution_is_reported_and_never_served(
    wheelhouse: Path, tmp_path: Path, make: object, reason: str
) -> None:
    bad = make(wheelhouse)  # type: ignore[operator]
    site = tmp_path / "site"
    result = run("index", str(wheelhouse), "-o", str(site))
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and bad in result.stderr and reason in result.stderr
    files = snapshot(site)
    shown = {bad}
    if bad.endswith(".whl") and bad != "not-a-wheel.whl":
        shown.add(views.plain_filename(bad))
    for name in shown:
        assert not any(Path(path).name.startswith(name) for path in files)
        assert not any(name.encode() in content for content in files.values())


def test_cli_json_and_refusals(wheelhouse: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = run("index", str(wheelhouse), "-o", str(site), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["changed"] is True
    assert data["roots"][0] == {"tag": None, "path": "simple/", "projects": 2, "files": 7}
    again = json.loads(run("index", str(wheelhouse), "-o", str(site), "--json").stdout)
    assert again["changed"] is False

    not_a_site = tmp_path / "docs"
    not_a_site.mkdir()
    (not_a_site / "keep.txt").write_text("mine")
    refused = run("index", str(wheelhouse), "-o", str(not_a_site))
    assert refused.returncode == 2
    assert "not a wheelfarm site" in refused.stderr
    assert (not_a_site / "keep.txt").read_text() == "mine"

    missing = run("index", str(tmp_path / "nowhere"), "-o", str(site))
    assert missing.returncode == 2
    assert "is not a directory" in missing.stderr


# --- the scan record: a rerun reads only what changed ------------------------------------------


def _age(wh: Path, seconds: int = 60) -> None:
    """Date every file of the wheelhouse `seconds` back: files modified just before a scan are
    read again on the next run whatever their stamp says (they may change again unseen)."""
    past = time.time_ns() - seconds * 1_000_000_000
    for path in wh.iterdir():
        if path.is_file():
            os.utime(path, ns=(past, past))


def _damage_in_place(path: Path) -> None:
    """Flip a bit inside the METADATA member, keeping the file's size, mtime and inode."""
    before = path.stat()
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/METADATA"))
    at = info.header_offset + 30 + len(info.filename.encode()) + info.compress_size // 2
    with path.open("r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0x01]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def test_a_rerun_reads_only_files_whose_size_mtime_or_inode_changed(
    wheelhouse: Path, tmp_path: Path
) -> None:
    _age(wheelhouse)
    site = tmp_path / "site"
    build(wheelhouse, site)
    record = json.loads((site / index.SCAN_RECORD).read_bytes())
    assert sorted(record["files"]) == sorted(p.name for p in wheelhouse.iterdir() if p.is_file())
    assert str(wheelhouse).encode() not in (site / index.SCAN_RECORD).read_bytes()
    victim = wheelhouse / f"demo_pkg-1.0-{D13}.whl"
    _damage_in_place(victim)
    # Same stamp: the rerun trusts what it read before (as make and rsync do), serves the same.
    again = build(wheelhouse, site)
    assert again.changed is False
    assert again.problems == ()
    # A new mtime: the file is read again, found corrupt, reported and left out.
    os.utime(victim)
    third = build(wheelhouse, site)
    assert [p.filename for p in third.problems] == [victim.name]
    assert "CRC" in third.problems[0].reason
    assert not (site / "simple" / "demo-pkg" / victim.name).exists()
    assert victim.name not in json.loads((site / index.SCAN_RECORD).read_bytes())["files"]


def test_files_modified_just_before_a_scan_are_read_again(wheelhouse: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(wheelhouse, site)  # the wheelhouse was written a moment ago
    victim = wheelhouse / f"demo_pkg-1.0-{D13}.whl"
    _damage_in_place(victim)
    again = build(wheelhouse, site)
    assert [p.filename for p in again.problems] == [victim.name]


def test_the_scan_record_is_outside_the_digest_and_follows_the_files(
    wheelhouse: Path, tmp_path: Path
) -> None:
    _age(wheelhouse)
    site = tmp_path / "site"
    first = build(wheelhouse, site)
    before = (site / index.SCAN_RECORD).read_bytes()
    _age(wheelhouse, seconds=120)  # new mtimes, same bytes
    again = build(wheelhouse, site)
    assert again.changed is False
    assert again.tree == first.tree
    after = (site / index.SCAN_RECORD).read_bytes()
    assert after != before
    stamps = json.loads(after)["files"]
    victim = wheelhouse / f"demo_pkg-1.0-{D13}.whl"
    assert stamps[victim.name][1] == victim.stat().st_mtime_ns


def test_a_damaged_scan_record_means_reading_everything_again(
    wheelhouse: Path, tmp_path: Path
) -> None:
    _age(wheelhouse)
    site = tmp_path / "site"
    build(wheelhouse, site)
    before = snapshot(site)
    victim = wheelhouse / f"demo_pkg-1.0-{D13}.whl"
    _damage_in_place(victim)
    (site / index.SCAN_RECORD).write_text('{"format": 1, "files": {"x.whl": [1]}}')
    again = build(wheelhouse, site)
    assert [p.filename for p in again.problems] == [victim.name]
    assert snapshot(site) != before


def test_a_rerun_links_metadata_from_the_previous_tree_or_reads_again_when_it_is_gone(
    wheelhouse: Path, tmp_path: Path
) -> None:
    _age(wheelhouse)
    site = tmp_path / "site"
    build(wheelhouse, site)
    meta = f"simple/demo-pkg/demo_pkg-1.0-{D12}.whl.metadata"
    inode = (site / meta).stat().st_ino
    make_wheel(wheelhouse, "newcomer", "1.0", D12)
    build(wheelhouse, site)
    assert (site / meta).stat().st_ino == inode
    # The previous tree lost a METADATA file the record points to (as when a concurrent run
    # swapped in its own tree and removed this one): the run reads every file afresh instead.
    lost = f"simple/demo-pkg/demo_pkg-1.0-{D11}.whl.metadata"
    (site / lost).unlink()
    make_wheel(wheelhouse, "latecomer", "1.0", D12)
    result = build(wheelhouse, site)
    assert result.changed is True
    fresh = build(wheelhouse, tmp_path / "fresh")
    assert snapshot(site) == snapshot(tmp_path / "fresh")
    assert fresh.tree.name.split(".")[-1] == result.tree.name.split(".")[-1]
    assert (site / lost).read_bytes().startswith(b"Metadata-Version")


def test_a_wheelhouse_on_another_file_system_is_copied_once_per_file(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    assert shm.is_dir(), "this test needs /dev/shm (a tmpfs on Linux)"
    assert shm.stat().st_dev != tmp_path.stat().st_dev, "/dev/shm must be another file system"
    with tempfile.TemporaryDirectory(dir=shm) as other:
        wh = Path(other) / "wh"
        wh.mkdir()
        make_wheel(wh, "x", "1.0", D12)
        make_sdist(wh, "x", "1.0")
        site = tmp_path / "site"
        result = build(wh, site)
        canonical = site / "simple" / "x" / f"x-1.0-{D12}.whl"
        view = (
            site / "linux_x86_64_debian_12" / "simple" / "x" / "x-1.0-cp311-cp311-linux_x86_64.whl"
        )
        assert canonical.read_bytes() == (wh / canonical.name).read_bytes()
        # Hard links cannot cross file systems: one copy, which every other root links to.
        assert canonical.stat().st_dev == site.resolve().stat().st_dev
        assert canonical.stat().st_ino == view.stat().st_ino
        same_fs = tmp_path / "wh"
        shutil.copytree(wh, same_fs)
        local = build(same_fs, tmp_path / "local")

    def served(site: Path) -> dict[str, bytes]:
        return {k: v for k, v in snapshot(site).items() if k != index.SCAN_RECORD}

    assert served(site) == served(tmp_path / "local")
    assert result.tree.name.split(".")[-1] == local.tree.name.split(".")[-1]


def test_metadata_shared_by_several_wheels_is_parsed_once_and_checked_for_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    first = make_wheel(wh, "shared", "1.0", D12)
    # The same bytes under the names of other builds of 1.0, and of a version they do not say.
    for tag in (D11, D13):
        shutil.copyfile(first, wh / f"shared-1.0-{tag}.whl")
    shutil.copyfile(first, wh / f"shared-2.0-{D12}.whl")
    parsed: list[bytes] = []
    real_parse = index.wheelmeta.parse

    def counting_parse(data: bytes) -> index.wheelmeta.Metadata:
        parsed.append(data)
        return real_parse(data)

    monkeypatch.setattr(index.wheelmeta, "parse", counting_parse)
    dists, problems = index.scan(wh)
    assert sorted(d.filename for d in dists) == sorted(
        f"shared-1.0-{tag}.whl" for tag in (D11, D12, D13)
    )
    assert [(p.filename, p.reason) for p in problems] == [
        (f"shared-2.0-{D12}.whl", "its metadata says shared 1.0, its file name shared 2.0")
    ]
    assert len(parsed) == 1
