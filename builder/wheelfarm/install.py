"""`wheelfarm install REQ...`: install from the index root made for this host, with stock pip.

The index has one root per distro release per architecture; the root is the first of this
machine's (or `--arch`'s) host tag, default build tag and build tag (after the
rules) that the site has; the site says which roots it has in its roots.json. A wheel file given
directly is checked against the tags this machine accepts (its platform tag against the install
list, its python and abi tags against the interpreter that will install it), and a distro-tagged
one is handed to pip under its plain linux_<arch> name (same bytes), the only name stock pip
accepts."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from wheelfarm import hosttags, index, rules, tags, wheelname
from wheelfarm.errors import BadInput, EnvironmentProblem, WheelfarmError
from wheelfarm.reporter import Reporter


def _site_url(index_url: str) -> str:
    """The index as a URL ending in "/": http(s) and file URLs as given, a path as a file URL."""
    if urlsplit(index_url).scheme in ("http", "https", "file"):
        return index_url.rstrip("/") + "/"
    path = Path(index_url).absolute()
    if not path.is_dir():
        raise BadInput(f"index {index_url} is neither a URL nor a directory")
    return path.as_uri() + "/"


def read_roots(site_url: str) -> list[str]:
    """The consumer tags of the roots a site has, from its roots.json."""
    url = site_url + index.ROOTS_FILE
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            listing = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError) as exc:
        missing = isinstance(exc, urllib.error.HTTPError) and exc.code == 404
        if missing or isinstance(getattr(exc, "reason", None), FileNotFoundError):
            raise BadInput(
                f"{site_url} is not a wheelfarm site: it has no {index.ROOTS_FILE}",
                hint="pass the site's top URL (the first one `wheelfarm serve` prints) or its "
                "directory, not one root's /simple/ URL",
            ) from None
        raise EnvironmentProblem(
            f"cannot read {url}: {getattr(exc, 'reason', exc)}",
            hint="pass the site's top URL (the first one `wheelfarm serve` prints) or its "
            "directory, not one root's /simple/ URL",
        ) from None
    except ValueError as exc:
        raise BadInput(f"{url} is not a wheelfarm roots listing ({exc})") from None
    try:
        return [str(r["tag"]) for r in listing["roots"] if r.get("tag")]
    except (KeyError, TypeError, AttributeError):
        raise BadInput(f"{url} is not a wheelfarm roots listing") from None


def choose_root(roots: Sequence[str], tagset: rules.TagSet) -> str:
    """Host tag, then default build tag, then build tag: the first the site has."""
    wanted = tags.unique([tagset.host, tagset.default_build, tagset.build])
    for tag in wanted:
        if tag in roots:
            return tag
    raise BadInput(
        f"the index has no root for this host (looked for {', '.join(wanted)})",
        hint="roots there: " + (", ".join(roots) or "none")
        + "; build for this host's target, or pass --rules to map it onto one of them",
    )  # fmt: skip


def split_pip_args(text: str) -> list[str]:
    """--pip-args as a shell would split it; broken quoting is bad input."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise BadInput(
            f"--pip-args {text!r} cannot be split: {exc}",
            hint='quote it as a shell would, e.g. --pip-args "--no-deps -q"',
        ) from None


# Asks an interpreter which (python, abi) tag pairs it loads, with the packaging pip itself uses.
INTERPRETER_TAGS = Path(__file__).parent / "data" / "interpreter_tags.py"

# Most preferred first, as packaging orders them.
InterpreterTags = tuple[tuple[str, str], ...]


def interpreter_tags(python: str | None) -> InterpreterTags:
    """The (python, abi) tag pairs the interpreter that will install loads: this one's from
    packaging, another's by asking it (through its pip's packaging)."""
    if python is None:
        from packaging import tags as packaging_tags

        return tuple(dict.fromkeys((t.interpreter, t.abi) for t in packaging_tags.sys_tags()))
    try:
        result = subprocess.run(
            [python, str(INTERPRETER_TAGS)], capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run {python}: {exc.strerror}") from None
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise EnvironmentProblem(
            f"cannot ask {python} which wheel tags it loads (exit {result.returncode})",
            hint=tail or f"is {python} a Python with pip?",
        )
    try:
        return tuple((str(i), str(a)) for i, a in json.loads(result.stdout))
    except (ValueError, TypeError):
        raise EnvironmentProblem(f"{python} gave no tag list: {result.stdout[:200]!r}") from None


def check_wheel(
    path: Path, tagset: rules.TagSet, interpreter: InterpreterTags | None = None
) -> str:
    """The file name to give pip for this wheel; BadInput when this host does not accept it: no
    tag of the wheel has a platform the host accepts and (when `interpreter` is given) a python
    and abi tag pair the installing interpreter loads."""
    if not path.is_file():
        raise BadInput(f"wheel file {path} does not exist")
    wheel = wheelname.parse(path.name)
    accepted = [p for p in wheel.platforms if p == "any" or tagset.accepts(p)]
    if not accepted:
        raise BadInput(
            f"{path.name} is for {', '.join(wheel.platforms)}; this host ({tagset.host}) does "
            "not accept that platform",
            hint="this host accepts: " + ", ".join(tagset.install),
        )
    if interpreter is not None and not any(
        (t.interpreter, t.abi) in interpreter and t.platform in accepted for t in wheel.tags
    ):
        pairs = sorted({f"{t.interpreter}-{t.abi}" for t in wheel.tags})
        loads = [f"{i}-{a}" for i, a in interpreter if a != "none"]
        raise BadInput(
            f"{path.name} is for {', '.join(pairs)}; the Python that installs does not load "
            "that interpreter and ABI",
            hint="it loads: " + ", ".join(loads[:5]) + (", ..." if len(loads) > 5 else "")
            + "; build the wheel for this Python, or pass --python with one that matches",
        )  # fmt: skip
    return wheel.plain_filename


def _pip(python: str, args: Sequence[str], reporter: Reporter) -> None:
    command = [python, "-m", "pip", "install", *args]
    reporter.note("$ " + " ".join(command))
    try:
        # pip's own output is human output: it goes to stderr like the rest of ours.
        code = subprocess.call(command, stdout=sys.stderr)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run {python}: {exc.strerror}") from None
    if code != 0:
        raise WheelfarmError(f"pip install failed (exit {code})")


def install(
    requirements: Sequence[str],
    *,
    index_url: str | None,
    python: str | None,
    pip_args: Sequence[str],
    rule_files: Sequence[Path],
    rule_labels: rules.GivenKind = "--rules",
    reporter: Reporter,
    arch: str | None = None,
) -> None:
    """`rule_labels` says where `rule_files` came from (--rules, WHEELFARM_RULES, project).
    `arch` (default: this machine's) picks the root of that architecture, for a pip told to
    install for it (`--pip-args "--platform linux_aarch64 --target DIR --only-binary=:all:"`)."""
    tagset = hosttags.describe(None, arch, rule_files, rule_labels)
    wheel_files = [r for r in requirements if r.endswith(".whl")]
    others = [r for r in requirements if not r.endswith(".whl")]
    loads = interpreter_tags(python) if wheel_files else None
    plain_names = {r: check_wheel(Path(r), tagset, loads) for r in wheel_files}
    args = list(pip_args)
    if others:
        if index_url is None:
            raise BadInput(
                "installing by name needs --index URL (a site written by `wheelfarm index`)"
            )
        site = _site_url(index_url)
        root = choose_root(read_roots(site), tagset)
        root_url = f"{site}{root}/{index.CANONICAL}/"
        reporter.info(f"this host is {tagset.host}: installing from root {root} ({root_url})")
        args = ["--index-url", root_url, *args]
    with tempfile.TemporaryDirectory(prefix="wheelfarm-install-") as tmp:
        given = []
        for requirement in requirements:
            if requirement not in plain_names:
                given.append(requirement)
                continue
            source = Path(requirement).absolute()
            plain = Path(tmp) / plain_names[requirement]
            if plain.name == source.name:
                given.append(str(source))
                continue
            try:
                plain.hardlink_to(source)
            except OSError:
                plain.write_bytes(source.read_bytes())
            reporter.note(f"{source.name} → {plain.name} (same bytes, the name stock pip accepts)")
            given.append(str(plain))
        _pip(python or sys.executable, [*args, *given], reporter)
