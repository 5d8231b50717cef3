"""What every store keeps, and the contract both stores (SQLite, PostgreSQL) fulfil.

A record's row holds its public part in clear (spec, state, serial, times, the
attempt's batch name and id) and its secrets sealed: the attempt's PKCS#12 password or
private key, and the bundle until every sink has it. Sealing is AES-256-GCM under a key
derived with HKDF-SHA256 from the user's secret and the store's own salt; the record's
key is bound in as associated data, so a sealed value cannot be moved to another record.
"""

from __future__ import annotations

import base64
import builtins
import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from attrs import evolve, field, frozen

from ..errors import InvalidInputError, SectigoError
from ..lifecycle import CertificateSpec, LifecycleEvent, PendingAttempt
from ..lifecycle._events import Watch
from ._model import FleetRecord, HistoryEntry, RecordState

__all__ = [
    "KEY_ENV",
    "SCHEMA_VERSION",
    "Change",
    "Row",
    "Sealer",
    "Secrets",
    "Store",
    "StoreError",
    "check_key",
    "secret_from",
]

#: the environment variable holding the secret the store's sealing key is derived from
KEY_ENV = "SECTIGO_FLEET_KEY"
#: the layout of the tables; a store refuses a database of a newer version
SCHEMA_VERSION = 4
MAX_KEY_LENGTH = 200
_KEY_CHECK = b"sectigo-iot fleet key check"
_HKDF_INFO = b"sectigo-iot fleet secrets v1"


class StoreError(SectigoError):
    """The store cannot be used: unreachable, corrupt, of a newer schema version, or
    opened with another key. The message names what and where, never a secret."""


def check_key(key: object) -> str:
    """``key`` when it is a record key: 1 to 200 printable characters, no edge spaces."""
    if not isinstance(key, str):
        raise InvalidInputError(f"a record key must be a str, got {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"a record key must have 1 to {MAX_KEY_LENGTH} characters, got {len(key)}"
        )
    if not key.isprintable() or key != key.strip():
        raise InvalidInputError(
            f"record key {key!r} has a control character or surrounding spaces; use "
            "printable text such as a member id"
        )
    return key


@frozen(kw_only=True)
class Secrets:
    """What a record must not keep in clear: the attempt's PKCS#12 password or private
    key (CSR mode), and the downloaded bundle (PEM, with its key) until delivered."""

    pkcs12_password: str | None = field(default=None, repr=False)
    private_key_pem: bytes | None = field(default=None, repr=False)
    bundle_pem: bytes | None = field(default=None, repr=False)

    def to_bytes(self) -> bytes:
        def text(value: bytes | None) -> str | None:
            return None if value is None else value.decode("ascii")

        data = {
            "pkcs12_password": self.pkcs12_password,
            "private_key_pem": text(self.private_key_pem),
            "bundle_pem": text(self.bundle_pem),
        }
        return json.dumps(data).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Secrets:
        loaded = json.loads(data)

        def raw(value: str | None) -> bytes | None:
            return None if value is None else value.encode("ascii")

        return cls(
            pkcs12_password=loaded["pkcs12_password"],
            private_key_pem=raw(loaded["private_key_pem"]),
            bundle_pem=raw(loaded["bundle_pem"]),
        )


@frozen(kw_only=True)
class Row:
    """A record as the fleet works on it (``FleetRecord`` is its public view).

    ``attempt`` is the issue or renewal under way (its PKCS#12 password is in
    ``secrets``, not in the attempt); ``delivered`` names the sinks that acknowledged
    the attempt's certificate; ``fence`` grows with every claim and every command, and
    a write is taken only under the fence it was read with.

    ``next_action_at`` is when the record's own work is next due; ``wake_at`` is when
    a worker claims it: the earlier of that, the current certificate's next milestone
    or expiry (``watch``), and now while ``outbox`` holds events not yet notified.
    """

    key: str
    spec: CertificateSpec
    state: RecordState
    serial_number: str | None = None
    not_after: datetime | None = None
    batch_id: int | None = None
    failures: int = 0
    last_error: str | None = None
    next_action_at: datetime | None = None
    attempt: PendingAttempt | None = None
    attempt_serial: str | None = None  # the downloaded certificate of the attempt
    secrets: Secrets | None = field(default=None, repr=False)
    delivered: tuple[str, ...] = ()
    revoke_owed: tuple[str, ...] = ()
    revoke_reason: str | None = None
    fence: int = 0
    not_before: datetime | None = None  # of the current certificate
    renewal_at: datetime | None = None  # when the policy renews it
    #: the certificates the record had before (serial, not_after), oldest first
    superseded: tuple[tuple[str, datetime], ...] = ()
    wake_at: datetime | None = None
    watch: Watch | None = None  # what was seen of the current certificate
    outbox: tuple[LifecycleEvent, ...] = ()  # recorded, not yet notified
    state_since: datetime | None = None

    @property
    def claim_at(self) -> datetime | None:
        """When a worker claims the record: the earlier of its wake and its work."""
        times = [t for t in (self.wake_at, self.next_action_at) if t is not None]
        return min(times) if times else None

    def replace(self, **changes: Any) -> Row:
        return evolve(self, **changes)

    def public(self, history: tuple[HistoryEntry, ...] = ()) -> FleetRecord:
        batch_id = self.attempt.batch_id if self.attempt is not None else None
        return FleetRecord(
            key=self.key,
            spec=self.spec,
            state=self.state,
            serial_number=self.serial_number,
            not_before=self.not_before,
            not_after=self.not_after,
            renewal_at=self.renewal_at,
            batch_id=batch_id or self.batch_id,
            failures=self.failures,
            last_error=self.last_error,
            next_action_at=self.claim_at,
            state_since=self.state_since,
            history=history,
        )

    def revocation_json(self) -> str:
        """The serials owed a revocation, and its reason (one column)."""
        return json.dumps({"serials": list(self.revoke_owed), "reason": self.revoke_reason})

    def watch_json(self) -> str | None:
        return None if self.watch is None else json.dumps(self.watch.to_dict())

    def outbox_json(self) -> str:
        return json.dumps([event.to_dict() for event in self.outbox])

    def superseded_json(self) -> str:
        return json.dumps([[serial, end.isoformat()] for serial, end in self.superseded])

    def attempt_json(self) -> str | None:
        """The attempt's public part (its password is sealed apart)."""
        attempt = self.attempt
        if attempt is None:
            return None
        return json.dumps(
            {
                "batch_name": attempt.batch_name,
                "attempted_at": attempt.attempted_at.isoformat(),
                "spec": attempt.spec.to_dict(),
                "batch_id": attempt.batch_id,
                "serial_number": self.attempt_serial,
            }
        )


def revocation_from_json(text: str) -> tuple[tuple[str, ...], str | None]:
    """The serials and reason :meth:`Row.revocation_json` wrote."""
    data = json.loads(text)
    if isinstance(data, list):  # the column's default: nothing owed
        return tuple(data), None
    return tuple(data["serials"]), data["reason"]


def superseded_from_json(text: str | None) -> tuple[tuple[str, datetime], ...]:
    """The certificates :meth:`Row.superseded_json` wrote (none in a record of before)."""
    if text is None:
        return ()
    return tuple((serial, datetime.fromisoformat(end)) for serial, end in json.loads(text))


def watch_from_json(text: str | None) -> Watch | None:
    return None if text is None else Watch.from_dict(json.loads(text))


def outbox_from_json(text: str | None) -> tuple[LifecycleEvent, ...]:
    if text is None:
        return ()
    return tuple(LifecycleEvent.from_dict(event) for event in json.loads(text))


def attempt_from_json(
    text: str | None, secrets: Secrets | None
) -> tuple[PendingAttempt | None, str | None]:
    """The attempt :meth:`Row.attempt_json` wrote, with its password or key from
    ``secrets``."""
    if text is None:
        return None, None
    data = json.loads(text)
    attempt = PendingAttempt(
        batch_name=data["batch_name"],
        pkcs12_password=(secrets.pkcs12_password if secrets else None) or "",
        attempted_at=datetime.fromisoformat(data["attempted_at"]),
        spec=CertificateSpec.from_dict(data["spec"]),
        batch_id=data["batch_id"],
        private_key_pem=secrets.private_key_pem if secrets else None,
    )
    return attempt, data.get("serial_number")


@frozen(kw_only=True)
class Change:
    """A new row (written under the fence it was read with) and its history entries."""

    row: Row
    history: tuple[HistoryEntry, ...] = ()


class Store(Protocol):
    """The contract of a fleet store. Every method is safe to call from several tasks,
    processes and hosts at once; times are UTC, ``now`` is the fleet's clock."""

    location: str  # where the store is, without secrets (for messages)

    async def open(self) -> None:
        """Create or migrate the tables and check the sealing key (StoreError if wrong)."""

    async def close(self) -> None: ...

    async def get(self, key: str) -> Row | None: ...

    async def history(self, key: str) -> tuple[HistoryEntry, ...]: ...

    async def list(self, state: RecordState | None = None) -> builtins.list[Row]: ...

    async def change(self, key: str, decide: Callable[[Row | None], Change | None]) -> Row | None:
        """Read ``key``'s row and write what ``decide`` returns, in one transaction that
        also grows the fence (so a worker in the middle of a step stops there). Returns
        the row as it is afterwards (unchanged when ``decide`` returns None)."""

    async def claim(
        self, worker: str, now: datetime, limit: int, lease: timedelta
    ) -> builtins.list[Row]:
        """Take the lease of up to ``limit`` due rows (``next_action_at <= now``, no live
        lease), growing their fences; the oldest due first."""

    async def save(
        self, change: Change, worker: str, *, release: bool, durable: bool = True
    ) -> bool:
        """Write ``change.row`` if its fence and ``worker``'s lease still hold; False
        (nothing written) when another worker or a command took the record. A write that
        is not ``durable`` may be lost to a power cut (never to a crash of the process):
        only for steps that are redone safely."""

    async def heartbeat(self, rows: builtins.list[Row], worker: str, lease: timedelta) -> set[str]:
        """Extend the leases of ``rows``; the keys whose lease ``worker`` still holds."""

    async def release(self, rows: builtins.list[Row], worker: str) -> None: ...

    async def next_action_at(self) -> datetime | None:
        """The earliest next action of any record (None when nothing waits)."""

    async def count(self) -> dict[RecordState, int]: ...


def secret_from(secret_key: str | bytes | None) -> bytes | None:
    """The user's secret as bytes: ``secret_key``, else ``SECTIGO_FLEET_KEY``, else None.

    It must hold at least 32 characters (``openssl rand -base64 32`` gives 44); it is
    never used as the key itself, only through HKDF.
    """
    if secret_key is None:
        secret_key = os.environ.get(KEY_ENV) or None
        where = KEY_ENV
    else:
        where = "secret_key"
    if secret_key is None:
        return None
    if isinstance(secret_key, str):
        secret_key = secret_key.encode()
    if not isinstance(secret_key, bytes):
        raise InvalidInputError(f"secret_key must be str or bytes, got {type(secret_key).__name__}")
    if len(secret_key) < 32:
        raise InvalidInputError(
            f"{where} must hold at least 32 characters (got {len(secret_key)}); make one "
            "with 'openssl rand -base64 32'"
        )
    return secret_key


class Sealer:
    """Seals and opens the secrets of records with a key derived from the user's secret."""

    def __init__(self, secret: bytes, salt: bytes) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(secret)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def seal(self, data: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return b"\x01" + nonce + self._aead.encrypt(nonce, data, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        """The clear bytes; StoreError when ``sealed`` was not made with this key."""
        from cryptography.exceptions import InvalidTag

        if len(sealed) < 29 or sealed[0] != 1:
            raise StoreError(f"a sealed value of {context} is damaged")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], context.encode())
        except InvalidTag:
            raise StoreError(
                f"a sealed value of {context} does not open with this store's key"
            ) from None

    def key_check(self) -> bytes:
        """A value that only this key opens (kept in the store's metadata)."""
        return self.seal(_KEY_CHECK, "key check")

    def verify(self, check: bytes, location: str) -> None:
        """StoreError (before anything else is done) when ``check`` is of another key."""
        try:
            ok = self.open(check, "key check") == _KEY_CHECK
        except StoreError:
            ok = False
        if not ok:
            raise StoreError(
                f"the fleet store {location} was sealed with another key: give the "
                f"secret_key (or {KEY_ENV}) it was created with"
            )


def new_salt() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def utc(timestamp: float | None) -> datetime | None:
    """Seconds since the epoch as an aware UTC datetime (None stays None)."""
    return None if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc)


def seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def spec_json(spec: CertificateSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)


def spec_from_json(text: str) -> CertificateSpec:
    data: Mapping[str, Any] = json.loads(text)
    return CertificateSpec.from_dict(data)
