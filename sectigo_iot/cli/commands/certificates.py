"""Certificate commands: find and revoke."""

import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Annotated

import typer

from .._errors import CLIError, check_id, confirm
from .._options import SerialOption, value_option
from .._output import Output, isatty, to_json
from .._run import run

if TYPE_CHECKING:
    from ... import SectigoClient
    from ...certs import RevocationReason
    from ...resources.certificates import FoundCertificates

__all__ = ["register"]


def find(
    ctx: typer.Context,
    common_name: Annotated[
        str,
        typer.Option(
            "--common-name", "-n", metavar="NAME", help="Search by common name.", show_default=False
        ),
    ] = "",
    serial_number: SerialOption = "",
) -> None:
    """Search for certificates by common name or serial number."""
    if not common_name and not serial_number:
        raise CLIError("specify a common name (-n) or a serial number (-s) to search for")
    run(
        ctx,
        lambda client: client.certificates.find(
            common_name=common_name or None, serial_number=serial_number or None
        ),
        _show_found,
    )


def _show_found(out: Output, items: "FoundCertificates") -> None:
    from ...models import format_date

    rows = [
        [
            i.serial_number,
            i.common_name,
            i.status,
            format_date(i.creation_date)[:10] if i.creation_date else "",
        ]
        for i in items
    ]
    out.result(
        {"totalCount": items.total_count, "items": to_json(list(items))},
        lambda o: o.table(
            ["serialNumber", "commonName", "status", "created"],
            rows,
            title=f"{len(items)} certificate(s)",
        ),
    )


def revoke(
    ctx: typer.Context,
    profile: Annotated[
        int, value_option("--profile -p", "ID", "Id of the profile that issued the certificate.")
    ] = 0,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            "-r",
            metavar="REASON",
            help="RFC 5280 reason, case and spaces ignored: unspecified, key compromise, "
            "ca compromise, affiliation changed, superseded, cessation of operation, "
            "certificate hold, remove from crl, privilege withdrawn, aa compromise.",
        ),
    ] = "unspecified",
    serial_number: SerialOption = "",
    common_name: Annotated[
        str,
        value_option("--cn", "NAME", "With --all: the common name whose certificates to revoke."),
    ] = "",
    all_certificates: Annotated[
        bool,
        typer.Option(
            "--all", help="Revoke every certificate of --cn NAME that is not revoked yet."
        ),
    ] = False,
    keep: Annotated[
        list[str] | None,
        value_option("--keep", "SERIAL", "With --all: a serial not to revoke (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="With --all: list what would be revoked; revoke nothing."),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Do not ask for confirmation (it is asked only on a terminal)."
        ),
    ] = False,
) -> None:
    """Revoke a certificate (prints nothing on success in JSON mode), or with --cn NAME
    --all every certificate of a name.

    On a terminal it asks first (revoking cannot be undone); --yes skips the question,
    and it is never asked when stdin is not a terminal. Declining exits with status 1
    and sends nothing.

    --all prints each certificate's serial and outcome (revoked, already revoked, kept,
    would revoke); run again, it revokes only what is left. Its profile (-p) is by
    default the one profile of your authorities.
    """
    from ...certs import RevocationReason, normalize_serial

    if all_certificates or common_name or keep or dry_run:
        if serial_number:
            raise CLIError(
                "give --serial-number/-s (one certificate) or --cn NAME --all (every "
                "certificate of a name), not both"
            )
        if not all_certificates:
            raise CLIError("--cn, --keep and --dry-run go with --all (every certificate of --cn)")
        if not common_name.strip():
            raise CLIError("--all needs --cn NAME: the common name whose certificates to revoke")
        kept = tuple(normalize_serial(serial) for serial in keep or ())
        code = RevocationReason.parse(reason)
        _revoke_all(ctx, common_name, code, kept, profile, dry_run=dry_run, yes=yes)
        return
    check_id(profile, "profile id", "must specify profile id")
    code = RevocationReason.parse(reason)
    if not serial_number:
        raise CLIError("must specify serial number of certificate")
    serial = normalize_serial(serial_number)
    if not yes and isatty(sys.stdin):
        confirm(
            f"Revoke certificate {serial} ({code.display}) under profile {profile}?",
            refused="not revoked: not confirmed (nothing was sent)",
        )

    def show(out: Output, _: None) -> None:
        if not out.json:
            out.line(f"revoked certificate {serial} ({code.display}) under profile {profile}")

    run(ctx, lambda client: client.certificates.revoke(profile, serial, code), show)


def _revoke_all(
    ctx: typer.Context,
    common_name: str,
    code: "RevocationReason",
    kept: tuple[str, ...],
    profile: int,
    *,
    dry_run: bool,
    yes: bool,
) -> None:
    """``revoke --cn NAME --all``: on a terminal, what would be revoked is listed in
    the question (a dry run first)."""
    if profile < 0:
        raise CLIError(f"profile id must be positive, got {profile}")
    asking = not (yes or dry_run) and isatty(sys.stdin)

    async def action(client: "SectigoClient") -> list[tuple[str, str]]:
        def revoke_all(dry: bool) -> Awaitable[list[tuple[str, str]]]:
            return client.certificates.revoke_all(
                common_name, code, except_serials=kept, dry_run=dry, profile_id=profile or None
            )

        if asking:
            planned = await revoke_all(True)
            owed = [serial for serial, outcome in planned if outcome == "would revoke"]
            if owed:
                confirm(
                    f"Revoke {len(owed)} certificate(s) of {common_name} ({code.display}): "
                    f"{', '.join(owed)}?",
                    refused="not revoked: not confirmed (nothing was revoked)",
                )
        return await revoke_all(dry_run)

    def show(out: Output, done: list[tuple[str, str]]) -> None:
        rows = [[serial, outcome] for serial, outcome in done]
        out.result(
            [{"serialNumber": serial, "outcome": outcome} for serial, outcome in done],
            lambda o: o.table(
                ["serialNumber", "outcome"],
                rows,
                title=f"{len(done)} certificate(s) of {common_name}",
                whole=("serialNumber",),
            ),
        )

    run(ctx, action, show)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("find")(find)
    app.command("revoke")(revoke)
