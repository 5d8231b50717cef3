"""The embedded store: one SQLite file, shared by the processes of one host (WAL)."""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._files import write_atomic
from ..errors import InvalidInputError
from ._sql import Cursor, SQLStore
from ._store import SCHEMA_VERSION, StoreError, secret_from

__all__ = ["SQLiteStore"]

_TABLES = """
CREATE TABLE records (
    key TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, serial_number TEXT,
    not_after REAL, batch_id INTEGER, failures INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    next_action_at REAL, attempt TEXT, sealed BLOB, delivered TEXT NOT NULL DEFAULT '[]',
    revoke_owed TEXT NOT NULL DEFAULT '[]', fence INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT, lease_expires REAL);
CREATE INDEX records_due ON records (next_action_at);
CREATE INDEX records_state ON records (state);
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, at REAL NOT NULL,
    from_state TEXT, to_state TEXT NOT NULL, description TEXT NOT NULL, worker TEXT NOT NULL);
CREATE INDEX history_key ON history (key, id);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class _SQLiteCursor:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, tuple(params)).fetchall()


class _SQLite:
    """The SQLite dialect: one connection per store, one transaction at a time."""

    clock = "((julianday('now') - 2440587.5) * 86400.0)"
    lock_row = skip_locked = ""  # BEGIN IMMEDIATE already holds the database's write lock
    prefix = ""
    transient: tuple[type[BaseException], ...] = ()  # busy_timeout waits for the lock

    def __init__(self, path: Path) -> None:
        self.location = str(path)
        self._path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(
                self._path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            if self._is_ours(connection):  # another's database is left as it is
                connection.execute("PRAGMA journal_mode = WAL")
            self._connection = connection
        return self._connection

    @staticmethod
    def _is_ours(connection: sqlite3.Connection) -> bool:
        """Whether the file is new or a fleet store this version understands (read only)."""
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version == 0:
            return not connection.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        return version <= SCHEMA_VERSION

    @contextlib.contextmanager
    def transaction(self, durable: bool) -> Iterator[Cursor]:
        with self._lock:
            connection = self._connect()
            # WAL: NORMAL commits survive a crash of the process; FULL ones (fsync'd) a
            # power cut too, and with them every commit before
            connection.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteCursor(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def create_tables(self, cursor: Cursor) -> None:
        for statement in _TABLES.split(";"):
            if statement.strip():
                cursor.run(statement)

    def schema_version(self, cursor: Cursor) -> int:
        version = int(cursor.run("PRAGMA user_version")[0][0])
        if version == 0 and cursor.run("SELECT name FROM sqlite_master LIMIT 1"):
            raise StoreError(
                f"{self.location} is an SQLite database of something else (it has tables "
                "but no fleet schema version); give the fleet a file of its own"
            )
        return version

    def set_schema_version(self, cursor: Cursor, version: int) -> None:
        cursor.run(f"PRAGMA user_version = {int(version)}")

    def describe(self, error: BaseException) -> str:
        return f"{type(error).__name__}: {error}"

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class SQLiteStore(SQLStore):
    """The fleet's records in one SQLite file: the embedded default, for one host.

    Several processes on the host may share the file. Secrets are sealed with a key
    derived from ``secret_key`` (or ``SECTIGO_FLEET_KEY``); without either, a random
    secret is kept in ``<path>.key`` (0600) beside the database, made with it.
    """

    def __init__(self, path: str | os.PathLike[str], *, secret_key: str | bytes | None = None):
        database = Path(os.path.abspath(os.fspath(path)))
        secret = secret_from(secret_key)
        if secret is None:
            secret = _key_file_secret(database)
        super().__init__(_SQLite(database), secret)
        self.path = database


def _key_file_secret(database: Path) -> bytes:
    """The secret in ``<database>.key``, made (0600, written atomically: never read
    half-written by another process) when the database is new."""
    key_file = database.with_name(database.name + ".key")
    try:
        return _read_secret(key_file)
    except FileNotFoundError:
        pass
    if database.exists() and database.stat().st_size > 0:
        raise StoreError(
            f"{key_file} is missing: the fleet store {database} was sealed with the "
            "secret it held (or give the store's secret_key / SECTIGO_FLEET_KEY)"
        )
    if not database.parent.is_dir():
        raise StoreError(f"cannot make the fleet store {database}: no folder {database.parent}")
    secret = base64.b64encode(os.urandom(32))
    try:
        write_atomic(key_file, secret + b"\n", mode=0o600, overwrite=False)
    except InvalidInputError:  # another process made it first: theirs is the one
        return _read_secret(key_file)
    return secret


def _read_secret(key_file: Path) -> bytes:
    with open(key_file, "rb") as file:
        secret = file.read().strip()
    if len(secret) < 32:
        raise StoreError(f"{key_file} holds no secret of at least 32 characters: it is damaged")
    return secret
