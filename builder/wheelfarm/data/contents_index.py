"""Run INSIDE a Debian or Ubuntu build container as root (Python 3.8 or newer): the Contents
indexes of the image's own apt sources (which package ships which file), reduced to the paths
discovery asks about.

Usage:
  python contents_index.py identity
      prints `wheelfarm-contents-identity: <sha256>` of the image's Release files (what its
      package lists were made from), so the host can tell whether it holds the index already;
      empty when the image keeps no lists
  python contents_index.py fetch OUT.gz [--ca FILE]
      has apt fetch the Contents indexes of every source the image lists, through the image's
      own mirror (apt's Acquire::IndexTargets, as apt-file does; Ubuntu's suite-level files are
      the fallback), writes the lines whose path discovery can ask about to OUT.gz, and prints
      the identity to keep it under (the lists' before the fetch, else the fetched ones')

The kept paths are those of providers.KEPT_LINES (the same expression; a unit test holds them
equal): include dirs, pkg-config dirs, bin dirs and lib*.so/.a directly in a lib dir."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

KEPT_LINES = re.compile(
    r"^(usr/)?(include/|lib[^/\s]*/(\S*/)?pkgconfig/[^/\s]+\.pc\s|share/pkgconfig/[^/\s]+\.pc\s|"
    r"s?bin/[^/\s]+\s|lib[^/\s]*/([^/\s]+/)?lib[^/\s]+\.(so|a)\s|"
    r"(lib[^/\s]*|share)/\S*(Config|-config)\.cmake\s)"
)
IDENTIFIER = "Contents-wheelfarm"
LISTS = Path("/var/lib/apt/lists")
# Debian keeps Contents per component; Ubuntu per suite (the fallback).
CONFIG = """
Acquire::IndexTargets::deb::%(id)s {
    MetaKey "$(COMPONENT)/Contents-$(ARCHITECTURE)";
    ShortDescription "Contents-$(ARCHITECTURE)";
    Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) Contents";
    PDiffs "false";
    KeepCompressed "true";
};
Acquire::IndexTargets::deb::%(id)s-suite {
    MetaKey "Contents-$(ARCHITECTURE)";
    ShortDescription "Contents-$(ARCHITECTURE)";
    Description "$(RELEASE) $(ARCHITECTURE) Contents";
    Fallback-Of "%(id)s";
    PDiffs "false";
    KeepCompressed "true";
};
"""


def identity() -> str:
    """The Release files' digest; empty when the image keeps no package lists."""
    paths = sorted(LISTS.glob("*Release"))
    if not paths:
        return ""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fetch(out: str, ca: str) -> int:
    before = identity()
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as conf:
        conf.write(CONFIG % {"id": IDENTIFIER})
    base = ["apt-get", "-c", conf.name, "-q"]
    if ca:
        base += ["-o", "Acquire::https::CAInfo=" + ca]
    try:
        subprocess.run([*base, "update"], check=True, stdout=sys.stderr)
        listed = subprocess.run(
            [*base, "indextargets", "--format", "$(FILENAME)"],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
    finally:
        Path(conf.name).unlink()
    files = [line for line in listed.splitlines() if "_Contents-" in line and Path(line).exists()]
    if not files:
        print("the image's apt sources offer no Contents index", file=sys.stderr)
        return 3
    kept = 0
    with gzip.open(out + ".part", "wt", encoding="utf-8", compresslevel=6) as dest:
        for name in sorted(files):
            reader = subprocess.Popen(
                ["/usr/lib/apt/apt-helper", "cat-file", name],
                stdout=subprocess.PIPE,
                text=True,
                errors="replace",
            )
            assert reader.stdout is not None
            for line in reader.stdout:
                if KEPT_LINES.match(line):
                    dest.write(line)
                    kept += 1
            if reader.wait() != 0:
                print("could not read " + name, file=sys.stderr)
                return 1
    Path(out + ".part").replace(out)
    print(f"wheelfarm-contents-lines: {kept} from {len(files)} files")
    # Kept under the lists the image had (what `identity` says next time), else the fetched.
    print("wheelfarm-contents-identity: " + (before or identity()))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["identity", "fetch"])
    parser.add_argument("out", nargs="?", default="")
    parser.add_argument("--ca", default="")
    args = parser.parse_args()
    if args.mode == "identity":
        print("wheelfarm-contents-identity: " + identity())
        return 0
    return fetch(args.out, args.ca)


if __name__ == "__main__":
    sys.exit(main())
