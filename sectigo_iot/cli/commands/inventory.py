"""The inventory: ``sectigo certs list [FOLDER ...] [--fleet STORE]``.

Every certificate in the given certificate folders and in a fleet store, read locally
(no credentials, nothing sent; with ``--emulator`` "now" is the emulator's clock).
The exit status is 0 whether or not something is due, so that a listing never fails
a script by itself; ``--fail-if-due`` makes it 1 when a certificate in use is due for
renewal and 2 when one has expired, a folder holds no usable certificate or the fleet
store cannot be read.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated

import typer

from .._errors import CLIError
from .._options import (
    DEFAULT_BEFORE,
    fleet_store,
    fleet_store_option,
    parse_duration,
    value_option,
)
from .._output import Output, note
from .._run import run
from .._settings import settings_of

if TYPE_CHECKING:
    from ... import SectigoClient
    from ...inventory import Inventory

__all__ = ["DUE_STATUS", "EXPIRED_STATUS", "register"]

#: the exit statuses of ``--fail-if-due``
DUE_STATUS, EXPIRED_STATUS = 1, 2

certs_app = typer.Typer(
    help="The certificates you keep, in certificate folders and in a fleet store.",
    no_args_is_help=True,
)


def _when(text: str | None) -> str | None:
    """An ISO time as people read it in a table: to the minute, UTC."""
    return None if text is None else text[:16].replace("T", " ") + "Z"


def _show(out: Output, listing: "Inventory") -> None:
    from ...inventory import STATUSES

    document = listing.to_json()

    def table(o: Output) -> None:
        entries = document["certificates"]
        rows = [
            [
                e["key"] or e["folder"],
                e["common_name"],
                e["serial_number"],
                _when(e["not_after"]),
                None if e["days_left"] is None else f"{e['days_left']:.1f}",
                _when(e["renewal_time"]),
                e["status"] if e["problem"] is None else f"problem: {e['problem']}",
            ]
            for e in entries
        ]
        columns = ["key or folder", "common name", "serial", "not after", "days left"]
        counts = [f"{listing.count(s)} {s}" for s in STATUSES if listing.count(s)]
        title = f"{len(entries)} certificate(s)" + (f": {', '.join(counts)}" if counts else "")
        o.table(
            [*columns, "renews", "status"],
            rows,
            title=title,
            whole=("key or folder", "serial"),
        )

    out.result(document, table)


def _verdict(listing: "Inventory") -> CLIError | None:
    """The failure ``--fail-if-due`` reports: 2 when a certificate in use expired or a
    folder could not be read, 1 when one is due; None when all are valid."""

    def named(status: str) -> str:
        return ", ".join(
            f"{e.key or e.folder} ({e.serial_number or e.problem})"
            for e in listing
            if e.status == status
        )

    expired, problems, due = (listing.count(s) for s in ("expired", "problem", "due"))
    if expired or problems:
        said = [f"{expired} expired: {named('expired')}"] if expired else []
        said += [f"{problems} unreadable: {named('problem')}"] if problems else []
        return CLIError("; ".join(said), EXPIRED_STATUS)
    if due:
        return CLIError(f"{due} due for renewal: {named('due')}", DUE_STATUS)
    return None


@certs_app.command("list")
def list_certificates(
    ctx: typer.Context,
    folders: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[FOLDER]...",
            help="Certificate folders (as 'sectigo issue' keeps them).",
            show_default=False,
        ),
    ] = None,
    fleet: Annotated[str | None, fleet_store_option("--fleet")] = None,
    expiring: Annotated[
        str | None,
        value_option(
            "--expiring",
            "DURATION",
            "Only the certificates in use with that long or less left: 30d, 12h, 90m "
            "(folders that cannot be read are always listed).",
        ),
    ] = None,
    before: Annotated[
        str,
        value_option(
            "--before",
            "DURATION",
            "A folder is due when at most this much validity is left, as 'sectigo "
            "renew --before' renews it (default 30d, as renew's). A fleet record's "
            "renewal time is the one its fleet stored.",
        ),
    ] = DEFAULT_BEFORE,
    fail_if_due: Annotated[
        bool,
        typer.Option(
            "--fail-if-due",
            help="Exit 1 when a certificate listed is due for renewal, 2 when one has "
            "expired or a folder or the store cannot be read (for cron and systemd "
            "timers).",
        ),
    ] = False,
) -> None:
    """List every certificate in FOLDERs and in a fleet store, and how it stands.

    Per certificate: the fleet key or the folder, common name, serial, expiry, days
    left, renewal time (a folder's as 'sectigo renew --before' sets it) and status:
    valid, due (its renewal time passed), expired,
    revoked (a revoked fleet record), superseded (one the folder or record had
    before), or problem (a folder that holds no usable certificate, and why: the
    others are still listed). Folders are read without their lock; nothing is sent.
    Exits 0 whether or not something is due, unless --fail-if-due.
    """
    paths = list(folders or ())
    if not paths and fleet is None:
        raise CLIError("nothing to list: give certificate FOLDERs and/or --fleet PATH_OR_URL")
    store = None if fleet is None else fleet_store(fleet, "--fleet")
    within = None if expiring is None else parse_duration(expiring, "--expiring")
    renew_before = parse_duration(before, "--before")
    settings = settings_of(ctx)

    async def listing(clock: Callable[[], float]) -> "Inventory":
        from ...fleet import StoreError
        from ...inventory import inventory
        from ...lifecycle import RenewalPolicy

        now = datetime.fromtimestamp(clock(), timezone.utc)
        policy = RenewalPolicy(renew_before=renew_before)
        try:
            found = await inventory(paths, store=store, policy=policy, now=now)
        except StoreError as exc:
            if not fail_if_due:
                raise
            # nothing shows the fleet's certificates valid: as bad as an expired one
            raise CLIError(str(exc), EXPIRED_STATUS) from None
        return found if within is None else found.expiring(within.total_seconds() / 86400)

    def show(out: Output, found: "Inventory") -> None:
        _show(out, found)
        if found.count("problem") and not fail_if_due:
            note(f"warning: {found.count('problem')} folder(s) hold no usable certificate")
        failure = _verdict(found) if fail_if_due else None
        if failure is not None:
            raise failure

    if settings.emulator:  # the emulator's clock: certificates age as it moves

        def by_emulator(client: "SectigoClient") -> Awaitable["Inventory"]:
            return listing(client.clock)

        run(ctx, by_emulator, show)
        return
    import time

    import anyio

    show(Output(settings.json), anyio.run(listing, time.time))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(certs_app, name="certs")
