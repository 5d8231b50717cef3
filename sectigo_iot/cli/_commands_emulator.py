"""Emulator commands: serve (over HTTP on loopback) and demo (in process)."""

import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from ._output import Output
from ._runtime import CLIError, Settings

__all__ = ["register"]


def _settings(ctx: typer.Context) -> Settings:
    from ._app import settings_of

    return settings_of(ctx)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option("--port", metavar="PORT", min=0, max=65535, help="Port (0 picks a free one)."),
    ] = 8831,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            metavar="FILE",
            help="SQLite file that keeps the state across runs.",
            show_default=False,
        ),
    ] = None,
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
    """Run the Sectigo IoT emulator over HTTP (loopback only) until interrupted."""
    settings = _settings(ctx)
    out = Output(settings.json)
    from ..emulator._server import is_loopback

    if not allow_remote and not is_loopback(host):
        raise CLIError(
            f"refusing to listen on {host}: the emulator is for local tests; "
            "pass --allow-remote to listen on other interfaces"
        )
    if db is not None and not db.parent.is_dir():
        raise CLIError(f'directory "{db.parent}" does not exist')
    if db is not None and db.is_dir():
        raise CLIError(f'path "{db}" is a directory, not a database file')
    import anyio

    from ..emulator import Emulator

    emulator = Emulator(db_path=db, processing_delay=processing_delay)
    username, password = next(iter(emulator.config.users.items()))

    def ready(url: str) -> None:
        data = {"url": url, "username": username, "password": password}
        out.text(
            f"Sectigo IoT emulator listening on {url} (Ctrl-C to stop)\n"
            f"  SECTIGO_ENDPOINT={url}\n"
            f"  SECTIGO_USERNAME={username}\n"
            f"  SECTIGO_PASSWORD={password}\n"
            f"  CA certificate: {url}/emulator/ca.pem",
            data=data,
        )
        sys.stdout.flush()

    async def main() -> None:
        await emulator.serve(host, port, allow_remote=allow_remote, on_ready=ready)

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()


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
    settings = _settings(ctx)
    out = Output(settings.json)
    import anyio

    from ._commands_batches import prepare_folder
    from ._demo import run_demo

    quiet = out.explicit and out.json

    def say(line: str) -> None:
        if not quiet:
            out.line(line)

    def run(path: Path) -> dict[str, Any]:
        async def main() -> dict[str, Any]:
            return await run_demo(path, say)

        return anyio.run(main)

    if folder is not None:
        summary = run(prepare_folder(folder))
    else:
        with tempfile.TemporaryDirectory(prefix="sectigo-demo-") as temp:
            summary = run(Path(temp))
    if quiet:
        out.emit_json(summary)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("serve")(serve)
    app.command("demo")(demo)
