"""Why a build failed, read off its log (and, when the log says too little, off a trace of the
failed step): the cause to put in the summary instead of the backend's wrapper exception
(`Backend subprocess exited when trying to invoke build_wheel`), with a hint. Pure: text in,
frozen dataclasses out; no Docker, no terminal.

The log is read against `PATTERNS`, a table of the tools' own wording — gcc's and clang's,
pkg-config's, meson's and CMake's, the shells', Python's subprocess errors, ld's, cargo's,
pip's and uv's, git's, curl's and urllib's — never a list of packages or host names. Each row says
what kind of cause its wording means, which part of the line names the thing (a header, a
pkg-config module, a program, a library: `needs.Missing`), and what to do about it. When several
causes are found, `Diagnosis.primary` is the one that best explains the failure: something
missing (named) beats something missing said only in prose, which beats a download attempt, which
beats a compiler error; among equals, the first in the log.

`read_trace` reads `strace -f` output of the failed step for what it looked for and did not find
(headers, .pc files, programs, libraries): the builds that probe quietly and give up in prose
("Please make sure the libxml2 and libxslt development packages are installed") are diagnosed
from that."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Literal

from wheelfarm.needs import Kind, Missing

CauseKind = Literal[
    "missing-header",
    "missing-pkgconfig",
    "missing-program",
    "missing-library",
    "missing-cmake",
    "download",
    "compiler-error",
]
CAUSE_KINDS: tuple[CauseKind, ...] = (
    "missing-header",
    "missing-pkgconfig",
    "missing-program",
    "missing-library",
    "missing-cmake",
    "download",
    "compiler-error",
)
# What a Missing of each kind is, as a cause.
CAUSE_OF: dict[Kind, CauseKind] = {
    "header": "missing-header",
    "pkgconfig": "missing-pkgconfig",
    "program": "missing-program",
    "library": "missing-library",
    "cmake": "missing-cmake",
}
# How well a cause explains a failure (lower explains better): the pattern's rank.
# A tool's own words for a failed download rank above the network's (a resolver's or a
# connection's error, often a warning before the tool gives up).
NAMED, PROSE, DOWNLOAD, NETWORK, COMPILER, GENERIC = range(6)
SUMMARY_CHARS = 300
NO_TRACER = "no strace in the image"  # why a step was not traced: installing it helps
TRACED_NAMED = 3  # a traced cause's summary names this many things (the cause lists them all)
_PACKAGES = "the recipe's [build.packages]"


@dataclass(frozen=True)
class Cause:
    kind: str  # one of CAUSE_KINDS
    summary: str  # one line: `missing header lber.h (lber.h: No such file or directory)`
    hint: str  # what to install, or which recipe key to set
    missing: tuple[Missing, ...] = ()
    line: str = ""  # the log line it came from
    rank: int = field(default=GENERIC, compare=False)
    subject: str = field(default="", compare=False)  # the name the tool's words gave, if any
    # False: a trace of the failed step, which shows what the build looked for on this machine,
    # could not add to what these words say (see Pattern).
    traceable: bool = field(default=True, compare=False)

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "hint": self.hint,
            "missing": [{"kind": m.kind, "name": m.name} for m in self.missing],
        }


@dataclass(frozen=True)
class Diagnosis:
    causes: tuple[Cause, ...] = ()  # in log order, deduplicated
    missing: tuple[Missing, ...] = ()  # every cause's, deduplicated, in log order
    traced: bool = False  # a trace of the failed step was read too
    note: str = ""  # how it was diagnosed: "log only: ...", "log and trace"
    untraced: str = ""  # why no trace could be made, when one was wanted (NO_TRACER, ...)

    @property
    def primary(self) -> Cause | None:
        """The cause that best explains the failure (see the module's docstring)."""
        if not self.causes:
            return None
        return min(enumerate(self.causes), key=lambda item: (item[1].rank, item[0]))[1]

    def with_trace(self, found: Sequence[Missing], note: str) -> Diagnosis:
        """This diagnosis with what a trace found missing: one cause naming them all, after the
        log's (so that things named by the trace beat prose from the log)."""
        new = [item for item in found if item not in set(self.missing)]
        # Prose that names what it lacks (`could not be found for jpeg`) picks, among the
        # things the trace saw looked for in vain (optional ones too), those it names.
        subject = self.primary.subject.lower() if self.primary is not None else ""
        named = [item for item in new if subject and subject in item.name.lower()]
        new = named or new
        extra = (_traced_cause(new),) if new else ()
        return Diagnosis(
            causes=self.causes + extra,
            missing=_unique([*self.missing, *found]),
            traced=True,
            note=note,
        )

    def noted(self, note: str) -> Diagnosis:
        return replace(self, note=note)

    def untraceable(self, why: str) -> Diagnosis:
        """This diagnosis, the log's alone, because the failed step could not be traced."""
        return replace(self, note=f"log only: {why}", untraced=why)


# ---------------------------------------------------------------- the table of wording


Names = Callable[["re.Match[str]"], tuple[str, ...]]


def _group(match: re.Match[str]) -> tuple[str, ...]:
    return (match.group("name"),)


def _basename(match: re.Match[str]) -> tuple[str, ...]:
    return (PurePosixPath(match.group("name")).name,)


def _pkgconfig_args(match: re.Match[str]) -> tuple[str, ...]:
    """The modules of a failed `pkg-config --flags module...` command line (as a string or as
    Python's list repr), without its options and version constraints."""
    words = re.split(r"[\s,\[\]'\"]+", match.group("name"))
    names = [w for w in words if w and not w.startswith("-") and re.match(r"[A-Za-z_]", w)]
    return tuple(names[1:])  # the first is pkg-config itself


def _no_names(match: re.Match[str]) -> tuple[str, ...]:
    return ()


def _rust(match: re.Match[str]) -> tuple[str, ...]:
    return ("cargo", "rustc")


def _by_shape(match: re.Match[str]) -> tuple[str, ...]:
    return (match.group("name"),) if missing_of_shape(match.group("name")) else ()


def missing_of_shape(name: str) -> Missing | None:
    """A name whose spelling says what it is: `x.h` a header, `x.pc` a pkg-config module,
    `libx.so`/`libx.a` a library, `x-config` a program; else None."""
    base = name.strip("'\"`")
    if re.fullmatch(r"[\w./+-]+\.(h|hh|hpp|hxx)", base):
        return Missing("header", base)
    if base.endswith(".pc"):
        return Missing("pkgconfig", PurePosixPath(base).name[:-3])
    library = re.fullmatch(r"(?:.*/)?lib([\w+.-]+?)\.(?:so(?:\.[\d.]+)?|a)", base)
    if library:
        return Missing("library", library.group(1))
    if re.fullmatch(r"[\w.+-]+-config", base):
        return Missing("program", base)
    return None


@dataclass(frozen=True)
class Pattern:
    """One tool's wording for one kind of failure.

    `regex` is searched in each line of the log; `names` turns the match into the names of what
    is missing (of kind `missing`, or by shape when `missing` is None and names are given); the
    summary is `what` (with `{name}`) then the tool's words in parentheses (an empty `what`: the
    tool's line alone, as a compiler's error says itself what is wrong); `hint` may use `{name}`
    too. `before`, when given, must match one of the few lines before (a traceback's frames).
    `traceable` False: running the failed step again under a trace could not find anything
    missing here. A compiler that rejected the source found what it included (and a trace would
    cost a second compile for nothing); cargo's crates only ever come from the network."""

    kind: CauseKind
    regex: re.Pattern[str]
    what: str
    hint: str
    missing: Kind | None = None
    names: Names = _group
    rank: int = NAMED
    before: re.Pattern[str] | None = None
    traceable: bool = True


def _p(
    kind: CauseKind,
    regex: str,
    what: str,
    hint: str,
    *,
    missing: Kind | None = None,
    names: Names = _group,
    rank: int = NAMED,
    before: str | None = None,
    traceable: bool = True,
) -> Pattern:
    return Pattern(
        kind,
        re.compile(regex),
        what,
        hint,
        missing,
        names,
        rank,
        re.compile(before) if before else None,
        traceable,
    )


_HEADER_HINT = (
    f"install the distro's development package that ships {{name}} ({_PACKAGES}); "
    "or point the build at it with CFLAGS/CPPFLAGS in [build.env]"
)
_PC_HINT = (
    f"install the distro's development package that ships {{name}}.pc, and pkg-config, with "
    f"{_PACKAGES}; or set PKG_CONFIG_PATH in [build.env]"
)
_PROGRAM_HINT = f"install the distro's package that provides `{{name}}` ({_PACKAGES})"
_LIBRARY_HINT = (
    f"install the distro's development package that ships lib{{name}}.so ({_PACKAGES}); "
    "or set LDFLAGS in [build.env]"
)
_CMAKE_HINT = (
    f"install the distro's development package that ships CMake's config file for {{name}} "
    f"({_PACKAGES}); or point CMAKE_PREFIX_PATH at it in [build.env]"
)
_PROSE_HINT = f"install the development packages the message names ({_PACKAGES})"
_RUST_HINT = (
    f"install a Rust toolchain (the distro's cargo and rustc) with {_PACKAGES}; without one the "
    "build tries to download it"
)
_CRATES_HINT = (
    "the build downloads Rust crates at build time: make the crate registry reachable from the "
    "build container, or point cargo at a mirror or vendored sources (CARGO_HOME, "
    "CARGO_REGISTRIES_*, CARGO_HTTP_PROXY in [build.env])"
)
_INDEX_HINT = (
    "a Python package the build needs could not be fetched: check the package index settings "
    "(pip config, PIP_INDEX_URL) and that the version exists for this Python"
)
_FETCH_HINT = (
    "the build fetches sources at build time: install the dependency from the distro "
    f"({_PACKAGES}) so the build finds it instead, or make the address reachable"
)
_WRAP_HINT = (
    "the build downloads a meson subproject (a wrap file under subprojects/) at build time: make "
    "its address reachable from the build containers (HTTPS_PROXY in the host's environment is "
    "passed on), or build from an sdist that ships the subproject's source"
)
_TOOLCHAIN_HINT = f"the build downloads a toolchain: install it from the distro ({_PACKAGES})"
_COMPILER_HINT = (
    "the compiler rejected the source: read the full log; a library too old or too new for "
    f"this version is a common cause ({_PACKAGES}, or another version of the project)"
)
_SHELL = r"(?:^|\s)(?:/bin/|/usr/bin/)?(?:sh|bash|dash|zsh)(?:: line \d+|: \d+)?: "

PATTERNS: tuple[Pattern, ...] = (
    # gcc: `x.c:1:10: fatal error: lber.h: No such file or directory`
    _p(
        "missing-header",
        r"(?P<name>[\w./+-]+\.(?:h|hh|hpp|hxx|H)): No such file or directory",
        "missing header {name}",
        _HEADER_HINT,
        missing="header",
    ),
    # clang: `fatal error: 'lber.h' file not found`
    _p(
        "missing-header",
        r"'(?P<name>[\w./+-]+\.(?:h|hh|hpp|hxx|H))' file not found",
        "missing header {name}",
        _HEADER_HINT,
        missing="header",
    ),
    # pkg-config: `Package libxml-2.0 was not found in the pkg-config search path`; pkgconf:
    # `Package 'libxml-2.0', required by 'virtual:world', not found`
    _p(
        "missing-pkgconfig",
        r"Package '?(?P<name>[\w.+-]+)'?(?:, required by '[^']*',)? (?:was )?not found",
        "missing pkg-config module {name}",
        _PC_HINT,
        missing="pkgconfig",
    ),
    _p(
        "missing-pkgconfig",
        r"No package '(?P<name>[^']+)' found",
        "missing pkg-config module {name}",
        _PC_HINT,
        missing="pkgconfig",
    ),
    # meson: `ERROR: Dependency "libxml-2.0" not found, tried pkgconfig and cmake`
    _p(
        "missing-pkgconfig",
        r"Dependency \"?(?P<name>[\w.+-]+)\"? not found",
        "missing pkg-config module {name}",
        _PC_HINT,
        missing="pkgconfig",
    ),
    # Python's subprocess: `Command 'pkg-config --exists mysqlclient' returned non-zero exit
    # status 1.` or `Command '['pkg-config', '--cflags', 'libxml-2.0']' returned ...`
    _p(
        "missing-pkgconfig",
        r"Command '(?P<name>\[?'?(?:[\w/.-]*/)?(?:pkg-config|pkgconf)\b.*?)' returned non-zero",
        "missing pkg-config module {name}",
        _PC_HINT,
        missing="pkgconfig",
        names=_pkgconfig_args,
    ),
    # CMake's FindPkgConfig itself
    _p(
        "missing-program",
        r"^(?!-- ).*Could NOT find PkgConfig",
        "missing program pkg-config",
        _PROGRAM_HINT.format(name="pkg-config"),
        missing="program",
        names=lambda _: ("pkg-config",),
    ),
    # Python's subprocess: `FileNotFoundError: [Errno 2] No such file or directory: 'curl-config'`
    # (only after subprocess's frames: an open() of a data file reads the same)
    _p(
        "missing-program",
        r"\[Errno 2\] No such file or directory: '(?P<name>[^'/\s]+)'",
        "missing program {name}",
        _PROGRAM_HINT,
        missing="program",
        before=r"subprocess|_execute_child|Could not run|Popen",
    ),
    # dash `/bin/sh: 1: mysql_config: not found`, bash `bash: line 1: cmake: command not found`
    _p(
        "missing-program",
        _SHELL + r"(?P<name>[^\s:]+): (?:command )?not found",
        "missing program {name}",
        _PROGRAM_HINT,
        missing="program",
        names=_basename,
    ),
    _p(
        "missing-program",
        r"(?P<name>[\w.+/-]+): command not found",
        "missing program {name}",
        _PROGRAM_HINT,
        missing="program",
        names=_basename,
    ),
    # setuptools/distutils: `error: command 'swig' failed: No such file or directory`,
    # `unable to execute 'gcc': No such file or directory`
    _p(
        "missing-program",
        r"(?:command|unable to execute) '(?P<name>[^']+)'(?: failed)?: No such file or directory",
        "missing program {name}",
        _PROGRAM_HINT,
        missing="program",
        names=_basename,
    ),
    # gcc's driver: `gcc: fatal error: cannot execute 'cc1plus': execvp: No such file...`
    _p(
        "missing-program",
        r"(?:cannot execute|error trying to exec) '(?P<name>[^']+)': execvp",
        "missing program {name}",
        _PROGRAM_HINT,
        missing="program",
        names=_basename,
    ),
    # meson: `Program 'swig' not found or not executable`, `Unknown compiler(s): [['gfortran'`
    _p(
        "missing-program",
        r"Program '(?P<name>[^']+)' not found",
        "missing program {name}",
        _PROGRAM_HINT,
        missing="program",
        names=_basename,
    ),
    _p(
        "missing-program",
        r"Unknown compiler\(s\): \[\['(?P<name>[^']+)'",
        "missing program {name}",
        _PROGRAM_HINT,
        missing="program",
        names=_basename,
    ),
    # rustc: error: linker `cc` not found
    _p(
        "missing-program",
        r"linker `(?P<name>[^`]+)` not found",
        "missing program {name}",
        _PROGRAM_HINT,
        missing="program",
        names=_basename,
    ),
    # setuptools-rust: `can't find Rust compiler`; maturin's puccinialin: `Rust not found,
    # installing into a temporary directory` (then a toolchain download)
    _p(
        "missing-program",
        r"can't find Rust compiler|Rust not found, installing into a temporary directory",
        "missing programs cargo and rustc",
        _RUST_HINT,
        missing="program",
        names=_rust,
    ),
    # ld: `/usr/bin/ld: cannot find -lldap: No such file or directory`
    _p(
        "missing-library",
        r"cannot find -l(?P<name>[\w.+-]+)",
        "missing library -l{name}",
        _LIBRARY_HINT,
        missing="library",
    ),
    # CMake's find_package: `Could not find a package configuration file provided by "Arrow"
    # with any of the following names:` (and `By not providing "FindArrow.cmake" ...`)
    _p(
        "missing-cmake",
        r"(?:Could not find a package configuration file|find a package configuration file) "
        r'provided by "(?P<name>[\w.+-]+)"',
        "missing CMake package {name}",
        _CMAKE_HINT,
        missing="cmake",
    ),
    # CMake: `CMAKE_Fortran_COMPILER not set`, `No CMAKE_CXX_COMPILER could be found.`
    _p(
        "missing-program",
        r"No CMAKE_(?P<name>\w+)_COMPILER could be found|CMAKE_(?P<lang>\w+)_COMPILER not set",
        "missing compiler",
        f"install the compiler for the language CMake names ({_PACKAGES})",
        names=_no_names,
        rank=PROSE,
    ),
    # CMake: `Could NOT find OpenSSL, try to set the path ... (missing: OPENSSL_INCLUDE_DIR)`
    # (a status line `-- Could NOT find X` is an optional package: not a cause)
    _p(
        "missing-library",
        r"^(?!-- ).*Could NOT find (?P<name>[\w:.+-]+)",
        "CMake could not find {name}",
        f"install the distro's development package of {{name}} ({_PACKAGES})",
        names=_no_names,
        rank=PROSE,
    ),
    # Pillow: `The headers or library files could not be found for jpeg,`
    _p(
        "missing-library",
        r"headers or library files could not be found for (?P<name>[\w.+-]+)",
        "missing headers or library of {name}",
        f"install the distro's development package of {{name}} ({_PACKAGES})",
        names=_no_names,
        rank=PROSE,
    ),
    # cargo: `error: failed to get `asn1` as a dependency of package ...`,
    # `failed to download `asn1 v0.16.2``, `no matching package named `asn1` found`
    _p(
        "download",
        r"failed to get `(?P<name>[^`]+)` as a dependency",
        "crate download failed: {name}",
        _CRATES_HINT,
        names=_no_names,
        rank=DOWNLOAD,
        traceable=False,
    ),
    _p(
        "download",
        r"failed to download (?:from )?`(?P<name>[^`\s]+(?: v[\w.+-]+)?)`",
        "download failed: {name}",
        _CRATES_HINT,
        names=_no_names,
        rank=DOWNLOAD,
        traceable=False,
    ),
    # meson fetching a subproject's source from its wrap file (`WARNING: failed to download
    # with error: could not get URL; is the internet available?`, then the same as an ERROR).
    # Ahead of anyone else's "failed to download", whose name would be the word `with`. A
    # dependency() with a fallback says `Run-time dependency x found: NO` first, which names
    # what to install; a bare subproject() has no way to the distro's copy, so a trace of what
    # the build looked for (ccache, git...) could not help.
    _p(
        "download",
        r"could not get (?P<name>\w+://[^\s;]+?);? is the internet available",
        "meson could not download a subproject's source: {name}",
        _WRAP_HINT,
        names=_no_names,
        rank=DOWNLOAD,
        traceable=False,
    ),
    # Anyone else's words for it (a setup.py fetching a library's sources): the trace may show
    # what the build looked for here before it went to fetch it.
    _p(
        "download",
        r"(?i)failed to download (?:from )?(?!with\b)(?P<name>[^`\s]+)",
        "download failed: {name}",
        _FETCH_HINT,
        names=_no_names,
        rank=DOWNLOAD,
    ),
    _p(
        "download",
        r"Unable to update registry `(?P<name>[^`]+)`",
        "crate registry unreachable: {name}",
        _CRATES_HINT,
        names=_no_names,
        rank=DOWNLOAD,
        traceable=False,
    ),
    _p(
        "download",
        r"failed to (?:fetch|load source for dependency) `(?P<name>[^`]+)`",
        "download failed: {name}",
        _CRATES_HINT,
        names=_no_names,
        rank=DOWNLOAD,
        traceable=False,
    ),
    _p(
        "download",
        r"no matching package named `(?P<name>[^`]+)` found",
        "crate not available from the registry: {name}",
        _CRATES_HINT,
        names=_no_names,
        rank=DOWNLOAD,
        traceable=False,
    ),
    # rustup-init and friends; maturin's puccinialin: `Downloading rustup-init from https://...`
    _p(
        "download",
        r"info: downloading installer|info: downloading component|"
        r"Downloading (?P<name>\S+) from \w+://",
        "toolchain download",
        _TOOLCHAIN_HINT,
        names=_no_names,
        rank=DOWNLOAD,
    ),
    # pip and uv, for build requirements or a setup.py that installs at build time
    _p(
        "download",
        r"Could not fetch URL (?P<name>\S+?):(?:\s|$)",
        "package index unreachable: {name}",
        _INDEX_HINT,
        names=_no_names,
        rank=DOWNLOAD,
    ),
    _p(
        "download",
        r"No matching distribution found for (?P<name>\S+)",
        "no distribution found for {name}",
        _INDEX_HINT,
        names=_no_names,
        rank=DOWNLOAD,
    ),
    _p(
        "download",
        r"Could not find a version that satisfies the requirement (?P<name>\S+)",
        "no version found for {name}",
        _INDEX_HINT,
        names=_no_names,
        rank=DOWNLOAD,
    ),
    _p(
        "download",
        r"(?P<name>\S+) was not found in the package registry",
        "no version found for {name}",
        _INDEX_HINT,
        names=_no_names,
        rank=DOWNLOAD,
    ),
    # CMake's file(DOWNLOAD), FetchContent, ExternalProject
    _p(
        "download",
        r"file\(? ?DOWNLOAD\b.*|Failed to clone repository: '(?P<name>[^']+)'|"
        r"(?:FetchContent|ExternalProject).*(?:[Ff]ail|[Ee]rror)",
        "download at build time",
        _FETCH_HINT,
        names=_no_names,
        rank=DOWNLOAD,
    ),
    # git
    _p(
        "download",
        r"fatal: unable to access '(?P<name>[^']+)'|Cloning into '(?P<into>[^']+)'",
        "git fetch at build time",
        _FETCH_HINT,
        names=_no_names,
        rank=DOWNLOAD,
    ),
    # urllib, requests, curl, wget, and the resolver's own words
    _p(
        "download",
        r"urlopen error|URLError|Max retries exceeded with url|curl: \(\d+\)|"
        r"wget: unable to|Temporary failure in name resolution|Name or service not known|"
        r"Could not resolve host|Network is unreachable|getaddrinfo failed|"
        r"Couldn't connect to server|Connection refused|spurious network error",
        "download at build time",
        _FETCH_HINT,
        names=_no_names,
        rank=NETWORK,
    ),
    # `Cannot find "foo-config"` and the like: what the name's spelling says it is
    _p(
        "missing-program",
        r"Cannot find \"(?P<name>[^\"]+)\"",
        "cannot find {name}",
        _PROSE_HINT,
        names=_by_shape,
        rank=PROSE,
    ),
    # prose: `Error: Please make sure the libxml2 and libxslt development packages are installed.`
    _p(
        "missing-library",
        r"(?i)please (?:make sure|install|ensure)\b.*\b(?:development|dev|devel|headers)\b",
        "missing development packages",
        _PROSE_HINT,
        names=_no_names,
        rank=PROSE,
    ),
    # the compiler's own error, `file.c:12:5: error: ...`, rustc's `error[E0425]: ...`
    _p(
        "compiler-error",
        r"^\S+?:\d+(?::\d+)?: (?:fatal )?error: .*|^error\[E\d+\]: .*",
        "",
        _COMPILER_HINT,
        names=_no_names,
        rank=COMPILER,
        traceable=False,
    ),
)

# Lines of wheelfarm's own (the wrapper exception, headings) are never causes.
_OWN = re.compile(r"^(?:wheelfarm(?:-[\w-]+)?: |==> )")


def read_log(text: str) -> Diagnosis:
    """Every cause the log's wording names, and the things missing, in log order."""
    lines = text.splitlines()
    causes: list[Cause] = []
    for number, raw in enumerate(lines):
        line = raw.strip()
        if not line or _OWN.match(line):
            continue
        for pattern in PATTERNS:
            match = pattern.regex.search(line)
            if match is None or not _context_holds(pattern, lines, number):
                continue
            cause = _cause(pattern, match, line)
            if cause is not None:
                causes.append(cause)
                break
    unique = _unique_causes(causes)
    return Diagnosis(
        causes=unique,
        missing=_unique(m for c in unique for m in c.missing),
        note="log only",
    )


def _context_holds(pattern: Pattern, lines: Sequence[str], number: int) -> bool:
    if pattern.before is None:
        return True
    return any(pattern.before.search(line) for line in lines[max(0, number - 4) : number + 1])


def _cause(pattern: Pattern, match: re.Match[str], line: str) -> Cause | None:
    names = [n for n in pattern.names(match) if n]
    if pattern.missing is not None and not names:
        return None
    groups = match.groupdict()
    name = next((n for n in names), None) or groups.get("name") or ""
    if pattern.missing is not None:
        missing = tuple(Missing(pattern.missing, n) for n in names)
    else:
        shaped = [missing_of_shape(n) for n in names]
        missing = tuple(m for m in shaped if m is not None)
    kind = CAUSE_OF[missing[0].kind] if missing and pattern.missing is None else pattern.kind
    what = pattern.what.format(name=name)
    words = match.group(0).strip() if pattern.rank == NAMED else line
    summary = what if words == what else f"{what} ({words})" if what else words
    return Cause(
        kind=kind,
        summary=summary[:SUMMARY_CHARS],
        hint=pattern.hint.format(name=name),
        missing=missing,
        line=line[:SUMMARY_CHARS],
        rank=NAMED if missing else pattern.rank,
        subject=str(groups.get("name") or ""),
        traceable=pattern.traceable,
    )


def _traced_cause(found: Sequence[Missing]) -> Cause:
    hints = {
        "header": _HEADER_HINT,
        "pkgconfig": _PC_HINT,
        "program": _PROGRAM_HINT,
        "library": _LIBRARY_HINT,
        "cmake": _CMAKE_HINT,
    }
    first = found[0]
    named = ", ".join(map(str, found[:TRACED_NAMED]))
    if len(found) > TRACED_NAMED:
        named += f" and {len(found) - TRACED_NAMED} more"
    return Cause(
        kind=CAUSE_OF[first.kind],
        summary=f"missing {named} (looked for and found nowhere, traced)",
        hint=hints[first.kind].format(name=first.name)
        if len(found) == 1
        else f"install the distro's packages that ship them ({_PACKAGES})",
        missing=tuple(found),
        line="",
        rank=NAMED,
    )


def _unique_causes(causes: Iterable[Cause]) -> tuple[Cause, ...]:
    """One cause per thing missing (or, for the rest, per summary without the quoted words)."""
    seen: set[object] = set()
    kept: list[Cause] = []
    for cause in causes:
        key: object = cause.missing or (cause.kind, cause.summary.split(" (", 1)[0], cause.line)
        if cause.missing and any(m in seen for m in cause.missing):
            continue
        if key in seen:
            continue
        seen.add(key)
        seen.update(cause.missing)
        kept.append(cause)
    return tuple(kept)


def _unique(items: Iterable[Missing]) -> tuple[Missing, ...]:
    return tuple(dict.fromkeys(items))


# ---------------------------------------------------------------- the trace

# `1234  openat(AT_FDCWD, "/usr/include/lber.h", O_RDONLY) = -1 ENOENT (No such file ...)`;
# strace -f writes `[pid 1234] ` instead when it writes to a terminal. An interrupted call is
# two lines: `1234  openat(AT_FDCWD, "/x", O_RDONLY <unfinished ...>`, then
# `1234  <... openat resumed>) = -1 ENOENT (...)`.
_PID = r"^(?:\[pid\s+)?(?P<pid>\d+)?\]?\s*"
_CALL = re.compile(
    _PID + r"(?P<call>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|\?)"
    r"(?:\s+(?P<errno>E[A-Z]+))?"
)
_UNFINISHED = re.compile(
    r"^(?:\[pid\s+)?(?P<pid>\d+)?\]?\s*(?P<head>\w+\(.*?)\s*<unfinished \.\.\.>$"
)
_RESUMED = re.compile(
    r"^(?:\[pid\s+)?(?P<pid>\d+)?\]?\s*<\.\.\. (?P<call>\w+) resumed>(?P<rest>.*)$"
)
_PATH_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_EXECS = frozenset({"execve", "execveat"})
_STATS = frozenset({"stat", "lstat", "newfstatat", "fstatat64", "statx", "stat64", "lstat64"})
_OPENS = frozenset({"open", "openat", "openat2", "creat"})
_ACCESS = frozenset({"access", "faccessat", "faccessat2"})
_LOOKUPS = _OPENS | _STATS | _ACCESS  # not unlink, mkdir, readlink...
_HEADER = re.compile(r"\.(h|hh|hpp|hxx|H)\Z")
_LINKED = re.compile(r"\Alib(?P<name>[\w+.-]+?)\.(?:so|a)\Z")
# A compiler proper (gcc's cc1, cc1plus; clang runs its own -cc1 in the driver's process).
_COMPILER = re.compile(r"\A(?:cc1\w*|(?:[\w.-]+-)?clang(?:\+\+)?(?:-[\d.]+)?)\Z")
# Compiler drivers, their compilers proper and the linker, which search for their own helpers.
_TOOLCHAIN = re.compile(
    r"\A(?:[\w.-]+-)?(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+|collect2|ld|ld\.\w+|lto-wrapper|"
    r"as|cc1\w*)(?:-[\d.]+)?\Z"
)


@dataclass(frozen=True)
class _Call:
    pid: str
    call: str
    path: str
    ok: bool  # returned without an error
    enoent: bool


def _calls(text: str) -> list[_Call]:
    pending: dict[str, str] = {}
    calls: list[_Call] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        unfinished = _UNFINISHED.match(line)
        if unfinished:
            pending[unfinished.group("pid") or ""] = unfinished.group("head")
            continue
        resumed = _RESUMED.match(line)
        if resumed:
            pid = resumed.group("pid") or ""
            head = pending.pop(pid, None)
            if head is None:
                continue
            line = f"{pid} {head}{resumed.group('rest')}"
        match = _CALL.match(line)
        if match is None:
            continue
        path = _PATH_ARG.search(match.group("args"))
        if path is None or not path.group(1):
            continue
        ret, errno = match.group("ret"), match.group("errno")
        calls.append(
            _Call(
                pid=match.group("pid") or "",
                call=match.group("call"),
                path=path.group(1),
                ok=errno is None and ret != "?" and not ret.startswith("-"),
                enoent=errno == "ENOENT",
            )
        )
    return calls


def read_trace(text: str) -> tuple[Missing, ...]:
    """What the traced step looked for and found nowhere, in the order it first looked:

    - header: a `.h`/`.hpp` one process looked for in several folders, one an `include` folder,
      named as the source spells it (what the paths tried have in common, below `include`);
    - pkgconfig: a `.pc` file pkg-config opened (its `-uninstalled` variant is not a module);
    - program: an exec that failed, or the same name stat'ed in two or more `bin` folders by one
      process (a shell's or `which`'s walk along PATH);
    - library: `libfoo.so`/`libfoo.a` as ld opens them.

    Noise is left out: a name that any process found (opened, ran, stat'ed) is not missing (gcc
    looks for a header or its `cc1plus` in several folders before it finds it); a compiler
    proper stops at the first header it cannot find, so in its process only the last header it
    looked for counts (the ones before were `__has_include` probes); the compiler driver's and
    linker's own lookups of their helpers (collect2 trying `gnm` before `nm`) are theirs, and
    a helper really missing is said in the log. Compiler drivers probe with access(), which is
    not read as a lookup at all."""
    reading = _TraceReading()
    for index, call in enumerate(_calls(text)):
        reading.take(index, call)
    return reading.missing()


class _TraceReading:
    """read_trace's state: what each process ran, looked for and found."""

    def __init__(self) -> None:
        self.program: dict[str, str] = {}  # pid → what it runs now (its last exec)
        self.found: list[str] = []
        self.first: dict[Missing, int] = {}
        self.headers: dict[tuple[str, str], list[str]] = {}
        self.header_at: dict[tuple[str, str], int] = {}
        self.last_header: dict[str, tuple[str, str]] = {}  # compiler pid → its last lookup
        self.opened: set[tuple[str, str]] = set()
        self.walks: dict[tuple[str, str], set[str]] = {}
        self.walk_at: dict[tuple[str, str], int] = {}

    def take(self, index: int, call: _Call) -> None:
        path = PurePosixPath(call.path)
        name = path.name
        if call.ok:
            self.found.append(call.path)
            if call.call in _EXECS:
                self.program[call.pid] = name
        runs = self.program.get(call.pid, "")
        if _HEADER.search(name) and call.call in _LOOKUPS and _COMPILER.match(runs):
            # A header opened again (to quote its line in an error message) is no new lookup.
            if (call.pid, call.path) not in self.opened:
                self.last_header[call.pid] = (call.pid, name)
            self.opened.add((call.pid, call.path))
        if not call.enoent:
            return
        if _HEADER.search(name) and call.call in _LOOKUPS:
            self.headers.setdefault((call.pid, name), []).append(call.path)
            self.header_at.setdefault((call.pid, name), index)
        elif call.call in _OPENS and name.endswith(".pc"):
            if not name.endswith("-uninstalled.pc"):
                self.first.setdefault(Missing("pkgconfig", name[:-3]), index)
        elif call.call in _OPENS and (linked := _LINKED.match(name)):
            self.first.setdefault(Missing("library", linked.group("name")), index)
        elif _TOOLCHAIN.match(runs):
            return  # the driver's and linker's search for their own helpers
        elif call.call in _EXECS:
            self.first.setdefault(Missing("program", name), index)
        elif call.call in _STATS and path.parent.name in ("bin", "sbin"):
            self.walks.setdefault((call.pid, name), set()).add(str(path.parent))
            self.walk_at.setdefault((call.pid, name), index)

    def missing(self) -> tuple[Missing, ...]:
        first = dict(self.first)
        for key, dirs in self.walks.items():
            if len(dirs) >= 2:
                first.setdefault(Missing("program", key[1]), self.walk_at[key])
        for key, paths in self.headers.items():
            last = self.last_header.get(key[0])
            if last is not None and last != key:
                continue  # the compiler went on: a probe, not what stopped it
            if any("include" in PurePosixPath(path).parts for path in paths):
                first.setdefault(Missing("header", _as_included(paths)), self.header_at[key])
        names = {PurePosixPath(path).name for path in self.found}
        missing = [item for item in first if not _was_found(item, self.found, names)]
        return tuple(sorted(missing, key=first.__getitem__))


def _as_included(paths: Sequence[str]) -> str:
    """The name an #include spelled, from the paths tried for it: their common tail (a single
    path: all of it), below the last `include` folder in it."""
    split = [PurePosixPath(path).parts for path in paths]
    tail: list[str] = list(split[0])
    if len(split) > 1:
        tail = []
        for parts in zip(*(reversed(p) for p in split), strict=False):
            if len(set(parts)) != 1:
                break
            tail.insert(0, parts[0])
    if "include" in tail:
        tail = tail[len(tail) - tail[::-1].index("include") :]
    return "/".join(tail)


def _was_found(item: Missing, found: Sequence[str], names: set[str]) -> bool:
    if item.kind == "header":
        return any(path == item.name or path.endswith("/" + item.name) for path in found)
    if item.kind == "pkgconfig":
        return f"{item.name}.pc" in names
    if item.kind == "library":
        return f"lib{item.name}.so" in names or f"lib{item.name}.a" in names
    return item.name in names
