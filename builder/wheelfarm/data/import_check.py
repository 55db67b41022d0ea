"""Run INSIDE a runtime container by the venv the wheel was installed into (Python 3.8 or newer):
import each module named on the command line in turn, say on one line each which imported and
which failed and why, then the failure's traceback. Exit 1 when any failed.

When an import fails, the compiled modules under the failed module's location are also loaded
the way the dynamic linker loads them (dlopen with RTLD_NOW: every library found, every symbol
bound, no module code run), and one line says how that went: it tells a wheel that does not link
on this target from a package whose own Python code refused (one that wants another package
imported first, or a setting).

Usage: python import_check.py MODULE..."""

from __future__ import annotations

import ctypes
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import traceback
from pathlib import Path

LOADS = "compiled modules load: "
DOES_NOT_LOAD = "compiled module does not load: "


def compiled_modules(name: str) -> list[Path]:
    """The extension modules at the module's location, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except BaseException:  # a parent package that fails to import
        return []
    if spec is None:
        return []
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    places = list(spec.submodule_search_locations or ())
    if not places:
        origin = spec.origin or ""
        return [Path(origin)] if origin.endswith(suffixes) else []
    found: set[Path] = set()
    for place in places:
        found.update(p for p in Path(place).rglob("*") if p.name.endswith(suffixes))
    return sorted(found)


def check_linking(name: str) -> None:
    modules = compiled_modules(name)
    if not modules:
        return
    for path in modules:
        try:
            ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as exc:
            print(DOES_NOT_LOAD + " ".join(str(exc).split()))
            return
    print(f"{LOADS}{len(modules)} of {len(modules)} under {name}")


failed = 0
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        print("imported " + name)
    except BaseException as exc:
        failed += 1
        text = " ".join(str(exc).split())
        detail = ": " + text if text else ""
        print(f"FAILED import {name}: {type(exc).__name__}{detail}")
        traceback.print_exc(file=sys.stdout)
        check_linking(name)
sys.exit(1 if failed else 0)
