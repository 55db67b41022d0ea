"""`wheelfarm publish`: upload a wheelhouse to a running index server (pypiserver, devpi) with
twine.

Two shapes: the canonical wheels under their distro tags (+ sdists), which stock pip skips but
wheelfarm-aware tools and `wheelfarm index` can use; or one consumer's view (`--target`): its
best wheels renamed to plain `linux_<arch>` (+ sdists), which stock pip and uv install. Views of
different distros share file names (`cp39-cp39-linux_x86_64`), so each view needs a repository
of its own: one devpi index or one pypiserver per root.

Credentials come from the environment (TWINE_USERNAME / TWINE_PASSWORD) or the keyring, never
from the command line; a repository URL with credentials in it is refused, so none reaches a
log. A file the server already has under the same name is skipped when its sha256 (from the
server's simple page) is the same, and refused (exit 2) when it differs: the repository then
holds another file under that name, typically another distro's view."""

from __future__ import annotations

import base64
import os
import re
import ssl
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from wheelfarm import fsutil, index, rules, tags, targets, views
from wheelfarm.errors import BadInput, WheelfarmError
from wheelfarm.reporter import Reporter


@dataclass(frozen=True)
class Upload:
    """What to upload: (file to send, the name the server will see) pairs, and for whom."""

    consumer: str | None  # None: the canonical, distro-tagged files
    files: tuple[tuple[Path, str], ...]
    problems: tuple[index.Problem, ...]


@dataclass(frozen=True)
class Published:
    """What an upload did: the files sent, and those the server already had (same sha256)."""

    upload: Upload
    uploaded: tuple[str, ...]
    skipped: tuple[str, ...]
    repository_url: str


def check_repository_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"--repository-url {url!r} is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise BadInput(
            "the repository URL carries credentials; they would end up in logs and shell history",
            hint="drop them from the URL and set TWINE_USERNAME and TWINE_PASSWORD in the "
            "environment, or store them in the keyring",
        )
    return url


def consumer_tag(target: str, catalogue: Sequence[targets.Target], arch: str,
                 sources: Sequence[rules.RulesSource]) -> str:  # fmt: skip
    """A target name (debian-12) → its build tag after the rules; a tag is taken as it is."""
    if target.startswith("linux_"):
        index.consumer_tag_set(target, sources)  # validates the tag
        return target
    chosen = targets.get(target, catalogue)
    if not chosen.release_known:
        raise BadInput(
            f"target {target} does not declare its distro and version, so its view is unknown",
            hint='add distro = "<os-release ID>" and version = "<VERSION_ID>" to its '
            "extra-targets entry, or name the tag its wheels carry (--target linux_<arch>_…)",
        )
    os_release = {"ID": chosen.distro, "VERSION_ID": chosen.version}
    return rules.tag_set(os_release, arch, sources).build


def plan_upload(
    wheelhouse: Path,
    *,
    target: str | None,
    rule_files: Sequence[Path],
    catalogue: Sequence[targets.Target] = targets.TARGETS,
    arch: str | None = None,
) -> Upload:
    dists, problems = index.scan(wheelhouse)
    if target is None:
        files = tuple((Path(d.path), d.filename) for d in dists)
        return Upload(None, files, tuple(problems))
    sources = rules.image_sources(rule_files)
    tag = consumer_tag(target, catalogue, arch or tags.running_arch(), sources)
    consumer = index.consumer_tag_set(tag, sources)
    wheels = {d.filename: d for d in dists if d.wheel is not None}
    chosen = views.select_for_consumer(wheels, consumer)
    served: dict[str, Path] = {}
    for filename in chosen:
        served.setdefault(views.plain_filename(filename), Path(wheels[filename].path))
    pairs = [(path, name) for name, path in served.items()]
    pairs += [(Path(d.path), d.filename) for d in dists if d.wheel is None]
    return Upload(tag, tuple(sorted(pairs, key=lambda p: p[1])), tuple(problems))


def _already_there(exc: BaseException) -> bool:
    """Whether an upload failed only because the server has that file (pypiserver and devpi
    answer 409; PyPI-like servers 400 "already exists")."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    text = f"{getattr(response, 'reason', '')} {getattr(response, 'text', '')}".lower()
    return status == 409 or (status == 400 and "already exist" in text)


_NO_CREDENTIALS_HINT = (
    "set TWINE_USERNAME and TWINE_PASSWORD (or store them in the keyring); a server that needs "
    "none, such as `pypi-server run -a . -P .`, takes any values, e.g. TWINE_USERNAME=ci "
    "TWINE_PASSWORD=none"
)


def _project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return canonicalize_name(parse_wheel_filename(filename)[0])
    return canonicalize_name(parse_sdist_filename(filename)[0])


def _simple_pages(repository_url: str, project: str) -> list[str]:
    """Where the server lists a project: pypiserver serves /simple/ beside its upload URL, devpi
    +simple/ under the index's."""
    base = repository_url if repository_url.endswith("/") else repository_url + "/"
    return [urljoin(base, f"simple/{project}/"), urljoin(base, f"+simple/{project}/")]


def _get(url: str) -> str | None:
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    user, password = os.environ.get("TWINE_USERNAME"), os.environ.get("TWINE_PASSWORD")
    if user and password:  # a server that guards reads too
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = None
    if url.startswith("https:") and os.environ.get("TWINE_CERT"):
        context = ssl.create_default_context(cafile=os.environ["TWINE_CERT"])
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return str(response.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def server_sha256(repository_url: str, filename: str) -> str | None:
    """The sha256 the server's simple page gives `filename` (its link's #sha256= fragment), or
    None when no page could be read or it names no hash for that file."""
    link = re.compile(
        r'href="[^"#]*/' + re.escape(filename) + r'#sha256=([0-9a-fA-F]{64})"', re.IGNORECASE
    )
    for url in _simple_pages(repository_url, _project_of(filename)):
        page = _get(url)
        found = link.search(page) if page is not None else None
        if found:
            return found.group(1).lower()
    return None


def _check_same(repository_url: str, path: Path, uploaded: Sequence[str]) -> None:
    """A file the server has already: the same bytes (skip it) or not (exit 2)."""
    ours = fsutil.file_sha256(path)
    theirs = server_sha256(repository_url, path.name)
    done = f"; {len(uploaded)} file(s) uploaded before this one" if uploaded else ""
    if theirs is None:
        raise BadInput(
            f"the server has a file named {path.name} already and its sha256 could not be read "
            f"from the server's simple page, so it may hold another file under this name{done}",
            hint="check the file on the server; publish to a repository that holds this "
            "wheelhouse (or this view) alone",
        )
    if theirs != ours:
        raise BadInput(
            f"this repository holds another file under the name {path.name} (sha256 {theirs}, "
            f"ours {ours}): another view, or another build{done}",
            hint="each view (--target) needs a repository of its own, and a published file "
            "is never replaced: publish to an empty repository",
        )


def _upload(
    repository_url: str, files: Sequence[Path], reporter: Reporter
) -> tuple[list[str], list[str]]:
    """Upload with twine's Python API, one file at a time; returns (uploaded, skipped).

    twine's own --skip-existing is refused for servers other than PyPI since twine 6, so a
    file the server already has is recognised here from the server's answer instead."""
    import contextlib
    import logging

    from twine.commands.upload import upload
    from twine.exceptions import NonInteractive, TwineException
    from twine.settings import Settings

    settings = Settings(
        repository_url=repository_url,
        # The environment, like twine's command line reads it; never a command-line value.
        username=os.environ.get("TWINE_USERNAME"),
        password=os.environ.get("TWINE_PASSWORD"),
        cacert=os.environ.get("TWINE_CERT"),
        # No one to answer a prompt: fail with twine's message instead of hanging.
        non_interactive=not sys.stdin.isatty() or bool(os.environ.get("TWINE_NON_INTERACTIVE")),
        disable_progress_bar=True,
    )
    uploaded: list[str] = []
    skipped: list[str] = []
    twine_log = logging.getLogger("twine")
    level = twine_log.level
    twine_log.setLevel(logging.ERROR)  # its "retry with --verbose" advice does not apply here
    try:
        for path in files:
            try:
                # twine prints progress on stdout; ours stays clean for machine output.
                with contextlib.redirect_stdout(sys.stderr):
                    upload(settings, [str(path)])
            except NonInteractive as exc:
                raise BadInput(
                    f"no credentials to upload {path.name} with: {exc}",
                    hint=_NO_CREDENTIALS_HINT,
                ) from None
            except TwineException as exc:
                raise WheelfarmError(
                    f"twine refused {path.name}: {exc}",
                    hint="credentials come from TWINE_USERNAME/TWINE_PASSWORD or the keyring",
                ) from None
            except Exception as exc:
                if not _already_there(exc):
                    raise WheelfarmError(f"uploading {path.name} failed: {exc}") from None
                _check_same(repository_url, path, uploaded)
                reporter.note(f"{path.name}: the server has the same file already, skipped")
                skipped.append(path.name)
            else:
                reporter.note(f"{path.name}: uploaded")
                uploaded.append(path.name)
    finally:
        twine_log.setLevel(level)
    return uploaded, skipped


def publish(
    wheelhouse: Path,
    repository_url: str,
    *,
    target: str | None,
    rule_files: Sequence[Path],
    catalogue: Sequence[targets.Target] = targets.TARGETS,
    reporter: Reporter,
) -> Published:
    check_repository_url(repository_url)
    upload = plan_upload(wheelhouse, target=target, rule_files=rule_files, catalogue=catalogue)
    for problem in upload.problems:
        reporter.warn(f"{problem.filename} left out: {problem.reason}")
    if not upload.files:
        raise BadInput(f"nothing to publish from {wheelhouse}" + (
            f" for {upload.consumer}" if upload.consumer else ""
        ))  # fmt: skip
    if upload.consumer is not None:
        reporter.info(
            f"publishing the view of {upload.consumer} (plain linux_<arch> names): this "
            "repository must hold this root only"
        )
    with tempfile.TemporaryDirectory(prefix="wheelfarm-publish-") as tmp:
        files = []
        for path, name in upload.files:
            if name == path.name:
                files.append(path)
                continue
            renamed = Path(tmp) / name
            try:
                renamed.hardlink_to(path)
            except OSError:
                renamed.write_bytes(path.read_bytes())
            files.append(renamed)
        uploaded, skipped = _upload(repository_url, files, reporter)
    return Published(upload, tuple(uploaded), tuple(skipped), repository_url)
