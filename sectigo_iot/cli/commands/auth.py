"""Authentication commands: auth (authenticate, or report the stored tokens), auth login,
auth logout."""

import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import attrs
import typer

from .._errors import CLIError, ExitCode
from .._output import Output
from .._run import output_of, run
from .._settings import Settings, settings_of
from .._tokens import describe_store, token_store

if TYPE_CHECKING:
    from ... import SectigoClient
    from ...auth import TokenPair

__all__ = ["register"]


def _host(client: "SectigoClient") -> str:
    return urlsplit(client.base_url).netloc


def go_time(epoch: float) -> str:
    """A time the way the original tool printed it (Go's default format), local zone."""
    moment = datetime.fromtimestamp(epoch).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z %Z")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


auth_app = typer.Typer(
    help="Check or establish authentication (login, logout, token state).",
    no_args_is_help=False,
)


@auth_app.callback(invoke_without_command=True)
def auth(
    ctx: typer.Context,
    cache: Annotated[
        bool, typer.Option("--cache", "-C", help="Print where the tokens are stored and exit.")
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            "-d",
            help="Print whether the stored tokens are valid, refreshable or expired "
            "(never the tokens); no network call.",
        ),
    ] = False,
) -> None:
    """Authenticate (refresh the tokens when possible, else log in) and store the tokens."""
    if ctx.invoked_subcommand is not None:
        return
    if cache:
        _auth_cache(ctx)
    elif debug:
        run(ctx, _token_report, lambda out, report: out.text(report[1], data=report[0]))
    else:
        run(
            ctx,
            _authenticate,
            lambda out, state: out.text("user authenticated and credentials cached", data=state),
        )


async def _authenticate(client: "SectigoClient") -> dict[str, Any]:
    """Refresh or log in unless the stored access token is still valid."""
    pair = await client.load_tokens()
    if pair is None or not pair.access_valid(time.time()):
        await client.ensure_authenticated()
    return _token_state(client, client.tokens)


def _auth_cache(ctx: typer.Context) -> None:
    settings = settings_of(ctx)
    if not settings.emulator and not settings.username:
        output_of(ctx).text(
            f"tokens are kept in {_store_of_everyone(settings)} "
            "(give --username to locate one login's entry)"
        )
        return

    async def action(client: "SectigoClient") -> tuple[str, str, bool]:
        return describe_store(token_store(settings), _host(client), client.username)

    run(ctx, action, _show_cache)


def _store_of_everyone(settings: Settings) -> str:
    """Where the tokens of every login at the endpoint are kept."""
    host = urlsplit(settings.base_url.strip()).netloc.rpartition("@")[2]
    directory = getattr(token_store(settings), "directory", None)
    if directory is not None:
        return f"files in {directory}"
    return f"the keyring, service 'sectigo-iot:{host}'"


def _show_cache(out: Output, found: tuple[str, str, bool]) -> None:
    kind, where, exists = found
    data = {"store": kind, "location": where, "exists": exists}
    if kind == "file" and not exists:
        out.text(f"no credentials cache file exists (it would be {where})", data=data)
    elif kind == "keyring":
        out.text(f"tokens are kept in the keyring: {where}", data=data)
    else:
        out.text(where, data=data)


def _token_state(client: "SectigoClient", pair: "TokenPair | None") -> dict[str, Any]:
    state: dict[str, Any] = {"username": client.username, "host": _host(client)}
    if pair is None:
        return {**state, "stored": False, "accessValid": False, "refreshable": False}
    moment = time.time()
    return {
        **state,
        "stored": True,
        "accessValid": pair.access_valid(moment),
        "accessExpiresAt": _iso(pair.expires_at - pair.skew),
        "refreshable": pair.refreshable(moment),
        "refreshBy": _iso(pair.refresh_by - pair.skew),
    }


async def _token_report(client: "SectigoClient") -> tuple[dict[str, Any], list[str]]:
    """The state of the stored tokens, and the lines the original tool printed."""
    pair = await client.load_tokens()
    state = _token_state(client, pair)
    if pair is None:
        return state, [
            "credentials are expired or invalid",
            f"no tokens are stored for {client.username} at {_host(client)}",
        ]
    return state, _token_lines(pair, time.time())


def _token_lines(pair: "TokenPair", moment: float) -> list[str]:
    expires, refresh_by = pair.expires_at - pair.skew, pair.refresh_by - pair.skew
    valid, refreshable = pair.access_valid(moment), pair.refreshable(moment)
    if valid:
        summary = f"credentials are valid until {go_time(expires)}"
    elif refreshable:
        summary = f"credentials are current until {go_time(refresh_by)}"
    else:
        summary = "credentials are expired or invalid"
    if valid:
        access = f"access token: valid until {go_time(expires)}"
    else:
        access = f"access token: expired at {go_time(expires)}"
    return [summary, access, _refresh_line(pair, moment)]


def _refresh_line(pair: "TokenPair", moment: float) -> str:
    refresh_by = pair.refresh_by - pair.skew
    if pair.refreshable(moment):
        return f"refresh token: refreshable until {go_time(refresh_by)}"
    if moment + pair.skew < pair.refresh_not_before:
        return f"refresh token: not usable before {go_time(pair.refresh_not_before - pair.skew)}"
    return f"refresh token: expired at {go_time(refresh_by)}"


@auth_app.command("login")
def auth_login(ctx: typer.Context) -> None:
    """Log in and store the tokens in the keyring (or a private file).

    The username and password are prompted for when not given.
    """
    settings = settings_of(ctx)
    username, password = settings.username, settings.password
    if not settings.emulator:
        if not username:
            username = typer.prompt("Sectigo username", err=True)
        if not password:
            password = typer.prompt("Sectigo password", hide_input=True, err=True)
        if not username.strip() or not password:
            raise CLIError("a username and a password are needed to log in", ExitCode.AUTH)
    settings = attrs.evolve(settings, username=username.strip(), password=password)

    async def action(client: "SectigoClient") -> dict[str, str]:
        await client.authenticate()
        kind, where, _ = describe_store(token_store(settings), _host(client), client.username)
        return {"username": client.username, "host": _host(client), "store": f"{kind} ({where})"}

    def show(out: Output, data: dict[str, str]) -> None:
        user, host, store = data["username"], data["host"], data["store"]
        out.text(f"logged in as {user} at {host}; tokens stored in the {store}", data=data)

    run(ctx, action, show, settings=settings)


@auth_app.command("logout")
def auth_logout(ctx: typer.Context) -> None:
    """Forget the tokens stored for this user and endpoint."""

    async def action(client: "SectigoClient") -> dict[str, str]:
        await client.logout()
        return {"username": client.username, "host": _host(client)}

    def show(out: Output, data: dict[str, str]) -> None:
        out.text(f"forgot the stored tokens of {data['username']} at {data['host']}", data=data)

    run(ctx, action, show)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(auth_app, name="auth")
