"""Binary-compatibility rules (docs/design.md, "Binary-compatibility rules") and the tag set
they produce.

Pure: sources are read from paths the caller names; which paths apply to the running machine or to
a target image is decided by `machine_sources` / `image_sources`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelfarm import tags
from wheelfarm.errors import ConfigError

FILE_NAME = "binary-compatibility.cfg"
SYSTEM_PATH = Path("/etc/python") / FILE_NAME
DEFAULTS_PATH = Path(__file__).parent / "data" / FILE_NAME
_FIELDS = frozenset({"build", "install", "why"})


@dataclass(frozen=True)
class Rule:
    build: str | None = None
    install: tuple[str, ...] = ()
    why: str | None = None


@dataclass(frozen=True)
class RulesSource:
    kind: str  # "--rules", "project", "virtualenv", "system", "image", "defaults"
    origin: str  # path or description, for messages
    entries: Mapping[str, Rule] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.origin})"


@dataclass(frozen=True)
class Decision:
    source: RulesSource
    key: str
    rule: Rule


def _bad(origin: str, key: str | None, problem: str) -> ConfigError:
    where = f"{origin}: key {key!r}" if key is not None else origin
    return ConfigError(
        f"{where}: {problem}",
        hint='each entry is "linux_<arch>_<distro>": {"build": TAG, "install": [TAG, ...], '
        '"why": TEXT}; see the shipped defaults with `wheelfarm tags --show-default-rules`',
    )


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages about the file the user wrote."""
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    return names.get(type(value), type(value).__name__)


def _check_tag(origin: str, key: str, value: object, what: str, arch: str) -> str:
    if not isinstance(value, str):
        raise _bad(origin, key, f"{what} must be a string tag, got {_json_type(value)}")
    if not tags.is_distro_tag(value):
        raise _bad(origin, key, f"{what} {value!r} is not a tag of the form linux_<arch>_<distro>")
    parts = tags.split_platform(value)
    if parts is not None and parts[0] != arch:
        raise _bad(origin, key, f"{what} {value!r} is for {parts[0]}, the key is for {arch}")
    return value


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys silently; in a rules file that hides an entry.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def parse_rules(text: str, origin: str) -> dict[str, Rule]:
    """Parse a rules file. Any problem fails the whole file, naming the file and the key."""
    try:
        data: Any = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise _bad(origin, None, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except _DuplicateKey as exc:
        raise _bad(origin, exc.key, "appears twice in the same object") from None
    if not isinstance(data, dict):
        raise _bad(origin, None, f"must be a JSON object keyed by tag, got {_json_type(data)}")
    rules: dict[str, Rule] = {}
    for key, value in data.items():
        if not tags.is_distro_tag(key):
            raise _bad(origin, key, "is not a tag of the form linux_<arch>_<distro>")
        arch = tags.split_platform(key)[0]  # type: ignore[index]
        if not isinstance(value, dict):
            raise _bad(origin, key, f"value must be an object, got {_json_type(value)}")
        unknown = sorted(set(value) - _FIELDS)
        if unknown:
            raise _bad(origin, key, f"unknown field(s) {', '.join(unknown)}")
        # A field given as null is a wrong type, not an absent field: say so rather than guess.
        build = None
        if "build" in value:
            build = _check_tag(origin, key, value["build"], "build", arch)
        install_raw = value.get("install", [])
        if not isinstance(install_raw, list):
            got = _json_type(install_raw)
            raise _bad(origin, key, f"install must be a list of tags, got {got}")
        install = tuple(_check_tag(origin, key, t, "install entry", arch) for t in install_raw)
        why = value.get("why")
        if "why" in value and not isinstance(why, str):
            raise _bad(origin, key, f"why must be a string, got {_json_type(why)}")
        rules[key] = Rule(build=build, install=install, why=why)
    return rules


def load_file(path: Path, kind: str) -> RulesSource:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"rules file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc}") from None
    return RulesSource(kind, str(path), parse_rules(text, str(path)))


def _optional_file(path: Path, kind: str) -> RulesSource | None:
    return load_file(path, kind) if path.is_file() else None


def defaults() -> RulesSource:
    return load_file(DEFAULTS_PATH, "defaults")


def active_virtualenv() -> Path | None:
    env = os.environ.get("VIRTUAL_ENV")
    if env:
        return Path(env)
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix)
    return None


GivenKind = str | Sequence[str]  # one label for every given file, or one per file


def _given_sources(rule_files: Sequence[Path], kind: GivenKind) -> list[RulesSource]:
    kinds = [kind] * len(rule_files) if isinstance(kind, str) else list(kind)
    if len(kinds) != len(rule_files):
        raise ValueError(f"rules: {len(rule_files)} rule files but {len(kinds)} labels")
    # The last file given has the highest precedence.
    return [load_file(p, k) for p, k in reversed(list(zip(rule_files, kinds, strict=True)))]


def machine_sources(
    rule_files: Sequence[Path] = (),
    *,
    given_kind: GivenKind = "--rules",
    virtualenv: Path | None = None,
    system_path: Path = SYSTEM_PATH,
) -> list[RulesSource]:
    """Every source that applies to the running machine, highest precedence first. `given_kind`
    labels the rule files given (--rules, WHEELFARM_RULES or the project's configuration), as one
    label or one per file."""
    sources = _given_sources(rule_files, given_kind)
    venv = virtualenv if virtualenv is not None else active_virtualenv()
    for candidate in (
        _optional_file(venv / FILE_NAME, "virtualenv") if venv else None,
        _optional_file(system_path, "system"),
    ):
        if candidate is not None:
            sources.append(candidate)
    sources.append(defaults())
    return sources


def image_sources(
    rule_files: Sequence[Path] = (),
    *,
    given_kind: GivenKind = "--rules",
    image_rules: str | None = None,
    image_origin: str = "",
) -> list[RulesSource]:
    """Sources for describing a target image: the machine's own /etc/python and virtualenv say
    nothing about it; the image's own /etc/python file (its text, if it has one) does."""
    sources = _given_sources(rule_files, given_kind)
    if image_rules is not None:
        origin = image_origin or f"image {SYSTEM_PATH}"
        sources.append(RulesSource("image", origin, parse_rules(image_rules, origin)))
    sources.append(defaults())
    return sources


def lookup(sources: Sequence[RulesSource], host: str, default_build: str) -> Decision | None:
    """The highest-precedence source with an entry for the host tag or the default build tag
    decides, host tag first within a source. Entries are never merged across sources."""
    for source in sources:
        for key in (host, default_build):
            rule = source.entries.get(key)
            if rule is not None:
                return Decision(source, key, rule)
    return None


@dataclass(frozen=True)
class TagSet:
    """What a host is: its tags and the platform tags it accepts, most specific first."""

    arch: str
    host: str
    default_build: str
    build: str
    install: tuple[str, ...]
    decision: Decision | None
    has_os_release: bool = True
    consulted: tuple[str, ...] = ()  # labels of the sources read, highest precedence first

    def accepts(self, platform_tag: str) -> bool:
        return platform_tag in self.install

    def as_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "default_build": self.default_build,
            "build": self.build,
            "install": list(self.install),
        }


def tag_set(
    os_release: Mapping[str, str] | None,
    arch: str,
    sources: Sequence[RulesSource],
    *,
    machine_tags: Sequence[str] = (),
) -> TagSet:
    """Compute a host's tags. `os_release` None means the host has none: plain linux_<arch>.
    `machine_tags` are the running interpreter's manylinux/musllinux tags, given only when
    describing the running machine."""
    plain = tags.plain_tag(arch)
    consulted = tuple(source.label for source in sources)
    if os_release is None:
        install = tags.unique([*machine_tags, plain])
        return TagSet(arch, plain, plain, plain, install, None, False, consulted)
    distro = tags.Distro.from_os_release(os_release)
    host = tags.host_tag(arch, distro)
    default_build = tags.default_build_tag(arch, distro)
    decision = lookup(sources, host, default_build)
    build = default_build
    extra: tuple[str, ...] = ()
    if decision is not None:
        build = decision.rule.build or default_build
        extra = decision.rule.install
    install = tags.unique([host, default_build, build, *extra, *machine_tags, plain])
    return TagSet(arch, host, default_build, build, install, decision, True, consulted)
