"""The build plan as a CI matrix: one entry per target x arch job that `wheelfarm build` would
run, with the runner it runs on (a native runner named for its architecture, else the default
runner, which builds a foreign architecture under QEMU).

Settings in, a JSON-ready mapping out; the one thing asked of the outside is each spec's
Requires-Python, from its index page (as `build` asks it), so that the matrix leaves out the
pairs build would skip and a target left with nothing to build gets no job (a GitHub job with
nothing to upload would fail). An index that cannot be reached is said on stderr and its specs'
pairs are kept. A planning job has no images, so by default every known target (shipped and
extra) is planned, not only those whose image is present."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wheelfarm import fetch, plan, targets
from wheelfarm.config import Settings
from wheelfarm.errors import BadInput
from wheelfarm.reporter import Reporter, Silent

Lookup = Callable[[Sequence[plan.Spec]], fetch.PythonRequirements]

FORMATS = ("json", "github")
DEFAULT_RUNNER = "ubuntu-latest"
# The output name the workflows read: `needs.<plan job>.outputs.matrix`.
GITHUB_OUTPUT_NAME = "matrix"


def build_matrix(
    settings: Settings,
    cwd: Path | None = None,
    *,
    reporter: Reporter | None = None,
    lookup: Lookup = fetch.requires_pythons,
    runners: Mapping[str, str] | None = None,
) -> dict[str, list[dict[str, str]]]:
    """`{"include": [{"target", "arch", "image", "python", "specs", "runner"}, ...]}` for the
    settings' specs, requirement files, targets, architectures and Python, without the pairs
    whose Requires-Python or marker excludes the target's Python (each said as a note).
    `runners` maps an architecture to the runner label its jobs run on (default:
    DEFAULT_RUNNER)."""
    reporter = reporter or Silent()
    specs = plan.parse_specs(settings.specs, settings.requirements)
    catalogue = settings.catalogue
    chosen = plan.select_targets(
        settings.targets, [t.unit for t in catalogue], settings.python, catalogue
    )
    if not chosen:
        raise BadInput(
            f"no target offers Python {settings.python}",
            hint="drop --python or name targets that offer it (wheelfarm images list)",
        )
    found = lookup(specs)
    for spec, why in found.unknown:
        reporter.warn(
            f"Requires-Python of {spec.requirement} is unknown ({why}); "
            "planned on every target, the build will skip it where it does not apply"
        )
    skipped = plan.skips(specs, chosen, settings.python, found.declared)
    for skip in skipped:
        reporter.info(f"skipped: {skip.reason}")
    jobs = plan.build_plan(specs, chosen, settings.python, found.declared)
    if not jobs:
        raise BadInput(
            "nothing to build on the selected targets: every spec is skipped on them",
            hint="; ".join(s.reason for s in skipped[:4]) or None,
        )
    here = (Path.cwd() if cwd is None else cwd).resolve()
    chosen_runners = dict(runners or {})
    return {"include": [_entry(job, here, chosen_runners) for job in jobs]}


def _entry(job: plan.BuildJob, cwd: Path, runners: Mapping[str, str]) -> dict[str, str]:
    return {
        "target": job.target.name,
        "arch": job.target.arch,
        "image": job.image,
        "python": job.python.version,
        "specs": " ".join(_word(spec, cwd) for spec in job.specs),
        "runner": runners.get(job.target.arch) or DEFAULT_RUNNER,
    }


def parse_runners(values: Sequence[str]) -> dict[str, str]:
    """`ARCH=LABEL` pairs (--runner aarch64=ubuntu-24.04-arm); an empty label is the default
    runner, so a workflow can pass an empty input through."""
    found: dict[str, str] = {}
    for value in values:
        arch, sep, label = value.partition("=")
        if not sep:
            raise BadInput(
                f"--runner {value!r} is not ARCH=LABEL",
                hint="e.g. --runner aarch64=ubuntu-24.04-arm",
            )
        found[targets.check_arch(arch, "--runner")] = label.strip()
    return found


def _word(spec: plan.Spec, cwd: Path) -> str:
    """A spec as one shell word for `wheelfarm build`: NAME==VERSION (the marker was already
    evaluated for this job), or a path relative to the working directory when it is under it,
    so that the same checkout on another runner finds it."""
    if spec.kind == "pinned" or spec.path is None:
        return spec.requirement
    try:
        return os.path.relpath(spec.path, cwd) if spec.path.is_relative_to(cwd) else str(spec.path)
    except ValueError:
        return str(spec.path)


def check_format(output_format: str) -> None:
    if output_format not in FORMATS:
        raise BadInput(f"unknown format {output_format!r}", hint="one of " + ", ".join(FORMATS))


def render(data: dict[str, Any], output_format: str) -> str:
    """`json`: pretty, for people. `github`: one `matrix=<compact JSON>` line to append to
    $GITHUB_OUTPUT."""
    check_format(output_format)
    if output_format == "github":
        return f"{GITHUB_OUTPUT_NAME}={json.dumps(data, separators=(',', ':'))}\n"
    return json.dumps(data, indent=2) + "\n"
