"""SQLite state of the emulator: one connection, guarded by a lock.

In memory by default; with a file path everything persists across restarts: the HMAC
secret, the CA, authorities and balances, the batch-id sequence, batches, certificates
and the archive each batch was first downloaded as. All methods are synchronous and
quick; callers never hold the lock across an ``await``. Every query the API makes
(a user's batch page and count, one batch, its certificates and archive, a search by
CN or serial) is an index search, so it costs the same with 10 batches or 10,000;
only the views for tests read whole tables.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..models import Authority

__all__ = ["BalanceError", "BatchRow", "CertificateRow", "NewBatch", "NewCertificate", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS authorities (
    id INTEGER PRIMARY KEY,
    position INTEGER NOT NULL,
    ecosystem_id INTEGER NOT NULL,
    signer_certificate_id INTEGER NOT NULL,
    ecosystem_name TEXT NOT NULL,
    balance INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    profile_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    authority_id INTEGER NOT NULL,
    profile_id INTEGER NOT NULL,
    profile_name TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    ready_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    reject_reason TEXT NOT NULL,
    params TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0,
    order_number INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_user ON batches (username, id);
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches (id),
    position INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    common_name TEXT NOT NULL,
    created REAL NOT NULL,
    cert_pem BLOB NOT NULL,
    key_pem BLOB,
    revoked_at REAL,
    revocation_reason INTEGER,
    revoked_under_profile INTEGER
);
CREATE INDEX IF NOT EXISTS certificates_by_cn ON certificates (common_name);
CREATE INDEX IF NOT EXISTS certificates_by_batch ON certificates (batch_id, position);
CREATE TABLE IF NOT EXISTS archives (
    batch_id INTEGER PRIMARY KEY REFERENCES batches (id),
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_ready ON batches (ready_at);
CREATE TABLE IF NOT EXISTS counts (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
#: the counts kept with every insert, so that counting never reads a table; a database
#: from before they were kept gets them once, when it is opened
_COUNTS = """
INSERT OR IGNORE INTO counts SELECT 'certificates', COUNT(*) FROM certificates;
INSERT OR IGNORE INTO counts SELECT 'batches:' || username, COUNT(*) FROM batches
    GROUP BY username;
"""
_COUNT_UP = "INSERT INTO counts VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = value + ?"
_FIRST_USER_ID = 295


class BalanceError(Exception):
    """The authority has not enough balance left for the batch."""


@dataclass(frozen=True)
class NewCertificate:
    """A certificate to store with its new batch."""

    serial: str
    device_id: str
    common_name: str
    cert_pem: bytes
    key_pem: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class _BatchFields:
    """What a stored batch and a batch to store have in common."""

    username: str
    name: str
    kind: str
    authority_id: int
    profile_id: int
    profile_name: str
    size: int
    created: float
    ready_at: float
    outcome: str
    reject_reason: str


@dataclass(frozen=True, kw_only=True)
class NewBatch(_BatchFields):
    """A batch to store; ``outcome`` is the status it reaches at ``ready_at``."""

    params: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class BatchRow(_BatchFields):
    """A stored batch (its params, read only where needed: :meth:`Store.batch_params`)."""

    id: int
    collected: bool
    order_number: int


@dataclass(frozen=True)
class CertificateRow:
    """A stored certificate, with the owner and readiness of its batch."""

    serial: str
    batch_id: int
    username: str
    device_id: str
    common_name: str
    created: float
    ready_at: float
    cert_pem: bytes
    key_pem: bytes | None = field(repr=False)
    revoked_at: float | None
    revocation_reason: int | None
    revoked_under_profile: int | None


_BATCH_SELECT = """
SELECT id, username, name, kind, authority_id, profile_id, profile_name, size, created,
       ready_at, outcome, reject_reason, collected, order_number
FROM batches
"""


def _batch(row: sqlite3.Row) -> BatchRow:
    values = dict(row)
    values["collected"] = bool(values["collected"])
    return BatchRow(**values)


_CERT_SELECT = """
SELECT c.serial, c.batch_id, b.username, c.device_id, c.common_name, c.created, b.ready_at,
       c.cert_pem, c.key_pem, c.revoked_at, c.revocation_reason, c.revoked_under_profile
FROM certificates c JOIN batches b ON b.id = c.batch_id
"""


class Store:
    """The emulator's database."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        if self.path is not None and not os.path.exists(self.path):
            # the file holds the test CA's key and PKCS#12 passwords: keep it private
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.executescript(_SCHEMA + _COUNTS)

    def __repr__(self) -> str:
        return f"<Store {self.path or ':memory:'}>"

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._query(sql, params)[0][0]

    # -- setup -------------------------------------------------------------------------

    def meta_setdefault(self, key: str, value: bytes) -> bytes:
        """The stored value of ``key``, storing ``value`` first if there is none."""
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        stored: bytes = self._scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return stored

    def ensure_users(self, names: Sequence[str]) -> dict[str, int]:
        """Give every user a stable numeric id; return ``{name: id}``."""
        with self._transaction() as conn:
            for name in names:
                next_id = conn.execute(
                    "SELECT COALESCE(MAX(id) + 1, ?) FROM users", (_FIRST_USER_ID,)
                ).fetchone()[0]
                conn.execute("INSERT OR IGNORE INTO users VALUES (?, ?)", (name, next_id))
            rows = conn.execute("SELECT name, id FROM users").fetchall()
        return {row["name"]: row["id"] for row in rows}

    def ensure_authorities(self, authorities: Sequence[Authority]) -> None:
        """Store the configured authorities that are not stored yet (balances persist)."""
        with self._transaction() as conn:
            for position, a in enumerate(authorities):
                conn.execute(
                    "INSERT OR IGNORE INTO authorities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        a.id,
                        position,
                        a.ecosystem_id,
                        a.signer_certificate_id,
                        a.ecosystem_name,
                        a.balance,
                        int(a.enabled),
                        a.profile_id,
                        a.profile_name,
                    ),
                )

    # -- authorities -------------------------------------------------------------------

    def authorities(self) -> list[Authority]:
        """The authorities in their configured order, with current balances."""
        rows = self._query("SELECT * FROM authorities ORDER BY position, id")
        return [
            Authority(
                id=row["id"],
                ecosystem_id=row["ecosystem_id"],
                signer_certificate_id=row["signer_certificate_id"],
                ecosystem_name=row["ecosystem_name"],
                balance=row["balance"],
                enabled=bool(row["enabled"]),
                profile_id=row["profile_id"],
                profile_name=row["profile_name"],
            )
            for row in rows
        ]

    def set_balance(self, authority_id: int, balance: int) -> None:
        """Set one authority's balance."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE authorities SET balance = ? WHERE id = ?", (balance, authority_id)
            )
            if cursor.rowcount == 0:
                raise KeyError(authority_id)

    # -- batches -----------------------------------------------------------------------

    def add_batch(
        self,
        batch: NewBatch,
        certificates: Sequence[NewCertificate],
        *,
        first_batch_id: int,
    ) -> BatchRow:
        """Store a batch and its certificates, spending one license per certificate."""
        with self._transaction() as conn:
            if certificates:
                cursor = conn.execute(
                    "UPDATE authorities SET balance = balance - ? WHERE id = ? AND balance >= ?",
                    (len(certificates), batch.authority_id, len(certificates)),
                )
                if cursor.rowcount == 0:
                    raise BalanceError(batch.authority_id)
            batch_id = conn.execute(
                "SELECT COALESCE(MAX(id) + 1, ?) FROM batches", (first_batch_id,)
            ).fetchone()[0]
            batch_id = max(batch_id, first_batch_id)
            conn.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    batch_id,
                    batch.username,
                    batch.name,
                    batch.kind,
                    batch.authority_id,
                    batch.profile_id,
                    batch.profile_name,
                    batch.size,
                    batch.created,
                    batch.ready_at,
                    batch.outcome,
                    batch.reject_reason,
                    json.dumps(dict(batch.params)),
                    batch_id + 80000,
                ),
            )
            conn.executemany(
                "INSERT INTO certificates (serial, batch_id, position, device_id, common_name,"
                " created, cert_pem, key_pem) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.serial,
                        batch_id,
                        position,
                        c.device_id,
                        c.common_name,
                        batch.created,
                        c.cert_pem,
                        c.key_pem,
                    )
                    for position, c in enumerate(certificates)
                ],
            )
            conn.execute(_COUNT_UP, (f"batches:{batch.username}", 1, 1))
            conn.execute(_COUNT_UP, ("certificates", len(certificates), len(certificates)))
            row = conn.execute(_BATCH_SELECT + " WHERE id = ?", (batch_id,)).fetchone()
        return _batch(row)

    def batch(self, batch_id: int, username: str | None = None) -> BatchRow | None:
        """One batch, if it exists (and belongs to ``username`` when given)."""
        rows = self._query(
            _BATCH_SELECT + " WHERE id = ? AND (? IS NULL OR username = ?)",
            (batch_id, username, username),
        )
        return _batch(rows[0]) if rows else None

    def batch_params(self, batch_id: int) -> dict[str, str]:
        """The ``profileParams`` a batch was created with."""
        params: dict[str, str] = json.loads(
            self._scalar("SELECT params FROM batches WHERE id = ?", (batch_id,))
        )
        return params

    def batches(
        self, username: str | None = None, *, offset: int = 0, limit: int = -1
    ) -> list[BatchRow]:
        """Batches, newest first (of one user when given)."""
        if username is None:
            rows = self._query(
                _BATCH_SELECT + " ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)
            )
        else:
            rows = self._query(
                _BATCH_SELECT + " WHERE username = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                (username, limit, offset),
            )
        return [_batch(row) for row in rows]

    def count_batches(self, username: str) -> int:
        """How many batches ``username`` has."""
        rows = self._query("SELECT value FROM counts WHERE key = ?", (f"batches:{username}",))
        return int(rows[0][0]) if rows else 0

    def archive(self, batch_id: int) -> bytes | None:
        """The archive the batch was first downloaded as, if it was."""
        rows = self._query("SELECT data FROM archives WHERE batch_id = ?", (batch_id,))
        return bytes(rows[0][0]) if rows else None

    def keep_archive(self, batch_id: int, data: bytes) -> bytes:
        """Store the batch's archive unless one is stored already; the stored one, and
        the batch is marked collected."""
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO archives VALUES (?, ?)", (batch_id, data))
            conn.execute("UPDATE batches SET collected = 1 WHERE id = ?", (batch_id,))
            stored = conn.execute(
                "SELECT data FROM archives WHERE batch_id = ?", (batch_id,)
            ).fetchone()[0]
        return bytes(stored)

    # -- certificates ------------------------------------------------------------------

    def certificates(self, username: str | None = None) -> list[CertificateRow]:
        """Every certificate (of one user when given), oldest first: a view for tests."""
        rows = self._query(
            _CERT_SELECT + " WHERE (? IS NULL OR b.username = ?) ORDER BY c.batch_id, c.position",
            (username, username),
        )
        return [CertificateRow(**dict(row)) for row in rows]

    def batch_certificates(self, batch_id: int) -> list[CertificateRow]:
        """The certificates of one batch, in order."""
        rows = self._query(_CERT_SELECT + " WHERE c.batch_id = ? ORDER BY c.position", (batch_id,))
        return [CertificateRow(**dict(row)) for row in rows]

    def count_certificates(self, issued_by: float | None = None) -> int:
        """How many certificates exist (in batches ready by ``issued_by`` when given):
        the kept count, less those of the batches still processing."""
        total: int = self._scalar("SELECT value FROM counts WHERE key = 'certificates'")
        if issued_by is None:
            return total
        pending: int = self._scalar(
            "SELECT COUNT(*) FROM batches b JOIN certificates c ON c.batch_id = b.id"
            " WHERE b.ready_at > ?",
            (issued_by,),
        )
        return total - pending

    def find(
        self, username: str, *, common_name: str | None, serial: str | None, issued_by: float
    ) -> list[CertificateRow]:
        """Issued certificates of ``username`` with that exact CN or serial (any case)."""
        rows = self._query(
            _CERT_SELECT + " WHERE b.username = ? AND b.ready_at <= ?"
            " AND (c.common_name = ? OR c.serial = UPPER(?)) ORDER BY c.batch_id, c.position",
            (username, issued_by, common_name, serial),
        )
        return [CertificateRow(**dict(row)) for row in rows]

    def revoke(self, serial: str, *, reason: int, when: float, profile_id: int) -> None:
        """Mark a certificate revoked."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE certificates SET revoked_at = ?, revocation_reason = ?,"
                " revoked_under_profile = ? WHERE serial = ?",
                (when, reason, profile_id, serial),
            )

    def revoked(self) -> list[CertificateRow]:
        """Every revoked certificate, in revocation order."""
        rows = self._query(
            _CERT_SELECT + " WHERE c.revoked_at IS NOT NULL ORDER BY c.revoked_at, c.serial"
        )
        return [CertificateRow(**dict(row)) for row in rows]
