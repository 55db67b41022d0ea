"""`wheelfarm retag` and the retag library on a real wheel with a compiled C extension, built
once per session with this machine's compiler; the result is unpacked, every RECORD hash checked,
and installed with stock pip into a fresh venv."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from wf_cli import OS_RELEASE, Result, clean_env, run, run_in_process
from wheel.wheelfile import WheelFile

from wheelfarm import retag, tags
from wheelfarm.errors import BadInput

HELLO_C = r"""
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "The answer."}, {NULL, NULL, 0, NULL}
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "wf_hello", NULL, -1, methods};
PyMODINIT_FUNC PyInit_wf_hello(void) { return PyModule_Create(&module); }
"""
PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "wf-hello"
version = "1.0"
description = "A C extension built by wheelfarm's tests"
"""
SETUP_PY = """
from setuptools import Extension, setup
setup(ext_modules=[Extension("wf_hello", ["hello.c"])])
"""


def pip_env() -> dict[str, str]:
    """pip isolated from this host's configuration (its extra indexes and constraints)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


@pytest.fixture(scope="session")
def c_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("wf-hello-src")
    (src / "hello.c").write_text(HELLO_C)
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "setup.py").write_text(SETUP_PY)
    dist = tmp_path_factory.mktemp("wf-hello-dist")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps"),
            *("--no-index", "-w", str(dist), str(src)),
        ],
        capture_output=True,
        text=True,
        env=pip_env(),
        check=False,
    )
    assert proc.returncode == 0, f"building the test wheel failed:\n{proc.stdout}\n{proc.stderr}"
    (wheel,) = dist.glob("*.whl")
    return wheel


@pytest.fixture
def wheel(c_wheel: Path, tmp_path: Path) -> Path:
    """A private copy of the session's wheel in its own directory."""
    here = tmp_path / "in"
    here.mkdir()
    return Path(shutil.copy2(c_wheel, here))


def arch_of(wheel: Path) -> str:
    parts = tags.split_platform(retag.parse_name(wheel).platforms[0])
    assert parts is not None
    return parts[0]


def other_arch(arch: str) -> str:
    return "aarch64" if arch == "x86_64" else "x86_64"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(*dirs: Path) -> dict[str, str]:
    """Every file under the directories with its hash: to prove nothing else was written."""
    return {str(p): sha256(p) for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


def check_record(path: Path) -> dict[str, bytes]:
    """Unpack a wheel, check each member against RECORD, and return the members."""
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}
    (record_name,) = [n for n in members if n.endswith(".dist-info/RECORD")]
    rows = list(csv.reader(io.StringIO(members[record_name].decode())))
    listed = {row[0] for row in rows}
    assert listed == set(members), "RECORD and the zip list different files"
    for name, digest, size in rows:
        if name == record_name:
            assert (digest, size) == ("", "")
            continue
        algorithm, _, encoded = digest.partition("=")
        assert algorithm == "sha256"
        expected = base64.urlsafe_b64encode(hashlib.sha256(members[name]).digest()).rstrip(b"=")
        assert encoded == expected.decode(), f"hash of {name} does not match RECORD"
        assert int(size) == len(members[name])
    return members


def wheel_tags(members: dict[str, bytes]) -> list[str]:
    (name,) = [n for n in members if n.endswith(".dist-info/WHEEL")]
    return [
        line.split(":", 1)[1].strip()
        for line in members[name].decode().splitlines()
        if line.startswith("Tag:")
    ]


def metadata_lines(members: dict[str, bytes], field: str) -> list[str]:
    (name,) = [n for n in members if n.endswith(".dist-info/METADATA")]
    return [
        line.split(":", 1)[1].strip()
        for line in members[name].decode().split("\n\n", 1)[0].splitlines()
        if line.startswith(f"{field}:")
    ]


# --- what a retag writes -----------------------------------------------------------------------


def test_retag_name_wheel_and_record_agree(wheel: Path, tmp_path: Path) -> None:
    arch = arch_of(wheel)
    target = f"linux_{arch}_debian_12"
    before = sha256(wheel)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    written = retag.retag_wheel(wheel, target, out_dir)

    assert written == out_dir / wheel.name.replace(f"-linux_{arch}.whl", f"-{target}.whl")
    assert sorted(p.name for p in out_dir.iterdir()) == [written.name]  # no temp files left
    assert sha256(wheel) == before  # the input is untouched
    members = check_record(written)
    original = check_record(wheel)
    assert wheel_tags(members) == [t.rsplit("-", 1)[0] + f"-{target}" for t in wheel_tags(original)]
    assert all(t.endswith(f"-{target}") for t in wheel_tags(members))
    so = [n for n in members if n.endswith(".so")]
    assert so and all(members[n] == original[n] for n in so)  # the extension is the same bytes


def test_retagged_wheel_installs_with_stock_pip_under_the_plain_name(
    wheel: Path, tmp_path: Path
) -> None:
    arch = arch_of(wheel)
    target = f"linux_{arch}_debian_12"
    written = retag.retag_wheel(wheel, target, tmp_path)
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    plain = plain_dir / written.name.replace(f"-{target}.whl", f"-linux_{arch}.whl")
    shutil.copyfile(written, plain)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index"]

    refused = subprocess.run(
        [*pip, "--no-deps", str(written)],
        capture_output=True,
        text=True,
        env=pip_env(),
        check=False,
    )
    assert refused.returncode != 0  # stock pip does not know the distro tag…
    assert "not a supported wheel" in refused.stderr

    installed = subprocess.run(
        [*pip, "--no-deps", str(plain)],
        capture_output=True,
        text=True,
        env=pip_env(),
        check=False,
    )
    assert installed.returncode == 0, installed.stderr  # …but installs the plain-named copy
    imported = subprocess.run(
        [str(python), "-c", "import wf_hello; print(wf_hello.answer())"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "42"
    (dist_info,) = (venv / "lib").glob("python*/site-packages/wf_hello-1.0.dist-info")
    assert f"Tag: cp{sys.version_info[0]}{sys.version_info[1]}" in (dist_info / "WHEEL").read_text()
    assert f"-{target}\n" in (dist_info / "WHEEL").read_text()  # the true tag is kept


def test_output_is_deterministic(wheel: Path, tmp_path: Path) -> None:
    target = f"linux_{arch_of(wheel)}_rhel_9"
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    one = retag.retag_wheel(wheel, target, first)
    time.sleep(1.1)  # a wall-clock timestamp would now differ
    two = retag.retag_wheel(wheel, target, second)
    assert one.read_bytes() == two.read_bytes()


def test_source_date_epoch_sets_every_timestamp(
    wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = f"linux_{arch_of(wheel)}_rhel_9"
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for directory in (first, second, third):
        directory.mkdir()
    one = retag.retag_wheel(wheel, target, first, source_date_epoch=1700000000)
    # The library never reads the host's SOURCE_DATE_EPOCH (the build's cache key does not hold
    # it): the epoch passed is the one used, and without one each member keeps its date.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    two = retag.retag_wheel(wheel, target, second, source_date_epoch=1700000000)
    assert one.read_bytes() == two.read_bytes()
    with zipfile.ZipFile(one) as zf:
        stamps = {info.date_time for info in zf.infolist()}
    assert stamps == {time.gmtime(1700000000)[:6]}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "not a number")
    kept = retag.retag_wheel(wheel, target, third)
    with zipfile.ZipFile(kept) as zf, zipfile.ZipFile(wheel) as original:
        assert {i.date_time for i in zf.infolist()} == {i.date_time for i in original.infolist()}


def test_cli_retag_reads_source_date_epoch(wheel: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = f"linux_{arch_of(wheel)}_rhel_9"
    env = clean_env(SOURCE_DATE_EPOCH="1700000000")
    result = run("retag", str(wheel), "--platform", target, "-o", str(out), env=env)
    assert result.returncode == 0, result.stderr
    (written,) = out.iterdir()
    with zipfile.ZipFile(written) as zf:
        assert {info.date_time for info in zf.infolist()} == {time.gmtime(1700000000)[:6]}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("yesterday", "is not an integer"),
        ("1.5e9", "is not an integer"),
        ("9" * 20, "is after 2107"),
    ],
)
def test_cli_retag_refuses_a_bad_source_date_epoch(
    wheel: Path, tmp_path: Path, value: str, reason: str
) -> None:
    out = tmp_path / "out"
    target = f"linux_{arch_of(wheel)}_rhel_9"
    env = clean_env(SOURCE_DATE_EPOCH=value)
    result = run("retag", str(wheel), "--platform", target, "-o", str(out), env=env)
    assert result.returncode == 2, result.stderr
    assert f"SOURCE_DATE_EPOCH={value!r} {reason}" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not out.exists()


def test_set_requires_external_in_place(wheel: Path) -> None:
    original = check_record(wheel)
    retag.set_requires_external(wheel, ["libxml2 (>=2.9)", "zlib1g", "zlib1g"])
    members = check_record(wheel)
    assert metadata_lines(members, "Requires-External") == ["libxml2 (>=2.9)", "zlib1g"]
    assert metadata_lines(members, "Name") == ["wf-hello"]
    assert wheel_tags(members) == wheel_tags(original)

    retag.set_requires_external(wheel, ["libc6"])  # replaces, never appends
    members = check_record(wheel)
    assert metadata_lines(members, "Requires-External") == ["libc6"]
    assert sorted(p.name for p in wheel.parent.iterdir()) == [wheel.name]
    # Everything but METADATA and RECORD is byte for byte what it was.
    changed = {n for n in original if original[n] != members[n]}
    assert {n.rsplit("/", 1)[1] for n in changed} == {"METADATA", "RECORD"}


def test_retag_and_requires_external_in_one_write(wheel: Path, tmp_path: Path) -> None:
    target = f"linux_{arch_of(wheel)}_debian_12"
    written = retag.retag_wheel(wheel, target, tmp_path, requires_external=["libpq5"])
    members = check_record(written)
    assert metadata_lines(members, "Requires-External") == ["libpq5"]
    assert all(t.endswith(target) for t in wheel_tags(members))


def test_bad_requires_external_entry_writes_nothing(wheel: Path) -> None:
    before = listing(wheel.parent)
    with pytest.raises(BadInput, match="spans lines"):
        retag.set_requires_external(wheel, ["libc6\nName: evil"])
    assert listing(wheel.parent) == before


# --- the command -------------------------------------------------------------------------------


def test_cli_retag_beside_the_input_prints_the_path(wheel: Path) -> None:
    arch = arch_of(wheel)
    result = run("retag", str(wheel), "--platform", f"linux_{arch}_debian_12")
    assert result.returncode == 0, result.stderr
    expected = wheel.parent / wheel.name.replace(f"linux_{arch}", f"linux_{arch}_debian_12")
    assert result.stdout == f"{expected}\n"
    assert expected.is_file()
    check_record(expected)


def test_cli_retag_from_os_release_and_rules(wheel: Path, tmp_path: Path) -> None:
    arch = arch_of(wheel)
    out = tmp_path / "new" / "dir"
    result = run("retag", str(wheel), "--os-release", str(OS_RELEASE / "rocky-9.3"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    (written,) = out.iterdir()
    assert written.name.endswith(f"-linux_{arch}_rhel_9.whl")  # the shipped defaults' build tag

    custom = tmp_path / "mine.cfg"
    custom.write_text(f'{{"linux_{arch}_rocky_9": {{"build": "linux_{arch}_el_9"}}}}')
    result = run(
        "retag", str(wheel), "--os-release", str(OS_RELEASE / "rocky-9.3"),
        "--rules", str(custom), "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / wheel.name.replace(f"linux_{arch}", f"linux_{arch}_el_9")).is_file()


def test_existing_output_needs_force(
    wheel: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = f"linux_{arch_of(wheel)}_debian_12"
    existing = tmp_path / wheel.name.replace(".whl", "").rsplit("-", 1)[0]
    existing = existing.with_name(f"{existing.name}-{target}.whl")
    existing.write_bytes(b"an older build")
    args = ("retag", str(wheel), "--platform", target, "-o", str(tmp_path))

    refused = run_in_process(capsys, monkeypatch, *args)
    assert refused.returncode == 2
    assert "already exists" in refused.stderr
    assert "--force" in refused.stderr
    assert existing.read_bytes() == b"an older build"

    forced = run_in_process(capsys, monkeypatch, *args, "--force")
    assert forced.returncode == 0, forced.stderr
    check_record(existing)


# --- refusals: exit 2, a reason, nothing written -----------------------------------------------


def make_pure_wheel(directory: Path) -> Path:
    path = directory / "pure-1.0-py3-none-any.whl"
    with WheelFile(path, "w") as wf:
        wf.writestr("pure.py", "X = 1\n")
        wf.writestr("pure-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pure\n")
        wf.writestr(
            "pure-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    return path


def renamed(wheel: Path, platform: str) -> Path:
    return Path(shutil.copy2(wheel, wheel.with_name(wheel.name.replace(
        f"linux_{arch_of(wheel)}.whl", f"{platform}.whl"
    ))))  # fmt: skip


def rewritten(wheel: Path, change: dict[str, bytes | None]) -> Path:
    """Change members of the wheel in place (None: remove one), leaving RECORD as it was."""
    temp = wheel.with_name(wheel.name + ".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(temp, "w") as dst:
        for info in src.infolist():
            data = change.get(info.filename, src.read(info))
            if data is not None:
                dst.writestr(info, data)
        for member, data in change.items():
            if member not in src.namelist() and data is not None:
                dst.writestr(member, data)
    return temp.replace(wheel)


def rebuilt(wheel: Path, change: dict[str, bytes]) -> Path:
    """Change members of the wheel in place with a fresh, matching RECORD."""
    temp = wheel.parent / "rebuilding" / wheel.name  # WheelFile wants the real wheel name
    temp.parent.mkdir()
    with zipfile.ZipFile(wheel) as src, WheelFile(temp, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("/RECORD"):
                dst.writestr(info, change.get(info.filename, src.read(info)))
    temp.replace(wheel)
    temp.parent.rmdir()
    return wheel


def so_member(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return next(n for n in zf.namelist() if n.endswith(".so"))


def refuse(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *args: str,
) -> Result:
    watched = [p for p in (tmp_path / "in", tmp_path / "out") if p.exists()]
    before = listing(*watched)
    result = run_in_process(capsys, monkeypatch, "retag", *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert listing(*watched) == before, "a refused retag wrote or changed a file"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    return result


@pytest.mark.parametrize(
    "case",
    [
        ("any", "pure-Python wheel"),
        ("manylinux_2_17_{arch}.manylinux2014_{arch}", "a manylinux wheel"),
        ("musllinux_1_2_{arch}", "a musllinux wheel"),
    ],
)
def test_refuses_wheels_that_already_say_where_they_run(
    wheel: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, str],
) -> None:
    platform, reason = case
    arch = arch_of(wheel)
    subject = (
        make_pure_wheel(wheel.parent)
        if platform == "any"
        else renamed(wheel, platform.format(arch=arch))
    )
    result = refuse(
        capsys, monkeypatch, tmp_path, str(subject), "--platform", f"linux_{arch}_debian_12",
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert reason in result.stderr


@pytest.mark.parametrize(
    "platform",
    ["linux_{arch}", "manylinux_2_28_{arch}", "debian_12", "linux_{arch}_Debian_12", "linux"],
)
def test_refuses_a_platform_that_is_not_a_distro_tag(
    wheel: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
) -> None:
    tag = platform.format(arch=arch_of(wheel))
    result = refuse(
        capsys, monkeypatch, tmp_path, str(wheel), "--platform", tag, "-o", str(tmp_path / "out")
    )
    assert f"platform {tag!r} is not a distro tag" in result.stderr


def test_refuses_another_arch(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = arch_of(wheel)
    other = other_arch(arch)
    result = refuse(
        capsys, monkeypatch, tmp_path, str(wheel), "--platform", f"linux_{other}_debian_12"
    )
    assert f"is built for {arch}" in result.stderr
    assert f"is for {other}" in result.stderr


@pytest.mark.parametrize(
    "damage",
    ["flipped-byte", "truncated", "not-a-zip", "not-a-wheel-name", "unlisted-member",
     "no-record", "member-missing", "wheel-tag-disagrees"],
)  # fmt: skip
def test_refuses_corrupt_or_non_wheel_input(
    wheel: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
) -> None:
    arch = arch_of(wheel)
    dist_info = "wf_hello-1.0.dist-info"
    subject = wheel
    if damage == "flipped-byte":
        with zipfile.ZipFile(wheel) as zf:
            data = bytearray(zf.read(so_member(wheel)))
        data[len(data) // 2] ^= 0xFF
        rewritten(wheel, {so_member(wheel): bytes(data)})
    elif damage == "truncated":
        wheel.write_bytes(wheel.read_bytes()[: wheel.stat().st_size // 2])
    elif damage == "not-a-zip":
        wheel.write_text("this is not a zip archive\n")
    elif damage == "not-a-wheel-name":
        subject = wheel.rename(wheel.with_name("wf_hello.zip"))
    elif damage == "unlisted-member":
        rewritten(wheel, {"wf_hello_extra.py": b"print('sneaked in')\n"})
    elif damage == "no-record":
        rewritten(wheel, {f"{dist_info}/RECORD": None})
    elif damage == "member-missing":
        rewritten(wheel, {so_member(wheel): None})
    elif damage == "wheel-tag-disagrees":
        with zipfile.ZipFile(wheel) as zf:
            text = zf.read(f"{dist_info}/WHEEL").decode()
        text = text.replace(f"-linux_{arch}", f"-linux_{arch}_fedora_40")
        rebuilt(wheel, {f"{dist_info}/WHEEL": text.encode()})
    result = refuse(
        capsys, monkeypatch, tmp_path, str(subject), "--platform", f"linux_{arch}_debian_12",
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert subject.name in result.stderr
    reasons = {
        "flipped-byte": "Hash mismatch for file",
        "truncated": "not a valid wheel",
        "not-a-zip": "not a valid wheel",
        "not-a-wheel-name": "not a wheel file name",
        "unlisted-member": "No hash found for file 'wf_hello_extra.py'",
        "no-record": "RECORD file",
        "member-missing": "RECORD lists",
        "wheel-tag-disagrees": "WHEEL says Tag:",
    }
    assert reasons[damage] in result.stderr


def test_refuses_missing_wheel_and_bad_option_mixes(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = arch_of(wheel)
    result = refuse(capsys, monkeypatch, tmp_path, str(tmp_path / "in" / "gone.whl"),
                    "--platform", f"linux_{arch}_debian_12")  # fmt: skip
    assert "does not exist" in result.stderr
    result = refuse(capsys, monkeypatch, tmp_path, str(wheel))
    assert "exactly one of --platform TAG and --os-release FILE" in result.stderr
    result = refuse(
        capsys, monkeypatch, tmp_path, str(wheel), "--platform", f"linux_{arch}_debian_12",
        "--os-release", str(OS_RELEASE / "debian-12"),
    )  # fmt: skip
    assert "exactly one of" in result.stderr


def test_rules_files_are_checked_whichever_option_is_used(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "bad.cfg"
    broken.write_text('{"linux_x86_64_debian_12": {"buil": "linux_x86_64_debian_12"}}')
    result = refuse(
        capsys, monkeypatch, tmp_path, str(wheel), "--platform",
        f"linux_{arch_of(wheel)}_debian_12", "--rules", str(broken), "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert str(broken) in result.stderr
    assert "buil" in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_output_directory_that_cannot_be_made_or_written(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = f"linux_{arch_of(wheel)}_debian_12"
    a_file = tmp_path / "afile"
    a_file.write_text("not a directory")
    result = refuse(capsys, monkeypatch, tmp_path, str(wheel), "--platform", target,
                    "-o", str(a_file / "sub"))  # fmt: skip
    assert f"{a_file} is not a directory" in result.stderr
    result = refuse(capsys, monkeypatch, tmp_path, str(wheel), "--platform", target,
                    "-o", str(a_file))  # fmt: skip
    assert f"output directory {a_file} is not a directory" in result.stderr
    assert a_file.read_text() == "not a directory"

    before = sorted(p.name for p in Path("/proc/sys").iterdir())
    result = refuse(capsys, monkeypatch, tmp_path, str(wheel), "--platform", target,
                    "-o", "/proc/sys")  # fmt: skip
    assert "cannot write to /proc/sys" in result.stderr
    assert sorted(p.name for p in Path("/proc/sys").iterdir()) == before
    result = refuse(capsys, monkeypatch, tmp_path, str(wheel), "--platform", target,
                    "-o", "/proc/sys/wf-test-new/sub")  # fmt: skip
    assert "cannot create output directory /proc/sys/wf-test-new/sub" in result.stderr


def test_several_wheels_are_all_or_nothing(
    wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = arch_of(wheel)
    bad = make_pure_wheel(wheel.parent)
    result = refuse(
        capsys, monkeypatch, tmp_path, str(wheel), str(bad), "--platform",
        f"linux_{arch}_debian_12", "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert "pure-Python wheel" in result.stderr
    assert not (tmp_path / "out").exists()  # not even the directory -o asked for
