"""`wheelfarm publish`: upload a wheelhouse to a running index server (pypiserver, devpi) with
twine.

Two shapes: the canonical wheels under their distro tags (+ sdists), which stock pip skips but
wheelfarm-aware tools and `wheelfarm index` can use; or one consumer's view (`--target`): its
best wheels renamed to plain `linux_<arch>` (+ sdists), which stock pip and uv install. Views of
different distros share file names (`cp39-cp39-linux_x86_64`), so each view needs a repository
of its own: one devpi index or one pypiserver per root.

Credentials come from the environment (TWINE_USERNAME / TWINE_PASSWORD) or the keyring, never
from the command line; a repository URL with credentials in it is refused, so none reaches a
log. A file the server already has is skipped (twine --skip-existing), not an error."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from wheelfarm import index, rules, targets, views
from wheelfarm.errors import BadInput, EnvironmentProblem, WheelfarmError


@dataclass(frozen=True)
class Upload:
    """What to upload: (file to send, the name the server will see) pairs, and for whom."""

    consumer: str | None  # None: the canonical, distro-tagged files
    files: tuple[tuple[Path, str], ...]
    problems: tuple[index.Problem, ...]


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
    from wheelfarm import tags

    dists, problems = index.scan(wheelhouse)
    if target is None:
        files = tuple((d.path, d.filename) for d in dists)
        return Upload(None, files, tuple(problems))
    sources = rules.image_sources(rule_files)
    tag = consumer_tag(target, catalogue, arch or tags.running_arch(), sources)
    consumer = index.consumer_tag_set(tag, sources)
    wheels = {d.filename: d for d in dists if d.wheel is not None}
    chosen = views.select_for_consumer(wheels, consumer)
    served: dict[str, Path] = {}
    for filename in chosen:
        served.setdefault(views.plain_filename(filename), wheels[filename].path)
    pairs = [(path, name) for name, path in served.items()]
    pairs += [(d.path, d.filename) for d in dists if d.wheel is None]
    return Upload(tag, tuple(sorted(pairs, key=lambda p: p[1])), tuple(problems))


def _twine(python: str, repository_url: str, files: Sequence[Path]) -> None:
    from wheelfarm import ui

    command = [python, "-m", "twine", "upload", "--repository-url", repository_url]
    command += ["--skip-existing", "--disable-progress-bar"]
    if not sys.stdin.isatty():
        # No one to answer a prompt: fail with twine's message instead of hanging.
        command.append("--non-interactive")
    ui.detail(f"$ {' '.join(command[:6])} … ({len(files)} files)")
    try:
        code = subprocess.call([*command, *map(str, files)], stdout=sys.stderr, env=os.environ)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run twine with {python}: {exc.strerror}") from None
    if code != 0:
        raise WheelfarmError(
            f"twine upload failed (exit {code})",
            hint="credentials come from TWINE_USERNAME/TWINE_PASSWORD or the keyring",
        )


def publish(
    wheelhouse: Path,
    repository_url: str,
    *,
    target: str | None,
    rule_files: Sequence[Path],
    catalogue: Sequence[targets.Target] = targets.TARGETS,
    python: str | None = None,
) -> Upload:
    from wheelfarm import ui

    check_repository_url(repository_url)
    upload = plan_upload(wheelhouse, target=target, rule_files=rule_files, catalogue=catalogue)
    for problem in upload.problems:
        ui.warn(f"{problem.filename} left out: {problem.reason}")
    if not upload.files:
        raise BadInput(f"nothing to publish from {wheelhouse}" + (
            f" for {upload.consumer}" if upload.consumer else ""
        ))  # fmt: skip
    if upload.consumer is not None:
        ui.info(
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
        _twine(python or sys.executable, repository_url, files)
    ui.success(f"published {len(upload.files)} files to {repository_url}")
    return upload
