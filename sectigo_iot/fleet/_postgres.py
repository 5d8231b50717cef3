"""The store for replicas: PostgreSQL through psycopg 3 and its connection pool.

The tables live in a schema of their own (default ``sectigo``), so they can sit in the
application's database. Lease times come from the database's clock, so hosts whose
clocks disagree still agree on who holds a record; a claim locks its rows (``FOR UPDATE
SKIP LOCKED``) only for its own short transaction.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..errors import InvalidInputError
from ._sql import Cursor, SQLStore
from ._store import KEY_ENV, StoreError, secret_from

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["PostgresStore"]

_SCHEMES = ("postgresql", "postgres")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
#: how long a call waits for a pooled connection before it counts as a lost one
POOL_WAIT = 5.0
#: how the store's connections show in ``pg_stat_activity`` (unless the URL names one)
APPLICATION_NAME = "sectigo-iot fleet"

_TABLES = """
CREATE TABLE {p}records (
    key text PRIMARY KEY, spec text NOT NULL, state text NOT NULL, serial_number text,
    not_after double precision, batch_id bigint, failures integer NOT NULL DEFAULT 0,
    last_error text, next_action_at double precision, attempt text, sealed bytea,
    delivered text NOT NULL DEFAULT '[]', revoke_owed text NOT NULL DEFAULT '[]',
    fence bigint NOT NULL DEFAULT 0, lease_owner text, lease_expires double precision);
CREATE INDEX records_due ON {p}records (next_action_at);
CREATE INDEX records_state ON {p}records (state);
CREATE TABLE {p}history (
    id bigserial PRIMARY KEY, key text NOT NULL, at double precision NOT NULL,
    from_state text, to_state text NOT NULL, description text NOT NULL, worker text NOT NULL);
CREATE INDEX history_key ON {p}history (key, id);
CREATE TABLE {p}meta (name text PRIMARY KEY, value text NOT NULL);
"""


def _drivers() -> tuple[Any, Any]:
    """psycopg and psycopg_pool, imported only when a PostgresStore is made."""
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise InvalidInputError(
            f"PostgresStore needs psycopg 3 and psycopg-pool ({exc.name} is missing): "
            "pip install 'sectigo-iot[postgres]'"
        ) from None
    return psycopg, psycopg_pool


def _redacted(url: str) -> tuple[str, list[str]]:
    """``url`` with its passwords (in the user part or a ``password=`` parameter)
    replaced by ``***``, and the passwords, as written and decoded."""
    parts = urlsplit(url)
    secrets = []
    netloc = parts.netloc
    if "@" in netloc:
        user, hosts = netloc.rsplit("@", 1)
        if ":" in user:
            user, password = user.split(":", 1)
            secrets.append(password)
            netloc = f"{user}:***@{hosts}"
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "password":
            secrets.append(value)
            value = "***"
        query.append((name, value))
    secrets += [unquote(secret) for secret in secrets]
    location = urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
    return location, sorted({secret for secret in secrets if secret}, key=len, reverse=True)


class _PostgresCursor:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # The shared SQL marks each value with ``?`` and holds no other ``?`` and no ``%``
        # (it names only tables, columns and SQL words; every value is a parameter), so
        # this replace is the whole translation to psycopg's ``%s``.
        cursor = self._connection.execute(sql.replace("?", "%s"), tuple(params))
        return cursor.fetchall() if cursor.description is not None else []


#: a transaction idle this long is ended by the server: a worker stopped (SIGSTOP) or cut
#: off inside one must not hold its row locks past its lease (ours last milliseconds)
IDLE_TRANSACTION_TIMEOUT = "15s"


def _configure(connection: psycopg.Connection[Any]) -> None:
    connection.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_TRANSACTION_TIMEOUT}'")


class _Postgres:
    """The PostgreSQL dialect: a pool of connections, one transaction per call."""

    clock = "extract(epoch from clock_timestamp())::double precision"
    lock_row = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, schema: str, min_connections: int, max_connections: int):
        self._psycopg, self._psycopg_pool = _drivers()
        self.location, self._secrets = _redacted(url)
        try:  # libpq's own reading of the URL; its message may quote the password
            options = self._psycopg.conninfo.conninfo_to_dict(url)
        except self._psycopg.Error as exc:
            raise InvalidInputError(
                f"the PostgreSQL URL {self.location} cannot be read: {self.describe(exc)}"
            ) from None
        self._url = url
        # transactions are explicit (transaction()); the server lists us by name
        self._options = {"autocommit": True, "application_name": APPLICATION_NAME}
        if "application_name" in options:
            del self._options["application_name"]  # the URL's name wins
        self._schema = schema
        self.prefix = f'"{schema}".'
        self._sizes = (min_connections, max_connections)
        # a lost connection, a server starting or stopping, a pool out of connections
        # (all OperationalError), a serialization failure or deadlock (TransactionRollback,
        # one too), and the second of two inserts of one new key: tried again, the row is
        # then there
        self.transient: tuple[type[BaseException], ...] = (
            self._psycopg.OperationalError,
            self._psycopg_pool.PoolTimeout,
            self._psycopg.errors.UniqueViolation,
            # the server ended a transaction left idle (its process was stopped): the
            # call is redone, and its fenced write refused
            self._psycopg.errors.IdleInTransactionSessionTimeout,
        )
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None

    def _connections(self) -> psycopg_pool.ConnectionPool[Any]:
        with self._lock:
            if self._pool is None:
                low, high = self._sizes
                self._pool = self._psycopg_pool.ConnectionPool(
                    self._url,
                    min_size=low,
                    max_size=high,
                    kwargs=self._options,
                    open=True,  # connects in the background
                    name=f"sectigo-fleet {self.location}",
                    configure=_configure,
                )
            return self._pool

    @contextlib.contextmanager
    def transaction(self, durable: bool) -> Iterator[Cursor]:  # every commit is durable
        pool = self._connections()
        try:
            connection = pool.getconn(timeout=POOL_WAIT)
        except self._psycopg_pool.PoolTimeout:
            self._raise_why_no_connection()
            raise
        try:
            with connection.transaction():
                yield _PostgresCursor(connection)
        finally:
            pool.putconn(connection)  # a broken connection is dropped, a new one made

    def _raise_why_no_connection(self) -> None:
        """The error of a connection made now, when there is one (the pool only logs
        why it cannot connect: a wrong password, a database that does not exist)."""
        self._psycopg.connect(self._url, connect_timeout=int(POOL_WAIT) or 1).close()

    def create_tables(self, cursor: Cursor) -> None:
        cursor.run(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
        for statement in _TABLES.format(p=self.prefix).split(";"):
            if statement.strip():
                cursor.run(statement)

    def schema_version(self, cursor: Cursor) -> int:
        # held until this transaction ends: of two processes opening a new database at
        # once, the second waits, then finds the tables the first made
        cursor.run("SELECT pg_advisory_xact_lock(hashtext(?))", (f"sectigo-fleet {self._schema}",))
        if cursor.run("SELECT to_regclass(?)", (self.prefix + "meta",))[0][0] is None:
            tables = cursor.run(
                "SELECT tablename FROM pg_tables WHERE schemaname = ?", (self._schema,)
            )
            if tables:
                raise StoreError(
                    f"schema {self._schema!r} of {self.location} holds tables of something "
                    f"else ({', '.join(sorted(name for (name,) in tables))}) but no fleet "
                    "schema version; give the fleet a schema of its own (schema=)"
                )
            return 0
        found = cursor.run(f"SELECT value FROM {self.prefix}meta WHERE name = 'schema_version'")
        try:
            return int(found[0][0])
        except (IndexError, ValueError):
            raise StoreError(
                f"the fleet store {self.location} (schema {self._schema!r}) has no readable "
                "schema version: it is damaged"
            ) from None

    def set_schema_version(self, cursor: Cursor, version: int) -> None:
        cursor.run(
            f"INSERT INTO {self.prefix}meta (name, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (str(version),),
        )

    def describe(self, error: BaseException) -> str:
        text = " ".join(f"{type(error).__name__}: {error}".split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


class PostgresStore(SQLStore):
    """The fleet's records in PostgreSQL: for several workers on several hosts.

    ``url`` is a ``postgresql://`` connection URL (libpq's form); the tables go in
    ``schema`` (made when missing). Secrets are sealed with a key derived from
    ``secret_key`` (or ``SECTIGO_FLEET_KEY``), which is required: keep it, the store
    opens only with it. Needs the ``postgres`` extra (psycopg 3 and its pool).
    """

    def __init__(
        self,
        url: str,
        *,
        secret_key: str | bytes | None = None,
        schema: str = "sectigo",
        min_connections: int = 1,
        max_connections: int = 10,
    ) -> None:
        if not isinstance(url, str):
            raise InvalidInputError(f"url must be a str, got {type(url).__name__}")
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in _SCHEMES:
            got = f"a {scheme}:// URL" if scheme else "no URL scheme"
            raise InvalidInputError(
                f"PostgresStore needs a postgresql:// URL (got {got}); for example "
                "postgresql://user@host:5432/database (for a file, use SQLiteStore)"
            )
        if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
            raise InvalidInputError(
                f"schema must be a lower-case SQL name ([a-z_][a-z0-9_]*, at most 63 "
                f"characters), got {schema!r}"
            )
        if schema.startswith("pg_"):
            raise InvalidInputError(f"schema {schema!r}: names starting with pg_ are PostgreSQL's")
        sizes = {"min_connections": min_connections, "max_connections": max_connections}
        for name, value in sizes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInputError(f"{name} must be a whole number >= 0, got {value!r}")
        if max_connections < max(1, min_connections):
            raise InvalidInputError(
                f"max_connections ({max_connections}) must be at least 1 and at least "
                f"min_connections ({min_connections})"
            )
        secret = secret_from(secret_key)
        if secret is None:
            raise InvalidInputError(
                "PostgresStore needs a secret to seal the records' keys and passwords: give "
                f"secret_key= or set {KEY_ENV} (make one with 'openssl rand -base64 32', "
                "and keep it: the store opens only with it)"
            )
        super().__init__(_Postgres(url, schema, min_connections, max_connections), secret)
        self.schema = schema
