"""Which distro package provides what a failed build was missing (a `needs.Missing`), per
package-manager family. Pure: it writes queries and reads their answers; discover.py runs them in
the target's own container, against the target's own package metadata.

How each family is asked:

- apt: the Contents indexes of the image's own apt sources (contents_index.py fetches them
  through the image's mirror and keeps only the paths asked about here). A header `foo/bar.h` is
  any `usr/include/**/foo/bar.h`; a pkg-config module `foo` is `usr/{lib,share}/**/pkgconfig/
  foo.pc`; a program `foo` is `usr/bin/foo`, `usr/sbin/foo`, `bin/foo` or `sbin/foo`; a library
  `-lfoo` is `libfoo.so` or `libfoo.a` directly in a lib dir (the -dev package's unversioned
  link).
- dnf/yum: `provides` queries: `*/include/foo/bar.h`, `pkgconfig(foo)`, `/usr/bin/foo`,
  `*/libfoo.so`.
- apk: the `pc:foo`, `cmd:foo` and `so:libfoo.so.*` provides; for a library only its runtime
  package is named, so the `-dev` package of that package's origin is taken.

When several packages match, the tie-break (`choose`) is complete and deterministic; the first
rule that separates the candidates decides, and `Choice.why` says which:

1. already there: a candidate installed in the container, or chosen earlier in this build, wins
   (a second variant of something already chosen would conflict with it);
2. directness: the path the compiler, linker or PATH finds without extra flags (a header
   directly in an include dir or its architecture's subdir before deeper ones, `usr/bin` before
   `usr/sbin`, `bin`, `sbin`, a library in the target's own lib dir before a multilib one, a
   shared library before a static one);
3. archive area: the distro's main area over contrib/non-free (Debian's section prefix);
4. for a program, the packages named after it (`cargo`, `cargo-*`), the newest upstream
   version first: packages of one name shipping one command are builds of one tool, and the
   newest is the likeliest to meet a build's minimum (Debian 12's `/usr/bin/cargo` is in
   `cargo`, of Rust 1.63's era, and `cargo-web`, a current Rust: cargo-web);
5. the package named after the thing (`cmake` for cmake, `libfoo-dev` for -lfoo);
6. a development package (`-dev`, `-devel`) for a header, pkg-config module or library;
7. among implementation variants of one library, the TLS backend CPython's own `ssl` module
   uses, OpenSSL, then GnuTLS, then NSS (a wheel then shares one TLS stack with the
   interpreter): Debian 12's `curl-config` is in libcurl4-openssl-dev, -gnutls-dev and
   -nss-dev: libcurl4-openssl-dev;
8. the shortest name, then the name in byte order."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wheelfarm.needs import Missing

FAMILIES = ("apk", "apt", "dnf", "yum")
# What contents_index.py keeps of a Contents index (the same expression lives in that script,
# which cannot import this module; a unit test holds them equal).
KEPT_LINES = re.compile(
    r"^(usr/)?(include/|lib[^/\s]*/(\S*/)?pkgconfig/[^/\s]+\.pc\s|share/pkgconfig/[^/\s]+\.pc\s|"
    r"s?bin/[^/\s]+\s|lib[^/\s]*/([^/\s]+/)?lib[^/\s]+\.(so|a)\s|"
    r"(lib[^/\s]*|share)/\S*(Config|-config)\.cmake\s)"
)
# Variant words in package names, most preferred first (rule 7).
VARIANTS = ("openssl", "gnutls", "nss")
_DEV = re.compile(r"-(dev|devel)$")
_NEVRA = re.compile(r"^(?P<name>\S+)-(?:\d+:)?[^-\s]+-[^-\s]+\.(?P<arch>[A-Za-z0-9_]+)$")
_OWN_LIB_DIR = re.compile(r"^(usr/)?(lib|lib64)/([^/]+-linux-[^/]+/)?lib[^/]+$")
_APK_NAME = re.compile(r"^(?P<name>.+?)-\d[^-]*-r\d+$")


@dataclass(frozen=True, order=True)
class Candidate:
    """A package that provides a Missing thing, and the path or provide that said so."""

    package: str
    path: str
    area: str = ""  # the archive area when not the main one ("contrib", "non-free")


@dataclass(frozen=True)
class Choice:
    missing: Missing
    package: str
    candidates: tuple[str, ...]
    why: str

    def describe(self) -> str:
        return f"{self.package} for {self.missing} ({self.why})"


# ---------------------------------------------------------------- apt: Contents lines


def _escape(name: str) -> str:
    return re.escape(name.strip("/"))


def contents_pattern(missing: Missing) -> re.Pattern[str]:
    """The Contents paths that provide `missing` (paths have no leading slash)."""
    name = _escape(missing.name)
    if missing.kind == "header":
        return re.compile(rf"^(usr/)?include/(.+/)?{name}$")
    if missing.kind == "pkgconfig":
        # Any case: meson names some dependencies its own way (scipy's "OpenBLAS" is openblas.pc).
        return re.compile(rf"^usr/(lib[^/]*/(.*/)?|share/)pkgconfig/{name}\.pc$", re.IGNORECASE)
    if missing.kind == "program":
        return re.compile(rf"^(usr/)?s?bin/{name}$")
    if missing.kind == "cmake":
        # Where find_package looks under a prefix: lib*/ (with the arch's subdir) or share/,
        # then cmake/<Name>*/ or <Name>*/(cmake|CMake)/, for either spelling of the file.
        lower = re.escape(missing.name.lower())
        return re.compile(rf"^usr/(lib[^/]*|share)/(.+/)?({name}Config|{lower}-config)\.cmake$")
    return re.compile(rf"^(usr/)?lib[^/]*/([^/]+/)?lib{name}\.(so|a)$")


def parse_contents_line(line: str) -> tuple[str, list[tuple[str, str]]] | None:
    """`path   section/pkg,area/section/pkg2` → (path, [(area, package), ...]). The path may
    hold spaces; the package list, the last field, does not."""
    text = line.rstrip("\n")
    path, sep, owners = text.rpartition(" ")
    path = path.rstrip()
    if not sep or not path or not owners:
        return None
    found = []
    for owner in owners.split(","):
        parts = owner.split("/")
        area = parts[0] if len(parts) == 3 else ""
        found.append((area, parts[-1]))
    return path, found


def apt_candidates(
    lines: Iterable[str], wanted: Sequence[Missing]
) -> dict[Missing, list[Candidate]]:
    """Every candidate for each wanted thing, in one pass over a (reduced) Contents index."""
    patterns = [(missing, contents_pattern(missing)) for missing in wanted]
    # A cheap test before the pattern: the text every matching line holds.
    tails = {
        missing: "onfig.cmake" if missing.kind == "cmake" else missing.name.rsplit("/", 1)[-1]
        for missing in wanted
    }
    anycase = {m for m in wanted if m.kind == "pkgconfig" and m.name != m.name.lower()}
    tails.update({m: m.name.lower() for m in anycase})
    found: dict[Missing, list[Candidate]] = {missing: [] for missing in wanted}
    for line in lines:
        parsed = None
        lowered = line.lower() if anycase else line
        for missing, pattern in patterns:
            if tails[missing] not in (lowered if missing in anycase else line):
                continue
            parsed = parsed or parse_contents_line(line)
            if parsed is None:
                break
            path, owners = parsed
            if pattern.match(path):
                found[missing] += [Candidate(pkg, path, area) for area, pkg in owners]
    return found


# ---------------------------------------------------------------- dnf, yum and apk: provides


def provides_queries(family: str, missing: Missing) -> list[str]:
    """What to ask the family's package manager for (`dnf provides Q`, `apk search -x Q`)."""
    name = missing.name.strip("/")
    # pkg-config modules are looked up in any case on apt too (meson's "OpenBLAS").
    modules = list(dict.fromkeys((name, name.lower())))
    if family == "apk":
        return {
            "header": [],
            "pkgconfig": [f"pc:{m}" for m in modules],
            "program": [f"cmd:{name}"],
            "library": [f"so:lib{name}.so*"],
            "cmake": [],  # apk has no CMake provides
        }[missing.kind]
    return {
        "header": [f"*/include/{name}"],
        "pkgconfig": [f"pkgconfig({m})" for m in modules],
        "program": [f"/usr/bin/{name}", f"/usr/sbin/{name}"],
        "library": [f"*/lib{name}.so"],
        # Fedora's and RHEL's CMake dependency generator adds cmake(Name) provides; the
        # file is what yum's older packages can be asked for.
        "cmake": [f"cmake({name})", f"*/{name}Config.cmake", f"*/{name.lower()}-config.cmake"],
    }[missing.kind]


def parse_rpm_provides(output: str, arch: str) -> list[Candidate]:
    """`dnf provides` / `yum provides` output: a `name-[epoch:]version-release.arch : summary`
    line per match, then `Filename : path` or `Provide : what`. Other architectures' packages
    (i686 beside x86_64) are left out; noarch stays."""
    found: list[Candidate] = []
    current: tuple[str, str] | None = None
    for raw in output.splitlines():
        line = raw.strip()
        head, sep, rest = line.partition(" : ")
        match = _NEVRA.match(head.strip()) if sep else None
        if match is not None and not head.startswith(("Repo", "Filename", "Provide", "Matched")):
            current = (match.group("name"), match.group("arch"))
            if current[1] in (arch, "noarch"):
                found.append(Candidate(current[0], ""))
            continue
        key = head.strip()
        if current is not None and key in ("Filename", "Provide") and found:
            last = found[-1]
            if last.package == current[0] and not last.path:
                found[-1] = Candidate(last.package, rest.strip())
    return sorted(set(found))


def parse_apk_search(output: str) -> list[str]:
    """`apk search -x` output: `name-version-rN` per line (with -o, the origin's)."""
    names = []
    for line in output.split():
        match = _APK_NAME.match(line.strip())
        if match:
            names.append(match.group("name"))
    return sorted(set(names))


def apk_dev_package(origin: str) -> str:
    """The development package of an apk origin (`openssl` → `openssl-dev`)."""
    return origin if origin.endswith("-dev") else f"{origin}-dev"


# ---------------------------------------------------------------- the tie-break


def _directness(missing: Missing, path: str) -> int:
    bare = path.lstrip("/")
    if missing.kind == "header":
        depth = bare.split("include/", 1)[-1].count("/") - missing.name.strip("/").count("/")
        # usr/include/<triplet>/ is as direct as usr/include/ itself.
        first = bare.split("include/", 1)[-1].split("/", 1)[0]
        return max(0, depth - (1 if "-linux-" in first else 0))
    if missing.kind == "program":
        order = ("usr/bin/", "usr/sbin/", "bin/", "sbin/")
        return next((i for i, prefix in enumerate(order) if bare.startswith(prefix)), len(order))
    if missing.kind == "library":
        # The target's own lib dirs before multilib ones (lib32, libx32), shared before static.
        own = _OWN_LIB_DIR.match(bare) is not None
        return (0 if own else 2) + (0 if bare.endswith(".so") else 1)
    return 0


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _named_after(missing: Missing, package: str) -> bool:
    stem = _normal(_DEV.sub("", package))
    thing = missing.name.rsplit("/", 1)[-1]
    thing = re.sub(r"\.(h|hpp|hh|pc)$", "", thing)
    thing = re.sub(r"-config$", "", thing)
    names = {_normal(thing), _normal(f"lib{thing}")}
    return stem in names or re.sub(r"\d+$", "", stem) in names


def _newest_program(
    missing: Missing, package: str, versions: Mapping[str, str]
) -> tuple[bool, tuple[tuple[int, str], ...]]:
    """Rule 4's key: a package named after the program (`cargo`, `cargo-web` for cargo) first,
    the newest of those first; other packages, and other kinds of things, are not ordered."""
    if missing.kind != "program":
        return (False, ())
    named = package == missing.name or package.startswith(missing.name + "-")
    if not named:
        return (True, ())
    return (False, tuple((-n, s) for n, s in upstream_version(versions.get(package, "0"))))


def _variant_rank(package: str) -> int:
    words = re.split(r"[^a-z0-9]+", package.lower())
    return next((i for i, v in enumerate(VARIANTS) if v in words), len(VARIANTS))


def upstream_version(version: str) -> tuple[tuple[int, str], ...]:
    """A package version's upstream part as comparable pieces: `1:1.78.0+dfsg1-2~deb12u1` →
    (1, 78, 0, ...). The epoch and the packaging revision are left out: they order a package's
    own releases, not two packages' tools."""
    upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
    pieces = re.findall(r"\d+|[A-Za-z]+", upstream.split("+", 1)[0].split("~", 1)[0])
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in pieces)


@dataclass(frozen=True)
class Known:
    """What the tie-break may know besides the candidates."""

    installed: frozenset[str] = frozenset()
    chosen: frozenset[str] = frozenset()
    versions: Mapping[str, str] | None = None  # package → candidate version, where asked


def _rules(missing: Missing, known: Known) -> list[tuple[str, Callable[[Candidate], Any]]]:
    """(why, key) per rule, in order; a key maps a Candidate to a sortable value, lower first."""
    versions = known.versions or {}
    return [
        ("already installed or chosen in this build",
         lambda c: c.package not in known.installed | known.chosen),
        ("found where the build looks without extra flags",
         lambda c: _directness(missing, c.path)),
        ("from the distro's main archive area", lambda c: c.area != ""),
        ("the newest version of the program among the packages named after it",
         lambda c: _newest_program(missing, c.package, versions)),
        ("named after it", lambda c: not _named_after(missing, c.package)),
        ("a development package",
         lambda c: missing.kind != "program" and not _DEV.search(c.package)),
        (f"the preferred implementation ({' > '.join(VARIANTS)})",
         lambda c: _variant_rank(c.package)),
        ("the shortest name", lambda c: len(c.package)),
        ("the first name in byte order", lambda c: c.package),
    ]  # fmt: skip


def choose(missing: Missing, candidates: Sequence[Candidate], known: Known) -> Choice | None:
    """One package for `missing` by the module's tie-break, or None without candidates."""
    best: dict[str, Candidate] = {}
    for candidate in sorted(candidates, key=lambda c: (_directness(missing, c.path), c)):
        best.setdefault(candidate.package, candidate)
    left = sorted(best.values())
    names = tuple(c.package for c in left)
    if not left:
        return None
    if len(left) == 1:
        return Choice(missing, left[0].package, names, f"the only package with {left[0].path}")
    for why, key in _rules(missing, known):
        keyed = [(key(c), c) for c in left]
        top = min(k for k, _ in keyed)
        kept = [c for k, c in keyed if k == top]
        if len(kept) < len(left):
            left = kept
            if len(left) == 1:
                others = ", ".join(n for n in names if n != left[0].package)
                return Choice(missing, left[0].package, names, f"{why}; over {others}")
    return Choice(missing, left[0].package, names, "the first name in byte order")
