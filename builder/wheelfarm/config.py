"""Project configuration: `[tool.wheelfarm]` in pyproject.toml, `WHEELFARM_<KEY>` environment
variables and command-line flags, resolved once into a frozen `Settings`.

One precedence for every key: CLI flag > `WHEELFARM_<KEY>` > pyproject.toml > default. The level
that sets a key provides all of it (lists are replaced, never merged), and `specs` and
`requirements` travel together: whichever level names something to build names all of it, so
`wheelfarm build lxml==5.3.0` in a configured project builds only lxml. The one exception is
`rules`: rule files are the top tier of the rules' own precedence, so every level's files stack,
pyproject.toml's first, then `WHEELFARM_RULES`, then `--rules`, each later file higher.

Which pyproject.toml: `--config FILE`, else `$WHEELFARM_CONFIG`, else the nearest pyproject.toml
with a `[tool.wheelfarm]` table from the current directory upwards, stopping at the repository
root (a directory with `.git` or `.hg`), the way ruff and black find theirs. Relative paths in the
file are relative to the file's directory; on the command line and in the environment, to the
current directory.

Pure: reads the one file and the mapping of environment variables it is given; no terminal, no
engine."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelfarm import targets as targets_mod
from wheelfarm.errors import BadInput, ConfigError
from wheelfarm.targets import FAMILIES, TARGETS, Python, Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

FILE_NAME = "pyproject.toml"
TABLE = "tool.wheelfarm"
ENV_PREFIX = "WHEELFARM_"
CONFIG_ENV = "WHEELFARM_CONFIG"
EXTRA_TARGETS_KEY = "extra-targets"
_REPOSITORY_MARKERS = (".git", ".hg")
_PYTHON_VERSION = re.compile(r"^3\.\d+$")
# A target name becomes an image repository path component: wheelfarm/<name>:build.
_TARGET_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


@dataclass(frozen=True)
class _Option:
    key: str  # the pyproject key (kebab-case)
    kind: str  # "strs", "paths", "str", "path", "int", "python", "installer", "bool"
    flag: str  # the command-line flag, for messages

    @property
    def field(self) -> str:
        return self.key.replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper().replace("-", "_")


OPTIONS: tuple[_Option, ...] = (
    _Option("specs", "strs", "SPEC"),
    _Option("requirements", "paths", "-r/--requirement"),
    _Option("targets", "strs", "--target"),
    _Option("python", "python", "--python"),
    _Option("recipes", "path", "--recipes"),
    _Option("wheelhouse", "path", "--wheelhouse"),
    _Option("jobs", "int", "--jobs"),
    _Option("scratch-memory", "int", "--scratch-memory"),
    _Option("rules", "paths", "--rules"),
    _Option("installer", "installer", "--installer"),
    _Option("discover", "bool", "--no-discover"),
    _Option("shipped-recipes", "bool", "--no-shipped-recipes"),
    _Option("external-mappings", "path", "--external-mappings"),
    _Option("archs", "archs", "--arch"),
    _Option("engines", "engines", "--engine"),
)
_BY_FIELD = {o.field: o for o in OPTIONS}
KEYS: tuple[str, ...] = (*(o.key for o in OPTIONS), EXTRA_TARGETS_KEY)
# What to build is one choice: the level that names specs or requirements names both.
_GROUPS: tuple[tuple[str, ...], ...] = (("specs", "requirements"),)
# Options whose levels add up, lowest level first, instead of the highest one replacing the rest.
_STACKED = ("rules",)
# How `wheelfarm tags` labels a rules file from each level.
_RULE_KINDS = {"file": "project", "env": "WHEELFARM_RULES", "cli": "--rules"}

_EXTRA_REQUIRED = ("name", "base", "family", "python")
_EXTRA_OPTIONAL = ("python-executable", "distro", "version", "note")
EXTRA_TARGET_KEYS = _EXTRA_REQUIRED + _EXTRA_OPTIONAL

DEFAULT_WHEELHOUSE = Path("wheelhouse")


@dataclass(frozen=True)
class Settings:
    """Every option after precedence. Empty `targets` means "the command's default targets";
    `None` for python/recipes/jobs means "the command decides" (default Python of each target,
    the shipped recipes, one job per core)."""

    specs: tuple[str, ...] = ()
    requirements: tuple[Path, ...] = ()
    targets: tuple[str, ...] = ()
    python: str | None = None
    recipes: Path | None = None
    wheelhouse: Path = DEFAULT_WHEELHOUSE
    jobs: int | None = None
    # MiB each in-memory scratch folder of a build container may hold; None: a quarter of the
    # engine's memory.
    scratch_memory: int | None = None
    installer: str = "uv"  # what makes the isolated build environments: uv or pip
    discover: bool = True  # look up and install what a failed build lacked
    shipped_recipes: bool = True  # use the recipes wheelfarm ships (after --recipes)
    external_mappings: Path | None = None  # PEP 725 identifiers → packages, over the shipped
    # The architectures every target is planned for (x86_64, aarch64); empty: this machine's.
    archs: tuple[str, ...] = ()
    # (arch, engine URL): that architecture's images, builds and verifications go there.
    engines: tuple[tuple[str, str], ...] = ()
    rules: tuple[Path, ...] = ()  # lowest precedence first: project, WHEELFARM_RULES, --rules
    rule_kinds: tuple[str, ...] = ()  # where each of `rules` came from, for labels
    extra_targets: tuple[Target, ...] = ()
    config_file: Path | None = None
    # option field -> where its value came from: "--target", "WHEELFARM_TARGETS",
    # "<path>/pyproject.toml" or "default"
    origins: Mapping[str, str] = field(default_factory=dict)

    @property
    def rule_labels(self) -> tuple[str, ...]:
        """How each rule file is labelled in `wheelfarm tags`: the flag or variable that gave
        it, or "project" for the configuration file's."""
        return self.rule_kinds or ("--rules",) * len(self.rules)

    @property
    def rules_kind(self) -> str:
        """One label for every rule file (the highest one's), for callers that take one."""
        return self.rule_labels[-1] if self.rules else "default"

    @property
    def catalogue(self) -> tuple[Target, ...]:
        """The shipped targets followed by the project's extra targets, each once per chosen
        architecture (a target x arch is one unit: debian-12 x86_64, debian-12 aarch64, ...)."""
        return targets_mod.per_arch(TARGETS + self.extra_targets, self.archs)

    def selected_targets(self, default: Sequence[Target] | None = None) -> list[Target]:
        """The targets asked for, from the whole catalogue; `default` (else every target) when
        none were asked for. Unknown names exit 2 listing the known ones."""
        if not self.targets:
            return list(self.catalogue if default is None else default)
        return targets_mod.select(self.targets, self.catalogue)


def split_list(value: str) -> list[str]:
    """An environment list: comma-separated, whitespace around items ignored, empty items
    dropped. Commas inside brackets stay, so `requests[socks,security]==2.32.3` is one item."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for char in value:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.wheelfarm] table, from `start` upwards, not
    above the repository root."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / FILE_NAME
        if candidate.is_file() and _table(candidate) is not None:
            return candidate
        if any((directory / marker).exists() for marker in _REPOSITORY_MARKERS):
            return None
    return None


def resolve(
    cli: Mapping[str, Any] | None = None,
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve every option once. `cli` maps Settings field names to what the command line
    gave (None or an empty list: not given); `config_file` is --config; `env` defaults to
    os.environ and `cwd` to the current directory."""
    cli = dict(cli or {})
    unknown = sorted(set(cli) - set(_BY_FIELD))
    if unknown:
        raise ValueError(f"config.resolve: unknown CLI option field(s) {unknown}")
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd

    path = _config_path(config_file, env, cwd)
    table: dict[str, Any] = {}
    if path is not None:
        found = _table(path)
        table = {} if found is None else found
        _check_keys(table, KEYS, f"{path}: [{TABLE}]", "known keys: " + ", ".join(KEYS))

    levels: list[tuple[str, dict[str, Any]]] = [
        ("cli", _from_cli(cli)),
        ("env", _from_env(env)),
        ("file", _from_file(table, path) if path is not None else {}),
    ]
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for option in OPTIONS:
        if option.field in _STACKED:
            _stack(option, levels, path, values, origins)
            continue
        group = next((g for g in _GROUPS if option.field in g), (option.field,))
        for level, found in levels:
            if any(name in found for name in group):
                if option.field in found:
                    values[option.field] = found[option.field]
                    origins[option.field] = _origin(level, option.field, path)
                break
        origins.setdefault(option.field, "default")

    extra = _extra_targets(table.get(EXTRA_TARGETS_KEY), path) if path is not None else ()
    return Settings(**values, extra_targets=extra, config_file=path, origins=origins)


def _stack(
    option: _Option,
    levels: Sequence[tuple[str, Mapping[str, Any]]],
    path: Path | None,
    values: dict[str, Any],
    origins: dict[str, str],
) -> None:
    """Every level's rule files, the lowest level's first; the origin is the highest level's."""
    files: list[Path] = []
    kinds: list[str] = []
    for level, found in reversed(levels):
        given = found.get(option.field, ())
        files += given
        kinds += [_RULE_KINDS[level]] * len(given)
        if given:
            origins[option.field] = _origin(level, option.field, path)
    origins.setdefault(option.field, "default")
    if files:
        values[option.field] = tuple(files)
        values["rule_kinds"] = tuple(kinds)


def _origin(level: str, name: str, path: Path | None) -> str:
    option = _BY_FIELD[name]
    if level == "cli":
        return option.flag
    if level == "env":
        return option.env
    return str(path)


def _config_path(explicit: Path | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    source = "--config"
    if explicit is None and env.get(CONFIG_ENV):
        explicit, source = Path(env[CONFIG_ENV]), CONFIG_ENV
    if explicit is not None:
        if not explicit.is_absolute():
            explicit = cwd / explicit
        if not explicit.is_file():
            raise ConfigError(
                f"config file {explicit} (from {source}) does not exist",
                hint=f"name a pyproject.toml with a [{TABLE}] table",
            )
        return explicit
    return find_config(cwd)


def _table(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    tool = document.get("tool")
    if not isinstance(tool, dict) or "wheelfarm" not in tool:
        return None
    table = tool["wheelfarm"]
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{TABLE}] must be a table")
    return table


def _check_keys(table: Mapping[str, Any], known: Sequence[str], where: str, hint: str) -> None:
    unknown = [key for key in table if key not in known]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(
            f"{where}: unknown key{plural} {', '.join(repr(k) for k in unknown)}", hint=hint
        )


def _from_cli(cli: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, value in cli.items():
        if value is None or (isinstance(value, list | tuple) and not value):
            continue
        kind = _BY_FIELD[name].kind
        if kind == "archs":
            found[name] = _archs([str(v) for v in value], _BY_FIELD[name].flag)
        elif kind == "engines":
            found[name] = _engines([str(v) for v in value], _BY_FIELD[name].flag)
        elif kind in ("strs", "paths"):
            found[name] = tuple(Path(v) if kind == "paths" else str(v) for v in value)
        elif kind == "path":
            found[name] = Path(value)
        elif kind == "installer":
            found[name] = _installer(str(value), _BY_FIELD[name].flag)
        elif kind == "bool":
            found[name] = bool(value)
        else:
            found[name] = value
    return found


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for option in OPTIONS:
        raw = env.get(option.env, "").strip()
        if not raw:  # unset and empty are the same: CI passes empty inputs through
            continue
        where = f"environment variable {option.env}"
        if option.kind == "archs":
            found[option.field] = _archs(split_list(raw), where)
        elif option.kind == "engines":
            found[option.field] = _engines(split_list(raw), where)
        elif option.kind == "strs":
            found[option.field] = tuple(split_list(raw))
        elif option.kind == "paths":
            found[option.field] = tuple(Path(item) for item in split_list(raw))
        elif option.kind == "path":
            found[option.field] = Path(raw)
        elif option.kind == "int":
            found[option.field] = _positive_int(raw, where, option.key)
        elif option.kind == "python":
            found[option.field] = _python_version(raw, where, option.key)
        elif option.kind == "installer":
            found[option.field] = _installer(raw, where)
        elif option.kind == "bool":
            found[option.field] = _boolean(raw, where)
        else:
            found[option.field] = raw
    return found


def _from_file(table: Mapping[str, Any], path: Path) -> dict[str, Any]:
    base = path.parent
    found: dict[str, Any] = {}
    for option in OPTIONS:
        if option.key not in table:
            continue
        value = table[option.key]
        where = f"{path}: key {option.key!r}"
        if option.kind == "archs":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _type_error(where, "a list of strings", value, 'archs = ["aarch64"]')
            found[option.field] = _archs(value, where)
        elif option.kind == "engines":
            example = 'engines = { aarch64 = "ssh://user@arm-host" }'
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise _type_error(where, "a table of architecture = URL", value, example)
            found[option.field] = _engines([f"{k}={v}" for k, v in value.items()], where)
        elif option.kind in ("strs", "paths"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _type_error(where, "a list of strings", value, f'{option.key} = ["..."]')
            if option.kind == "paths":
                found[option.field] = tuple(base / v for v in value)
            else:
                found[option.field] = tuple(value)
        elif option.kind == "path":
            if not isinstance(value, str) or not value:
                raise _type_error(where, "a path string", value, f'{option.key} = "..."')
            found[option.field] = base / value
        elif option.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _type_error(where, "a whole number", value, f"{option.key} = 4")
            found[option.field] = _positive_int(str(value), where, option.key)
        elif option.kind == "python":
            if not isinstance(value, str):
                raise _type_error(where, 'a string like "3.12"', value, 'python = "3.12"')
            found[option.field] = _python_version(value, where, option.key)
        elif option.kind == "installer":
            if not isinstance(value, str):
                raise _type_error(where, 'a string, "uv" or "pip"', value, 'installer = "uv"')
            found[option.field] = _installer(value, where)
        elif option.kind == "bool":
            if not isinstance(value, bool):
                raise _type_error(where, "true or false", value, f"{option.key} = false")
            found[option.field] = value
    return found


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(raw: str, where: str) -> bool:
    if raw.lower() in _TRUE + _FALSE:
        return raw.lower() in _TRUE
    raise ConfigError(
        f"{where}: expected a boolean, got {raw!r}",
        hint=f"one of {', '.join(_TRUE)} or {', '.join(_FALSE)}",
    )


def _type_error(where: str, expected: str, value: object, example: str) -> ConfigError:
    return ConfigError(
        f"{where}: expected {expected}, got {_toml_type(value)} {value!r}", hint=f"e.g. {example}"
    )


def _toml_type(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _positive_int(raw: str, where: str, key: str) -> int:
    try:
        number = int(raw)
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{where}: {key} must be a whole number >= 1, got {raw!r}")
    return number


def _archs(raw: Sequence[str], where: str) -> tuple[str, ...]:
    """Architectures as tags name them, in the order given, without repeats (exit 2 naming
    `where` for an unknown one)."""
    try:
        return tuple(dict.fromkeys(targets_mod.check_arch(a) for a in raw))
    except BadInput as exc:
        raise ConfigError(exc.message.replace("--arch", where, 1), hint=exc.hint) from None


ENGINE_SCHEMES = ("unix://", "tcp://", "ssh://")


def _engines(raw: Sequence[str], where: str) -> tuple[tuple[str, str], ...]:
    """ARCH=URL pairs (aarch64=ssh://user@arm-host); the last one given for an arch wins."""
    found: dict[str, str] = {}
    for item in raw:
        arch, sep, url = item.partition("=")
        url = url.strip()
        if not sep or not url.startswith(ENGINE_SCHEMES):
            raise ConfigError(
                f"{where}: {item!r} is not ARCH=URL with a unix://, tcp:// or ssh:// URL",
                hint="e.g. --engine aarch64=ssh://user@arm-host or aarch64=tcp://arm-host:2376",
            )
        found[_archs([arch], where)[0]] = url
    return tuple(found.items())


INSTALLERS = ("uv", "pip")


def _installer(raw: str, where: str) -> str:
    value = raw.strip().lower()
    if value not in INSTALLERS:
        raise ConfigError(
            f"{where}: installer must be uv or pip, got {raw!r}",
            hint="uv (the default) makes the build environments; pip is the slower fallback",
        )
    return value


def _python_version(raw: str, where: str, key: str) -> str:
    if not _PYTHON_VERSION.match(raw.strip()):
        raise ConfigError(f"{where}: {key} must be a Python version like 3.12, got {raw!r}")
    return raw.strip()


def _extra_targets(value: object, path: Path) -> tuple[Target, ...]:
    """`[[tool.wheelfarm.extra-targets]]` (an array of tables, each with a name) or
    `[tool.wheelfarm.extra-targets.NAME]` (a table keyed by name)."""
    if value is None:
        return ()
    entries: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(value, list):
        for number, entry in enumerate(value, 1):
            if not isinstance(entry, dict):
                raise _type_error(
                    f"{path}: [[{TABLE}.{EXTRA_TARGETS_KEY}]] entry {number}",
                    "a table",
                    entry,
                    f'[[{TABLE}.{EXTRA_TARGETS_KEY}]] name = "fedora-40" ...',
                )
            name = entry.get("name")
            label = f"entry {number}" + (f" ({name!r})" if isinstance(name, str) else "")
            entries.append((f"{path}: [[{TABLE}.{EXTRA_TARGETS_KEY}]] {label}", entry))
    elif isinstance(value, dict):
        for name, entry in value.items():
            where = f"{path}: [{TABLE}.{EXTRA_TARGETS_KEY}.{name}]"
            if not isinstance(entry, dict):
                raise _type_error(where, "a table", entry, f'base = "fedora:40" under [{where}]')
            if "name" in entry and entry["name"] != name:
                raise ConfigError(f"{where}: 'name' {entry['name']!r} differs from the table key")
            entries.append((where, {**entry, "name": name}))
    else:
        raise _type_error(
            f"{path}: key {EXTRA_TARGETS_KEY!r}",
            "an array of tables or a table keyed by target name",
            value,
            f"[[{TABLE}.{EXTRA_TARGETS_KEY}]]",
        )

    made: list[Target] = []
    shipped = set(targets_mod.names(TARGETS))
    for where, entry in entries:
        target = _extra_target(entry, where, path)
        if target.name in shipped:
            raise ConfigError(
                f"{where}: {target.name!r} is a shipped target",
                hint="give the extra target a name of its own",
            )
        if target.name in (t.name for t in made):
            raise ConfigError(f"{where}: target {target.name!r} is declared twice")
        made.append(target)
    return tuple(made)


def _extra_target(entry: Mapping[str, Any], where: str, path: Path) -> Target:
    _check_keys(entry, EXTRA_TARGET_KEYS, where, "keys: " + ", ".join(EXTRA_TARGET_KEYS))
    missing = [key for key in _EXTRA_REQUIRED if key not in entry]
    if missing:
        raise ConfigError(
            f"{where}: missing key{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            hint='e.g. name = "fedora-40", base = "fedora:40", family = "dnf", python = "3.12"',
        )
    for key in EXTRA_TARGET_KEYS:
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            raise _type_error(f"{where}: key {key!r}", "a non-empty string", entry[key], "...")
    name = entry["name"].strip()
    if not _TARGET_NAME.match(name):
        raise ConfigError(
            f"{where}: target name {name!r} cannot name an image",
            hint="use lowercase letters, digits and single '.', '-' or '_' between them, "
            "e.g. fedora-40",
        )
    family = entry["family"].strip()
    if family not in FAMILIES:
        raise ConfigError(
            f"{where}: key 'family': unknown package manager {family!r}",
            hint="one of " + ", ".join(FAMILIES),
        )
    version = _python_version(entry["python"], f"{where}: key 'python'", "python")
    executable = entry.get("python-executable", f"/usr/bin/python{version}").strip()
    if not executable.startswith("/"):
        raise ConfigError(
            f"{where}: key 'python-executable' must be an absolute path, got {executable!r}"
        )
    base = entry["base"].strip()
    image_distro, image_version = _distro_from_image(base)
    return Target(
        name=name,
        distro=entry.get("distro", image_distro).strip(),
        version=entry.get("version", image_version).strip(),
        base=base,
        family=family,
        pythons=(Python(version, executable),),
        note=entry.get("note", f"extra target from {path}").strip(),
        release_known="distro" in entry and "version" in entry,
    )


def _distro_from_image(image: str) -> tuple[str, str]:
    """A display guess only ("fedora:40" -> fedora, 40; "python:3.12-slim" -> python, 3.12-slim,
    which is no distro at all): wheels are always tagged from the image's own os-release, and a
    target with a guessed release gets no index root or view (Target.release_known)."""
    reference = image.split("@", 1)[0]
    repository, _, tag = reference.rpartition(":")
    if not repository or "/" in tag:  # no tag; the colon belonged to a registry port
        repository, tag = reference, "latest"
    return repository.rsplit("/", 1)[-1], tag
