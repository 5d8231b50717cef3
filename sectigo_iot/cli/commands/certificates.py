"""Certificate commands: find and revoke."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from .._errors import CLIError, check_id, confirm
from .._options import SerialOption, value_option
from .._output import Output, isatty, to_json
from .._run import run

if TYPE_CHECKING:
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
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Do not ask for confirmation (it is asked only on a terminal)."
        ),
    ] = False,
) -> None:
    """Revoke a certificate (prints nothing on success in JSON mode).

    On a terminal it asks first (revoking cannot be undone); --yes skips the question,
    and it is never asked when stdin is not a terminal. Declining exits with status 1
    and sends nothing.
    """
    check_id(profile, "profile id", "must specify profile id")
    from ...certs import RevocationReason, normalize_serial

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


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("find")(find)
    app.command("revoke")(revoke)
