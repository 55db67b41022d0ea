"""Shared fixtures for the integration tests: a real Docker engine and the real Debian target
images. Nothing here skips: a missing engine or image fails the test with the command that makes
it (scripts/setup does both)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from wheelfarm import container, images, targets
from wheelfarm.errors import WheelfarmError
from wheelfarm.targets import Target

DEBIAN_TARGETS = ("debian-11", "debian-12", "debian-13")


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background by a non-interactive shell (`cmd &` in a script,
    nohup) begins with SIGINT ignored, and so would every wheelfarm process a test starts:
    Python installs no KeyboardInterrupt handler then, and the tests that send Ctrl-C's SIGINT
    would fail for how the suite was started, not for wheelfarm. With a handler here, children
    start with SIGINT's default, as a terminal's foreground process has it."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def engine() -> None:
    """A Docker engine answers (DOCKER_HOST honoured)."""
    try:
        container.check_engine()
    except WheelfarmError as exc:
        pytest.fail(f"{exc.message}\n{exc.hint or ''}\nrun scripts/setup to start one", False)


@pytest.fixture(scope="session")
def debian_targets(engine: None) -> dict[str, Target]:
    """debian-11/12/13 with both their build and runtime images present."""
    missing: list[str] = []
    for name in DEBIAN_TARGETS:
        for stage in images.STAGES:
            try:
                images.require(targets.get(name), stage)
            except WheelfarmError as exc:
                missing.append(f"{exc.message} ({exc.hint})")
    if missing:
        pytest.fail(
            "\n".join(missing)
            + "\nmake them all with: wheelfarm images bootstrap "
            + " ".join(DEBIAN_TARGETS),
            False,
        )
    return {name: targets.get(name) for name in DEBIAN_TARGETS}


@pytest.fixture(params=DEBIAN_TARGETS)
def debian_target(request: pytest.FixtureRequest, debian_targets: dict[str, Target]) -> Target:
    """Each Debian target in turn."""
    return debian_targets[str(request.param)]


@pytest.fixture
def no_leftover_containers(engine: None) -> Iterator[None]:
    """Fails the test when a container this process started during it still exists afterwards
    (other processes' containers, e.g. a parallel build, are not this test's business)."""
    before = set(container.leftover_containers(os.getpid()))
    yield
    left = set(container.leftover_containers(os.getpid())) - before
    assert not left, f"containers left behind: {sorted(left)}"
