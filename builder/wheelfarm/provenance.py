"""A built wheel's provenance record: a pure function of what went into the build and what came
out. Written beside the wheel as `.wheelfarm/<wheel>.json` and kept with it in the cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelfarm import __version__, fsutil
from wheelfarm.elfdeps import Analysis
from wheelfarm.fetch import Source
from wheelfarm.imagefacts import ImageFacts
from wheelfarm.plan import Spec
from wheelfarm.recipes import Recipe
from wheelfarm.rules import TagSet
from wheelfarm.targets import Target


@dataclass(frozen=True)
class Inputs:
    """What a build was made from, known before it starts."""

    spec: Spec
    source: Source
    target: Target
    recipe: Recipe
    facts: ImageFacts
    python: str  # the target's Python version, "3.11"
    tag_set: TagSet
    build_env: dict[str, str]
    key: str
    log: str  # relative to the wheelhouse


@dataclass(frozen=True)
class Result:
    """What the build made."""

    wheel: Path
    platform_tag: str
    pure: bool
    analysis: Analysis | None
    build_requires: dict[str, str]
    durations: dict[str, float]
    started_at: str
    finished_at: str


def rules_applied(tag_set: TagSet) -> dict[str, Any]:
    """Which rule decided the build tag, and where it came from."""
    decision = tag_set.decision
    return {
        "build": tag_set.build,
        "source": decision.source.label if decision else None,
        "key": decision.key if decision else None,
        "rule": {"build": decision.rule.build, "install": list(decision.rule.install)}
        if decision
        else None,
    }


def record(inputs: Inputs, result: Result) -> dict[str, Any]:
    source, tag_set, analysis = inputs.source, inputs.tag_set, result.analysis
    python = inputs.facts.pythons.get(inputs.python)
    return {
        "wheel": result.wheel.name,
        "sha256": fsutil.file_sha256(result.wheel),
        "platform_tag": result.platform_tag,
        "pure": result.pure,
        "spec": inputs.spec.requirement,
        "spec_origin": inputs.spec.origin,
        "sdist": {"file": source.path.name, "sha256": source.sha256, "origin": source.origin},
        "target": inputs.target.name,
        "arch": inputs.target.arch,
        "image": inputs.target.build_image,
        "image_id": inputs.facts.image_id,
        "python": python.version if python else None,
        "os_release_tag": {
            "host": tag_set.host,
            "default_build": tag_set.default_build,
            "build": tag_set.build,
        },
        "rules": rules_applied(tag_set),
        "recipe": {
            "source": inputs.recipe.source,
            "digest": inputs.recipe.digest,
            "build_digest": inputs.recipe.build_digest(inputs.target, source.version),
            "packages": list(inputs.recipe.packages_for(inputs.target)),
            "constraints": list(inputs.recipe.constraints_for(source.version)),
        },
        "build_env": inputs.build_env,
        "build_requires": result.build_requires,
        "durations": result.durations,
        "tools": {**(python.tools if python else {}), "wheelfarm": __version__},
        "external": analysis.as_json() if analysis else None,
        "requires_external": list(analysis.requires_external) if analysis else [],
        "log": inputs.log,
        "cache_key": inputs.key,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
    }
