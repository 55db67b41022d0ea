"""What an image is, learnt once per image id and cached: its os-release, its own rules file,
its machine, and for each of its Pythons the interpreter's version, libc and build tools.

One in-container script (data/image_facts.py) is run by each Python asked about; build asks its
build venv's Python, verify and probe each runtime Python. The cache holds one JSON file per
image id (cache.image_facts); an entry written by another wheelfarm version, or lacking a Python
now asked about, is read again."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from wheelfarm import __version__, cache, osrelease, tags
from wheelfarm import rules as compat

SCRIPT = Path(__file__).parent / "data" / "image_facts.py"
TOOLS_DIR = "/wf/tools"


class _Runs(Protocol):
    def copy_in(self, host_path: Path, container_dir: str) -> str: ...

    def output(self, argv: list[str], *, check: bool = True) -> str: ...


@dataclass(frozen=True)
class PythonFacts:
    version: str  # the interpreter's full version, e.g. "3.11.2"
    implementation: str = "cpython"
    libc: tuple[str, str] = ("", "")
    tools: Mapping[str, str | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "implementation": self.implementation,
            "libc": list(self.libc),
            "tools": dict(self.tools),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PythonFacts:
        libc = data.get("libc") or ["", ""]
        tools = data.get("tools") or {}
        return cls(
            version=str(data["version"]),
            implementation=str(data.get("implementation") or "cpython"),
            libc=(str(libc[0]), str(libc[1])),
            tools={str(k): None if v is None else str(v) for k, v in tools.items()},
        )


@dataclass(frozen=True)
class ImageFacts:
    image: str
    image_id: str
    os_release: str | None  # None: the image has no os-release file
    rules: str | None
    arch: str
    # Keyed by the target's Python version ("3.11"), as targets.Python.version names it.
    pythons: Mapping[str, PythonFacts] = field(default_factory=dict)

    @property
    def rules_origin(self) -> str:
        return f"{self.image}:{compat.SYSTEM_PATH}"

    def tag_set(self, rule_files: tuple[Path, ...] | list[Path]) -> compat.TagSet:
        """The image's tags: its own os-release through --rules/project rules, its own rules
        file, then the shipped defaults."""
        sources = compat.image_sources(
            rule_files, image_rules=self.rules, image_origin=self.rules_origin
        )
        fields = osrelease.parse(self.os_release) if self.os_release is not None else None
        return compat.tag_set(fields, self.arch, sources)

    def as_json(self) -> dict[str, Any]:
        return {
            "wheelfarm": __version__,
            "image": self.image,
            "image_id": self.image_id,
            "os_release": self.os_release,
            "rules": self.rules,
            "arch": self.arch,
            "pythons": {v: p.as_json() for v, p in sorted(self.pythons.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageFacts:
        return cls(
            image=str(data["image"]),
            image_id=str(data["image_id"]),
            os_release=None if data.get("os_release") is None else str(data["os_release"]),
            rules=None if data.get("rules") is None else str(data["rules"]),
            arch=str(data["arch"]),
            pythons={str(v): PythonFacts.from_json(p) for v, p in data["pythons"].items()},
        )


def cached(image_id: str, versions: tuple[str, ...] | list[str] = ()) -> ImageFacts | None:
    """The cached facts of an image, when this wheelfarm wrote them and they cover `versions`."""
    data = cache.image_facts(image_id)
    if data is None or data.get("wheelfarm") != __version__:
        return None
    try:
        facts = ImageFacts.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return facts if all(v in facts.pythons for v in versions) else None


def read(c: _Runs, image: str, image_id: str, executables: Mapping[str, str]) -> ImageFacts:
    """Run the facts script with each Python (version → executable) in a running container of
    the image, and cache the result. A Python that cannot run it is left out (verify shows its
    cells as not applicable)."""
    script = c.copy_in(SCRIPT, TOOLS_DIR)
    found: dict[str, dict[str, Any]] = {}
    for version, executable in executables.items():
        text = c.output([executable, script], check=False).strip()
        try:
            found[version] = json.loads(text.splitlines()[-1] if text else "")
        except ValueError:
            continue
    # Every Python reads the same files: the first that answered says what the image is. With
    # none (no usable Python) the image is untagged, as a host without os-release is.
    first = next(iter(found.values()), {})
    facts = ImageFacts(
        image=image,
        image_id=image_id,
        os_release=first.get("os_release"),
        rules=first.get("rules"),
        arch=tags.normalise_arch(str(first.get("machine") or "")),
        pythons={
            version: PythonFacts.from_json({**data, "version": data.get("python")})
            for version, data in found.items()
        },
    )
    cache.store_image_facts(image_id, facts.as_json())
    return facts
