"""The wheelhouse side of a build run: what each spec on each target came to (`Outcome`), and
putting wheels, their provenance records and their logs into the wheelhouse, atomically.

Two targets may make wheels of the same file name (rockylinux-9 and almalinux-9 both build
rhel_9 wheels): the target that comes first in the plan wins, whichever finished first, so that
reruns keep the same file."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelfarm import cache, elfdeps, fsutil, plan, runner
from wheelfarm.diagnose import Cause
from wheelfarm.targets import Target


@dataclass(frozen=True)
class Outcome:
    """What happened to one spec on one target."""

    spec: str
    target: str
    status: str  # "built", "up to date", "restored", "skipped" (note says why), "failed"
    wheel: str | None = None
    tag: str | None = None
    log: str | None = None  # relative to the wheelhouse
    error: str | None = None
    seconds: float = 0.0
    requires_external: tuple[str, ...] = ()
    note: str = ""
    # Libraries Requires-External could not name (not found, or owned by no package).
    warnings: tuple[str, ...] = ()
    cause: Cause | None = None  # why it failed, as its log (or a trace) says
    arch: str = ""  # the target's architecture: a target x arch is one unit

    @property
    def unit(self) -> str:
        return f"{self.target}-{self.arch}" if self.arch else self.target

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def as_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "target": self.target,
            "arch": self.arch,
            "status": self.status,
            "wheel": self.wheel,
            "tag": self.tag,
            "requires_external": list(self.requires_external),
            "log": self.log,
            "error": self.error,
            "cause": self.cause.as_json() if self.cause is not None else None,
            "seconds": round(self.seconds, 2),
            "note": self.note,
            "warnings": list(self.warnings),
        }


def placement_note(placed: str, pure: bool) -> str:
    if placed not in ("placed", "same"):
        return f"same file name as {placed}'s wheel (same build tag); that one is kept"
    return "pure Python: built once for every target" if pure else ""


class Wheelhouse:
    """One run's wheelhouse: shared by every target's thread."""

    def __init__(self, path: Path, order: Sequence[str]) -> None:
        self.path = path
        self.meta = path / runner.META
        self._order = list(order)  # units (target-arch) in plan order
        self._placed: dict[str, str] = {}  # wheel file name → unit, this run
        self._lock = threading.Lock()

    def temp_dir(self, prefix: str) -> Path:
        directory = self.meta / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=directory))

    def place(self, wheel: Path, record: dict[str, Any], unit: str) -> str:
        """Put a finished wheel and its provenance record into the wheelhouse, atomically.
        Returns "placed", "same" (the wheelhouse already had exactly this wheel) or the unit
        (target-arch) whose wheel of the same name this run already placed and which is kept."""
        destination = self.path / wheel.name
        target = unit
        with self._lock:
            first = self._placed.setdefault(wheel.name, target)
            if first != target and self._order.index(first) < self._order.index(target):
                return first
            self._placed[wheel.name] = target
            kept = self.meta / f"{wheel.name}.json"
            if destination.is_file() and (
                destination.samefile(wheel) or fsutil.file_sha256(destination) == record["sha256"]
            ):
                if not kept.is_file():
                    fsutil.write_json_atomic(kept, record)
                return "same"
            # Staged under .wheelfarm/tmp, never as a temp file among the wheelhouse's wheels.
            fsutil.place_copy(wheel, destination, work_dir=self.meta / "tmp")
            fsutil.write_json_atomic(kept, record)
        return "placed"

    def restore(self, key: str, target: Target, spec: plan.Spec) -> Outcome | None:
        """The cached build of this key, put back (or found already) in the wheelhouse."""
        hit = cache.lookup(key)
        if hit is None or hit.provenance.get("sha256") != fsutil.file_sha256(hit.wheel):
            return None
        log = runner.restore_log(self.path, hit.provenance.get("log"), cache.log_of(key))
        record = {**hit.provenance, "target": target.name, "arch": target.arch, "log": log}
        placed = self.place(hit.wheel, record, target.unit)
        return Outcome(
            spec=spec.requirement,
            target=target.name,
            arch=target.arch,
            status="restored" if placed == "placed" else "up to date",
            wheel=hit.wheel.name,
            tag=hit.provenance.get("platform_tag"),
            log=log,
            requires_external=tuple(hit.provenance.get("requires_external", [])),
            note="from wheelfarm's cache" if placed == "placed" else placement_note(placed, False),
            warnings=tuple(elfdeps.gaps(hit.provenance.get("external"))),
        )
