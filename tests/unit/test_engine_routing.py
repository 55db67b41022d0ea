"""Which engine an image or an architecture goes to (container.address_for): decided by the
image tag's architecture, Docker-free."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wheelfarm import container


@pytest.fixture(autouse=True)
def routes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/here.sock")
    container.route({"aarch64": "ssh://builder@arm-host"})
    yield
    container.route({})


def test_images_of_a_routed_arch_go_to_its_engine() -> None:
    for ref in (
        "wheelfarm/debian-12:build-aarch64",
        "wheelfarm/debian-12:runtime-aarch64",
        "wheelfarm/base:debian-12-aarch64",
        "registry.example:5000/wheelfarm/debian-12:build-aarch64",
    ):
        assert container.address_for(ref) == "ssh://builder@arm-host", ref
        assert container.is_remote(container.address_for(ref))


def test_everything_else_stays_on_this_machines_engine() -> None:
    for ref in (
        "wheelfarm/debian-12:build-x86_64",
        "wheelfarm/debian-12:build",
        "debian:12",
        "registry.example:5000/aarch64-tools",
    ):
        assert container.address_for(ref) == "unix:///run/here.sock", ref
    assert container.address_for(arch="aarch64") == "ssh://builder@arm-host"
    assert container.address_for(arch="x86_64") == "unix:///run/here.sock"
    assert not container.is_remote(container.address_for())


def test_a_lost_engine_is_told_from_other_errors() -> None:
    class ConnectionError(OSError):  # how requests names its own
        pass

    assert container.lost_engine(ConnectionError("reset by peer"))
    assert container.lost_engine(container.EngineUnavailable("gone"))
    assert not container.lost_engine(ValueError("bad"))
