"""Account commands: auth (login, logout, state), authorities, licenses, profiles,
organization."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import attrs
import typer

from ._output import Output, to_json
from ._runtime import (
    CLIError,
    ExitCode,
    Settings,
    call,
    describe_store,
    now,
    token_store,
)

if TYPE_CHECKING:
    from .. import SectigoClient
    from ..auth import TokenPair

__all__ = ["register"]


def _settings(ctx: typer.Context) -> Settings:
    from ._app import settings_of

    return settings_of(ctx)


def _host(client: "SectigoClient") -> str:
    return urlsplit(client.base_url).netloc


def go_time(epoch: float) -> str:
    """A time the way the original tool printed it (Go's default format), local zone."""
    moment = datetime.fromtimestamp(epoch).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z %Z")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


# -- auth -----------------------------------------------------------------------------

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
    settings = _settings(ctx)
    out = Output(settings.json)
    if cache:
        _auth_cache(settings, out)
    elif debug:
        _auth_debug(settings, out)
    else:

        async def action(client: "SectigoClient") -> dict[str, Any]:
            pair = await client.load_tokens()
            if pair is None or not pair.access_valid(now()):
                await client.ensure_authenticated()
            return _token_state(client, client.tokens)

        state = call(settings, action)
        out.text("user authenticated and credentials cached", data=state)


def _auth_cache(settings: Settings, out: Output) -> None:
    if not settings.emulator and not settings.username:
        host = urlsplit(settings.base_url.strip()).netloc.rpartition("@")[2]
        store = token_store(settings)
        directory = getattr(store, "directory", None)
        where = (
            f"files in {directory}"
            if directory is not None
            else f"the keyring, service 'sectigo-iot:{host}'"
        )
        out.text(f"tokens are kept in {where} (give --username to locate one login's entry)")
        return

    async def action(client: "SectigoClient") -> tuple[str, str, bool]:
        return describe_store(token_store(settings), _host(client), client.username)

    kind, where, exists = call(settings, action)
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
    moment = now()
    return {
        **state,
        "stored": True,
        "accessValid": pair.access_valid(moment),
        "accessExpiresAt": _iso(pair.expires_at - pair.skew),
        "refreshable": pair.refreshable(moment),
        "refreshBy": _iso(pair.refresh_by - pair.skew),
    }


def _auth_debug(settings: Settings, out: Output) -> None:
    async def action(client: "SectigoClient") -> tuple[dict[str, Any], list[str]]:
        pair = await client.load_tokens()
        state = _token_state(client, pair)
        if pair is None:
            return state, [
                "credentials are expired or invalid",
                f"no tokens are stored for {client.username} at {_host(client)}",
            ]
        moment = now()
        expires, refresh_by = pair.expires_at - pair.skew, pair.refresh_by - pair.skew
        if pair.access_valid(moment):
            summary = f"credentials are valid until {go_time(expires)}"
        elif pair.refreshable(moment):
            summary = f"credentials are current until {go_time(refresh_by)}"
        else:
            summary = "credentials are expired or invalid"
        access = (
            f"access token: valid until {go_time(expires)}"
            if pair.access_valid(moment)
            else f"access token: expired at {go_time(expires)}"
        )
        if pair.refreshable(moment):
            refresh = f"refresh token: refreshable until {go_time(refresh_by)}"
        elif moment + pair.skew < pair.refresh_not_before:
            refresh = (
                f"refresh token: not usable before {go_time(pair.refresh_not_before - pair.skew)}"
            )
        else:
            refresh = f"refresh token: expired at {go_time(refresh_by)}"
        return state, [summary, access, refresh]

    state, lines = call(settings, action)
    out.text("\n".join(lines), data=state)


@auth_app.command("login")
def auth_login(ctx: typer.Context) -> None:
    """Log in and store the tokens in the keyring (or a private file).

    The username and password are prompted for when not given.
    """
    settings = _settings(ctx)
    out = Output(settings.json)
    username, password = settings.username, settings.password
    if not settings.emulator:
        if not username:
            username = typer.prompt("Sectigo username", err=True)
        if not password:
            password = typer.prompt("Sectigo password", hide_input=True, err=True)
    if not settings.emulator and (not username.strip() or not password):
        raise CLIError("a username and a password are needed to log in", ExitCode.AUTH)
    settings = attrs.evolve(settings, username=username.strip(), password=password)

    async def action(client: "SectigoClient") -> tuple[str, str, str]:
        await client.authenticate()
        kind, where, _ = describe_store(token_store(settings), _host(client), client.username)
        return client.username, _host(client), f"{kind} ({where})"

    user, host, where = call(settings, action)
    out.text(
        f"logged in as {user} at {host}; tokens stored in the {where}",
        data={"username": user, "host": host, "store": where},
    )


@auth_app.command("logout")
def auth_logout(ctx: typer.Context) -> None:
    """Forget the tokens stored for this user and endpoint."""
    settings = _settings(ctx)
    out = Output(settings.json)

    async def action(client: "SectigoClient") -> tuple[str, str]:
        await client.logout()
        return client.username, _host(client)

    user, host = call(settings, action)
    out.text(f"forgot the stored tokens of {user} at {host}", data={"username": user, "host": host})


# -- discovery ------------------------------------------------------------------------


def authorities(
    ctx: typer.Context,
    balances: Annotated[
        bool,
        typer.Option("--balances", "-b", help="Also fetch each authority's available balance."),
    ] = False,
) -> None:
    """List the authorities you may issue under (and their balances)."""
    settings = _settings(ctx)
    out = Output(settings.json)

    async def action(client: "SectigoClient") -> tuple[list[Any], dict[int, int]]:
        found = await client.authorities.list()
        amounts = {}
        if balances:
            for authority in found:
                amounts[authority.id] = await client.authorities.balance(authority.id)
        return found, amounts

    found, amounts = call(settings, action)
    if out.json:
        out.emit_json(to_json(found))
        if balances:
            out.emit_json({key: amounts[int(key)] for key in sorted(str(k) for k in amounts)})
        return
    columns = ["id", "profileId", "profileName", "ecosystem", "enabled", "balance"]
    if balances:
        columns.append("available")
    rows = []
    for a in found:
        row: list[Any] = [
            a.id,
            a.profile_id,
            a.profile_name,
            a.ecosystem_name,
            "yes" if a.enabled else "no",
            a.balance,
        ]
        if balances:
            row.append(amounts.get(a.id))
        rows.append(row)
    out.table(columns, rows, title="Authorities")


def licenses(ctx: typer.Context) -> None:
    """Show the ordered and issued certificate counts."""
    settings = _settings(ctx)
    out = Output(settings.json)

    async def action(client: "SectigoClient") -> Any:
        return await client.licenses.used()

    used = call(settings, action)
    out.result(
        to_json(used),
        lambda o: o.fields([("ordered", used.ordered), ("issued", used.issued)], title="Licenses"),
    )


def profiles(
    ctx: typer.Context,
    profile_id: Annotated[
        int,
        typer.Option(
            "--id", "-i", metavar="ID", help="Show the profile with this id.", show_default=False
        ),
    ] = 0,
    params: Annotated[
        bool, typer.Option("--params", "-p", help="With --id: list the profile's parameters.")
    ] = False,
) -> None:
    """List the profiles, or show one profile's detail or parameters."""
    settings = _settings(ctx)
    out = Output(settings.json)
    if params and not profile_id:
        raise CLIError("must specify id to get profile params")
    if profile_id < 0:
        raise CLIError(f"profile id must be positive, got {profile_id}")

    if not profile_id:

        async def listing(client: "SectigoClient") -> Any:
            return await client.profiles.list()

        found = call(settings, listing)
        out.result(
            to_json(found),
            lambda o: o.table(
                ["profileId", "ca", "algorithms"],
                [[p.profile_id, p.ca, ", ".join(p.algorithms or [])] for p in found],
                title="Profiles",
            ),
        )
    elif params:

        async def parameters(client: "SectigoClient") -> Any:
            return await client.profiles.parameters(profile_id)

        found = call(settings, parameters)
        out.result(
            to_json(found),
            lambda o: o.table(
                ["name", "title", "inputType", "required", "validationPattern"],
                [
                    [
                        p.name,
                        p.title,
                        p.input_type,
                        "yes" if p.required else "no",
                        p.validation_pattern,
                    ]
                    for p in found
                ],
                title=f"Parameters of profile {profile_id}",
            ),
        )
    else:

        async def detail(client: "SectigoClient") -> Any:
            return await client.profiles.get(profile_id)

        profile = call(settings, detail)

        def human(o: Output) -> None:
            o.fields(
                [
                    ("profileId", profile.profile_id),
                    ("profileName", profile.profile_name),
                    ("name", profile.name),
                    ("keyAlgorithmInfo", profile.key_algorithm_info),
                ],
                title=f"Profile {profile.profile_id}",
            )
            if profile.raw_profile_config:
                o.line("")
                o.line(profile.raw_profile_config.rstrip())

        out.result(to_json(profile), human)


def organization(ctx: typer.Context) -> None:
    """Show the organization of the current user."""
    settings = _settings(ctx)
    out = Output(settings.json)

    async def action(client: "SectigoClient") -> Any:
        return await client.organizations.current()

    org = call(settings, action)
    out.result(
        to_json(org),
        lambda o: o.fields(
            [
                ("organizationId", org.organization_id),
                ("organizationName", org.organization_name),
                ("address", org.address),
                ("primaryContact", f"{org.primary_contact_name} <{org.primary_contact_email}>"),
                ("phone", org.primary_contact_phone),
                ("ecosystemId", org.ecosystem_id),
                ("status", org.org_status),
                ("authorities", ", ".join(str(a.id) for a in org.authorities or [])),
            ],
            title="Organization",
        ),
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(auth_app, name="auth")
    app.command("authorities")(authorities)
    app.command("licenses")(licenses)
    app.command("profiles")(profiles)
    app.command("profile", hidden=True, help="Alias of 'profiles'.")(profiles)
    app.command("organization")(organization)
