"""Rewrite a built wheel: give it a distro platform tag, record the distro packages it needs.

The zip is read and written with `wheel.wheelfile.WheelFile`, which checks every member against
RECORD on the way in and writes a fresh RECORD on the way out, so a rewritten wheel's file name,
`WHEEL` tags and RECORD always agree. Output is deterministic: members keep their order, mode and
timestamp (all set to the given source date epoch when there is one), so the same input gives the
same bytes. The library never reads the environment: `wheelfarm build` passes the sdist's epoch
(part of its cache key), and only the `retag` command reads SOURCE_DATE_EPOCH, at its start.
Every write goes to a temporary directory beside the destination and is moved into place with
os.replace; nothing is left behind on failure or Ctrl-C."""

from __future__ import annotations

import csv
import io
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheel.wheelfile import MINIMUM_TIMESTAMP, WheelError, WheelFile

from wheelfarm import fsutil, osrelease, rules, tags, wheelmeta, wheelname
from wheelfarm.errors import BadInput
from wheelfarm.wheelname import WheelName

DateTime = tuple[int, int, int, int, int, int]

# Signatures over the old RECORD would be false after a rewrite.
_SIGNATURE_SUFFIXES = ("/RECORD.jws", "/RECORD.p7s")


class _DatedWheelFile(WheelFile):  # type: ignore[misc]  # wheel ships no type hints
    """A WheelFile that stamps members it creates itself (RECORD) with a fixed time instead of
    the wall clock, so rewriting the same wheel twice gives the same bytes."""

    def __init__(self, path: Path, date_time: DateTime) -> None:
        super().__init__(path, "w")
        self._date_time = date_time

    def writestr(self, zinfo_or_arcname: Any, data: Any, compress_type: int | None = None) -> None:
        if isinstance(zinfo_or_arcname, str):
            info = zipfile.ZipInfo(zinfo_or_arcname, date_time=self._date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o644 | stat.S_IFREG) << 16
            zinfo_or_arcname = info
        super().writestr(zinfo_or_arcname, data, compress_type)


def parse_name(wheel: Path) -> WheelName:
    """Split a wheel file name; anything else is refused as bad input."""
    try:
        return wheelname.parse(wheel.name)
    except BadInput:
        raise BadInput(
            f"{wheel}: not a wheel file name (NAME-VERSION-PY-ABI-PLATFORM.whl)",
            hint="pass a .whl file built by pip wheel or python -m build",
        ) from None


# Zip timestamps end with 2107.
_LATEST_EPOCH = 4354819199


def source_date_epoch_from(environ: Mapping[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH from an environment (None when unset or empty); anything but a whole
    number of seconds a zip file can hold is refused as bad input."""
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return None
    try:
        seconds = int(epoch)
    except ValueError:
        raise BadInput(
            f"SOURCE_DATE_EPOCH={epoch!r} is not an integer number of seconds",
            hint="unset it, or set it to e.g. $(git log -1 --format=%ct)",
        ) from None
    if seconds > _LATEST_EPOCH:
        raise BadInput(
            f"SOURCE_DATE_EPOCH={epoch!r} is after 2107, the last date a zip file can hold",
            hint="unset it, or set it to e.g. $(git log -1 --format=%ct)",
        )
    return seconds


def _date_time(epoch: int | None) -> DateTime | None:
    if epoch is None:
        return None
    return time.gmtime(min(max(epoch, MINIMUM_TIMESTAMP), _LATEST_EPOCH))[:6]


def _check_platform_change(wheel: Path, name: WheelName, platform_tag: str) -> None:
    """The refusals of `retag`: only a single-platform Linux wheel of a known arch can move to a
    distro tag of the same arch."""
    plat = ".".join(name.platforms)
    if plat == "any":
        raise BadInput(
            f"{wheel.name}: a pure-Python wheel (platform 'any') runs everywhere; "
            "it must not be tied to one distro",
            hint="publish it as it is",
        )
    if any(tags.is_standard_linux_tag(p) for p in plat.split(".")):
        raise BadInput(
            f"{wheel.name}: a {plat.split('_')[0]} wheel already says where it runs; "
            "retagging it to one distro would throw that away",
            hint="retag only wheels built against a distro's own libraries (linux_<arch>)",
        )
    if len(name.platforms) > 1:
        raise BadInput(f"{wheel.name}: has several platform tags ({plat}); expected one")
    wheel_parts = tags.split_platform(plat)
    if wheel_parts is None:
        raise BadInput(
            f"{wheel.name}: platform {plat!r} is not a Linux platform wheelfarm knows "
            "(linux_<arch> or linux_<arch>_<distro>)"
        )
    if not tags.is_distro_tag(platform_tag):
        raise BadInput(
            f"platform {platform_tag!r} is not a distro tag of the form linux_<arch>_<distro>",
            hint="e.g. linux_x86_64_debian_12; `wheelfarm tags` prints this host's build tag",
        )
    new_arch = tags.split_platform(platform_tag)[0]  # type: ignore[index]
    if new_arch != wheel_parts[0]:
        raise BadInput(
            f"{wheel.name}: is built for {wheel_parts[0]}, platform {platform_tag!r} is for "
            f"{new_arch}",
            hint="a retag never changes the CPU architecture",
        )


def _retag_wheel_file(wheel: Path, data: bytes, name: WheelName, platform_tag: str) -> bytes:
    """Replace the platform of every `Tag:` line, refusing a WHEEL file that disagrees with the
    file name (then it is not clear what the wheel is)."""
    fields, body = wheelmeta.header_fields(data)
    tag_lines = [wheelmeta.field_value(f) for f in fields if wheelmeta.field_name(f) == "tag"]
    if not tag_lines:
        raise BadInput(f"{wheel.name}: its WHEEL file has no Tag lines")
    (platform,) = name.platforms  # _check_platform_change refused several
    for tag in tag_lines:
        parts = tag.split("-")
        if len(parts) != 3 or parts[2] != platform:
            raise BadInput(
                f"{wheel.name}: WHEEL says Tag: {tag}, the file name says platform {platform}",
                hint="the wheel is inconsistent; rebuild it",
            )
    new_tags = tags.unique(tag.rsplit("-", 1)[0] + "-" + platform_tag for tag in tag_lines)
    newline = b"\r\n" if fields[0].endswith(b"\r\n") else b"\n"
    out: list[bytes] = []
    for f in fields:
        if wheelmeta.field_name(f) != "tag":
            out.append(f)
        elif new_tags:
            # All Tag lines go where the first one was, in their original order.
            out.extend(f"Tag: {t}".encode() + newline for t in new_tags)
            new_tags = ()
    return b"".join(out) + body


def _check_requirements(requirements: Sequence[str]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for requirement in requirements:
        value = requirement.strip()
        if not value or "\n" in value or "\r" in value:
            raise BadInput(f"Requires-External entry {requirement!r} is empty or spans lines")
        cleaned.append(value)
    return tags.unique(cleaned)


def _check_record_members(wheel: Path, record: bytes, members: set[str]) -> None:
    """WheelFile checks what the zip holds against RECORD; this checks the other way round."""
    rows = csv.reader(io.StringIO(record.decode("utf-8")))
    missing = sorted(row[0] for row in rows if row and row[0] not in members)
    if missing:
        raise BadInput(
            f"{wheel.name}: RECORD lists {', '.join(missing)}, which the wheel does not contain",
            hint="the file is corrupt or was changed after it was built; rebuild it",
        )


@dataclass(frozen=True)
class _Staged:
    """A rewritten wheel waiting in its temporary directory to be moved to `dest`."""

    temp_dir: Path
    temp_file: Path
    dest: Path

    def commit(self) -> Path:
        try:
            self.temp_file.replace(self.dest)
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        return self.dest

    def discard(self) -> None:
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _rewrite(
    wheel: Path,
    dest: Path,
    *,
    platform_tag: str | None,
    requires_external: tuple[str, ...] | None,
    name: WheelName,
    epoch: int | None,
) -> _Staged:
    """Write the rewritten wheel to a temporary directory beside `dest`."""
    fixed = _date_time(epoch)
    try:
        temp_dir = Path(tempfile.mkdtemp(prefix=".wheelfarm-", dir=dest.parent))
    except OSError as exc:
        raise BadInput(
            f"cannot write to {dest.parent}: {exc.strerror or exc}",
            hint="choose a directory you can write to with -o DIR",
        ) from None
    temp_file = temp_dir / dest.name
    try:
        with WheelFile(wheel, "r") as fin:
            dist_info = fin.dist_info_path
            record_info = fin.getinfo(fin.record_path)
            _check_record_members(wheel, fin.read(fin.record_path), set(fin.namelist()))
            with _DatedWheelFile(temp_file, fixed or record_info.date_time) as fout:
                # RECORD must land in the dist-info directory the wheel really has (its case
                # may differ from the file name's).
                fout.dist_info_path = dist_info
                fout.record_path = fin.record_path
                seen_wheel = seen_metadata = False
                for item in fin.infolist():
                    if item.is_dir() or item.filename == fin.record_path:
                        continue
                    if item.filename.endswith(_SIGNATURE_SUFFIXES):
                        continue
                    data = fin.read(item)  # WheelFile checks it against RECORD
                    if item.filename == f"{dist_info}/WHEEL":
                        seen_wheel = True
                        if platform_tag is not None:
                            data = _retag_wheel_file(wheel, data, name, platform_tag)
                    elif item.filename == f"{dist_info}/METADATA":
                        seen_metadata = True
                        if requires_external is not None:
                            data = wheelmeta.with_requires_external(data, requires_external)
                    out = zipfile.ZipInfo(item.filename, date_time=fixed or item.date_time)
                    out.external_attr = item.external_attr
                    out.compress_type = zipfile.ZIP_DEFLATED
                    fout.writestr(out, data)
                for seen, member in ((seen_wheel, "WHEEL"), (seen_metadata, "METADATA")):
                    if not seen:
                        raise BadInput(f"{wheel.name}: has no {dist_info}/{member}")
    except (WheelError, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError) as exc:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise BadInput(
            f"{wheel}: not a valid wheel ({exc})",
            hint="the file is corrupt or was changed after it was built; rebuild it",
        ) from None
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    try:
        shutil.copymode(wheel, temp_file)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return _Staged(temp_dir, temp_file, dest)


def _existing_wheel(wheel: Path) -> None:
    if not wheel.is_file():
        raise BadInput(f"wheel {wheel} does not exist")


def _stage_retag(
    wheel: Path,
    platform_tag: str,
    out_dir: Path,
    *,
    force: bool,
    requires_external: Sequence[str] | None,
    epoch: int | None,
) -> _Staged:
    _existing_wheel(wheel)
    name = parse_name(wheel)
    _check_platform_change(wheel, name, platform_tag)
    requirements = None if requires_external is None else _check_requirements(requires_external)
    if not out_dir.is_dir():
        if out_dir.exists():
            raise BadInput(f"output directory {out_dir} is not a directory")
        raise BadInput(f"output directory {out_dir} does not exist")
    dest = out_dir / name.with_platform(platform_tag)
    if dest.resolve() == wheel.resolve():
        raise BadInput(
            f"{wheel.name}: already tagged {platform_tag}; the output would replace the input",
            hint="pass another -o DIR, or nothing needs doing",
        )
    if dest.exists() and not force:
        raise BadInput(f"{dest} already exists", hint="pass --force to overwrite it")
    return _rewrite(
        wheel,
        dest,
        platform_tag=platform_tag,
        requires_external=requirements,
        name=name,
        epoch=epoch,
    )


def retag_wheel(
    wheel: Path,
    platform_tag: str,
    out_dir: Path,
    *,
    force: bool = False,
    requires_external: Sequence[str] | None = None,
    source_date_epoch: int | None = None,
) -> Path:
    """Write a copy of `wheel` into `out_dir` tagged `platform_tag` (file name, every `Tag:` line
    of WHEEL, RECORD) and return its path; the input is not touched. With `requires_external`,
    METADATA's Requires-External fields are replaced by those in the same write. With
    `source_date_epoch`, every member is dated then; without, each keeps its own date.

    Raises BadInput, writing nothing, for: `any`, manylinux and musllinux wheels; a platform that
    is not `linux_<arch>_…`; an arch other than the wheel's; a corrupt or non-wheel file; an
    existing output without `force`."""
    return retag_wheels(
        [(wheel, platform_tag)],
        out_dir,
        force=force,
        requires_external=requires_external,
        source_date_epoch=source_date_epoch,
    )[0]


def retag_wheels(
    jobs: Iterable[tuple[Path, str]],
    out_dir: Path | None,
    *,
    force: bool = False,
    requires_external: Sequence[str] | None = None,
    source_date_epoch: int | None = None,
) -> list[Path]:
    """Retag several wheels all or nothing: every output is written and checked before any is
    moved into place. `out_dir` None puts each output beside its input."""
    staged: list[_Staged] = []
    try:
        for wheel, platform_tag in jobs:
            target_dir = out_dir if out_dir is not None else wheel.parent
            item = _stage_retag(
                wheel,
                platform_tag,
                target_dir,
                force=force,
                requires_external=requires_external,
                epoch=source_date_epoch,
            )
            if any(s.dest == item.dest for s in staged):
                item.discard()
                raise BadInput(f"two inputs would both be written to {item.dest}")
            staged.append(item)
    except BaseException:
        for item in staged:
            item.discard()
        raise
    return [item.commit() for item in staged]


def set_requires_external(
    wheel: Path, requirements: Sequence[str], source_date_epoch: int | None = None
) -> None:
    """Replace METADATA's Requires-External fields with `requirements` (distro packages, e.g.
    "libxml2 (>=2.9)"), in place and atomically, RECORD updated; nothing else changes."""
    _existing_wheel(wheel)
    name = parse_name(wheel)
    staged = _rewrite(
        wheel,
        wheel,
        platform_tag=None,
        requires_external=_check_requirements(requirements),
        name=name,
        epoch=source_date_epoch,
    )
    staged.commit()


def wheel_arch(wheel: Path) -> str | None:
    """The CPU architecture a Linux wheel's file name says, or None when it says none we know."""
    platforms = parse_name(wheel).platforms
    parts = tags.split_platform(platforms[0]) if len(platforms) == 1 else None
    return parts[0] if parts else None


def run(
    wheels: Sequence[Path],
    *,
    platform_tag: str | None,
    os_release: Path | None,
    rule_files: Sequence[Path],
    out_dir: Path | None,
    force: bool,
) -> list[Path]:
    """`wheelfarm retag`: retag each wheel to `platform_tag`, or to the build tag the host
    described by `os_release` gets after the rules (as for a target image: --rules, then the
    shipped defaults). All or nothing; returns the written paths in input order."""
    if (platform_tag is None) == (os_release is None):
        raise BadInput(
            "give exactly one of --platform TAG and --os-release FILE",
            hint="e.g. --platform linux_x86_64_debian_12, or --os-release /etc/os-release",
        )
    if not wheels:
        raise BadInput("no wheel given", hint="wheelfarm retag WHEEL... --platform TAG")
    # Everything that can be refused is, before anything is written: the environment, every
    # --rules file (whichever option is used, as build and verify do), the os-release.
    epoch = source_date_epoch_from(os.environ)
    sources = rules.image_sources(rule_files)
    jobs: list[tuple[Path, str]] = []
    if platform_tag is not None:
        jobs = [(wheel, platform_tag) for wheel in wheels]
    elif os_release is not None:
        fields = osrelease.read_file(os_release)
        for wheel in wheels:
            _existing_wheel(wheel)
            arch = wheel_arch(wheel) or tags.running_arch()
            jobs.append((wheel, rules.tag_set(fields, arch, sources).build))
    created = _make_out_dir(out_dir) if out_dir is not None else []
    try:
        return retag_wheels(jobs, out_dir, force=force, source_date_epoch=epoch)
    except BaseException:
        fsutil.remove_empty_dirs(created)
        raise


def _make_out_dir(out_dir: Path) -> list[Path]:
    """Create -o DIR and its missing parents; return those created, deepest first (to remove
    them again when nothing is written). A path that cannot be a directory is bad input."""
    try:
        return fsutil.make_dirs(out_dir)
    except NotADirectoryError as exc:
        where = "" if exc.filename == str(out_dir) else f": {exc.filename}"
        raise BadInput(
            f"output directory {out_dir}{where} is not a directory",
            hint="choose another -o DIR",
        ) from None
    except OSError as exc:
        raise BadInput(
            f"cannot create output directory {out_dir}: {exc.strerror or exc}",
            hint="choose a directory you can write to with -o DIR",
        ) from None
