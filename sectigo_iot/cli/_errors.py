"""Exit statuses, the CLI's own error, and how any failure is reported."""

from __future__ import annotations

import enum
import sys
import traceback
from typing import Any

import typer

from ..errors import (
    AuthenticationError,
    BatchError,
    CredentialsError,
    InvalidInputError,
    PermissionDeniedError,
    SectigoError,
    WaitTimeoutError,
)
from ._secrets import scrub_text

__all__ = ["EXIT_CODES", "CLIError", "ExitCode", "exit_code_for", "report_error"]


class ExitCode(enum.IntEnum):
    """The exit statuses of ``sectigo``."""

    OK = 0
    ERROR = 1
    USAGE = 2
    WAIT_TIMEOUT = 3
    AUTH = 4
    BATCH_FAILED = 5
    EXPIRING = 6


#: exit status -> meaning, as documented in ``sectigo --help``
EXIT_CODES: dict[int, str] = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "API error, or any other failure",
    ExitCode.USAGE: "usage error or invalid input (nothing was sent)",
    ExitCode.WAIT_TIMEOUT: "the batch was not ready within --timeout",
    ExitCode.AUTH: "authentication failed, access denied, or no credentials",
    ExitCode.BATCH_FAILED: "the batch was rejected or failed",
    ExitCode.EXPIRING: "inspect: a certificate expires within --expires-within days",
}


class CLIError(Exception):
    """A failure the CLI reports itself: one message and an exit status."""

    def __init__(self, message: str, code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def check_id(value: int, name: str, missing: str) -> None:
    """An id option: given (else the usage error ``missing``) and positive."""
    if not value:
        raise CLIError(missing)
    if value < 0:
        raise CLIError(f"{name} must be positive, got {value}")


def _click_exceptions() -> Any:
    try:  # typer >= 0.26 vendors click
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def _unwrap(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], BaseException):
            exc = inner[0]
            continue
        return exc


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an exception (see :data:`EXIT_CODES`)."""
    exc = _unwrap(exc)
    click_exc = _click_exceptions()
    if isinstance(exc, CLIError):
        return exc.code
    if isinstance(exc, click_exc.ClickException):
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, WaitTimeoutError):
        return ExitCode.WAIT_TIMEOUT
    if isinstance(exc, BatchError):
        return ExitCode.BATCH_FAILED
    if isinstance(exc, (AuthenticationError, CredentialsError, PermissionDeniedError)):
        return ExitCode.AUTH
    if isinstance(exc, InvalidInputError):
        return ExitCode.USAGE
    return ExitCode.ERROR


def _message(exc: BaseException) -> str:
    click_exc = _click_exceptions()
    if isinstance(exc, CLIError):
        return exc.message
    if isinstance(exc, click_exc.UsageError):
        text = str(exc.format_message()).strip()
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            text += f" (see '{ctx.command_path} --help')"
        return text
    if isinstance(exc, click_exc.ClickException):
        return str(exc.format_message()).strip()
    if isinstance(exc, typer.Abort):
        return "aborted"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, CredentialsError):
        return (
            "no password to log in with and no usable stored tokens: use --password/-p, "
            "set SECTIGO_PASSWORD, or run 'sectigo auth login'"
        )
    if isinstance(exc, WaitTimeoutError):
        batch_id = getattr(exc.batch, "batch_id", None)
        hint = f"; check later with 'sectigo batches -i {batch_id} --status'" if batch_id else ""
        return f"{exc}{hint}"
    if isinstance(exc, SectigoError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"unexpected {type(exc).__name__}: {exc}"


def report_error(exc: BaseException, *, verbose: bool = False) -> int:
    """Print one ``error: ...`` line on stderr (a traceback first with ``verbose``);
    both are redacted. Returns the exit status."""
    exc = _unwrap(exc)
    code = exit_code_for(exc)
    click_exc = _click_exceptions()
    if type(exc).__name__ == "NoArgsIsHelpError":
        text = exc.format_message() if isinstance(exc, click_exc.ClickException) else ""
        if text.strip():
            sys.stdout.write(text.rstrip() + "\n")
        return code
    if verbose and not isinstance(exc, (CLIError, click_exc.ClickException)):
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        sys.stderr.write(scrub_text("".join(lines)))
    sys.stderr.write(f"error: {scrub_text(_message(exc))}\n")
    sys.stderr.flush()
    return code
