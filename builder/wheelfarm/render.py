"""How each command's result looks: the rows of its table, its summary lines, its stdout.

Every command returns data from one domain function; this module turns that data into ui calls
(tables and messages on stderr, JSON and machine text on stdout). It holds no rich: ui draws."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelfarm import ui
from wheelfarm.errors import BuildFailed, EngineUnavailable
from wheelfarm.runner import LOGS, META
from wheelfarm.verify import fail_if_failed

if TYPE_CHECKING:
    from wheelfarm.build import Report as BuildReport
    from wheelfarm.build import Result as BuildResult
    from wheelfarm.images import BuiltImage
    from wheelfarm.index import SiteResult
    from wheelfarm.probe import ProbeReport
    from wheelfarm.publish import Published
    from wheelfarm.rules import TagSet
    from wheelfarm.verifyplan import Cell, Report


# ------------------------------------------------------------------------------- tags, retag


def tag_set(result: TagSet, json_output: bool) -> None:
    if not result.has_os_release:
        ui.warn(
            "no /etc/os-release or /usr/lib/os-release: this host is not a distro wheelfarm "
            "can tag; using the plain linux_<arch> tag"
        )
    if json_output:
        ui.emit_json(result.as_json())
        return
    decided = "no rule applies"
    if result.decision is not None:
        decided = f"{result.decision.source.label}, entry {result.decision.key}"
        if result.decision.rule.why:
            decided += f": {result.decision.rule.why}"
    ui.table(
        ["", "value"],
        [
            ["host tag", result.host],
            ["default build tag", result.default_build],
            ["build tag", result.build],
            ["decided by", decided],
            ["rules read", "\n".join(result.consulted) or "none"],
            ["installs", "\n".join(result.install)],
        ],
        title="platform tags",
    )


def file_text(path: Path, text: str) -> None:
    """A file's text on stdout as it is (to copy or redirect), its path on stderr."""
    ui.detail(f"# {path}")
    ui.emit_text(text)


def retagged(sources: Sequence[Path], written: Sequence[Path]) -> None:
    for source, path in zip(sources, written, strict=True):
        ui.success(f"{source.name} → {path}")
    ui.emit_text("".join(f"{path}\n" for path in written))


# ------------------------------------------------------------------------------- images


def image_list(rows: Sequence[dict[str, object]], json_output: bool) -> None:
    if json_output:
        ui.emit_json(list(rows))
        return

    def cell(value: object) -> str:
        if isinstance(value, dict) and value.get("present"):
            return str(value["id"] or "")[7:19]
        return "missing"

    def pythons(value: object) -> str:
        return ", ".join(str(p) for p in value) if isinstance(value, list) else str(value)

    ui.table(
        ["target", "arch", "base", "python", "build", "runtime", "make with"],
        [
            [
                str(r["target"]),
                str(r["arch"]),
                str(r["base"]),
                pythons(r["pythons"]),
                cell(r["build"]),
                cell(r["runtime"]),
                f"wheelfarm images {'bootstrap' if r['bootstrap'] else 'build'} {r['target']}"
                f" --arch {r['arch']}",
            ]
            for r in rows
        ],
        title="target images",
        styles={"missing": "yellow"},
    )


def built_images(results: Sequence[BuiltImage], json_output: bool) -> None:
    if json_output:
        ui.emit_json([
            {
                "target": r.target,
                "arch": r.arch,
                "stage": r.stage,
                "image": r.ref,
                "id": r.id,
                "reused": r.reused,
                "seconds": round(r.seconds, 1),
            }
            for r in results
        ])  # fmt: skip
        return
    ui.table(
        ["target", "arch", "stage", "image", "id", "result"],
        [
            [
                r.target,
                r.arch,
                r.stage,
                r.ref,
                r.id[7:19],
                "reused" if r.reused else f"built in {r.seconds:.0f}s",
            ]
            for r in results
        ],
        title="images",
    )


# ------------------------------------------------------------------------------- verify, probe


def _cell_text(cell: Cell) -> str:
    from wheelfarm.verifyplan import NA, PASS

    if cell.status == NA:
        return f"n/a: {cell.kind}" if cell.kind else "n/a"
    return "pass" if cell.status == PASS else "FAIL"


def verify_table(report: Report, title: str = "verify") -> None:
    """The matrix as a table, then each failure with its error lines and log, then the counts."""
    from wheelfarm.verify import NOT_RUN
    from wheelfarm.verifyplan import FAIL, NA, PASS

    names = [t.name for t in report.targets]
    by_key = {(c.wheel, c.target): c for c in report.cells}
    rows = [
        [w.filename, *(_cell_text(by_key[(w.filename, n)]) for n in names)] for w in report.wheels
    ]
    styles = {"pass": "green", "FAIL": "bold red"}
    styles.update({f"n/a: {k}": "dim" for k in ("tag", "python", "arch", "skip", NOT_RUN)})
    ui.table(["wheel", *names], rows, title=f"{title}: {report.wheelhouse}", styles=styles)
    for cell in report.failed:
        ui.error(f"{cell.wheel} on {cell.target}: {cell.step} (log: {cell.log})")
        for line in cell.error:
            ui.detail(f"    {line}")
        if cell.hint:
            ui.detail(f"    hint: {cell.hint}")
    counts = report.counts()
    cached = sum(c.cached for c in report.cells)
    started = report.containers_started
    ui.detail(
        f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[NA]} not applicable; "
        f"{cached} from the cache; {started} container{'s' if started != 1 else ''} started; "
        f"{report.seconds:.1f}s"
    )


def verification(report: Report, json_output: bool) -> None:
    from wheelfarm import verify

    if json_output:
        ui.emit_json(report.as_json())
        return
    verify_table(report)
    json_path, md_path = verify.report_paths(report.wheelhouse)
    ui.detail(f"reports: {json_path}, {md_path}")


def probe(report: ProbeReport, written: Path | None) -> None:
    """The attempts' matrix and the pairs on stderr; the proposed rules on stdout."""
    from wheelfarm import probe as probe_mod

    verify_table(report.verify, title="probe")
    rows = [
        [p.consumer, p.producer, p.verdict, str(len(p.passed)), str(len(p.failed))]
        for p in report.pairs
    ]
    ui.table(
        ["consumer key", "producer tag", "verdict", "passed", "failed"],
        rows,
        title="pairs",
        styles={"proposed": "green", "rejected": "red", "own tag": "dim"},
    )
    ui.detail(
        f"{report.attempts} attempt(s), {report.cross_attempts} across tags, "
        f"{report.outside_rules} outside the rules in force"
    )
    if report.cross_attempts == 0:
        ui.warn(
            "no attempt crossed tags, so nothing was measured: probe needs wheels built on one "
            "target and a second target whose Python loads them"
        )
    if written is not None:
        ui.success(f"proposed rules written to {written}")
    json_path, md_path = probe_mod.report_paths(report.verify.wheelhouse)
    ui.detail(f"reports: {json_path}, {md_path}")
    ui.emit_json(report.proposal)


# ------------------------------------------------------------------------------- index, publish


def site(result: SiteResult, json_output: bool) -> None:
    for problem in result.problems:
        ui.warn(f"{problem.filename} left out: {problem.reason}")
    if json_output:
        ui.emit_json(result.as_json())
        return
    rows = [[str(s["path"]), str(s["projects"]), str(s["files"])] for s in result.summaries()]
    ui.table(["root", "projects", "files"], rows)
    state = "written" if result.changed else "unchanged"
    ui.success(f"{result.site} {state} ({len(result.roots)} roots)")


def published(result: Published) -> None:
    ui.success(
        f"{len(result.uploaded)} uploaded, {len(result.skipped)} already there, "
        f"to {result.repository_url}"
    )


def matrix(data: dict[str, Any], text: str) -> None:
    """The plan's jobs named on stderr, the matrix (already formatted) on stdout."""
    ui.detail(
        f"{len(data['include'])} job(s): "
        + ", ".join(f"{e['target']} {e['arch']}" for e in data["include"])
    )
    ui.emit_text(text)


# ------------------------------------------------------------------------------- build


def build_table(report: BuildReport) -> None:
    rows = [
        [
            o.target,
            o.arch,
            o.spec,
            o.status,
            o.error or o.wheel or o.note,
            ", ".join(o.requires_external),
            f"{o.seconds:.1f}s",
        ]
        for o in report.outcomes
    ]
    ui.table(
        ["target", "arch", "spec", "status", "wheel", "Requires-External", "time"],
        rows,
        title=f"wheelhouse {report.wheelhouse}",
        styles={
            "failed": "red",
            "built": "green",
            "up to date": "cyan",
            "restored": "cyan",
            "skipped": "yellow",
        },
    )
    for outcome in report.outcomes:
        for gap in outcome.warnings:
            ui.warn(f"{outcome.wheel} ({outcome.unit}): Requires-External may be incomplete: {gap}")
    started = report.containers_started
    ui.detail(
        f"{len(report.outcomes)} result(s) in {report.seconds:.1f}s; "
        f"{started} container{'s' if started != 1 else ''} started"
    )


def build_summary(
    report: BuildReport, json_output: bool, verification: dict[str, Any] | None = None
) -> None:
    """Print the result (table, or JSON on stdout) and fail the command when a build failed.
    `verification` (what the build's verify step found, as JSON) goes into the JSON under
    "verify", and "ok" then says whether the builds and the verification both passed."""
    if json_output:
        data = report.as_json()
        if verification is not None:
            data["ok"] = bool(data["ok"] and verification.get("ok"))
            data["verify"] = verification
        ui.emit_json(data)
    else:
        build_table(report)
    if report.lost_engines:
        lost = ", ".join(f"the {arch} engine at {engine}" for engine, arch in report.lost_engines)
        raise EngineUnavailable(
            f"{lost} stopped answering during the run; the other architectures' wheels were "
            "built and placed",
            hint="start it again and rerun: what was built is cached",
        )
    failed = report.failed
    if failed:
        lines = [
            f"{o.spec} on {o.unit}: {o.error} (log: {o.log})"
            + (f"\n    to fix: {o.cause.hint}" if o.cause is not None and o.cause.hint else "")
            for o in failed
        ]
        raise BuildFailed(
            f"{len(failed)} build(s) failed:\n  " + "\n  ".join(lines),
            hint=f"the logs are under {report.wheelhouse / META / LOGS}",
        )


def build_result(result: BuildResult, json_output: bool) -> None:
    """Show the build's result, then its verification (after the build's own summary, also when
    a build failed: that error comes last); fail as the first of them failed."""
    try:
        build_summary(result.report, json_output, result.verification)
    finally:
        if result.verified is not None and not json_output:
            verify_table(result.verified)
    if result.verify_error is not None:
        ui.warn("the wheels were built, but verification could not run")
        raise result.verify_error
    if result.verified is not None:
        fail_if_failed(result.verified)
