"""A fleet worker in its own process, for the tests that kill, stop and race workers
(``tests/fleet/test_fleet_processes.py``)::

    python -m tests.fleet.worker --store fleet.sqlite3 --emulator http://127.0.0.1:PORT \\
        --sinks DIR [--once] [--kill-at WHEN] [--hold KEY] [--fail KEY=FILE] ...

It works on the store's records with a real ``Fleet`` against the emulator served on
``--emulator``, through two sinks, ``a`` then ``b``, each appending one JSON line per
call to ``DIR/<name>.jsonl`` (key, serial, delivery id, worker). The secret of the
store comes from ``SECTIGO_FLEET_KEY``. It prints one JSON line when the store is open
(``{"ready": ..., "pid": ...}``), then works: one ``run_once()`` with ``--once``, else
``run()`` until every record of the store is VALID (then ``stop()``: the steps in
flight finish). Then it prints its results as a last JSON line and exits 0. Its log
(the fleet's warnings) goes to stderr. With ``--wait-go`` it starts only once a line
comes on its stdin: a test starts the next worker while one works, so that the time a
process takes to start is not waited for.

Ways to make it misbehave on purpose:

* ``--kill-at WHEN``: SIGKILL itself at a step boundary, the first time any record
  passes it: ``before:X>Y`` / ``after:X>Y`` around the save of the change of state X
  to Y; ``in-sink:NAME`` once sink NAME has written its line (the save that records it
  not done); ``after-delivered:NAME`` once the save recording NAME is done.
* ``--stop-at WHEN``: SIGSTOP itself there instead (writing ``DIR/stopped`` first);
  it goes on where it stopped when the test sends SIGCONT.
* ``--stop-in-save-transaction``: SIGSTOP itself inside the first save's transaction,
  its UPDATE done, not committed (the row or the database stays locked).
* ``--hold KEY``: sink ``a`` holds the delivery of KEY (it writes ``DIR/held`` and waits
  for ``DIR/release``) before writing its line: a worker stalled in a step.
* ``--fail KEY=FILE``: sink ``b`` fails for KEY until FILE exists (each failed call
  appends a line to ``DIR/b-failed.jsonl``).

Times are scaled down for tests, nothing else of the fleet is changed: its retry
backoff (1 minute, doubling, at most 1 hour) to ``--retry-first`` / ``--retry-max``
seconds; with ``--reconnect-for`` the store gives up on a database that is away after
that many seconds (its ``reconnect_for``, 30 s); ``--pool-wait`` is how long a
PostgreSQL call waits for a connection (``POOL_WAIT``, 5 s), and
``--idle-transaction-timeout`` how long PostgreSQL lets a transaction sit idle before
it ends it (``IDLE_TRANSACTION_TIMEOUT``, 15 s).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio

from sectigo_iot import SectigoClient
from sectigo_iot.fleet import Delivery, Fleet, RecordState, Store, StoreError, _fleet, open_store
from sectigo_iot.fleet._store import Change

#: what the fleet imports when it first needs it (sealing, certificates)
_LOADED_ON_FIRST_USE = (
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.kdf.hkdf",
    "sectigo_iot.certs",
)
USERNAME = "tester"
PASSWORD = "supersecretsquirrel"  # the emulator's well-known test password


def _stop(folder: Path) -> None:
    """SIGSTOP this process (``folder/stopped`` says so first); it goes on at SIGCONT."""
    (folder / "stopped").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGSTOP)


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class LineSink:
    """Appends one JSON line per delivery to ``folder/<name>.jsonl`` (one write with
    O_APPEND: whole lines, even with several processes and a kill after it)."""

    def __init__(self, name: str, folder: Path, worker: str, options: argparse.Namespace):
        self.name = name
        self.folder = folder
        self.worker = worker
        self.options = options

    async def deliver(self, delivery: Delivery) -> None:
        options = self.options
        if self.name == "a" and delivery.key == options.hold:
            (self.folder / "held").write_text(str(os.getpid()))
            # released by the test process: a file, as no event crosses processes
            while not (self.folder / "release").exists():  # noqa: ASYNC110
                await anyio.sleep(0.02)
        if self.name == "b" and options.fail is not None:
            key, until = options.fail.split("=", 1)
            if delivery.key == key and not Path(until).exists():
                self._append("b-failed", delivery)
                raise RuntimeError(f"sink b is down for {key}")
        self._append(self.name, delivery)
        if options.kill_at == f"in-sink:{self.name}":
            _die()

    def _append(self, file: str, delivery: Delivery) -> None:
        line = {
            "key": delivery.key,
            "serial": delivery.serial_number,
            "delivery_id": delivery.delivery_id,
            "leaf_serial": format(delivery.bundle.certificate.serial_number, "X"),
            "worker": self.worker,
        }
        data = (json.dumps(line) + "\n").encode()
        descriptor = os.open(self.folder / f"{file}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(descriptor, data)
        finally:
            os.close(descriptor)


def _signal_on_save(store: Store, when: str, act: Callable[[], None]) -> None:
    """Make ``store.save`` ``act`` (once) at the boundary ``when`` names."""
    real_save = store.save
    moment, _, what = when.partition(":")
    acted = False

    def matches(change: Change) -> bool:
        if acted:
            return False
        if moment == "after-delivered":
            return change.row.delivered[-1:] == (what,)
        old, _, new = what.partition(">")
        return any(
            entry.from_state is not None
            and entry.from_state.value == old
            and entry.to_state.value == new
            for entry in change.history
        )

    async def save(change: Change, worker: str, *, release: bool, durable: bool = True) -> bool:
        nonlocal acted
        hit = matches(change)
        if hit and moment == "before":
            acted = True
            act()
        saved = await real_save(change, worker, release=release, durable=durable)
        if hit and saved and not acted:
            acted = True
            act()
        return saved

    store.save = save  # type: ignore[method-assign]


def _stop_in_save_transaction(store: Store, folder: Path) -> None:
    """SIGSTOP this process (once) inside the transaction of a save, right after its
    UPDATE: the row stays locked (PostgreSQL) or the database (SQLite) while it stops."""
    dialect: Any = store._dialect  # type: ignore[attr-defined]
    real_transaction = dialect.transaction
    stopped = False

    class Cursor:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
            nonlocal stopped
            rows: list[tuple[Any, ...]] = self._cursor.run(sql, params)
            if not stopped and sql.startswith("UPDATE") and "SET spec = ?" in sql:
                stopped = True
                _stop(folder)
            return rows

    @contextlib.contextmanager
    def transaction(durable: bool) -> Iterator[Cursor]:
        with real_transaction(durable) as cursor:
            yield Cursor(cursor)

    dialect.transaction = transaction


async def _stop_when_all_valid(fleet: Fleet) -> None:
    """``fleet.stop()`` (the steps in flight finish) once every record is VALID."""
    while True:
        try:
            counts = await fleet.store.count()
        except StoreError:  # the database is away: the fleet's passes say so
            counts = {}
        if counts and set(counts) == {RecordState.VALID}:
            fleet.stop()
            return
        await anyio.sleep(0.1)


async def main(options: argparse.Namespace) -> None:
    store = open_store(options.store) if not options.schema else _postgres_store(options)
    if options.kill_at and not options.kill_at.startswith("in-sink:"):
        _signal_on_save(store, options.kill_at, _die)
    if options.reconnect_for is not None:
        store.reconnect_for = options.reconnect_for  # type: ignore[attr-defined]
    if options.pool_wait is not None or options.idle_transaction_timeout is not None:
        from sectigo_iot.fleet import _postgres as postgres

        if options.pool_wait is not None:
            postgres.POOL_WAIT = options.pool_wait
        if options.idle_transaction_timeout is not None:
            postgres.IDLE_TRANSACTION_TIMEOUT = options.idle_transaction_timeout
    if options.stop_in_save_transaction:
        _stop_in_save_transaction(store, Path(options.sinks))
    if options.stop_at:
        _signal_on_save(store, options.stop_at, functools.partial(_stop, Path(options.sinks)))
    client = SectigoClient(
        USERNAME,
        PASSWORD,
        base_url=options.emulator,
        token_store="memory",
        allow_insecure_http=True,
        timeout=options.timeout,
        max_retries=1,
    )
    worker = options.worker_id or f"worker-{os.getpid()}"
    folder = Path(options.sinks)
    sinks = [LineSink(name, folder, worker, options) for name in ("a", "b")]
    results: list[dict[str, Any]] = []
    async with (
        client,
        Fleet(
            client,
            store,
            sinks=sinks,
            concurrency=options.concurrency,
            lease=timedelta(seconds=options.lease),
            poll_interval=timedelta(seconds=options.poll),
            settle=timedelta(seconds=options.settle),
            worker_id=worker,
        ) as fleet,
    ):
        print(json.dumps({"ready": worker, "pid": os.getpid()}), flush=True)
        if options.once:
            done = await fleet.run_once()
            results = [
                {"key": r.key, "from": r.from_state.value, "to": r.to_state.value} for r in done
            ]
        else:
            async with anyio.create_task_group() as group:
                group.start_soon(fleet.run)
                group.start_soon(_stop_when_all_valid, fleet)
    print(json.dumps({"worker": worker, "results": results}), flush=True)


def _postgres_store(options: argparse.Namespace) -> Store:
    from sectigo_iot.fleet._postgres import PostgresStore

    return PostgresStore(options.store, schema=options.schema)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.fleet.worker")
    parser.add_argument("--store", required=True, help="an SQLite path or a postgresql:// URL")
    parser.add_argument("--schema", help="the PostgreSQL schema of the store")
    parser.add_argument("--emulator", required=True, help="the served emulator's base URL")
    parser.add_argument("--sinks", required=True, help="the folder of the sinks' files")
    parser.add_argument("--once", action="store_true", help="one run_once(), then exit")
    parser.add_argument("--worker-id")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lease", type=float, default=3.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=2.0, help="the client's, seconds")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds")
    parser.add_argument("--poll", type=float, default=0.2, help="poll interval, seconds")
    parser.add_argument("--retry-first", type=float, default=0.2, help="seconds")
    parser.add_argument("--retry-max", type=float, default=1.0, help="seconds")
    parser.add_argument(
        "--reconnect-for", type=float, help="how long a store call retries a lost database"
    )
    parser.add_argument("--pool-wait", type=float, help="PostgreSQL: wait for a connection")
    parser.add_argument("--idle-transaction-timeout", help="PostgreSQL: as '2s'")
    parser.add_argument("--kill-at")
    parser.add_argument("--stop-at")
    parser.add_argument("--stop-in-save-transaction", action="store_true")
    parser.add_argument("--hold")
    parser.add_argument("--fail")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--wait-go", action="store_true", help="start once a line comes on stdin (started ahead)"
    )
    return parser


def run(argv: Sequence[str] | None = None) -> None:
    options = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s"
    )
    _fleet.RETRY_FIRST = timedelta(seconds=options.retry_first)
    _fleet.RETRY_MAX = timedelta(seconds=options.retry_max)
    if options.wait_go:
        for module in _LOADED_ON_FIRST_USE:  # now: its turn starts with the work
            importlib.import_module(module)
        sys.stdin.readline()
    anyio.run(main, options, backend=options.backend)


if __name__ == "__main__":
    run()
