"""Exit statuses, the CLI's own error, and how any failure is reported."""

from __future__ import annotations

import enum
import re
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
from ._output import note, note_lines, printable
from ._secrets import scrub_text

__all__ = [
    "EXIT_CODES",
    "CLIError",
    "ExitCode",
    "exit_code_for",
    "in_flags",
    "report_error",
    "with_hint",
]


class ExitCode(enum.IntEnum):
    """The exit statuses of ``sectigo``."""

    OK = 0
    ERROR = 1
    USAGE = 2
    WAIT_TIMEOUT = 3
    AUTH = 4
    BATCH_FAILED = 5
    EXPIRING = 6
    KEPT_ASIDE = 7
    INTERRUPTED = 130


#: exit status -> meaning, as documented in ``sectigo --help``
EXIT_CODES: dict[int, str] = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "API error, or any other failure",
    ExitCode.USAGE: "usage error or invalid input (nothing was sent)",
    ExitCode.WAIT_TIMEOUT: "the batch was not ready within --timeout",
    ExitCode.AUTH: "authentication failed, access denied, or no credentials",
    ExitCode.BATCH_FAILED: "the batch was rejected or failed",
    ExitCode.EXPIRING: "inspect: a certificate expires within --expires-within days",
    ExitCode.KEPT_ASIDE: "create/upload --download: the batch was made, but a file was "
    "already there: the new files went beside it, or the message says how to fetch them",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); the message says how to resume",
}

#: SDK messages name Python arguments; the CLI user knows flags
_PYTHON_TO_FLAGS = (
    (r"\bpass overwrite=True to replace it", "use --force where the command has it"),
    (
        r"\bsectigo_iot\.certs\.generate_password\(\) makes a strong one",
        "leave out --password/-p to have a strong one generated",
    ),
    (r"\bpkcs12_password\b", "the PKCS#12 password (--password/-p)"),
    (r"\buse batches\.wait\(\) first", "wait for it with 'sectigo batches -i ID --wait'"),
    (r"\bparams must not set '([^']*)'[^;]*: .*", r"--param \1 is not allowed here"),
    (r"\bauthority_id\b", "the authority id (-a)"),
    (r"\bprofile_id\b", "the profile id (-p)"),
    (r"\bbatch_id\b", "the batch id (-i)"),
)


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
        return ExitCode.INTERRUPTED
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
        return in_flags(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"unexpected {type(exc).__name__}: {exc}"


def with_hint(exc: BaseException, hint: str) -> CLIError:
    """A failure after a batch was made: ``exc`` reported as usual, then ``hint`` (how to
    fetch the batch). Its status is the usual one, except that "nothing was sent" (2)
    would be untrue: a file problem then ends with :attr:`ExitCode.KEPT_ASIDE`."""
    code = exit_code_for(exc)
    return CLIError(
        f"{_message(_unwrap(exc))}; {hint}",
        ExitCode.KEPT_ASIDE if code == ExitCode.USAGE else code,
    )


def in_flags(message: str) -> str:
    """An SDK message with the Python arguments it names replaced by the CLI's flags."""
    for pattern, replacement in _PYTHON_TO_FLAGS:
        message = re.sub(pattern, replacement, message, flags=re.IGNORECASE)
    return message


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
        note_lines(scrub_text("".join(traceback.format_exception(exc))))
    note(f"error: {scrub_text(_message(exc))}")
    return code


def confirm(question: str, *, refused: str) -> None:
    """Ask ``question`` on the terminal; anything but yes is a CLIError (exit status 1)
    saying ``refused``."""
    answer = typer.prompt(
        f"{printable(question)} This cannot be undone. [y/N]",
        default="",
        show_default=False,
        err=True,
    )
    if answer.strip().lower() not in ("y", "yes"):
        raise CLIError(refused, ExitCode.ERROR)
