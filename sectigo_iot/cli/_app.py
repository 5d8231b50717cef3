"""The Typer application: the global options and the command list."""

import enum
from typing import Annotated

import typer

from ._errors import EXIT_CODES
from ._group import SectigoGroup
from ._options import value_option
from ._secrets import remember_secret
from ._settings import Settings
from .commands import AREAS

__all__ = ["app"]

_EPILOG = (
    "Global options go before the command: sectigo [OPTIONS] COMMAND [ARGS] (--json and "
    "--table may also follow it). Output is JSON when stdout is not a terminal (or with "
    "--json), tables otherwise. Shell completion: see 'sectigo completion --help'."
    "\n\n"
    "A .env file in the working directory supplies SECTIGO_* and SIAS_* variables that "
    "the environment does not set (KEY=VALUE lines, no expansion; other keys are ignored)."
    "\n\n"
    "Exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."
)


class LogFormat(str, enum.Enum):
    """How ``--log-format`` prints the SDK's log records."""

    text = "text"
    json = "json"


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
        from .. import __version__

        typer.echo(f"sectigo version {__version__}")
        raise typer.Exit()


#: global options (before the command) declared apart, to keep ``_root`` short
PasswordOption = Annotated[
    str,
    value_option(
        "--password -p",
        "PASSWORD",
        "API password (prefer the environment variable).",
        envvar="SECTIGO_PASSWORD",
        show_envvar=True,
    ),
]
EndpointOption = Annotated[
    str,
    value_option(
        "--endpoint -e --url",
        "URL",
        "Base URL of Sectigo or of an emulator (default: https://iot.sectigo.com).",
        envvar="SECTIGO_ENDPOINT",
    ),
]
ProfileOption = Annotated[
    str,
    value_option(
        "--profile -P",
        "PROFILE",
        "Profile name or id: 'CipherTrace EE', 17, "
        "'CipherTrace End Entity Certificate' or 85 (85 makes create send "
        "subject parameters).",
        envvar="SECTIGO_PROFILE",
    ),
]
EnvironmentOption = Annotated[
    str,
    value_option(
        "--environment -E --env",
        "ENV",
        "production, staging, docker or testing: checks the endpoint's host.",
        envvar="SECTIGO_ENVIRONMENT",
    ),
]
EmulatorOption = Annotated[
    bool,
    typer.Option(
        "--emulator",
        envvar="SECTIGO_EMULATOR",
        help="Run against an embedded emulator whose state persists in the user data "
        "folder ($SECTIGO_EMULATOR_DB overrides the file). No server, no credentials.",
    ),
]


@app.callback()
def _root(
    ctx: typer.Context,
    username: Annotated[
        str, value_option("--username -u", "NAME", "API login name.", envvar="SECTIGO_USERNAME")
    ] = "",
    password: PasswordOption = "",
    endpoint: EndpointOption = "",
    profile: ProfileOption = "",
    environment: EnvironmentOption = "",
    emulator: EmulatorOption = False,
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
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            help="Log lines as text, or as one JSON object a line (with the operation, "
            "batch id and record key when known).",
            case_sensitive=False,
        ),
    ] = LogFormat.text,
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
    from ._logs import configure_logging

    SectigoGroup.verbose = verbose
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
    ctx.call_on_close(configure_logging(verbose, json_lines=log_format is LogFormat.json))


def _from_command_line(ctx: typer.Context, **values: str) -> tuple[str, ...]:
    """The values, blanked when they came from the environment rather than a flag."""
    kept = []
    for name, value in values.items():
        source = ctx.get_parameter_source(name)
        kept.append("" if getattr(source, "name", "") == "ENVIRONMENT" else value)
    return tuple(kept)


for area in AREAS:
    area.register(app)
