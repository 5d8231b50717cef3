"""Account commands: authorities, licenses, profiles, organization."""

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._errors import CLIError
from .._output import Output, to_json
from .._run import run

if TYPE_CHECKING:
    from ... import SectigoClient
    from ...models import Authority, Organization, ProfileDetail, ProfileParameter

__all__ = ["register"]


def authorities(
    ctx: typer.Context,
    balances: Annotated[
        bool,
        typer.Option("--balances", "-b", help="Also fetch each authority's available balance."),
    ] = False,
) -> None:
    """List the authorities you may issue under (and their balances)."""

    async def action(client: "SectigoClient") -> "tuple[list[Authority], dict[int, int]]":
        found = await client.authorities.list()
        amounts = {}
        if balances:
            for authority in found:
                amounts[authority.id] = await client.authorities.balance(authority.id)
        return found, amounts

    run(ctx, action, lambda out, result: _show_authorities(out, *result, balances=balances))


def _show_authorities(
    out: Output, found: "list[Authority]", amounts: dict[int, int], *, balances: bool
) -> None:
    if out.json:
        out.emit_json(to_json(found))
        if balances:
            out.emit_json({key: amounts[int(key)] for key in sorted(str(k) for k in amounts)})
        return
    columns = ["id", "profileId", "profileName", "ecosystem", "enabled", "balance"]
    rows = []
    for a in found:
        enabled = "yes" if a.enabled else "no"
        row = [a.id, a.profile_id, a.profile_name, a.ecosystem_name, enabled, a.balance]
        rows.append([*row, amounts.get(a.id)] if balances else row)
    out.table([*columns, "available"] if balances else columns, rows, title="Authorities")


def licenses(ctx: typer.Context) -> None:
    """Show the ordered and issued certificate counts."""
    run(
        ctx,
        lambda client: client.licenses.used(),
        lambda out, used: out.result(
            to_json(used),
            lambda o: o.fields(
                [("ordered", used.ordered), ("issued", used.issued)], title="Licenses"
            ),
        ),
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
    if params and not profile_id:
        raise CLIError("must specify id to get profile params")
    if profile_id < 0:
        raise CLIError(f"profile id must be positive, got {profile_id}")
    if not profile_id:
        run(ctx, lambda client: client.profiles.list(), _show_profiles)
    elif params:
        run(
            ctx,
            lambda client: client.profiles.parameters(profile_id),
            lambda out, found: _show_parameters(out, found, profile_id),
        )
    else:
        run(ctx, lambda client: client.profiles.get(profile_id), _show_profile)


def _show_profiles(out: Output, found: list[Any]) -> None:
    out.result(
        to_json(found),
        lambda o: o.table(
            ["profileId", "ca", "algorithms"],
            [[p.profile_id, p.ca, ", ".join(p.algorithms or [])] for p in found],
            title="Profiles",
        ),
    )


def _show_parameters(out: Output, found: "list[ProfileParameter]", profile_id: int) -> None:
    columns = ["name", "title", "inputType", "required", "validationPattern"]
    rows = [
        [p.name, p.title, p.input_type, "yes" if p.required else "no", p.validation_pattern]
        for p in found
    ]
    out.result(
        to_json(found),
        lambda o: o.table(
            columns,
            rows,
            title=f"Parameters of profile {profile_id}",
            whole=("validationPattern",),  # a pattern is copied whole, spaces and all
        ),
    )


def _show_profile(out: Output, profile: "ProfileDetail") -> None:
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
            o.line("rawProfileConfig:")  # the server's text, indented: it fakes no field
            for line in profile.raw_profile_config.rstrip().splitlines():
                o.line(f"  {line}")

    out.result(to_json(profile), human)


def organization(ctx: typer.Context) -> None:
    """Show the organization of the current user."""
    run(ctx, lambda client: client.organizations.current(), _show_organization)


def _show_organization(out: Output, org: "Organization") -> None:
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
    app.command("authorities")(authorities)
    app.command("licenses")(licenses)
    app.command("profiles")(profiles)
    app.command("profile", hidden=True, help="Alias of 'profiles'.")(profiles)
    app.command("organization")(organization)
