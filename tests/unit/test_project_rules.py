"""The project's configured rules ([tool.wheelfarm] rules) rank with --rules in `tags` and
`retag`, and the tags table says they came from the project."""

from __future__ import annotations

import json
from pathlib import Path

from wf_cli import OS_RELEASE, clean_env, run

RULE = {"linux_x86_64_debian_12": {"build": "linux_x86_64_debian_11", "why": "measured here"}}


def _project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # the configuration search stops at the repository root
    (tmp_path / "rules.cfg").write_text(json.dumps(RULE))
    (tmp_path / "pyproject.toml").write_text('[tool.wheelfarm]\nrules = ["rules.cfg"]\n')
    return tmp_path


def test_project_rules_decide_the_build_tag(tmp_path: Path) -> None:
    project = _project(tmp_path)
    args = ("tags", "--os-release", str(OS_RELEASE / "debian-12"), "--arch", "x86_64")
    result = run(*args, "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["build"] == "linux_x86_64_debian_11"

    table = run(*args, cwd=project)
    assert table.returncode == 0, table.stderr
    assert f"project ({project / 'rules.cfg'}), entry linux_x86_64_debian_12" in table.stderr


def test_given_rules_stack_over_the_project_rules(tmp_path: Path) -> None:
    """--rules files rank above the project's, which still decide where no given file has an
    entry (docs/design.md: the top tier is --rules and the project's rules)."""
    project = _project(tmp_path)
    empty = tmp_path / "empty.cfg"
    empty.write_text("{}")
    env_rules = tmp_path / "env.cfg"
    env_rules.write_text("{}")
    args = ("tags", "--os-release", str(OS_RELEASE / "debian-12"), "--arch", "x86_64")
    env = clean_env(WHEELFARM_RULES=str(env_rules))
    result = run(*args, "--json", "--rules", str(empty), cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["build"] == "linux_x86_64_debian_11"  # the project's rule

    table = run(*args, "--rules", str(empty), cwd=project, env=env)
    assert table.returncode == 0, table.stderr
    assert f"project ({project / 'rules.cfg'}), entry linux_x86_64_debian_12" in table.stderr
    read = table.stderr[table.stderr.index("rules read") :]
    order = [read.index(label) for label in (
        f"--rules ({empty})", f"WHEELFARM_RULES ({env_rules})", f"project ({project / 'rules.cfg'})"
    )]  # fmt: skip
    assert order == sorted(order), read

    other = tmp_path / "other.cfg"
    other.write_text(json.dumps({"linux_x86_64_debian_12": {"build": "linux_x86_64_debian_13"}}))
    higher = run(*args, "--json", "--rules", str(empty), "--rules", str(other), cwd=project)
    assert higher.returncode == 0, higher.stderr
    assert json.loads(higher.stdout)["build"] == "linux_x86_64_debian_13"


def test_broken_project_rules_are_bad_input(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "rules.cfg").write_text("{not json")
    result = run("tags", "--json", cwd=project)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "rules.cfg" in result.stderr
