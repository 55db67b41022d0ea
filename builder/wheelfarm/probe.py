"""`wheelfarm probe`: measure which binary-compatibility rules hold, instead of guessing them.

Every distro-tagged wheel is tried on every target whose CPU and Python can load it, IGNORING the
rules: the same cell as `wheelfarm verify` (fresh runtime container, Requires-External, network
cut, stock pip installs the wheel under its plain name, imports, the recipe's test), so a wheel
built on Debian 11 is really installed on Debian 13 even though no rule says Debian 13 accepts
it. From those attempts comes a proposed `binary-compatibility.cfg`:

- an entry is keyed by the CONSUMER target's default build tag (`linux_x86_64_debian_13`, the
  key the rules look a host up by) and lists, under `install`, the PRODUCER tags (the tags the
  wheels carry) whose every wheel tried on every target with that key passed;
- a producer tag the consumer already builds or is (its host, default build or build tag) needs
  no rule and is left out; a consumer whose build tag comes from a rule keeps that `build`, so
  applying the file changes no build tag;
- each entry's `why` names the evidence: the wheels and the targets they passed on.

Only what was measured is proposed: one failure (or no attempt at all) and the pair is out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelfarm import __version__, fsutil, rules, runner, tags, verify, verifyplan
from wheelfarm.errors import BadInput
from wheelfarm.reporter import Reporter

REPORT_JSON = "probe.json"
REPORT_MD = "probe.md"


def producer_tag(wheel: verifyplan.WheelInfo) -> str | None:
    """The distro tag a wheel was built under, or None (pure, manylinux, plain linux_<arch>)."""
    for platform in wheel.name.platforms:
        if tags.is_distro_tag(platform):
            return platform
    return None


def _skip(wheel: verifyplan.WheelInfo) -> str | None:
    if producer_tag(wheel) is None:
        shown = ", ".join(wheel.name.platforms)
        return f"{shown} is not a distro tag: nothing for a rule to say"
    return None


def _inherent(target: verifyplan.TargetView) -> frozenset[str]:
    """Tags a consumer accepts whatever the install rules say."""
    t = target.tagset
    return frozenset({t.host, t.default_build, t.build})


@dataclass(frozen=True)
class Pair:
    """Every attempt of wheels with one producer tag on targets with one consumer key."""

    consumer: str  # the consumer's default build tag: the proposed entry's key
    producer: str
    passed: tuple[tuple[str, str], ...]  # (wheel, target)
    failed: tuple[tuple[str, str, str], ...]  # (wheel, target, reason)
    inherent: bool  # the consumer accepts this producer tag without any install rule
    accepted: bool  # the rules in force already list it

    @property
    def holds(self) -> bool:
        return bool(self.passed) and not self.failed

    @property
    def verdict(self) -> str:
        if self.inherent:
            return "own tag"
        if self.holds:
            return "proposed"
        return "rejected"

    def as_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "producer": self.producer,
            "verdict": self.verdict,
            "already_accepted": self.accepted,
            "passed": [{"wheel": w, "target": t} for w, t in self.passed],
            "failed": [{"wheel": w, "target": t, "reason": r} for w, t, r in self.failed],
        }


def pairs(report: verifyplan.Report) -> list[Pair]:
    """Group the attempts (pass/fail cells) by consumer key and producer tag."""
    wheels = {w.filename: w for w in report.wheels}
    targets = {t.name: t for t in report.targets}
    grouped: dict[tuple[str, str], dict[str, list[Any]]] = {}
    flags: dict[tuple[str, str], tuple[bool, bool]] = {}
    for cell in report.cells:
        if cell.status == verifyplan.NA:
            continue
        producer = producer_tag(wheels[cell.wheel])
        if producer is None:
            continue
        target = targets[cell.target]
        key = (target.tagset.default_build, producer)
        slot = grouped.setdefault(key, {"passed": [], "failed": []})
        if cell.status == verifyplan.PASS:
            slot["passed"].append((cell.wheel, cell.target))
        else:
            slot["failed"].append((cell.wheel, cell.target, cell.reason or "failed"))
        inherent, accepted = flags.get(key, (True, True))
        flags[key] = (
            inherent and producer in _inherent(target),
            accepted and target.tagset.accepts(producer),
        )
    return [
        Pair(
            consumer,
            producer,
            tuple(grouped[(consumer, producer)]["passed"]),
            tuple(grouped[(consumer, producer)]["failed"]),
            *flags[(consumer, producer)],
        )
        for consumer, producer in sorted(grouped)
    ]


def _evidence(pair: Pair) -> str:
    by_target: dict[str, list[str]] = {}
    for wheel, target in pair.passed:
        by_target.setdefault(target, []).append(wheel)
    parts = [f"{', '.join(ws)} on {t}" for t, ws in sorted(by_target.items())]
    return f"{pair.producer}: {'; '.join(parts)}"


def propose(report: verifyplan.Report) -> dict[str, dict[str, Any]]:
    """The proposed rules file: per consumer key, the producer tags whose every attempt passed."""
    found = pairs(report)
    consumers: dict[str, verifyplan.TargetView] = {}
    for target in report.targets:
        consumers.setdefault(target.tagset.default_build, target)
    proposal: dict[str, dict[str, Any]] = {}
    for consumer in sorted({p.consumer for p in found}):
        holding = [p for p in found if p.consumer == consumer and not p.inherent and p.holds]
        if not holding:
            continue
        target = consumers[consumer]
        names = sorted({t for p in holding for _, t in p.passed})
        why = (
            f"measured by wheelfarm probe {__version__}: every wheel tried was installed by the "
            f"target's stock pip under its plain name, with the network cut, and imported, on "
            f"{', '.join(names)} ({target.tagset.host}). Evidence: "
            + " | ".join(_evidence(p) for p in holding)
        )
        entry: dict[str, Any] = {}
        if target.tagset.build != target.tagset.default_build:
            entry["build"] = target.tagset.build
        entry["install"] = [p.producer for p in holding]
        decision = target.tagset.decision
        if decision is not None:
            why += (
                f". Applied with --rules, this entry replaces {decision.source.label}'s entry "
                f"{decision.key} (entries are not merged)"
            )
        entry["why"] = why
        proposal[consumer] = entry
    # What is proposed must be a rules file wheelfarm itself accepts.
    rules.parse_rules(json.dumps(proposal), "the probe's proposal")
    return proposal


@dataclass(frozen=True)
class ProbeReport:
    verify: verifyplan.Report
    pairs: tuple[Pair, ...]
    proposal: dict[str, dict[str, Any]]

    @property
    def attempts(self) -> int:
        return sum(c.status != verifyplan.NA for c in self.verify.cells)

    @property
    def cross_attempts(self) -> int:
        """Attempts that needed an install rule: the consumer's own tags do not include the
        wheel's."""
        return sum(len(p.passed) + len(p.failed) for p in self.pairs if not p.inherent)

    @property
    def outside_rules(self) -> int:
        """Attempts the rules in force would not have made."""
        return sum(c.status != verifyplan.NA and not c.accepted for c in self.verify.cells)

    def as_json(self) -> dict[str, Any]:
        return {
            "wheelhouse": str(self.verify.wheelhouse),
            "attempts": self.attempts,
            "cross_attempts": self.cross_attempts,
            "outside_rules_attempts": self.outside_rules,
            "proposal": self.proposal,
            "pairs": [p.as_json() for p in self.pairs],
            "seconds": round(self.verify.seconds, 2),
            "containers_started": self.verify.containers_started,
            "wheelfarm": __version__,
            "targets": [t.as_json() for t in self.verify.targets],
            "wheels": [w.as_json() for w in self.verify.wheels],
            "results": [c.as_json() for c in self.verify.cells],
            "skipped": [f.as_json() for f in self.verify.skipped],
        }


def markdown(report: ProbeReport) -> str:
    text = verify.markdown(report.verify, title="wheelfarm probe")
    lines = [
        "",
        "## Pairs (consumer key ← producer tag)",
        "",
        "| consumer | producer | verdict | passed | failed |",
        "|---|---|---|---|---|",
    ]
    for pair in report.pairs:
        failed = "; ".join(f"{w} on {t}: {r}" for w, t, r in pair.failed)
        lines.append(
            f"| `{pair.consumer}` | `{pair.producer}` | {pair.verdict} | {len(pair.passed)} "
            f"| {failed or '0'} |"
        )
    lines += ["", "## Proposed binary-compatibility.cfg", "", "```json"]
    lines.append(json.dumps(report.proposal, indent=2))
    lines.append("```")
    return text + "\n".join(lines) + "\n"


def run(request: verify.Request, reporter: Reporter) -> ProbeReport:
    from dataclasses import replace

    if request.wheels is None:
        wheels, _ = verifyplan.find_wheels(request.wheelhouse.resolve())
    else:
        wheels, _ = verifyplan.read_wheels(request.wheels)
    # The files left out are reported (warning and report) by verify.execute.
    if not any(producer_tag(w) for w in wheels):
        raise BadInput(
            f"no distro-tagged wheel in {request.wheelhouse}: nothing to probe",
            hint="build wheels with wheelfarm build first; probe tries them across targets",
        )
    report = verify.execute(replace(request, ignore_rules=True), reporter, skip=_skip)
    found = tuple(pairs(report))
    return ProbeReport(report, found, propose(report))


def report_paths(wheelhouse: Path) -> tuple[Path, Path]:
    """Where a wheelhouse's probe reports are: (probe.json, probe.md)."""
    meta = wheelhouse / runner.META
    return meta / REPORT_JSON, meta / REPORT_MD


def propose_rules(request: verify.Request, write: Path | None, reporter: Reporter) -> ProbeReport:
    """`wheelfarm probe`: run the attempts, write .wheelfarm/probe.json and probe.md, and save
    the proposed rules to `write` when given."""
    report = run(request, reporter)
    json_path, md_path = report_paths(report.verify.wheelhouse)
    fsutil.write_text_atomic(json_path, json.dumps(report.as_json(), indent=2) + "\n")
    fsutil.write_text_atomic(md_path, markdown(report))
    if write is not None:
        fsutil.write_text_atomic(write, json.dumps(report.proposal, indent=2) + "\n")
    return report
