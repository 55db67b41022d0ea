"""A failed build's error is its diagnosed cause: the step's message and hint (buildsteps), the
trace of a failed step whose log names nothing (trace_failed_step, against a scripted
container), the `cause` in --json (Outcome) and the hint under the `error:` lines (render)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay import Inline, context, load
from wheelfarm import buildsteps, render
from wheelfarm.build import Report
from wheelfarm.errors import BuildFailed
from wheelfarm.needs import Missing
from wheelfarm.wheelhouse import Outcome

DATA = Path(__file__).resolve().parent.parent / "data"
LXML_LOG = (DATA / "diagnose" / "lxml-5.3.0.log").read_text(encoding="utf-8")
LXML_TRACE = (DATA / "diagnose" / "lxml-5.3.0.trace").read_text(encoding="utf-8")
LDAP_LOG = (DATA / "diagnose" / "python-ldap-3.4.4.log").read_text(encoding="utf-8")
CRATES_LOGS = [
    (DATA / "diagnose" / f"cryptography-43.0.3-{case}.log").read_text(encoding="utf-8")
    for case in ("registry-unreachable", "offline")
]
REQUIRES = "build environment: the backend's requirements"


def section(text: str) -> list[str]:
    """The failed step's own lines: those after the log's last heading."""
    lines = text.splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("==> "))
    return lines[last + 1 :]


class Scripted:
    """A container whose answers the test gives: `strace` (None: none in the image), the lines
    the traced run prints, and the trace it leaves."""

    host_settings = None

    def __init__(self, strace: str | None, printed: Sequence[str], trace: str) -> None:
        self.strace, self.printed, self.trace = strace, printed, trace
        self.runs: list[tuple[list[str], str]] = []
        self.outputs: list[list[str]] = []

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        on_output: Callable[[str], None] | None = None,
        timeout: float | None = None,
        user: str = "",
    ) -> int:
        self.runs.append((list(argv), user))
        for line in self.printed:
            if on_output is not None:
                on_output(line)
        return 1

    def output(self, argv: Sequence[str] | str, *, check: bool = True) -> str:
        self.outputs.append(list(argv))
        if "command -v strace" in argv[-1]:
            return f"{self.strace}\n" if self.strace else ""
        assert "grep -E" in argv[-1] and "wheelfarm-trace.txt" in argv[-1]
        return self.trace

    def copy_in(self, host_path: Path, container_dir: str) -> str:
        raise AssertionError("not used")

    def copy_out(self, container_path: str, host_dir: Path) -> Path:
        raise AssertionError("not used")


def failed_requires(
    tmp_path: Path, container: Scripted, lines: Sequence[str], *, emulated: bool = False
) -> tuple[buildsteps.BuildContext, buildsteps.StepFailed]:
    """A context whose backend's-requirements step just failed, printing `lines`."""
    case = load(DATA / "build-steps" / "compile-fails" / "capture.json")
    log = buildsteps.BuildLog(tmp_path / "wheelhouse", "x.log")
    ctx = dataclasses.replace(context(case, container, log), emulated=emulated)
    log.heading(REQUIRES)
    for line in lines:
        log.line(line)
    log.failed_exec = ("python", "/wf/tools/pep517_steps.py", "/wf/src/x", "requires")
    return ctx, log.failure(REQUIRES, 1)


def test_a_failed_step_is_said_by_its_cause_with_the_causes_hint(tmp_path: Path) -> None:
    log = buildsteps.BuildLog(tmp_path, "x.log")
    log.heading("build the wheel")
    for line in section(LDAP_LOG):
        log.line(line)
    failed = log.failure("build the wheel", 1)
    log.close()
    assert failed.message == (
        "build the wheel: missing header lber.h (lber.h: No such file or directory)"
    )
    assert failed.cause is not None and failed.hint == failed.cause.hint
    assert failed.cause.missing == (Missing("header", "lber.h"),)
    assert failed.step == ("build the wheel", 1)
    # Nothing diagnosed: the step's most useful line, as before.
    plain = buildsteps.BuildLog(tmp_path, "y.log")
    plain.heading("build the wheel")
    plain.line("something went wrong")
    assert plain.failure("build the wheel", 2).message == (
        "build the wheel: exit 2 (something went wrong)"
    )
    plain.close()


def test_prose_is_traced_and_the_trace_names_what_was_missing(tmp_path: Path) -> None:
    printed = [
        "Error: Please make sure the libxml2 and libxslt development packages are installed."
    ]
    container = Scripted("/usr/bin/strace", printed, LXML_TRACE)
    ctx, failed = failed_requires(tmp_path, container, section(LXML_LOG))
    assert failed.message.startswith(f"{REQUIRES}: missing development packages")
    again = list(ctx.log.failed_exec or ())
    raised = buildsteps.trace_failed_step(ctx, Inline(), failed)
    ctx.log.close()
    assert raised.message == (
        f"{REQUIRES}: missing pkg-config module libxml-2.0, program xml2-config "
        "(looked for and found nowhere, traced)"
    )
    assert raised.diagnosis is not None and raised.diagnosis.traced
    assert raised.diagnosis.note == "log and trace"
    # The failed exec, once more, under strace and as the unprivileged builder.
    [(argv, user)] = container.runs
    assert argv[: argv.index("-o")] == ["strace", "-f", "-qq", "-e", argv[4]]
    assert argv[4] == "trace=file"  # every call that takes a file name, on any architecture
    assert argv[argv.index("-o") + 2 :] == again
    assert user == buildsteps.BUILDER
    text = ctx.log.final.read_text()
    assert "trace the failed step (strace)" in text
    assert "looked for and found nowhere: pkg-config module libxml-2.0, program xml2-config" in text


@pytest.mark.parametrize(
    ("strace", "printed", "emulated", "why"),
    [
        ("/usr/bin/strace", [], True, "the target is emulated"),
        (None, [], False, "no strace in the image"),
        ("/usr/bin/strace", ["strace: PTRACE_TRACEME: Operation not permitted"], False,
         "ptrace refused"),
        ("/usr/bin/strace", ["strace: ptrace(PTRACE_SEIZE, 12): Operation not permitted"], False,
         "ptrace refused"),
    ],
)  # fmt: skip
def test_where_strace_cannot_run_the_log_alone_is_used_and_said(
    tmp_path: Path, strace: str | None, printed: list[str], emulated: bool, why: str
) -> None:
    container = Scripted(strace, printed, "")
    ctx, failed = failed_requires(tmp_path, container, section(LXML_LOG), emulated=emulated)
    raised = buildsteps.trace_failed_step(ctx, Inline(), failed)
    ctx.log.close()
    assert raised.message == failed.message  # the log's own diagnosis
    assert raised.diagnosis is not None and not raised.diagnosis.traced
    assert raised.diagnosis.note.startswith(f"log only: {why}")
    assert raised.diagnosis.untraced.startswith(why)
    assert f"not traced ({why}" in ctx.log.final.read_text()
    if emulated:
        assert container.runs == [] and container.outputs == []


def test_a_named_cause_a_compiler_error_or_a_crate_download_is_not_traced(
    tmp_path: Path,
) -> None:
    compiler = ["x.c:3:1: error: expected ';' before '}' token"]
    for lines in (section(LDAP_LOG), compiler, *(section(log) for log in CRATES_LOGS)):
        container = Scripted("/usr/bin/strace", [], "")
        ctx, failed = failed_requires(tmp_path, container, lines)
        assert failed.diagnosis is not None and failed.diagnosis.primary is not None
        assert buildsteps.trace_failed_step(ctx, Inline(), failed) is failed
        ctx.log.close()
        assert container.runs == [] and container.outputs == []


def test_a_download_in_anyone_elses_words_is_still_traced(tmp_path: Path) -> None:
    # A setup.py that fetches a library's sources may have looked for the library here first.
    container = Scripted("/usr/bin/strace", [], LXML_TRACE)
    lines = ["Failed to download https://files.example/libxml2-2.12.tar.xz"]
    ctx, failed = failed_requires(tmp_path, container, lines)
    assert failed.cause is not None and failed.cause.kind == "download"
    raised = buildsteps.trace_failed_step(ctx, Inline(), failed)
    ctx.log.close()
    assert raised.diagnosis is not None and raised.diagnosis.traced
    assert len(container.runs) == 1


def test_the_cause_goes_into_the_json_and_its_hint_under_the_error_lines(tmp_path: Path) -> None:
    log = buildsteps.BuildLog(tmp_path, "x.log")
    log.heading("build the wheel")
    for line in section(LDAP_LOG):
        log.line(line)
    failed = log.failure("build the wheel", 1)
    log.close()
    outcome = Outcome(
        spec="python-ldap==3.4.4",
        target="debian-12",
        status="failed",
        error=failed.message,
        cause=failed.cause,
        log=".wheelfarm/logs/python-ldap-3.4.4-debian-12.log",
    )
    data = outcome.as_json()
    assert data["error"] == failed.message
    assert data["cause"] == {
        "kind": "missing-header",
        "summary": "missing header lber.h (lber.h: No such file or directory)",
        "hint": failed.hint,
        "missing": [{"kind": "header", "name": "lber.h"}],
    }
    assert Outcome(spec="x==1", target="debian-12", status="built").as_json()["cause"] is None
    report = Report(wheelhouse=tmp_path, outcomes=(outcome,), seconds=1.0, containers_started=1)
    with pytest.raises(BuildFailed) as raised:
        render.build_summary(report, json_output=True)
    assert "python-ldap==3.4.4 on debian-12: build the wheel: missing header lber.h" in str(
        raised.value
    )
    assert f"to fix: {failed.hint}" in str(raised.value)
