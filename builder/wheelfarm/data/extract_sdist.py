"""Run INSIDE a build container (Python 3.8 or newer): unpack one sdist.

Usage: python extract_sdist.py ARCHIVE DESTINATION [STALE...]

The folders named after the destination (earlier builds' sources and outputs, done with) are
removed first: one exec instead of a clean-up of their own."""

from __future__ import annotations

import shutil
import sys

for stale in sys.argv[3:]:
    shutil.rmtree(stale, ignore_errors=True)
shutil.unpack_archive(sys.argv[1], sys.argv[2])
