"""The Typer application: global options, error handling and the command list."""

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ._dotenv import dotenv_applied
from ._runtime import (
    EXIT_CODES,
    CLIError,
    Settings,
    forget_secrets,
    remember_secret,
    report_error,
)

__all__ = ["SectigoGroup", "app", "settings_of"]

_EPILOG = (
    "Global options go before the command: sectigo [OPTIONS] COMMAND [ARGS]. "
    "Output is JSON when stdout is not a terminal (or with --json), tables otherwise."
    "\n\n"
    "A .env file in the working directory supplies SECTIGO_* and SIAS_* variables that "
    "the environment does not set (KEY=VALUE lines, no expansion; other keys are ignored)."
    "\n\n"
    "Exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."
)


class SectigoGroup(TyperGroup):
    """Runs the command and turns every failure into one ``error:`` line and a status."""

    _verbose = False

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        SectigoGroup._verbose = False
        forget_secrets()
        with dotenv_applied():
            try:
                result = super().main(
                    args=args,
                    prog_name=prog_name or "sectigo",
                    complete_var=complete_var,
                    standalone_mode=False,
                    **extra,
                )
                code = result if isinstance(result, int) and not isinstance(result, bool) else 0
            except BrokenPipeError:  # e.g. `sectigo find -n x | head -1`
                _silence_stdout()
                code = 1
            except BaseException as exc:  # every failure ends here, once
                if isinstance(exc, SystemExit):
                    raise
                code = report_error(exc, verbose=SectigoGroup._verbose)
        if standalone_mode:
            raise SystemExit(code)
        return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests)
        pass


app = typer.Typer(
    name="sectigo",
    cls=SectigoGroup,
    help="CLI helper for Sectigo IoT Manager API access and debugging.",
    epilog=_EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help imports rich and markdown-it (~150 ms), which would
    # more than double the start-up time of `sectigo --help`. Tables and spinners still
    # use rich, imported when shown.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["--help", "-h"]},
)


def _version(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"sectigo version {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    username: Annotated[
        str,
        typer.Option(
            "--username",
            "-u",
            metavar="NAME",
            envvar="SECTIGO_USERNAME",
            help="API login name.",
            show_default=False,
        ),
    ] = "",
    password: Annotated[
        str,
        typer.Option(
            "--password",
            "-p",
            metavar="PASSWORD",
            envvar="SECTIGO_PASSWORD",
            help="API password (prefer the environment variable).",
            show_default=False,
            show_envvar=True,
        ),
    ] = "",
    endpoint: Annotated[
        str,
        typer.Option(
            "--endpoint",
            "-e",
            "--url",
            metavar="URL",
            envvar="SECTIGO_ENDPOINT",
            help="Base URL of Sectigo or of an emulator (default: https://iot.sectigo.com).",
            show_default=False,
        ),
    ] = "",
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            "-P",
            metavar="PROFILE",
            envvar="SECTIGO_PROFILE",
            help="Profile name or id: 'CipherTrace EE', 17, "
            "'CipherTrace End Entity Certificate' or 85 (85 makes create send "
            "subject parameters).",
            show_default=False,
        ),
    ] = "",
    environment: Annotated[
        str,
        typer.Option(
            "--environment",
            "-E",
            "--env",
            metavar="ENV",
            envvar="SECTIGO_ENVIRONMENT",
            help="production, staging, docker or testing: checks the endpoint's host.",
            show_default=False,
        ),
    ] = "",
    emulator: Annotated[
        bool,
        typer.Option(
            "--emulator",
            envvar="SECTIGO_EMULATOR",
            help="Run against an embedded emulator whose state persists in the user data "
            "folder ($SECTIGO_EMULATOR_DB overrides the file). No server, no credentials.",
        ),
    ] = False,
    json_output: Annotated[
        bool | None,
        typer.Option(
            "--json/--table",
            help="Force JSON or human output (default: JSON when stdout is not a terminal).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Log HTTP calls; show tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-v",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """CLI helper for Sectigo IoT Manager API access and debugging."""
    from ._output import configure_logging

    SectigoGroup._verbose = verbose
    remember_secret(password)
    if emulator:
        # credentials and an endpoint exported for a real account are not for the
        # emulator: only flags given on this command line count
        username, password, endpoint = _from_command_line(
            ctx, username=username, password=password, endpoint=endpoint
        )
    ctx.obj = Settings(
        username=username,
        password=password,
        endpoint=endpoint,
        profile=profile,
        environment=environment,
        emulator=emulator,
        json=json_output,
        verbose=verbose,
    )
    ctx.call_on_close(configure_logging(verbose))


def _from_command_line(ctx: typer.Context, **values: str) -> tuple[str, ...]:
    """The values, blanked when they came from the environment rather than a flag."""
    kept = []
    for name, value in values.items():
        source = ctx.get_parameter_source(name)
        kept.append("" if getattr(source, "name", "") == "ENVIRONMENT" else value)
    return tuple(kept)


def settings_of(ctx: typer.Context) -> Settings:
    """The global settings stored by the root callback."""
    root = ctx.find_root()
    settings = root.obj
    if not isinstance(settings, Settings):  # pragma: no cover - only without the callback
        raise CLIError("internal error: global options were not parsed")
    return settings


def _register() -> None:
    from . import _commands_account, _commands_batches, _commands_certs, _commands_emulator

    for module in (_commands_account, _commands_batches, _commands_certs, _commands_emulator):
        module.register(app)


_register()
