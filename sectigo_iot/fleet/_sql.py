"""The SQL both stores share: the tables, the claim with its lease and fence, the
conditional writes. A dialect (``_sqlite.py``, ``_postgres.py``) brings the connection,
the transactions and the few words that differ.

Every call runs in a worker thread (the drivers block), in one short transaction; no
transaction is held while a step works on a record. Lease times come from the
database's clock (``Dialect.clock``) so that hosts with skewed clocks agree;
``next_action_at`` comes from the fleet's clock (the client's), so tests can move it.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import functools
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from .._logging import get_logger
from ._model import HistoryEntry, RecordState
from ._store import (
    SCHEMA_VERSION,
    Change,
    Row,
    Sealer,
    Secrets,
    StoreError,
    attempt_from_json,
    new_salt,
    outbox_from_json,
    revocation_from_json,
    seconds,
    spec_from_json,
    spec_json,
    superseded_from_json,
    utc,
    watch_from_json,
)

__all__ = ["Cursor", "Dialect", "SQLStore", "due_query"]

logger = get_logger("sectigo_iot.fleet")
T = TypeVar("T")

#: the columns of a record, in the order every query reads them
COLUMNS = (
    "key, spec, state, serial_number, not_after, batch_id, failures, last_error, "
    "next_action_at, attempt, sealed, delivered, revoke_owed, fence, not_before, renewal_at, "
    "superseded, work_at, watch, outbox, state_since"
)
_ASSIGN = (
    "spec = ?, state = ?, serial_number = ?, not_after = ?, batch_id = ?, failures = ?, "
    "last_error = ?, next_action_at = ?, attempt = ?, sealed = ?, delivered = ?, "
    "revoke_owed = ?, not_before = ?, renewal_at = ?, superseded = ?, work_at = ?, watch = ?, "
    "outbox = ?, state_since = ?"
)
#: what each schema version adds to the one before (version 1: the dialect's tables)
MIGRATIONS = {
    2: (  # the renewal policy: the certificate's start, and its renewal time
        "ALTER TABLE {prefix}records ADD COLUMN not_before double precision",
        "ALTER TABLE {prefix}records ADD COLUMN renewal_at double precision",
    ),
    3: (  # the certificates a record had before its current one, for revoking them all
        "ALTER TABLE {prefix}records ADD COLUMN superseded text",
    ),
    4: (  # events: the record's own work time apart from its wake (``next_action_at``,
        # which milestones and events waiting to be notified bring forward), what was
        # seen of the current certificate, the events not notified yet, the state's start
        "ALTER TABLE {prefix}records ADD COLUMN work_at double precision",
        "ALTER TABLE {prefix}records ADD COLUMN watch text",
        "ALTER TABLE {prefix}records ADD COLUMN outbox text",
        "ALTER TABLE {prefix}records ADD COLUMN state_since double precision",
        "UPDATE {prefix}records SET work_at = next_action_at",
        # every record holding a certificate is looked at once, to plan its milestones
        "UPDATE {prefix}records SET next_action_at = 0 WHERE serial_number IS NOT NULL",
    ),
}
#: how long a lost connection is retried before a call fails with StoreError
RECONNECT_FOR = 30.0


def due_query(dialect: Dialect) -> str:
    """The claim's SELECT of due rows (``?``: now, limit); the ``records_due`` index
    serves it (tests EXPLAIN this very query)."""
    return (
        f"SELECT key FROM {dialect.prefix}records WHERE next_action_at <= ? "
        f"AND (lease_expires IS NULL OR lease_expires < {dialect.clock}) "
        f"ORDER BY next_action_at LIMIT ?{dialect.skip_locked}"
    )


class Cursor(Protocol):
    """What a transaction gives: run one statement (``?`` placeholders), get its rows."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Dialect(Protocol):
    location: str
    #: the database's clock, in seconds since the epoch, as an SQL expression
    clock: str
    #: appended to a SELECT of the row a command changes (``FOR UPDATE`` where rows lock)
    lock_row: str
    #: appended to the claim's SELECT (``FOR UPDATE SKIP LOCKED`` where rows lock)
    skip_locked: str
    #: table names, as ``prefix + "records"``
    prefix: str
    #: errors after which the call is tried again (a lost connection, a busy database,
    #: two inserts of one new key)
    transient: tuple[type[BaseException], ...]

    def transaction(self, durable: bool) -> contextlib.AbstractContextManager[Cursor]:
        """A write transaction that holds the right to write until it ends; ``durable``:
        its commit survives a power cut, not only a crash of the process."""

    def create_tables(self, cursor: Cursor) -> None: ...

    def schema_version(self, cursor: Cursor) -> int:
        """The version the database says it has (0 when it has no tables)."""

    def set_schema_version(self, cursor: Cursor, version: int) -> None: ...

    def describe(self, error: BaseException) -> str:
        """``error`` in words, without secrets (a connection string's password)."""

    def close(self) -> None: ...


class SQLStore:
    """A fleet store on an SQL database (see ``Store`` for the contract)."""

    #: how long a call tries again while the database is away (seconds)
    reconnect_for: float = RECONNECT_FOR

    def __init__(self, dialect: Dialect, secret: bytes) -> None:
        self._dialect = dialect
        self._secret = secret
        self._sealer: Sealer | None = None
        self.location = dialect.location

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    # -- running a call ---------------------------------------------------------------

    async def _call(self, function: Callable[[Cursor], T], *, durable: bool = True) -> T:
        import anyio.to_thread

        call = functools.partial(self._retrying, function, durable)
        return await anyio.to_thread.run_sync(call)

    def _retrying(self, function: Callable[[Cursor], T], durable: bool) -> T:
        """``function`` in one transaction, tried again while the database is away."""
        deadline, delay = time.monotonic() + self.reconnect_for, 0.1
        while True:
            try:
                with self._dialect.transaction(durable) as cursor:
                    return function(cursor)
            except StoreError:
                raise
            except self._dialect.transient as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreError(
                        f"the fleet store {self.location} is unreachable: "
                        f"{self._dialect.describe(exc)}"
                    ) from None
                logger.warning(
                    "fleet store %s: %s; trying again in %.1f s",
                    self.location,
                    self._dialect.describe(exc),
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:
                raise StoreError(
                    f"the fleet store {self.location} failed: {self._dialect.describe(exc)}"
                ) from None

    # -- opening ------------------------------------------------------------------------

    async def open(self) -> None:
        self._sealer = await self._call(self._open)

    def _open(self, cursor: Cursor) -> Sealer:
        version = self._dialect.schema_version(cursor)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the fleet store {self.location} has schema version {version}, newer than "
                f"this sectigo-iot understands ({SCHEMA_VERSION}); upgrade sectigo-iot"
            )
        if version == 0:
            sealer, version = self._create(cursor), 1
        else:  # the key is checked before anything is changed
            values = dict(cursor.run(f"SELECT name, value FROM {self._dialect.prefix}meta"))
            if "salt" not in values or "key_check" not in values:
                raise StoreError(f"the fleet store {self.location} has no key check: it is damaged")
            sealer = Sealer(self._secret, base64.b64decode(values["salt"]))
            sealer.verify(base64.b64decode(values["key_check"]), self.location)
        if version < SCHEMA_VERSION:
            self._migrate(cursor, version)
        return sealer

    def _create(self, cursor: Cursor) -> Sealer:
        """The tables of schema version 1, and the store's salt and key check."""
        self._dialect.create_tables(cursor)
        meta = self._dialect.prefix + "meta"
        salt = new_salt()
        sealer = Sealer(self._secret, base64.b64decode(salt))
        check = base64.b64encode(sealer.key_check()).decode()
        cursor.run(
            f"INSERT INTO {meta} (name, value) VALUES (?, ?), (?, ?)",
            ("salt", salt, "key_check", check),
        )
        self._dialect.set_schema_version(cursor, 1)
        return sealer

    def _migrate(self, cursor: Cursor, version: int) -> None:
        """From ``version`` to ``SCHEMA_VERSION``, in the transaction that opens the store."""
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number]:
                cursor.run(statement.format(prefix=self._dialect.prefix))
            self._dialect.set_schema_version(cursor, number)
            logger.info("fleet store %s migrated to schema version %d", self.location, number)

    async def close(self) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self._dialect.close)

    # -- reading ------------------------------------------------------------------------

    @property
    def _records(self) -> str:
        return self._dialect.prefix + "records"

    @property
    def _history(self) -> str:
        return self._dialect.prefix + "history"

    def _row(self, values: tuple[Any, ...]) -> Row:
        (
            key,
            spec,
            state,
            serial,
            not_after,
            batch_id,
            failures,
            last_error,
            next_at,
            attempt,
            sealed,
            delivered,
            owed,
            fence,
            not_before,
            renewal_at,
            superseded,
            work_at,
            watch,
            outbox,
            state_since,
        ) = values
        secrets = None
        if sealed is not None:
            assert self._sealer is not None, "open() the store first"
            secrets = Secrets.from_bytes(self._sealer.open(bytes(sealed), f"record {key!r}"))
        pending, attempt_serial = attempt_from_json(attempt, secrets)
        try:
            revoke_owed, revoke_reason = revocation_from_json(owed)
            return Row(
                key=key,
                spec=spec_from_json(spec),
                state=RecordState(state),
                serial_number=serial,
                not_after=utc(not_after),
                batch_id=batch_id,
                failures=failures,
                last_error=last_error,
                next_action_at=utc(work_at),
                wake_at=None if next_at == work_at else utc(next_at),
                attempt=pending,
                attempt_serial=attempt_serial,
                secrets=secrets,
                delivered=tuple(json.loads(delivered)),
                revoke_owed=revoke_owed,
                revoke_reason=revoke_reason,
                fence=fence,
                not_before=utc(not_before),
                renewal_at=utc(renewal_at),
                superseded=superseded_from_json(superseded),
                watch=watch_from_json(watch),
                outbox=outbox_from_json(outbox),
                state_since=utc(state_since),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"record {key!r} in {self.location} is damaged: {exc}") from None

    def _values(self, row: Row) -> tuple[Any, ...]:
        """``row``'s columns for ``_ASSIGN``, its secrets sealed."""
        sealed = None
        if row.secrets is not None:
            assert self._sealer is not None, "open() the store first"
            sealed = self._sealer.seal(row.secrets.to_bytes(), f"record {row.key!r}")
        return (
            spec_json(row.spec),
            row.state.value,
            row.serial_number,
            seconds(row.not_after),
            row.batch_id,
            row.failures,
            row.last_error,
            seconds(row.claim_at),
            row.attempt_json(),
            sealed,
            json.dumps(list(row.delivered)),
            row.revocation_json(),
            seconds(row.not_before),
            seconds(row.renewal_at),
            row.superseded_json(),
            seconds(row.next_action_at),
            row.watch_json(),
            row.outbox_json(),
            seconds(row.state_since),
        )

    async def get(self, key: str) -> Row | None:
        def get(cursor: Cursor) -> Row | None:
            found = cursor.run(f"SELECT {COLUMNS} FROM {self._records} WHERE key = ?", (key,))
            return self._row(found[0]) if found else None

        return await self._call(get, durable=False)

    async def history(self, key: str) -> tuple[HistoryEntry, ...]:
        def history(cursor: Cursor) -> tuple[HistoryEntry, ...]:
            found = cursor.run(
                f"SELECT at, from_state, to_state, description, worker FROM {self._history} "
                "WHERE key = ? ORDER BY id",
                (key,),
            )
            return tuple(
                HistoryEntry(
                    at=utc(at),  # type: ignore[arg-type]
                    from_state=RecordState(old) if old else None,
                    to_state=RecordState(new),
                    description=text,
                    worker=worker,
                )
                for at, old, new, text, worker in found
            )

        return await self._call(history, durable=False)

    async def list(self, state: RecordState | None = None) -> builtins.list[Row]:
        def listing(cursor: Cursor) -> builtins.list[Row]:
            if state is None:
                found = cursor.run(f"SELECT {COLUMNS} FROM {self._records} ORDER BY key")
            else:
                found = cursor.run(
                    f"SELECT {COLUMNS} FROM {self._records} WHERE state = ? ORDER BY key",
                    (RecordState(state).value,),
                )
            return [self._row(values) for values in found]

        return await self._call(listing, durable=False)

    async def count(self) -> dict[RecordState, int]:
        def count(cursor: Cursor) -> dict[RecordState, int]:
            found = cursor.run(f"SELECT state, COUNT(*) FROM {self._records} GROUP BY state")
            return {RecordState(state): number for state, number in found}

        return await self._call(count, durable=False)

    async def next_action_at(self) -> datetime | None:
        def earliest(cursor: Cursor) -> datetime | None:
            found = cursor.run(f"SELECT MIN(next_action_at) FROM {self._records}")
            return utc(found[0][0]) if found else None

        return await self._call(earliest, durable=False)

    # -- writing ------------------------------------------------------------------------

    def _add_history(self, cursor: Cursor, key: str, entries: Sequence[HistoryEntry]) -> None:
        for entry in entries:
            cursor.run(
                f"INSERT INTO {self._history} (key, at, from_state, to_state, description, "
                "worker) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    entry.at.timestamp(),
                    entry.from_state.value if entry.from_state else None,
                    entry.to_state.value,
                    entry.description,
                    entry.worker,
                ),
            )

    async def change(self, key: str, decide: Callable[[Row | None], Change | None]) -> Row | None:
        def change(cursor: Cursor) -> Row | None:
            found = cursor.run(
                f"SELECT {COLUMNS} FROM {self._records} WHERE key = ?{self._dialect.lock_row}",
                (key,),
            )
            row = self._row(found[0]) if found else None
            decided = decide(row)
            if decided is None:
                return row
            new = decided.row
            if row is None:
                cursor.run(
                    f"INSERT INTO {self._records} (key, spec, state, serial_number, not_after, "
                    "batch_id, failures, last_error, next_action_at, attempt, sealed, "
                    "delivered, revoke_owed, not_before, renewal_at, superseded, work_at, watch, "
                    "outbox, state_since, fence) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (key, *self._values(new)),
                )
                new = new.replace(fence=1)
            else:
                cursor.run(
                    f"UPDATE {self._records} SET {_ASSIGN}, fence = fence + 1, "
                    "lease_owner = NULL, lease_expires = NULL WHERE key = ?",
                    (*self._values(new), key),
                )
                new = new.replace(fence=row.fence + 1)
            self._add_history(cursor, key, decided.history)
            return new

        return await self._call(change)

    async def claim(
        self, worker: str, now: datetime, limit: int, lease: timedelta
    ) -> builtins.list[Row]:
        clock = self._dialect.clock

        def claim(cursor: Cursor) -> builtins.list[Row]:
            keys = cursor.run(due_query(self._dialect), (now.timestamp(), limit))
            rows = []
            for (key,) in keys:
                found = cursor.run(
                    f"UPDATE {self._records} SET fence = fence + 1, lease_owner = ?, "
                    f"lease_expires = {clock} + ? WHERE key = ? RETURNING {COLUMNS}",
                    (worker, lease.total_seconds(), key),
                )
                rows.append(self._row(found[0]))
            return rows

        return await self._call(claim, durable=False)

    async def save(
        self, change: Change, worker: str, *, release: bool, durable: bool = True
    ) -> bool:
        row = change.row
        lease = ", lease_owner = NULL, lease_expires = NULL" if release else ""

        def save(cursor: Cursor) -> bool:
            found = cursor.run(
                f"UPDATE {self._records} SET {_ASSIGN}{lease} "
                "WHERE key = ? AND fence = ? AND lease_owner = ? RETURNING key",
                (*self._values(row), row.key, row.fence, worker),
            )
            if not found:
                return False
            self._add_history(cursor, row.key, change.history)
            return True

        return await self._call(save, durable=durable)

    async def heartbeat(self, rows: builtins.list[Row], worker: str, lease: timedelta) -> set[str]:
        clock = self._dialect.clock

        def heartbeat(cursor: Cursor) -> set[str]:
            held = set()
            for row in rows:
                if cursor.run(
                    f"UPDATE {self._records} SET lease_expires = {clock} + ? "
                    "WHERE key = ? AND fence = ? AND lease_owner = ? RETURNING key",
                    (lease.total_seconds(), row.key, row.fence, worker),
                ):
                    held.add(row.key)
            return held

        return await self._call(heartbeat, durable=False)

    async def release(self, rows: builtins.list[Row], worker: str) -> None:
        def release(cursor: Cursor) -> None:
            for row in rows:
                cursor.run(
                    f"UPDATE {self._records} SET lease_owner = NULL, lease_expires = NULL "
                    "WHERE key = ? AND fence = ? AND lease_owner = ?",
                    (row.key, row.fence, worker),
                )

        await self._call(release, durable=False)
