"""The fleet's records: their states, their history, and what a sink receives."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from ..lifecycle import CertificateSpec

if TYPE_CHECKING:
    from ..certs import CertificateBundle

__all__ = ["Delivery", "FleetRecord", "HistoryEntry", "RecordState", "StepResult"]


class RecordState(str, enum.Enum):
    """Where a record stands. Only ``VALID``, ``REJECTED``, ``REVOKED`` and
    ``CANCELLED`` wait for nothing; every other state has a next action."""

    PENDING = "PENDING"  # a certificate is wanted; no attempt yet
    SUBMITTING = "SUBMITTING"  # the attempt is recorded; its create was (maybe) sent
    UNCONFIRMED = "UNCONFIRMED"  # the attempt's batch can be neither found nor ruled out
    PROCESSING = "PROCESSING"  # the batch exists; the CA is working on it
    DOWNLOADING = "DOWNLOADING"  # the batch is ready; its certificate is being fetched
    DELIVERING = "DELIVERING"  # the certificate is being handed to every sink
    VALID = "VALID"  # every sink has the current certificate
    FAILED = "FAILED"  # the last step failed; retried with backoff
    EXPIRED = "EXPIRED"  # the current certificate expired; retried at the emergency interval
    REJECTED = "REJECTED"  # the CA refused the batch; waits for retry() or a new spec
    REVOKING = "REVOKING"  # revoke() was asked; the revocation is being sent
    REVOKED = "REVOKED"
    CANCELLED = "CANCELLED"

    def __str__(self) -> str:
        return self.value


#: states in which nothing more happens until a person acts
FINAL_STATES = frozenset({RecordState.REJECTED, RecordState.REVOKED, RecordState.CANCELLED})


@frozen(kw_only=True)
class HistoryEntry:
    """One change of a record's state, and who made it."""

    at: datetime
    from_state: RecordState | None
    to_state: RecordState
    description: str
    worker: str


@frozen(kw_only=True)
class FleetRecord:
    """A certificate the application wants, by its own key.

    ``serial_number``, ``not_before`` and ``not_after`` are those of the current
    certificate (the last one every sink received), kept while a renewal is in flight;
    ``renewal_at`` is when the fleet's policy renews it. ``batch_id`` is the
    batch of the attempt in flight, else of the current certificate. ``last_error``
    is redacted text. ``next_action_at`` is when a worker next looks at it: the
    earlier of its own work, the certificate's next milestone and its expiry.
    ``state_since`` is when it entered its state.
    """

    key: str
    spec: CertificateSpec
    state: RecordState
    serial_number: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    renewal_at: datetime | None = None
    batch_id: int | None = None
    failures: int = 0
    last_error: str | None = None
    next_action_at: datetime | None = None
    state_since: datetime | None = None
    history: tuple[HistoryEntry, ...] = field(default=(), eq=False)


@frozen(kw_only=True)
class StepResult:
    """What one pass did to one record: the state it found and the state it left."""

    key: str
    from_state: RecordState
    to_state: RecordState
    description: str
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.from_state is not self.to_state


@frozen(kw_only=True)
class Delivery:
    """A certificate handed to a sink. ``delivery_id`` is the same for the same key and
    certificate every time (a receiver deduplicates on it); ``bundle`` holds the key."""

    key: str
    serial_number: str
    bundle: CertificateBundle = field(repr=False)
    delivery_id: str

    def to_json(self) -> dict[str, Any]:
        """The JSON a webhook receives: the PEMs and the ids (the private key included)."""
        bundle = self.bundle
        return {
            "key": self.key,
            "delivery_id": self.delivery_id,
            "serial_number": self.serial_number,
            "not_after": bundle.not_after.isoformat(),
            "certificate": bundle.certificate_pem.decode(),
            "chain": bundle.chain_pem.decode(),
            "private_key": bundle.private_key_pem().decode() if bundle.private_key else None,
        }
