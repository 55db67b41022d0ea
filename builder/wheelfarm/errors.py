"""The one error hierarchy. Every expected failure is a WheelfarmError carrying a message the
user can act on, an optional hint, and the exit code the CLI returns. The CLI catches them once;
nothing else prints them."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3


class WheelfarmError(Exception):
    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class BuildFailed(WheelfarmError):
    """One or more builds failed (exit 1)."""


class VerificationFailed(WheelfarmError):
    """One or more wheels did not install or import where their tag says they should (exit 1)."""


class BadInput(WheelfarmError):
    """The user asked for something that cannot be done as asked (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(BadInput):
    """A rules file, recipe or configuration file is malformed (exit 2)."""


class EnvironmentProblem(WheelfarmError):
    """The machine lacks something wheelfarm needs: an engine, an image, a tool (exit 3)."""

    exit_code = EXIT_ENVIRONMENT


class EngineUnavailable(EnvironmentProblem):
    pass


class ImageMissing(EnvironmentProblem):
    pass


class ReaderGone(Exception):
    """stdout's reader closed the pipe before wheelfarm finished writing (`| head -1`): the
    reader's choice, not a failure, so deliberately outside WheelfarmError. The CLI ends quietly
    with the shell's SIGPIPE status."""
