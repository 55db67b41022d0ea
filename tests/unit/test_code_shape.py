"""What keeps the package readable as it grows: no function over 80 lines, no class over 250
(from the def/class line, decorators included, to the last line of the body); every script that
runs inside a container is a file under data/ that parses as Python 3.8 (CentOS 7 runs them), and
no module hands Python source to `python -c`."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "builder" / "wheelfarm"
MODULES = sorted(PACKAGE.glob("*.py"))
SCRIPTS = sorted((PACKAGE / "data").glob("*.py"))
LIMITS = {ast.FunctionDef: 80, ast.AsyncFunctionDef: 80, ast.ClassDef: 250}


def too_long(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        limit = LIMITS.get(type(node))
        if limit is None:
            continue
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        length = (node.end_lineno or node.lineno) - first + 1
        if length > limit:
            found.append(f"{path.name}:{first} {node.name} is {length} lines (limit {limit})")
    return found


def test_the_measure_counts_decorators_and_the_whole_body(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(79))
    sample = tmp_path / "sample.py"
    sample.write_text(f"@decorator\ndef f():\n{body}\n")
    assert too_long(sample) == ["sample.py:1 f is 81 lines (limit 80)"]
    sample.write_text(f"def f():\n{body}\n")
    assert too_long(sample) == []


@pytest.mark.parametrize("path", MODULES + SCRIPTS, ids=lambda p: p.name)
def test_no_function_or_class_is_too_long(path: Path) -> None:
    assert too_long(path) == []


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_in_container_scripts_parse_as_python_3_8(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 8))


def python_c_calls(path: Path) -> list[str]:
    """Calls whose argument list holds the literal "-c" right after something named python."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.List):
            items = node.elts
            for before, item in itertools.pairwise(items):
                if isinstance(item, ast.Constant) and item.value == "-c":
                    shown = ast.unparse(before)
                    if "python" in shown.lower() or "executable" in shown.lower():
                        found.append(f"{path.name}:{node.lineno} {shown} -c")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_python_source_is_run_with_python_c(path: Path) -> None:
    assert python_c_calls(path) == []
