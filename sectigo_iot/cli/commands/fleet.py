"""The certificate fleet: ``sectigo fleet want|list|show|run|retry|cancel|revoke|migrate``.

Every command opens the store given by ``--store`` or ``SECTIGO_FLEET_STORE`` (an SQLite
file or a ``postgresql://`` URL); its sealing secret comes from ``SECTIGO_FLEET_KEY``
(or the ``.key`` file beside an SQLite store), never from a flag. Only ``run`` and
``want`` without ``--authority`` talk to the API; the others read and write the store
alone, so they need no credentials.
"""

import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import attrs
import typer

from .._errors import CLIError, ExitCode, confirm
from .._metrics import metrics_export
from .._options import fleet_store, fleet_store_option, value_option
from .._output import Output, isatty, note
from .._run import run
from .._settings import settings_of

if TYPE_CHECKING:
    from ... import SectigoClient
    from ...fleet import Fleet, FleetRecord, StepResult
    from .._metrics import MetricsExport

__all__ = ["register"]

T = TypeVar("T")

#: the environment variable giving ``run --folder``
ENV_FOLDER = "SECTIGO_FLEET_FOLDER"

fleet_app = typer.Typer(
    help="Many certificates, keyed by your own ids, kept valid from a store (SQLite "
    "or PostgreSQL) by any number of 'sectigo fleet run' workers.",
    no_args_is_help=True,
)

StoreOption = Annotated[str | None, fleet_store_option("--store")]
KeyArgument = Annotated[
    str, typer.Argument(metavar="KEY", help="The record's key: your own id (a member id).")
]


def _with_fleet(
    ctx: typer.Context,
    store: str | None,
    action: "Callable[[Fleet], Awaitable[T]]",
    show: Callable[[Output, T], None],
    *,
    api: bool = False,
    client_options: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Open the store (which creates or migrates its tables) in a Fleet, run ``action``,
    then ``show`` its result. Without ``api`` (and outside --emulator mode) the Fleet's
    client is one that never connects: it only gives the clock. ``client_options`` are
    more arguments of the client that talks to the API."""
    location = fleet_store(store)
    settings = settings_of(ctx)

    async def in_fleet(client: "SectigoClient") -> T:
        from ...fleet import Fleet, open_store

        async with Fleet(client, open_store(location), **options) as fleet:
            return await action(fleet)

    if api or settings.emulator:
        run(ctx, in_fleet, show, client_options=client_options)
        return
    import anyio

    async def offline() -> T:
        from ... import SectigoClient

        client = SectigoClient(base_url=settings.base_url, token_store="memory")  # noqa: S106
        async with client:
            return await in_fleet(client)

    show(Output(settings.json), anyio.run(offline))


# -- what is printed ----------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


def _record_json(record: "FleetRecord", now: datetime) -> dict[str, Any]:
    """A record as ``list --json`` prints it (these fields, in this order)."""
    days_left = None
    if record.not_after is not None:
        days_left = round((record.not_after - now).total_seconds() / 86400, 3)
    return {
        "key": record.key,
        "state": record.state.value,
        "common_name": record.spec.common_name,
        "serial_number": record.serial_number,
        "not_after": _iso(record.not_after),
        "days_left": days_left,
        "renewal_time": _iso(record.renewal_at),
        "batch_id": record.batch_id,
        "next_action_at": _iso(record.next_action_at),
        "failures": record.failures,
        "last_error": record.last_error,
    }


def _when(text: str | None) -> str | None:
    """An ISO time as people read it in a table: to the minute, UTC."""
    return None if text is None else text[:16].replace("T", " ") + "Z"


def _show_records(out: Output, records: list[dict[str, Any]]) -> None:
    def table(o: Output) -> None:
        rows = [
            [
                r["key"],
                r["state"],
                r["serial_number"],
                _when(r["not_after"]),
                None if r["days_left"] is None else f"{r['days_left']:.1f}",
                _when(r["next_action_at"]),
                f"({r['failures']}) {r['last_error']}" if r["last_error"] else None,
            ]
            for r in records
        ]
        columns = ["key", "state", "serial", "not after", "days left", "next action", "error"]
        o.table(columns, rows, title=f"{len(records)} record(s)", whole=("key", "serial"))

    out.result(records, table)


def _show_record(out: Output, record: dict[str, Any]) -> None:
    def fields(o: Output) -> None:
        spec = record["spec"]
        o.fields(
            [
                ("key", record["key"]),
                ("state", record["state"]),
                ("names", " ".join([spec["common_name"], *spec["dns_names"]])),
                ("authority", spec["authority_id"]),
                ("key type", spec.get("key_type") or "made by Sectigo (PKCS#12)"),
                ("serial", record["serial_number"]),
                ("not after", record["not_after"]),
                ("days left", record["days_left"]),
                ("batch", record["batch_id"]),
                ("next action", record["next_action_at"]),
                ("failures", record["failures"]),
                ("last error", record["last_error"]),
            ]
        )
        history = [
            [_when(h["at"]), h["from_state"], h["to_state"], h["description"], h["worker"]]
            for h in record["history"]
        ]
        columns = ["at", "from", "to", "what", "worker"]
        o.table(columns, history, title="history", whole=("at", "worker"))

    out.result(record, fields)


def _show_results(out: Output, results: list[dict[str, Any]]) -> None:
    def table(o: Output) -> None:
        if not results:
            o.line("no record was due")
            return
        rows = [
            [r["key"], r["from_state"], r["to_state"], r["description"], r["error"]]
            for r in results
        ]
        columns = ["key", "from", "to", "what", "error"]
        o.table(columns, rows, title=f"{len(rows)} record(s) worked on", whole=("key",))

    out.result(results, table)


def _result_json(result: "StepResult") -> dict[str, Any]:
    return {
        "key": result.key,
        "from_state": result.from_state.value,
        "to_state": result.to_state.value,
        "description": result.description,
        "error": result.error,
    }


async def _existing(fleet: "Fleet", key: str) -> "FleetRecord":
    """The record of ``key``; an unknown key is a failure (status 1) like a 404."""
    record = await fleet.get(key)
    if record is None:
        raise CLIError(
            f"no fleet record {key!r} in {fleet.store.location} (see 'sectigo fleet list')",
            ExitCode.ERROR,
        )
    return record


# -- the commands -------------------------------------------------------------------------


@fleet_app.command("want")
def want(
    ctx: typer.Context,
    key: KeyArgument,
    common_name: Annotated[
        str, value_option("--cn", "NAME", "The certificate's common name (required).")
    ] = "",
    dns_names: Annotated[
        list[str] | None, value_option("--dns", "NAME", "Another DNS name (repeatable).")
    ] = None,
    authority: Annotated[
        int,
        value_option(
            "--authority -a",
            "ID",
            "The issuing authority (default: the account's only enabled one).",
        ),
    ] = 0,
    key_type: Annotated[
        str | None,
        value_option(
            "--key-type",
            "TYPE",
            "Make the key here (ec-p256, rsa2048...) and upload a CSR; the key is never "
            "sent (default: Sectigo makes it).",
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Want a certificate for KEY (idempotent).

    A new key makes a record; a changed request (names, authority, key type) is
    reissued at the next run; the same request again changes nothing and spends
    nothing. No certificate is asked for here: 'sectigo fleet run' does the work.
    """
    if not common_name:
        raise CLIError("must specify the certificate's common name (--cn NAME)")
    if authority < 0:
        raise CLIError(f"authority id must be positive, got {authority}")
    from ...lifecycle import CertificateSpec

    # made first (1 stands in for an authority still to be found): bad names or a bad
    # key type are refused before anything is opened or sent
    spec = CertificateSpec(
        authority_id=authority or 1,
        common_name=common_name,
        dns_names=tuple(dns_names or ()),
        key_type=key_type,
    )

    async def action(fleet: "Fleet") -> dict[str, Any]:
        chosen = authority or await _only_authority(fleet.client)
        record = await fleet.want(key, attrs.evolve(spec, authority_id=chosen))
        return _record_json(record, fleet.now())

    def show(out: Output, record: dict[str, Any]) -> None:
        out.result(record, lambda o: o.line(_said(record, "wanted")))

    _with_fleet(ctx, store, action, show, api=not authority)


async def _only_authority(client: "SectigoClient") -> int:
    """The account's one enabled authority; several or none need --authority."""
    enabled = [a.id for a in await client.authorities.list() if a.enabled]
    if len(enabled) != 1:
        listed = ", ".join(map(str, enabled)) or "none"
        raise CLIError(
            f"the account has {len(enabled)} enabled authorities ({listed}): choose one "
            "with --authority ID"
        )
    return enabled[0]


def _said(record: dict[str, Any], what: str) -> str:
    when = record["next_action_at"]
    later = f"; next action {_when(when)}" if when else ""
    return f"{record['key']}: {what}, {record['state']}{later}"


@fleet_app.command("list")
def list_records(
    ctx: typer.Context,
    state: Annotated[
        str | None,
        value_option("--state", "STATE", "Only the records in this state (VALID, FAILED...)."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """List the records and their certificates.

    By key: state, serial, expiry, days left (on this machine's clock), next action,
    failures and the last error.
    """
    from ...fleet import RecordState

    wanted = None
    if state is not None:
        try:
            wanted = RecordState(state.strip().upper())
        except ValueError:
            names = ", ".join(s.value for s in RecordState)
            raise CLIError(f"unknown state {state!r}: one of {names}") from None

    async def action(fleet: "Fleet") -> list[dict[str, Any]]:
        now = fleet.now()
        return [_record_json(record, now) for record in await fleet.list(wanted)]

    _with_fleet(ctx, store, action, _show_records)


@fleet_app.command("show")
def show_record(ctx: typer.Context, key: KeyArgument, store: StoreOption = None) -> None:
    """Show one record with its history.

    The request (names, authority, key type), the certificate, and every change of
    state with its time and the worker that made it.
    """

    async def action(fleet: "Fleet") -> dict[str, Any]:
        record = await _existing(fleet, key)
        history = [
            {
                "at": _iso(entry.at),
                "from_state": entry.from_state.value if entry.from_state else None,
                "to_state": entry.to_state.value,
                "description": entry.description,
                "worker": entry.worker,
            }
            for entry in record.history
        ]
        shown = _record_json(record, fleet.now())
        return {**shown, "spec": record.spec.to_dict(), "history": history}

    _with_fleet(ctx, store, action, _show_record)


def _change(
    ctx: typer.Context,
    key: str,
    store: str | None,
    call: "Callable[[Fleet], Awaitable[FleetRecord]]",
    done: str,
) -> None:
    """Run a command on the existing record of ``key`` and print the record after it."""

    async def action(fleet: "Fleet") -> dict[str, Any]:
        await _existing(fleet, key)
        return _record_json(await call(fleet), fleet.now())

    def show(out: Output, record: dict[str, Any]) -> None:
        out.result(record, lambda o: o.line(_said(record, done)))

    _with_fleet(ctx, store, action, show)


@fleet_app.command("retry")
def retry(ctx: typer.Context, key: KeyArgument, store: StoreOption = None) -> None:
    """Work on KEY again at the next run.

    A failure is retried at once; a rejected, cancelled or revoked record is issued
    anew (a license); an unconfirmed attempt is given up and a new one sent (check
    its batch first).
    """
    _change(ctx, key, store, lambda fleet: fleet.retry(key), "retry scheduled")


@fleet_app.command("cancel")
def cancel(ctx: typer.Context, key: KeyArgument, store: StoreOption = None) -> None:
    """Stop all work on KEY.

    An attempt already sent is left as it is (its license is spent); the certificate
    in place stays where it was delivered and is not renewed.
    """
    _change(ctx, key, store, lambda fleet: fleet.cancel(key), "cancelled")


@fleet_app.command("revoke")
def revoke(
    ctx: typer.Context,
    key: KeyArgument,
    reason: Annotated[
        str,
        value_option(
            "--reason -r",
            "REASON",
            "RFC 5280 reason: unspecified, key compromise, affiliation changed, "
            "superseded, cessation of operation...",
        ),
    ] = "unspecified",
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Do not ask for confirmation (it is asked only on a terminal)."
        ),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Revoke KEY's certificate.

    The next run sends the revocation (also of an attempt in flight, once issued);
    the record ends REVOKED and is not renewed. On a terminal it asks first;
    declining exits with status 1 and changes nothing.
    """
    from ...certs import RevocationReason

    code = RevocationReason.parse(reason)
    asking = not yes and isatty(sys.stdin)

    async def action(fleet: "Fleet") -> dict[str, Any]:
        record = await _existing(fleet, key)
        if asking:
            serial = record.serial_number or "none yet"
            confirm(
                f"Revoke the certificate of {key} (serial {serial}, {code.display})?",
                refused="not revoked: not confirmed (nothing was changed)",
            )
        return _record_json(await fleet.revoke(key, code.display), fleet.now())

    def show(out: Output, record: dict[str, Any]) -> None:
        out.result(record, lambda o: o.line(_said(record, f"revocation asked ({code.display})")))

    _with_fleet(ctx, store, action, show)


@fleet_app.command("run")
def run_fleet(
    ctx: typer.Context,
    folder: Annotated[
        str | None,
        value_option(
            "--folder",
            "DIR",
            "Deliver each certificate to DIR/KEY (cert.pem, chain.pem, fullchain.pem, "
            "key.pem 0600), as 'sectigo issue' lays a folder out. Required: every "
            "worker of a store must have the same sinks.",
            envvar=ENV_FOLDER,
            show_envvar=True,
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="One pass over the due records, a line for each, then exit."),
    ] = False,
    concurrency: Annotated[
        int,
        typer.Option("--concurrency", metavar="N", min=1, help="Records worked on at once."),
    ] = 4,
    store: StoreOption = None,
    metrics_port: Annotated[
        int | None,
        value_option(
            "--metrics-port",
            "PORT",
            "Serve Prometheus metrics at http://127.0.0.1:PORT/metrics while running (0: "
            "any free port; the address is printed). Needs the [metrics] extra.",
            min=0,
            max=65535,
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        value_option(
            "--metrics-host",
            "HOST",
            "The address --metrics-port listens on (default 127.0.0.1: this machine "
            "only; 0.0.0.0 for every interface).",
        ),
    ] = None,
    metrics_textfile: Annotated[
        str | None,
        value_option(
            "--metrics-textfile",
            "PATH.prom",
            "After each pass, write the Prometheus metrics to PATH.prom for "
            "node_exporter's textfile collector (replaced in one step, mode 0644).",
        ),
    ] = None,
) -> None:
    """Work on the records that are due.

    Submit, check, download, deliver to --folder, renew and revoke, each record
    claimed under a lease so any number of workers can share the store. Without
    --once it runs until SIGTERM or Ctrl-C: it then finishes the steps in flight,
    releases its leases and exits 0 (a second signal stops at once; the leases then
    expire by themselves).
    """
    if folder is None or not folder.strip():
        raise CLIError(
            f"give --folder DIR (or set {ENV_FOLDER}): the certificates are delivered "
            "there; without a sink their keys would be dropped once issued"
        )
    export = metrics_export(metrics_port, metrics_host, metrics_textfile, once=once)
    from ...fleet import FolderSink

    options: dict[str, Any] = {"concurrency": concurrency, "sinks": [FolderSink(folder)]}
    if export is not None:  # the fleet's families and the client's
        options["metrics"] = export.metrics
        options["client_options"] = {"metrics": export.metrics}
    if once:

        async def one_pass(fleet: "Fleet") -> list[dict[str, Any]]:
            results = [_result_json(result) for result in await fleet.run_once()]
            if export is not None:
                await export.read_balances(fleet.client)
                export.after_pass()
            return results

        _with_fleet(ctx, store, one_pass, _show_results, api=True, **options)
        return
    lines = Output(settings_of(ctx).json)
    with export or contextlib.nullcontext():
        _with_fleet(
            ctx,
            store,
            lambda fleet: _serve(fleet, lines, export),
            lambda out, passes: note(f"stopped after {passes} pass(es)"),
            api=True,
            **options,
        )


async def _serve(fleet: "Fleet", out: Output, export: "MetricsExport | None" = None) -> int:
    """``Fleet.run`` until SIGTERM or SIGINT: the first stops new claims and lets the
    steps in flight end (saved and released); a second cancels them. Returns the number
    of passes. With ``export``, the metrics are written after each pass and the
    authorities' balances read meanwhile."""
    import anyio

    passes = 0

    def said(results: "list[StepResult]") -> None:
        nonlocal passes
        passes += 1
        for result in results:
            _say_result(out, result)
        if export is not None:
            export.after_pass(worked=bool(results))

    async def on_signals(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for number in signals:
                if fleet.stopping:
                    note(f"{signal.Signals(number).name} again: stopping now")
                    scope.cancel()
                    return
                note(f"{signal.Signals(number).name}: finishing the steps in flight")
                fleet.stop()

    async with anyio.create_task_group() as group:
        group.start_soon(on_signals, group.cancel_scope)
        if export is not None:
            group.start_soon(export.keep_balances, fleet.client)
        await fleet.run(on_pass=said)
        group.cancel_scope.cancel()
    return passes


def _say_result(out: Output, result: "StepResult") -> None:
    """One line per record worked on: JSON (one object a line) or words."""
    if out.json:  # ASCII: every control or bidi character of a value is an escape
        import json

        sys.stdout.write(json.dumps(_result_json(result)) + "\n")
        sys.stdout.flush()
        return
    error = f" ({result.error})" if result.error else ""
    out.line(f"{result.key}: {result.from_state} -> {result.to_state}: {result.description}{error}")


@fleet_app.command("migrate")
def migrate(ctx: typer.Context, store: StoreOption = None) -> None:
    """Create or migrate the store's tables.

    Prints the schema version. A store of a newer version is refused, never
    rewritten.
    """

    async def action(fleet: "Fleet") -> dict[str, Any]:
        from ...fleet import SCHEMA_VERSION

        return {"store": fleet.store.location, "schema_version": SCHEMA_VERSION}

    def show(out: Output, data: dict[str, Any]) -> None:
        out.result(
            data,
            lambda o: o.line(f"{data['store']}: schema version {data['schema_version']}"),
        )

    _with_fleet(ctx, store, action, show)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(fleet_app, name="fleet")
