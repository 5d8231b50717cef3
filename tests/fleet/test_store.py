"""The store contract, one suite for both stores (SQLite in a temporary folder, PostgreSQL
on the session's server, a fresh schema per test), through the ``Store`` methods: leases
and fences, claims by real processes at once, secrets sealed at rest, the due query's
index, damaged or foreign databases, a wrong key, a newer schema, a server restarting."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from attrs import evolve
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sectigo_iot.errors import InvalidInputError
from sectigo_iot.fleet import KEY_ENV, HistoryEntry, RecordState, SQLiteStore, StoreError
from sectigo_iot.fleet._sql import SQLStore, due_query
from sectigo_iot.fleet._store import SCHEMA_VERSION, Change, Row, Secrets
from sectigo_iot.lifecycle import CertificateSpec, LifecycleEvent, PendingAttempt
from sectigo_iot.lifecycle._events import Watch
from tests.fleet.postgres_server import PASSWORD_ROLE, PostgresServer
from tests.support import skip_outside_ci

KEY = "fleet-test-secret-0123456789abcdefghij"
OTHER_KEY = "another-fleet-secret-0123456789abcdefgh"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SPEC = CertificateSpec(authority_id=1, common_name="member.example.com")
LONG = timedelta(minutes=5)


def needs_psycopg() -> None:
    """Skip (fail in CI) where psycopg, of the ``postgres`` extra, is not installed."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        skip_outside_ci("psycopg is not installed: pip install 'sectigo-iot[postgres]'")


def new_row(key: str, due: datetime | None = NOW, **fields: Any) -> Row:
    fields.setdefault("state", RecordState.PENDING)
    return Row(key=key, spec=SPEC, next_action_at=due, **fields)


def entry(text: str, to: RecordState = RecordState.PENDING, seconds: float = 0) -> HistoryEntry:
    return HistoryEntry(
        at=NOW + timedelta(seconds=seconds),
        from_state=None,
        to_state=to,
        description=text,
        worker="tester",
    )


async def put(store: SQLStore, key: str, due: datetime | None = NOW, **fields: Any) -> Row:
    """Make or replace ``key``'s row through ``change`` (a command)."""
    row = await store.change(key, lambda _: Change(row=new_row(key, due, **fields)))
    assert row is not None
    return row


# -- the two stores ------------------------------------------------------------------


@attrs.define
class Backend:
    """One kind of store, and what a test needs to look at its database from outside."""

    kind: str
    make_store: Callable[[str], SQLStore]  # a store on this test's database, with a key
    claimer_args: list[str]  # how a child process opens the same store
    stores: list[SQLStore] = attrs.Factory(list)
    server: PostgresServer | None = None
    path: Path | None = None
    schema: str = ""

    def make(self, secret_key: str = KEY) -> SQLStore:
        store = self.make_store(secret_key)
        self.stores.append(store)
        return store

    async def opened(self, secret_key: str = KEY) -> SQLStore:
        store = self.make(secret_key)
        await store.open()
        return store

    def raw(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement on the database, outside the store (``%s``/``?`` placeholders
        as the driver wants)."""
        if self.kind == "sqlite":
            assert self.path is not None
            with sqlite3.connect(self.path) as connection:
                return connection.execute(sql, params).fetchall()
        import psycopg

        assert self.server is not None
        with psycopg.connect(self.server.url("fleet"), autocommit=True) as connection:
            cursor = connection.execute(sql.encode(), params or None)
            return cursor.fetchall() if cursor.description else []

    def snapshot(self) -> bytes:
        """Everything the database holds: the SQLite file with its WAL, or every column
        of every table of the schema as text plus ``pg_dump`` of the database."""
        if self.kind == "sqlite":
            assert self.path is not None
            parts = [self.path, Path(f"{self.path}-wal")]
            return b"".join(part.read_bytes() for part in parts if part.exists())
        assert self.server is not None
        tables = self.raw(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (self.schema,)
        )
        text = [self.server.dump("fleet", self.schema)]
        for (table,) in tables:
            every = f'SELECT t::text FROM "{self.schema}"."{table}" t ORDER BY 1'  # noqa: S608
            rows = self.raw(every)
            text += [table, *(row for (row,) in rows)]
        return "\n".join(text).encode()

    def set_schema_version(self, version: int) -> None:
        if self.kind == "sqlite":
            self.raw(f"PRAGMA user_version = {version}")
        else:
            self.raw(
                f'UPDATE "{self.schema}".meta SET value = %s '  # noqa: S608
                "WHERE name = 'schema_version'",
                (str(version),),
            )


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        path = tmp_path / "fleet.sqlite3"
        made = Backend(
            "sqlite",
            lambda secret: SQLiteStore(path, secret_key=secret),
            ["sqlite", str(path), ""],
            path=path,
        )
    else:
        from sectigo_iot.fleet._postgres import PostgresStore

        url: str = request.getfixturevalue("postgres_url")
        schema: str = request.getfixturevalue("postgres_schema")
        made = Backend(
            "postgres",
            lambda secret: PostgresStore(url, secret_key=secret, schema=schema),
            ["postgres", url, schema],
            server=request.getfixturevalue("postgres_server"),
            schema=schema,
        )
    yield made
    for store in made.stores:
        anyio.run(store.close)


# -- change, claim, save, heartbeat, release ----------------------------------------------


async def test_change_inserts_then_updates_grows_the_fence_and_clears_the_lease(
    backend: Backend,
) -> None:
    store = await backend.opened()
    seen: list[Row | None] = []

    def make(row: Row | None) -> Change:
        seen.append(row)
        return Change(row=new_row("a"), history=(entry("wanted"),))

    made = await store.change("a", make)
    assert seen == [None] and made is not None and made.fence == 1
    assert await store.get("a") == made
    [claimed] = await store.claim("w1", NOW, 10, LONG)
    assert claimed.fence == 2

    # a command on a leased row: a new fence, and the lease is gone (another worker may
    # claim at once; the old holder's write is refused)
    def cancel(row: Row | None) -> Change:
        assert row is not None and row.fence == 2
        return Change(
            row=row.replace(state=RecordState.CANCELLED), history=(entry("x", seconds=1),)
        )

    cancelled = await store.change("a", cancel)
    assert cancelled is not None and cancelled.fence == 3
    assert (await store.get("a")) == cancelled
    assert not await store.save(
        Change(row=claimed.replace(state=RecordState.VALID)), "w1", release=True
    )
    assert [row.key for row in await store.claim("w2", NOW, 10, LONG)] == ["a"]

    # a decision of no change writes nothing and keeps the fence
    unchanged = await store.change("a", lambda row: None)
    assert unchanged is not None and unchanged.fence == 4 == (await store.get("a")).fence  # type: ignore[union-attr]
    assert [e.description for e in await store.history("a")] == ["wanted", "x"]
    assert await store.change("nobody", lambda row: None) is None
    assert await store.get("nobody") is None


async def test_claim_takes_only_due_rows_oldest_first_up_to_the_limit(backend: Backend) -> None:
    store = await backend.opened()
    second = timedelta(seconds=1)
    await put(store, "late", NOW + second)
    await put(store, "now", NOW)
    await put(store, "oldest", NOW - 30 * second)
    await put(store, "older", NOW - 10 * second)
    await put(store, "never", None)

    first = await store.claim("w1", NOW, 2, LONG)
    assert [(row.key, row.fence) for row in first] == [("oldest", 2), ("older", 2)]
    assert [row.key for row in await store.claim("w1", NOW, 10, LONG)] == ["now"]
    assert await store.claim("w2", NOW, 10, LONG) == []
    assert [row.key for row in await store.claim("w2", NOW + second, 10, LONG)] == ["late"]


async def test_a_live_lease_is_never_claimed_and_each_claim_grows_the_fence(
    backend: Backend,
) -> None:
    store = await backend.opened()
    await put(store, "a")
    [first] = await store.claim("w1", NOW, 10, timedelta(seconds=0.3))
    assert first.fence == 2
    assert await store.claim("w2", NOW, 10, LONG) == []
    assert await store.claim("w1", NOW, 10, LONG) == []  # not even by its own holder
    await anyio.sleep(0.5)
    [second] = await store.claim("w2", NOW, 10, LONG)
    assert second.fence == 3


async def test_a_save_is_refused_once_another_worker_claimed_the_row(backend: Backend) -> None:
    store = await backend.opened()
    await put(store, "a")
    [stale] = await store.claim("w1", NOW, 10, timedelta(seconds=0.2))
    await anyio.sleep(0.4)  # w1 stalls past its lease
    [fresh] = await store.claim("w2", NOW, 10, LONG)

    done = stale.replace(state=RecordState.VALID, serial_number="AB12")
    assert not await store.save(Change(row=done, history=(entry("w1 done"),)), "w1", release=True)
    row = await store.get("a")
    assert row is not None and row.state is RecordState.PENDING and row.serial_number is None
    assert await store.history("a") == ()

    assert not await store.save(
        Change(row=fresh), "w1", release=False
    )  # right fence, not the holder
    ok = fresh.replace(state=RecordState.PROCESSING)
    assert await store.save(Change(row=ok, history=(entry("w2"),)), "w2", release=False)
    assert await store.save(Change(row=ok.replace(failures=1)), "w2", release=False)  # holds it
    assert await store.claim("w3", NOW, 10, LONG) == []
    assert await store.save(Change(row=ok.replace(failures=2)), "w2", release=True)
    assert not await store.save(Change(row=ok.replace(failures=3)), "w2", release=True)  # released
    row = await store.get("a")
    assert row is not None and (row.state, row.failures, row.fence) == (
        RecordState.PROCESSING,
        2,
        3,
    )
    assert [row.key for row in await store.claim("w3", NOW, 10, LONG)] == ["a"]


async def test_heartbeat_keeps_a_lease_and_an_expired_one_goes_to_another_worker(
    backend: Backend,
) -> None:
    store = await backend.opened()
    await put(store, "kept")
    await put(store, "lost", NOW + timedelta(seconds=1))
    rows = await store.claim("w1", NOW + timedelta(seconds=1), 10, timedelta(seconds=0.5))
    assert [row.key for row in rows] == ["kept", "lost"]
    kept = rows[0]
    assert await store.heartbeat([kept], "w1", LONG) == {"kept"}
    assert await store.heartbeat([kept], "w2", LONG) == set()  # not its lease
    await anyio.sleep(0.8)

    [taken] = await store.claim("w2", NOW + timedelta(days=1), 10, LONG)
    assert taken.key == "lost"
    assert await store.heartbeat(rows, "w1", LONG) == {"kept"}
    assert not await store.save(Change(row=rows[1]), "w1", release=True)
    assert await store.save(Change(row=kept), "w1", release=True)


async def test_release_frees_a_row_at_once_only_for_its_holder(backend: Backend) -> None:
    store = await backend.opened()
    await put(store, "a")
    claimed = await store.claim("w1", NOW, 10, LONG)
    await store.release(claimed, "w2")  # someone else's lease: nothing happens
    assert await store.claim("w3", NOW, 10, LONG) == []
    await store.release(claimed, "w1")
    [again] = await store.claim("w3", NOW, 10, LONG)
    assert again.fence == claimed[0].fence + 1
    await store.release(claimed, "w1")  # a stale fence: w3 keeps it
    assert await store.claim("w4", NOW, 10, LONG) == []


async def test_next_action_is_the_earliest_and_count_is_by_state(backend: Backend) -> None:
    store = await backend.opened()
    assert await store.next_action_at() is None
    assert await store.count() == {}
    await put(store, "b", NOW + timedelta(hours=1))
    await put(store, "a", NOW - timedelta(seconds=3), state=RecordState.FAILED)
    await put(store, "c", None, state=RecordState.VALID)
    await put(store, "d", NOW + timedelta(hours=2))
    assert await store.next_action_at() == NOW - timedelta(seconds=3)
    assert await store.count() == {
        RecordState.PENDING: 2,
        RecordState.FAILED: 1,
        RecordState.VALID: 1,
    }
    assert [row.key for row in await store.list()] == ["a", "b", "c", "d"]
    assert [row.key for row in await store.list(RecordState.PENDING)] == ["b", "d"]


async def test_history_is_kept_in_order_per_record(backend: Backend) -> None:
    store = await backend.opened()
    first = (entry("one"), entry("two", RecordState.SUBMITTING, 1.5))
    await store.change("a", lambda _: Change(row=new_row("a"), history=first))
    await store.change("b", lambda _: Change(row=new_row("b"), history=(entry("b's"),)))
    [row] = await store.claim("w1", NOW, 1, LONG)
    third = HistoryEntry(
        at=NOW + timedelta(seconds=2),
        from_state=RecordState.SUBMITTING,
        to_state=RecordState.PROCESSING,
        description="batch 7 accepted",
        worker="w1",
    )
    assert await store.save(Change(row=row, history=(third,)), "w1", release=True)
    assert await store.history("a") == (*first, third)
    assert [e.description for e in await store.history("b")] == ["b's"]
    assert await store.history("nobody") == ()


def _pem(kind: str, body: bytes) -> bytes:
    import base64

    lines = base64.b64encode(body).decode()
    wrapped = "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
    return f"-----BEGIN {kind}-----\n{wrapped}\n-----END {kind}-----\n".encode()


def _secrets() -> tuple[Secrets, PendingAttempt]:
    key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    bundle = _pem("CERTIFICATE", os.urandom(300)) + key_pem
    password = "P12-pass-" + os.urandom(8).hex()
    attempt = PendingAttempt(
        batch_name="fleet-a-0001",
        pkcs12_password=password,
        attempted_at=NOW,
        spec=SPEC,
        batch_id=77,
    )
    return Secrets(pkcs12_password=password, private_key_pem=key_pem, bundle_pem=bundle), attempt


async def test_secrets_and_the_attempt_round_trip_through_a_reopened_store(
    backend: Backend,
) -> None:
    store = await backend.opened()
    secrets, attempt = _secrets()
    await put(store, "a", secrets=secrets, attempt=attempt, attempt_serial="0A1B")
    await store.close()

    again = await backend.opened()
    [row] = await again.list()
    assert row.secrets == secrets
    # an attempt's key (CSR mode) rests sealed with its secrets, and comes back on it
    assert row.attempt == evolve(attempt, private_key_pem=secrets.private_key_pem)
    assert row.attempt.pkcs12_password == secrets.pkcs12_password
    assert row.attempt_serial == "0A1B"
    assert (await again.get("a")) == row


async def test_a_csr_mode_attempt_keeps_its_private_key_through_the_store(
    backend: Backend,
) -> None:
    store = await backend.opened()
    secrets, _ = _secrets()
    spec = CertificateSpec(authority_id=1, common_name="member.example.com", key_type="ec-p256")
    attempt = PendingAttempt(
        batch_name="fleet-a-0002",
        pkcs12_password="",
        attempted_at=NOW,
        spec=spec,
        private_key_pem=secrets.private_key_pem,
    )
    await put(store, "a", attempt=attempt, secrets=Secrets(private_key_pem=attempt.private_key_pem))
    row = await store.get("a")
    assert row is not None and row.attempt == attempt


async def test_a_dump_of_the_database_holds_no_secret_in_clear(backend: Backend) -> None:
    store = await backend.opened()
    secrets, attempt = _secrets()
    await put(store, "through-change", secrets=secrets, attempt=attempt)
    await put(store, "through-save")
    [claimed] = await store.claim("w1", NOW, 1, LONG)
    assert claimed.key == "through-change"  # "through-save" is claimed next
    [claimed] = await store.claim("w1", NOW, 1, LONG)
    saved = claimed.replace(secrets=secrets, attempt=attempt, state=RecordState.DELIVERING)
    assert await store.save(Change(row=saved), "w1", release=False)

    dump = backend.snapshot()
    assert b"through-save" in dump and b"member.example.com" in dump  # the dump has the rows
    assert b"fleet-a-0001" in dump  # the attempt's public part is in clear
    assert secrets.private_key_pem is not None and secrets.bundle_pem is not None
    key_body = secrets.private_key_pem.splitlines()[1]
    cert_body = secrets.bundle_pem.splitlines()[1]
    password = secrets.pkcs12_password
    assert password is not None
    for secret in (password.encode(), key_body, cert_body, b"PRIVATE KEY", b"BEGIN CERTIFICATE"):
        for form in (secret, secret.hex().encode()):  # bytea columns dump as hex
            assert form not in dump, secret


async def test_processes_claiming_at_once_never_take_the_same_row(backend: Backend) -> None:
    store = await backend.opened()
    keys = [f"member-{number:03d}" for number in range(200)]
    for number, key in enumerate(keys):
        await put(store, key, NOW - timedelta(seconds=number % 7))

    claimed = await anyio.to_thread.run_sync(run_claimers, backend.claimer_args, 3)
    every = [key for one in claimed for key in one]
    assert sorted(every) == keys  # each row exactly once overall
    assert await store.count() == {RecordState.VALID: 200}


def run_claimers(arguments: list[str], count: int) -> list[list[str]]:
    """The keys each of ``count`` claimer processes took, started together."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, *arguments, f"worker-{number}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, KEY_ENV: KEY},
        )
        for number in range(count)
    ]
    try:
        for worker in workers:  # every one has its store open, then all go at once
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert [worker.returncode for worker in workers] == [0] * count
    return [json.loads(output) for output in outputs]


#: a worker process: claims due rows 5 at a time and marks each done, until none is due
CLAIMER = """
import asyncio, json, sys
from datetime import datetime, timedelta, timezone
from sectigo_iot.fleet import RecordState, SQLiteStore
from sectigo_iot.fleet._store import Change

kind, where, schema, worker = sys.argv[1:]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

async def main():
    if kind == "sqlite":
        store = SQLiteStore(where)
    else:
        from sectigo_iot.fleet._postgres import PostgresStore
        store = PostgresStore(where, schema=schema, max_connections=2)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()
    claimed = []
    while rows := await store.claim(worker, NOW, 5, timedelta(minutes=5)):
        for row in rows:
            claimed.append(row.key)
            done = row.replace(state=RecordState.VALID, next_action_at=NOW + timedelta(days=1))
            assert await store.save(Change(row=done), worker, release=True)
    await store.close()
    print(json.dumps(claimed))

asyncio.run(main())
"""


async def test_two_inserts_of_one_new_key_make_one_row(backend: Backend) -> None:
    stores = [await backend.opened() for _ in range(4)]
    made: list[int] = []

    def make_once(number: int) -> Callable[[Row | None], Change | None]:
        def decide(row: Row | None) -> Change | None:
            if row is not None:
                return None
            time.sleep(0.2)  # all transactions found no row before any inserts
            made.append(number)
            return Change(row=new_row("new"), history=(entry(f"made by {number}"),))

        return decide

    results: list[Row | None] = []

    async def one(number: int) -> None:
        results.append(await stores[number].change("new", make_once(number)))

    async with anyio.create_task_group() as group:
        for number in range(4):
            group.start_soon(one, number)
    assert len(await stores[0].list()) == 1
    [history] = await stores[0].history("new")
    assert history.description in {f"made by {number}" for number in made}
    assert [row.fence if row else None for row in results] == [1, 1, 1, 1]


async def test_stores_opening_a_new_database_at_once_make_its_tables_once(
    backend: Backend,
) -> None:
    stores = [backend.make() for _ in range(5)]
    async with anyio.create_task_group() as group:
        for store in stores:
            group.start_soon(store.open)
    secrets, _ = _secrets()
    await put(stores[0], "a", secrets=secrets)
    for store in stores:  # one salt and key check: every store opens what another sealed
        row = await store.get("a")
        assert row is not None and row.secrets == secrets


# -- the due query's plan -------------------------------------------------------------


async def test_the_due_query_uses_the_records_due_index(backend: Backend) -> None:
    store = await backend.opened()
    await put(store, "due-0", NOW - timedelta(seconds=5))
    spec = (await store.get("due-0")).spec  # type: ignore[union-attr]
    records = f'"{backend.schema}".records' if backend.schema else "records"
    seed = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) "  # noqa: S608
        f"INSERT INTO {records} (key, spec, state, next_action_at) "
        "SELECT 'seed-' || i, ?, 'VALID', ? + i FROM n"
    )
    later = (NOW + timedelta(days=30)).timestamp()
    dialect = store._dialect
    explain = "EXPLAIN QUERY PLAN " if backend.kind == "sqlite" else "EXPLAIN "
    with dialect.transaction(durable=True) as cursor:  # the store's own connection and placeholders
        from sectigo_iot.fleet._store import spec_json

        cursor.run(seed, (spec_json(spec), later))
        cursor.run(f"ANALYZE {records}")
    with dialect.transaction(durable=True) as cursor:
        plan = cursor.run(explain + due_query(dialect), (NOW.timestamp(), 4))
    text = "\n".join(" ".join(str(part) for part in line) for line in plan)
    assert "records_due" in text, text
    assert [row.key for row in await store.claim("w1", NOW, 4, LONG)] == ["due-0"]


# -- what a store refuses to open -------------------------------------------------------


async def test_a_wrong_key_is_refused_at_open_before_anything_is_read_or_written(
    backend: Backend,
) -> None:
    store = await backend.opened()
    secrets, _ = _secrets()
    await put(store, "a", secrets=secrets)
    await store.close()
    before = backend.snapshot()

    wrong = backend.make(OTHER_KEY)
    with pytest.raises(StoreError, match="sealed with another key") as caught:
        await wrong.open()
    assert OTHER_KEY not in str(caught.value) and KEY not in str(caught.value)
    assert backend.snapshot() == before


async def test_a_newer_schema_version_is_refused_and_the_database_left_as_it_is(
    backend: Backend,
) -> None:
    store = await backend.opened()
    await put(store, "a")
    await store.close()
    backend.set_schema_version(SCHEMA_VERSION + 1)
    before = backend.snapshot()

    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        await backend.make().open()
    assert backend.snapshot() == before


async def test_a_store_of_schema_version_1_is_migrated_and_keeps_its_records(
    backend: Backend,
) -> None:
    store = await backend.opened()
    secrets, attempt = _secrets()
    await put(store, "a", secrets=secrets, attempt=attempt)
    work = NOW + timedelta(days=300)
    await put(store, "b", work, state=RecordState.VALID, serial_number="0B", not_after=work)
    await store.close()
    table = "records" if backend.kind == "sqlite" else f'"{backend.schema}".records'
    for column in _added_columns():  # back to the tables of version 1
        backend.raw(f"ALTER TABLE {table} DROP COLUMN {column}")
    backend.set_schema_version(1)

    with pytest.raises(StoreError, match="another key"):  # the key before any change
        await backend.make(secret_key="another-secret-of-32-characters-or-more").open()
    again = await backend.opened()  # migrated in the transaction that opens it
    row, valid = await again.list()
    assert row.key == "a" and row.secrets == secrets and row.renewal_at is None
    assert row.next_action_at == NOW and row.watch is None and row.outbox == ()
    # a record holding a certificate keeps its work time, and is looked at once now
    assert valid.next_action_at == work and valid.claim_at is not None and valid.claim_at < NOW
    assert await again.save(Change(row=row), "nobody", release=True) is False  # fenced
    claimed_rows = await again.claim("w1", NOW, 5, LONG)
    assert sorted(r.key for r in claimed_rows) == ["a", "b"]
    [claimed] = [r for r in claimed_rows if r.key == "a"]
    later = NOW + timedelta(days=60)
    assert await again.save(
        Change(row=claimed.replace(renewal_at=later, not_before=NOW)), "w1", release=True
    )
    stored = await again.get("a")
    assert stored is not None and (stored.renewal_at, stored.not_before) == (later, NOW)
    await again.close()
    third = await backend.opened()  # already at the current version: nothing to do
    assert await third.get("a") == stored


async def test_a_row_is_claimed_at_its_wake_and_keeps_its_watch_and_untold_events(
    backend: Backend,
) -> None:
    store = await backend.opened()
    watch = Watch(serial_number="AB", received_at=NOW, fired=(30,))
    event = LifecycleEvent(kind="milestone", key="a", serial_number="AB", milestone=30)
    later = NOW + timedelta(days=10)
    await put(store, "a", later, wake_at=NOW, watch=watch, outbox=(event,), state_since=NOW)
    await put(store, "b", later)
    stored = await store.get("a")
    assert stored is not None
    assert (stored.next_action_at, stored.wake_at) == (later, NOW)  # work, and wake apart
    assert (stored.watch, stored.outbox, stored.state_since) == (watch, (event,), NOW)
    assert stored.public().next_action_at == NOW  # the earlier of the two
    assert await store.next_action_at() == NOW
    [claimed] = await store.claim("w1", NOW, 5, LONG)  # "b" waits for its work
    assert claimed.key == "a"
    told = claimed.replace(outbox=(), wake_at=None)
    assert await store.save(Change(row=told), "w1", release=True)
    assert await store.claim("w2", NOW + timedelta(days=1), 5, LONG) == []
    assert sorted(row.key for row in await store.claim("w2", later, 5, LONG)) == ["a", "b"]
    await store.close()


def _added_columns() -> list[str]:
    """The columns the migrations add after version 1."""
    from sectigo_iot.fleet._sql import MIGRATIONS

    statements = [statement for added in MIGRATIONS.values() for statement in added]
    return [s.split("ADD COLUMN ")[1].split()[0] for s in statements if "ADD COLUMN" in s]


def test_both_stores_work_under_trio(backend: Backend) -> None:
    async def main() -> list[str]:
        store = backend.make()
        await store.open()
        await put(store, "a")
        [row] = await store.claim("w1", NOW, 5, LONG)
        assert await store.save(
            Change(row=row.replace(state=RecordState.VALID)), "w1", release=True
        )
        found = [row.state.value for row in await store.list()]
        await store.close()
        return found

    assert anyio.run(main, backend="trio") == ["VALID"]


# -- SQLite: damaged and foreign files ------------------------------------------------


async def test_sqlite_a_file_of_random_bytes_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite3"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError, match=r"fleet\.sqlite3"):
        await SQLiteStore(path, secret_key=KEY).open()


async def test_sqlite_a_truncated_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite3"
    store = SQLiteStore(path, secret_key=KEY)
    await store.open()
    secrets, _ = _secrets()
    for number in range(300):
        await put(store, f"member-{number}", secrets=secrets)
    await store.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])

    damaged = SQLiteStore(path, secret_key=KEY)
    with pytest.raises(StoreError, match=r"fleet\.sqlite3"):
        await damaged.open()
        await damaged.list()
    await damaged.close()


async def test_sqlite_a_database_of_another_application_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(StoreError, match="of something else"):
        await SQLiteStore(path, secret_key=KEY).open()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]


async def test_sqlite_a_database_of_another_application_is_left_byte_for_byte(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="of something else"):
        await SQLiteStore(path, secret_key=KEY).open()
    assert path.read_bytes() == before


# -- PostgreSQL: arguments, secrets in URLs, schemas, a server that goes away -----------


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://fleet:hunter2-pw@db/fleet", "mysql://"),
        ("sqlite:///var/lib/fleet.sqlite3", "sqlite://"),
        ("https://fleet:hunter2-pw@db.example.com/", "https://"),
        ("postgresql+psycopg://fleet:hunter2-pw@db/fleet", "postgresql+psycopg://"),
        ("/var/lib/fleet.sqlite3", "no URL scheme"),
    ],
)
def test_postgres_a_url_of_another_scheme_is_invalid_input(url: str, scheme: str) -> None:
    from sectigo_iot.fleet._postgres import PostgresStore

    with pytest.raises(InvalidInputError, match="needs a postgresql:// URL") as caught:
        PostgresStore(url, secret_key=KEY)
    assert scheme in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://fleet:Top%zzSecret@db/fleet", 'invalid percent-encoded token: "***"'),
        (
            "postgresql://fleet@db/fleet?password=Top%zzSecret",
            'invalid percent-encoded token: "***"',
        ),
        ("postgresql://fleet:TopSecret@db/fleet?bogus=1", 'invalid URI query parameter: "bogus"'),
    ],
)
def test_postgres_a_url_libpq_cannot_read_is_invalid_input_without_its_password(
    url: str, reason: str
) -> None:
    from sectigo_iot.fleet._postgres import PostgresStore

    needs_psycopg()

    with pytest.raises(InvalidInputError, match="cannot be read") as caught:
        PostgresStore(url, secret_key=KEY)
    assert reason in str(caught.value)
    assert "Secret" not in str(caught.value)


def test_postgres_a_store_needs_a_secret_of_32_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sectigo_iot.fleet._postgres import PostgresStore

    needs_psycopg()
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(InvalidInputError, match="openssl rand -base64 32") as caught:
        PostgresStore("postgresql://db/fleet")
    assert KEY_ENV in str(caught.value)
    with pytest.raises(InvalidInputError, match="at least 32"):
        PostgresStore("postgresql://db/fleet", secret_key="short")
    monkeypatch.setenv(KEY_ENV, KEY)
    assert PostgresStore("postgresql://db/fleet").location == "postgresql://db/fleet"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"schema": "Sectigo"}, "lower-case SQL name"),
        ({"schema": 'x"; DROP TABLE users; --'}, "lower-case SQL name"),
        ({"schema": ""}, "lower-case SQL name"),
        ({"schema": "a" * 64}, "at most 63"),
        ({"schema": "pg_fleet"}, "PostgreSQL's"),
        ({"max_connections": 0}, "at least 1"),
        ({"min_connections": 5, "max_connections": 2}, "at least min_connections"),
        ({"min_connections": -1}, ">= 0"),
    ],
)
def test_postgres_bad_arguments_are_invalid_input(arguments: dict[str, Any], message: str) -> None:
    from sectigo_iot.fleet._postgres import PostgresStore

    with pytest.raises(InvalidInputError, match=message):
        PostgresStore("postgresql://db/fleet", secret_key=KEY, **arguments)


def test_importing_the_fleet_does_not_import_psycopg() -> None:
    code = (
        "import sys, sectigo_iot.fleet\n"
        "assert not [m for m in sys.modules if m.startswith('psycopg')], sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_postgres_without_psycopg_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"  # as if it were not installed
        "from sectigo_iot.errors import InvalidInputError\n"
        "from sectigo_iot.fleet._postgres import PostgresStore\n"
        "try:\n"
        f"    PostgresStore('postgresql://db/fleet', secret_key={KEY!r})\n"
        "except InvalidInputError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'sectigo-iot[postgres]'" in done.stdout


async def test_postgres_a_password_never_shows_in_location_errors_or_logs(
    postgres_server: PostgresServer,
    postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sectigo_iot.fleet import _postgres

    password = "pw-Secret-4f1c9e"
    postgres_server.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PASSWORD_ROLE}') "
        f"THEN CREATE ROLE {PASSWORD_ROLE} LOGIN; END IF; END $$"
    )
    postgres_server.execute(f"ALTER ROLE {PASSWORD_ROLE} PASSWORD '{password}'")
    postgres_server.execute(f"GRANT CREATE ON DATABASE fleet TO {PASSWORD_ROLE}")
    caplog.set_level(logging.DEBUG)

    right = _postgres.PostgresStore(
        postgres_server.url("fleet", PASSWORD_ROLE, password),
        secret_key=KEY,
        schema=postgres_schema,
    )
    try:
        await right.open()
        await put(right, "a")
        assert password not in right.location and password not in repr(right)
        assert (
            right.location
            == f"postgresql://{PASSWORD_ROLE}:***@127.0.0.1:{postgres_server.port}/fleet"
        )
    finally:
        await right.close()

    in_query = _postgres.PostgresStore(
        f"postgresql://127.0.0.1/fleet?user=x&password={password}", secret_key=KEY
    )
    assert password not in in_query.location and "password=***" in in_query.location

    monkeypatch.setattr(_postgres, "POOL_WAIT", 0.5)
    wrong = _postgres.PostgresStore(
        postgres_server.url("fleet", PASSWORD_ROLE, password[::-1]), secret_key=KEY
    )
    wrong.reconnect_for = 1.0
    wrong_password = password[::-1]
    try:
        with pytest.raises(StoreError, match="password authentication failed") as caught:
            await wrong.open()
    finally:
        await wrong.close()
    assert wrong_password not in str(caught.value) and "***" in str(caught.value)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "password authentication failed" in logged  # what was logged is checked
    assert password not in logged and wrong_password not in logged


async def test_postgres_a_second_opener_waits_for_the_first_to_make_the_tables(
    postgres_url: str, postgres_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    from sectigo_iot.fleet._postgres import PostgresStore

    first = PostgresStore(postgres_url, secret_key=KEY, schema=postgres_schema)
    second = PostgresStore(postgres_url, secret_key=KEY, schema=postgres_schema)
    caplog.set_level(logging.WARNING)

    def first_opens_slowly() -> None:  # a process in the middle of making the tables
        with first._dialect.transaction(durable=True) as cursor:
            first._sealer = first._open(cursor)
            time.sleep(0.6)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, first_opens_slowly)
            await anyio.sleep(0.2)
            await second.open()  # waits, then finds the tables: no clash, nothing retried
        assert [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()] == []
        secrets, _ = _secrets()
        await put(first, "a", secrets=secrets)
        assert (await second.get("a")).secrets == secrets  # type: ignore[union-attr]
    finally:
        await first.close()
        await second.close()


async def test_postgres_tables_live_in_their_own_schema(
    postgres_url: str, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    from sectigo_iot.fleet._postgres import PostgresStore

    one = PostgresStore(postgres_url, secret_key=KEY, schema=postgres_schema)
    other = PostgresStore(postgres_url, secret_key=OTHER_KEY, schema=postgres_schema + "_b")
    try:
        await one.open()
        await other.open()
        await put(one, "a")
        assert await other.list() == []
        assert [row.key for row in await one.list()] == ["a"]
    finally:
        await one.close()
        await other.close()
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (postgres_schema,)
        ).fetchall()
        indexes = connection.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s ORDER BY 1", (postgres_schema,)
        ).fetchall()
        version = connection.execute(
            f'SELECT value FROM "{postgres_schema}".meta '  # type: ignore[arg-type]  # noqa: S608
            "WHERE name = 'schema_version'"
        ).fetchall()
    assert [name for (name,) in tables] == ["history", "meta", "records"]
    assert {"records_due", "records_state", "history_key"} <= {name for (name,) in indexes}
    assert version == [(str(SCHEMA_VERSION),)]


async def test_postgres_connections_are_named_and_close_ends_them(
    postgres_server: PostgresServer, postgres_schema: str
) -> None:
    from sectigo_iot.fleet import _postgres

    def connected(name: str) -> int:
        import psycopg

        with psycopg.connect(postgres_server.url("fleet")) as connection:
            query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            return int(connection.execute(query, (name,)).fetchall()[0][0])

    def name_of(store: SQLStore) -> str:
        with store._dialect.transaction(durable=True) as cursor:
            return str(cursor.run("SELECT current_setting('application_name')")[0][0])

    plain, named = (
        _postgres.PostgresStore(url, secret_key=KEY, schema=postgres_schema, min_connections=2)
        for url in (
            postgres_server.url("fleet"),
            postgres_server.url("fleet") + "?application_name=fleet_close_test",
        )
    )
    try:
        for store in (plain, named):
            await store.open()
        assert name_of(plain) == _postgres.APPLICATION_NAME
        assert name_of(named) == "fleet_close_test" and connected("fleet_close_test") >= 1
        await named.close()
        for _ in range(100):  # a closed connection leaves pg_stat_activity as its backend ends
            if connected("fleet_close_test") == 0:
                break
            await anyio.sleep(0.05)
        assert connected("fleet_close_test") == 0
        await put(named, "a")  # a closed store opens again
        assert [row.key for row in await plain.list()] == ["a"]
    finally:
        await plain.close()
        await named.close()


async def test_postgres_a_schema_holding_tables_of_something_else_is_refused(
    postgres_url: str, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    from sectigo_iot.fleet._postgres import PostgresStore

    postgres_server.execute(f'CREATE SCHEMA "{postgres_schema}"', database="fleet")
    postgres_server.execute(f'CREATE TABLE "{postgres_schema}".records (id int)', database="fleet")
    store = PostgresStore(postgres_url, secret_key=KEY, schema=postgres_schema)
    try:
        with pytest.raises(StoreError, match=r"holds tables of something else \(records\)"):
            await store.open()
    finally:
        await store.close()


async def test_postgres_a_call_while_the_server_restarts_waits_for_it(
    postgres_url: str, postgres_server: PostgresServer, postgres_schema: str
) -> None:
    from sectigo_iot.fleet._postgres import PostgresStore

    store = PostgresStore(postgres_url, secret_key=KEY, schema=postgres_schema)
    try:
        await store.open()
        await put(store, "a")
        postgres_server.restart()  # between calls: the pooled connections are dead
        assert (await store.get("a")) is not None

        postgres_server.stop()  # within a call: it starts while the server is down
        restarted = threading.Timer(1.0, postgres_server.start)
        restarted.start()
        try:
            made = await put(store, "b", NOW + timedelta(seconds=1))
            [claimed] = await store.claim("w1", NOW, 5, LONG)
        finally:
            restarted.join()
        assert made.fence == 1 and claimed.key == "a"
        assert [row.key for row in await store.list()] == ["a", "b"]
    finally:
        if not postgres_server.running:
            postgres_server.start()
        await store.close()


async def test_postgres_a_server_gone_past_the_retry_window_is_a_store_error(
    postgres_url: str,
    postgres_server: PostgresServer,
    postgres_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sectigo_iot.fleet import _postgres

    monkeypatch.setattr(_postgres, "POOL_WAIT", 0.5)
    store = _postgres.PostgresStore(postgres_url, secret_key=KEY, schema=postgres_schema)
    store.reconnect_for = 1.5
    try:
        await store.open()
        await put(store, "a")
        postgres_server.stop()
        with pytest.raises(StoreError, match="is unreachable") as caught:
            await put(store, "b")
        assert postgres_url.split("@")[1] in str(caught.value)
        postgres_server.start()
        # nothing lost, nothing half-written; the next call goes on
        assert [row.key for row in await store.list()] == ["a"]
    finally:
        if not postgres_server.running:
            postgres_server.start()
        await store.close()


# -- SQLite's own secret, in a 0600 file beside the database ---------------------------

_OPEN_STORE = """
import anyio, sys
from sectigo_iot.fleet import SQLiteStore

async def main():
    store = SQLiteStore(sys.argv[1])
    await store.open()
    await store.close()

anyio.run(main)
"""


def test_sqlite_without_a_secret_keeps_a_random_one_in_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    path = tmp_path / "fleet.sqlite3"
    # three processes making the new store at once agree on one secret
    starts = [subprocess.Popen([sys.executable, "-c", _OPEN_STORE, str(path)]) for _ in range(3)]
    assert [start.wait(timeout=60) for start in starts] == [0, 0, 0]
    key_file = tmp_path / "fleet.sqlite3.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_bytes().strip()) >= 32
    assert subprocess.run([sys.executable, "-c", _OPEN_STORE, str(path)]).returncode == 0

    key_file.rename(tmp_path / "elsewhere.key")
    with pytest.raises(StoreError, match=r"fleet\.sqlite3\.key is missing"):
        SQLiteStore(path)
    assert not key_file.exists()  # no new secret made for a store that has one
    monkeypatch.setenv(KEY_ENV, KEY)
    with pytest.raises(StoreError, match="another key"):
        anyio.run(SQLiteStore(path).open)  # the environment's secret is not the store's
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(InvalidInputError, match="at least 32 characters"):
        SQLiteStore(tmp_path / "other.sqlite3")
