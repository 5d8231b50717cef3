"""Emulator commands: serve (over HTTP on loopback), validate (its configuration) and demo
(in process)."""

import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._errors import CLIError, ExitCode
from .._files import prepare_folder
from .._output import Output
from .._run import output_of
from .._settings import settings_of

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from ...emulator import Emulator
    from .._sias import SiasConfig

__all__ = ["register"]


def _given(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return getattr(source, "name", "") == "COMMANDLINE"


#: serve's longer options, declared apart to keep ``serve`` short
AddrOption = Annotated[
    str | None,
    typer.Option(
        "--addr",
        "-a",
        metavar="HOST:PORT",
        help="Address to listen on, as the original tool takes it (':PORT' means every "
        "interface); default $SIAS_BIND_ADDR, which --host/--port replace.",
        show_default=False,
    ),
]
DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        metavar="FILE",
        help="SQLite file that keeps the state across runs.",
        show_default=False,
    ),
]


def serve(
    ctx: typer.Context,
    addr: AddrOption = None,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", metavar="PORT", min=0, max=65535, help="Port (0 picks a free one)."),
    ] = 8831,
    db: DbOption = None,
    processing_delay: Annotated[
        float,
        typer.Option(
            "--processing-delay",
            metavar="SECONDS",
            min=0,
            help="Seconds a batch stays PROCESSING.",
        ),
    ] = 0.0,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a host other than loopback.")
    ] = False,
) -> None:
    """Run the Sectigo IoT emulator over HTTP (loopback only) until interrupted.

    Reads the original emulator's SIAS_* variables (see 'sectigo validate --help').
    """
    from ...emulator import Emulator
    from .._sias import load_sias

    config = load_sias(
        addr=addr,
        host=host if _given(ctx, "host") else None,
        port=port if _given(ctx, "port") else None,
    )
    _check_listen(config, allow_remote=allow_remote)
    _check_db(db)
    emulator = Emulator(db_path=db, processing_delay=processing_delay, **config.emulator_options())
    if settings_of(ctx).verbose:
        emulator.app = _logging_requests(emulator.app)
    try:
        ready = _announcer(output_of(ctx), emulator, config)
        _serve(emulator, config, allow_remote=allow_remote, on_ready=ready)
    except OSError as exc:  # e.g. the port is in use
        where = f"{config.host}:{config.port}"
        raise CLIError(f"cannot listen on {where}: {exc.strerror or exc}", ExitCode.ERROR) from None
    finally:
        emulator.close()


def _logging_requests(app: "ASGIApp") -> "ASGIApp":
    """``app``, logging each request it answers: method, path and status (never the
    query, a header or a body, where tokens and passwords travel)."""
    import logging

    logger = logging.getLogger("sectigo_iot.emulator.requests")

    async def logged(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status: list[int] = []

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            shown = status[0] if status else "no response"
            logger.info("%s %s %s", scope["method"], scope["path"], shown)

    return logged


def _check_listen(config: "SiasConfig", *, allow_remote: bool) -> None:
    from ...emulator import is_loopback

    if not allow_remote and not is_loopback(config.host):
        raise CLIError(
            f"refusing to listen on {config.bind_addr}: the emulator is for local tests; "
            "pass --allow-remote to listen on other interfaces"
        )


def _check_db(db: Path | None) -> None:
    if db is not None and not db.parent.is_dir():
        raise CLIError(f'directory "{db.parent}" does not exist')
    if db is not None and db.is_dir():
        raise CLIError(f'path "{db}" is a directory, not a database file')


def _announcer(out: Output, emulator: "Emulator", config: "SiasConfig") -> Callable[[str], None]:
    """A callback that prints the URL and the login once the server listens."""
    username, password = next(iter(emulator.config.users.items()))
    shown = "<$SIAS_AUTH_PASSWORD>" if config.password is not None else password

    def ready(url: str) -> None:
        out.text(
            [
                f"Sectigo IoT emulator listening on {url} (Ctrl-C to stop)",
                f"  SECTIGO_ENDPOINT={url}",
                f"  SECTIGO_USERNAME={username}",
                f"  SECTIGO_PASSWORD={shown}",
                f"  CA certificate: {url}/emulator/ca.pem",
            ],
            data={"url": url, "username": username, "password": shown},
        )
        sys.stdout.flush()

    return ready


def _serve(
    emulator: "Emulator",
    config: "SiasConfig",
    *,
    allow_remote: bool,
    on_ready: Callable[[str], None],
) -> None:
    """Serve until interrupted (Ctrl-C ends it quietly)."""
    import anyio

    async def main() -> None:
        await emulator.serve(
            config.host,
            config.port,
            allow_remote=allow_remote,
            on_ready=on_ready,
            log_level=config.log_level_name,
        )

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(main)


def validate(ctx: typer.Context) -> None:
    """Check the emulator configuration (SIAS_* variables) and print it as JSON.

    Mapped, as the original emulator reads them: SIAS_BIND_ADDR, SIAS_LOG_LEVEL,
    SIAS_CA_PATH (a PEM file with the CA certificate and key), SIAS_AUTH_USERNAME and
    SIAS_AUTH_PASSWORD (both or neither), SIAS_AUTH_ISSUER. SIAS_MODE,
    SIAS_CONSOLE_LOG, SIAS_AUTH_SUBJECT, SIAS_AUTH_SCOPES and SIAS_AUTH_SECRET have no
    equivalent and are ignored with a warning. The password is printed masked. 'serve'
    also refuses a non-loopback address without --allow-remote.
    """
    from .._sias import load_sias

    output_of(ctx).emit_json(load_sias().to_json())


def demo(
    ctx: typer.Context,
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Keep the files in DIR instead of a temporary folder that is removed.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the whole job end to end against a throwaway in-process emulator.

    Steps: authorities, create, wait, download, PEM, inspect, find, revoke.
    """
    import anyio

    from .._demo import run_demo

    out = output_of(ctx)
    quiet = out.explicit and out.json

    def say(line: str) -> None:
        if not quiet:
            out.line(line)

    def run_in(path: Path) -> dict[str, Any]:
        async def main() -> dict[str, Any]:
            return await run_demo(path, say)

        return anyio.run(main)

    if folder is not None:
        summary = run_in(prepare_folder(folder))
    else:
        with tempfile.TemporaryDirectory(prefix="sectigo-demo-") as temp:
            summary = run_in(Path(temp))
    if quiet:
        out.emit_json(summary)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve)
    app.command("validate")(validate)
    app.command("demo")(demo)
