"""How `wheelfarm build`'s result is shown: a table and summary lines on stderr (through ui), or
one JSON document on stdout; and which error the command ends with."""

from __future__ import annotations

from typing import Any

from wheelfarm import ui, verify
from wheelfarm.build import Report, Result
from wheelfarm.errors import BuildFailed
from wheelfarm.runner import LOGS, META


def show(report: Report) -> None:
    rows = [
        [
            o.target,
            o.spec,
            o.status,
            o.error or o.wheel or "",
            ", ".join(o.requires_external),
            f"{o.seconds:.1f}s",
        ]
        for o in report.outcomes
    ]
    ui.table(
        ["target", "spec", "status", "wheel", "Requires-External", "time"],
        rows,
        title=f"wheelhouse {report.wheelhouse}",
        styles={"failed": "red", "built": "green", "up to date": "cyan", "restored": "cyan"},
    )
    for outcome in report.outcomes:
        for gap in outcome.warnings:
            ui.warn(
                f"{outcome.wheel} ({outcome.target}): Requires-External may be incomplete: {gap}"
            )
    started = report.containers_started
    ui.detail(
        f"{len(report.outcomes)} result(s) in {report.seconds:.1f}s; "
        f"{started} container{'s' if started != 1 else ''} started"
    )


def finish(report: Report, json_output: bool, verification: dict[str, Any] | None = None) -> None:
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
        show(report)
    failed = report.failed
    if failed:
        lines = [f"{o.spec} on {o.target}: {o.error} (log: {o.log})" for o in failed]
        raise BuildFailed(
            f"{len(failed)} build(s) failed:\n  " + "\n  ".join(lines),
            hint=f"the logs are under {report.wheelhouse / META / LOGS}",
        )


def render(result: Result, json_output: bool) -> None:
    """Show the build's result, then its verification (after the build's own summary, also when
    a build failed: that error comes last); fail as the first of them failed."""
    try:
        finish(result.report, json_output, result.verification)
    finally:
        if result.verified is not None and not json_output:
            verify.show(result.verified)
    if result.verify_error is not None:
        ui.warn("the wheels were built, but verification could not run")
        raise result.verify_error
    if result.verified is not None:
        verify.fail_if_failed(result.verified)
