"""Run INSIDE a build container as root (Python 3.8 or newer): unpack one sdist and hand its
folders to the unprivileged user the project's own code runs as.

Usage: python extract_sdist.py ARCHIVE DEST [--owner UID:GID] [--own DIR]... [--remove DIR]...

--remove: folders of earlier builds, done with, removed first (one exec instead of a clean-up of
their own). --own: folders the build writes (its source, output and home), made when missing and
owned, with everything in them, by --owner; nothing else is theirs to write."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path


def own(folder: Path, uid: int, gid: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chown(folder, uid, gid)
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.lchown(Path(root) / name, uid, gid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("archive")
    parser.add_argument("destination")
    parser.add_argument("--owner", default="")
    parser.add_argument("--own", action="append", default=[])
    parser.add_argument("--remove", action="append", default=[])
    args = parser.parse_args()
    for stale in args.remove:
        shutil.rmtree(stale, ignore_errors=True)
    # Made here, not by the unpacker: two sdists unpacking at once would race to create it.
    Path(args.destination).mkdir(parents=True, exist_ok=True)
    shutil.unpack_archive(args.archive, args.destination)
    if args.owner:
        uid, _, gid = args.owner.partition(":")
        for folder in args.own:
            own(Path(folder), int(uid), int(gid or uid))


main()
