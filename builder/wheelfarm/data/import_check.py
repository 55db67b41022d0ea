"""Run INSIDE a runtime container by the venv the wheel was installed into (Python 3.8 or newer):
import each module named on the command line in turn, say on one line each which imported and
which failed and why, then the failure's traceback. Exit 1 when any failed.

Usage: python import_check.py MODULE..."""

from __future__ import annotations

import importlib
import sys
import traceback

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
sys.exit(1 if failed else 0)
