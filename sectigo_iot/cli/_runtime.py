"""What every command shares: the global settings, the client, exit codes and errors.

Nothing here imports the certificate toolkit, the emulator, the keyring or rich at
module level: ``sectigo --help`` must stay fast.
"""

from __future__ import annotations

import enum
import os
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import attrs
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

if TYPE_CHECKING:
    from .. import SectigoClient
    from ..auth import TokenStore
    from ..emulator import Emulator

__all__ = [
    "EXIT_CODES",
    "CLIError",
    "ExitCode",
    "Settings",
    "call",
    "check_environment",
    "emulator_db_path",
    "exit_code_for",
    "forget_secrets",
    "read_capped",
    "read_head",
    "remember_secret",
    "report_error",
    "scrub_text",
    "too_large",
]

T = TypeVar("T")


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

#: environment variables read by the CLI (beyond the global options' own)
ENV_EMULATOR_DB = "SECTIGO_EMULATOR_DB"
ENV_EMULATOR_DELAY = "SECTIGO_EMULATOR_DELAY"

ENVIRONMENTS = ("production", "staging", "docker", "testing")
PROFILES = ("CipherTrace EE", "17", "CipherTrace End Entity Certificate", "85")
END_ENTITY_PROFILES = frozenset({"CipherTrace End Entity Certificate", "85"})
DEFAULT_ENDPOINT = "https://iot.sectigo.com"
# the upstream mock's credentials, filled in for the "testing" environment (auth.md §7)
TESTING_USERNAME = "tester"
TESTING_PASSWORD = "supersecretsquirrel"  # noqa: S105 - a published test password


class CLIError(Exception):
    """A failure the CLI reports itself: one message and an exit status."""

    def __init__(self, message: str, code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@attrs.define(kw_only=True)
class Settings:
    """The global options, resolved (flags over environment variables)."""

    username: str = ""
    password: str = attrs.field(default="", repr=False)
    endpoint: str = ""
    profile: str = ""
    environment: str = ""
    emulator: bool = False
    json: bool | None = None  # None: JSON when stdout is not a terminal
    verbose: bool = False

    def __attrs_post_init__(self) -> None:
        self.environment = self.environment.strip().lower()
        if self.environment and self.environment not in ENVIRONMENTS:
            raise CLIError(
                f'"{self.environment}" is not a valid environment, specify production, '
                "staging, docker or testing"
            )
        if self.profile and self.profile not in PROFILES:
            raise CLIError(
                f'"{self.profile}" is not a valid Sectigo profile name, specify one of '
                + ", ".join(PROFILES)
            )
        if self.environment == "testing":
            self.username = self.username or TESTING_USERNAME
            self.password = self.password or TESTING_PASSWORD

    @property
    def end_entity(self) -> bool:
        """Whether the global profile is the End Entity one (it takes subject params)."""
        return self.profile in END_ENTITY_PROFILES

    @property
    def base_url(self) -> str:
        """The API's base URL in effect."""
        return self.endpoint or DEFAULT_ENDPOINT


def check_environment(environment: str, base_url: str) -> None:
    """The environment guard of the original tool (spec auth.md §7)."""
    if not environment:
        return
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if environment == "production":
        if parts.scheme != "https":
            raise CLIError(f"must use https in production, not {parts.scheme or 'no scheme'}")
        if host != "iot.sectigo.com":
            raise CLIError(f"cannot connect to {host or base_url} in production")
    elif environment in ("staging", "docker"):
        if host.endswith("sectigo.com"):
            raise CLIError(f"cannot connect to {host} in {environment}")
    elif environment == "testing" and host not in ("localhost", "127.0.0.1"):
        raise CLIError("sectigo hostname must be set to localhost in testing mode")


# -- the embedded emulator ------------------------------------------------------------


def emulator_db_path() -> Path:
    """Where ``--emulator`` keeps its state (``$SECTIGO_EMULATOR_DB`` overrides it)."""
    override = os.environ.get(ENV_EMULATOR_DB)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("sectigo-iot", appauthor=False)) / "emulator.sqlite3"


def _emulator_delay() -> float:
    raw = os.environ.get(ENV_EMULATOR_DELAY, "").strip()
    if not raw:
        return 0.0
    try:
        delay = float(raw)
    except ValueError:
        raise CLIError(f"{ENV_EMULATOR_DELAY} must be a number of seconds, got {raw!r}") from None
    if delay < 0:
        raise CLIError(f"{ENV_EMULATOR_DELAY} must not be negative")
    return delay


def open_emulator(
    db_path: Path | None = None, *, processing_delay: float | None = None
) -> Emulator:
    """The persistent emulator of ``--emulator`` mode (a private file, a 0700 folder)."""
    from ..emulator import Emulator

    path = db_path if db_path is not None else emulator_db_path()
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    delay = _emulator_delay() if processing_delay is None else processing_delay
    return Emulator(db_path=path, processing_delay=delay)


def emulator_token_dir(db_path: Path) -> Path:
    """Tokens of ``--emulator`` mode live beside its database, not with real ones."""
    return db_path.parent / f"{db_path.stem}-tokens"


# -- token stores ---------------------------------------------------------------------


def token_store(settings: Settings) -> TokenStore:
    """The keyring when it works, else the 0600 file store (no warning either way)."""
    from ..auth import FileTokenStore, KeyringTokenStore, keyring_usable

    if settings.emulator:
        return FileTokenStore(emulator_token_dir(emulator_db_path()))
    if keyring_usable():
        return KeyringTokenStore()
    return FileTokenStore()


def describe_store(store: TokenStore, host: str, username: str) -> tuple[str, str, bool]:
    """(kind, location, exists) of the entry of ``host``/``username`` in ``store``."""
    from ..auth import FileTokenStore, KeyringTokenStore

    if isinstance(store, KeyringTokenStore):
        return "keyring", f"service {store.service_name(host)!r}, user {username!r}", True
    if isinstance(store, FileTokenStore):
        path = store.path_for(host, username)
        return "file", str(path), path.is_file()
    return "memory", "process memory", False


# -- building the client and running a command -----------------------------------------


@asynccontextmanager
async def open_client(settings: Settings) -> AsyncIterator[SectigoClient]:
    """A client for the settings: the embedded emulator, or the API at the endpoint."""
    from .. import SectigoClient

    if settings.emulator:
        if settings.endpoint:
            sys.stderr.write("warning: --endpoint is ignored with --emulator\n")
        emulator = open_emulator()
        try:
            async with emulator.client(
                settings.username or None,
                settings.password or None,
                token_store=token_store(settings),
            ) as client:
                yield client
        finally:
            emulator.close()
        return
    check_environment(settings.environment, settings.base_url)
    if not settings.username:
        raise CLIError(
            "no username: use --username/-u or set SECTIGO_USERNAME "
            "(or --emulator to try the embedded emulator)",
            ExitCode.AUTH,
        )
    async with SectigoClient(
        settings.username,
        settings.password,
        base_url=settings.base_url,
        token_store=token_store(settings),
    ) as client:
        yield client


def call(settings: Settings, action: Callable[[SectigoClient], Awaitable[T]]) -> T:
    """Run ``action`` with a client in a fresh event loop and return its result."""
    import anyio

    async def main() -> T:
        async with open_client(settings) as client:
            return await action(client)

    return anyio.run(main)


def now() -> float:
    """Seconds since the epoch (a function so tests can move it)."""
    return time.time()


# -- errors ---------------------------------------------------------------------------


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


_secrets: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Mask this exact value in every error line and traceback of this run."""
    if value and len(value) >= 4:
        _secrets.add(value)


def forget_secrets() -> None:
    """Start a run with no remembered secrets."""
    _secrets.clear()


def scrub_text(text: str) -> str:
    """``text`` with the SDK's known secrets and the CLI's own passwords masked."""
    from .._logging import redact

    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact(text)


def read_head(path: Path, count: int) -> bytes:
    """At most ``count`` bytes from the start of a file."""
    try:
        with open(path, "rb") as handle:
            return handle.read(count)
    except OSError as exc:
        raise CLIError(f"could not read {path}: {exc.strerror or exc}") from None


def read_capped(path: Path, cap: int, what: str = "file") -> bytes:
    """A file of at most ``cap`` bytes; a larger one is refused (reads cap + 1 at most)."""
    data = read_head(path, cap + 1)
    if len(data) > cap:
        raise too_large(path, cap, what)
    return data


def too_large(path: Path, cap: int, what: str) -> CLIError:
    """The error for a file over its size limit."""
    return CLIError(f"{path} is larger than {_size(cap)}; refusing to read this {what}")


def _size(count: int) -> str:
    if count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    return f"{count // 1024} KiB" if count % 1024 == 0 else f"{count} bytes"


def report_error(exc: BaseException, *, verbose: bool = False) -> int:
    """Print one ``error: ...`` line on stderr (a traceback first with ``verbose``);
    both are redacted."""
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
