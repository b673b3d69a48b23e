"""Exit codes and the typed errors that end a run; every module raises these, only cli.py exits."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The process exit codes of the contract."""

    OK = 0
    ROWS_REJECTED = 1
    USAGE = 2
    ABORTED = 3
    LOCKED = 4


class PayorError(Exception):
    """An error that ends the run with a clear message and a fixed exit code."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        # one line, so a cron mail or a log grep shows the whole story
        return self.message if not self.hint else f"{self.message}; {self.hint}"


class InputError(PayorError):
    """The input file cannot be read as a table (exit 2)."""


class MappingError(PayorError):
    """The mapping does not fit the schema or the file (exit 2)."""


class ConfigError(PayorError):
    """Settings or credentials are missing or wrong (exit 2)."""


class AbortedError(PayorError):
    """Delivery stopped: auth refused, server unreachable, retries exhausted (exit 3)."""

    exit_code = ExitCode.ABORTED


class LockedError(PayorError):
    """Another run holds the state dir's lock (exit 4)."""

    exit_code = ExitCode.LOCKED
