"""A host's platform tags: the running machine, or the host an os-release file belongs to, as a
TagSet (what `wheelfarm tags` shows and `wheelfarm install` picks its index root with)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wheelfarm import osrelease, rules, tags
from wheelfarm.errors import BadInput


def _given_arch(arch: str) -> str:
    normalised = tags.normalise_arch(arch)
    if normalised not in tags.KNOWN_ARCHES:
        raise BadInput(
            f"unknown architecture {arch!r}",
            hint=f"use one of {', '.join(sorted(tags.KNOWN_ARCHES))} (amd64 and arm64 work too)",
        )
    return normalised


def describe(
    os_release: Path | None,
    arch: str | None,
    rule_files: Sequence[Path],
    rules_kind: rules.GivenKind = "--rules",
) -> rules.TagSet:
    """`rules_kind` says where `rule_files` came from (--rules, WHEELFARM_RULES, project): one
    label for all, or one per file."""
    # An empty --arch is a mistake, not a request for this machine's arch.
    chosen_arch = _given_arch(arch) if arch is not None else tags.running_arch()
    if os_release is not None:
        fields = osrelease.read_file(os_release)
        sources = rules.image_sources(rule_files, given_kind=rules_kind)
        return rules.tag_set(fields, chosen_arch, sources)
    machine_tags = tags.running_machine_tags() if chosen_arch == tags.running_arch() else ()
    return rules.tag_set(
        osrelease.read_host(),
        chosen_arch,
        rules.machine_sources(rule_files, given_kind=rules_kind),
        machine_tags=machine_tags,
    )
