"""The emulator's state, independent of HTTP, and the lookups every API area shares.

The areas (``api/<area>.py``) hold what each operation does, as functions over this
state: :class:`Service` keeps the config, the store, the clock, the CA, the tokens, the
stats and the queue of batch outcomes.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime, timezone

from attrs import define, field

from ..models import Authority, BatchStatus
from ._ca import CertificateAuthority
from ._clock import Clock
from ._config import BATCH_OUTCOMES, EmulatorConfig
from ._records import EmulatorStats
from ._responses import ApiError, ErrorCode
from ._store import BatchRow, CertificateRow, Store
from ._tokens import ACCESS_SCOPE, TokenError, TokenIssuer

__all__ = ["Service", "certificate_status", "utc"]

logger = logging.getLogger("sectigo_iot.emulator")

#: the final status of each batch outcome, and the reason it gets unless told
_OUTCOMES = {
    "ready": (BatchStatus.READY_FOR_DOWNLOAD, ""),
    "rejected": (BatchStatus.REJECTED, "Rejected by the emulator"),
    "failed": (BatchStatus.FAILED, ""),
    "not_acceptable": (BatchStatus.NOT_ACCEPTABLE, "Error"),
}


def utc(timestamp: float) -> datetime:
    """A stored timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def certificate_status(row: CertificateRow) -> str:
    """The status a stored certificate shows: revoked, else ready."""
    return BatchStatus.REVOKED if row.revoked_at is not None else BatchStatus.READY_FOR_DOWNLOAD


@define(kw_only=True, eq=False)
class Service:
    """The emulated Sectigo IoT Manager's state, shared by the API areas."""

    config: EmulatorConfig
    store: Store
    clock: Clock
    ca: CertificateAuthority
    tokens: TokenIssuer
    stats: EmulatorStats
    #: where the emulator is reached: ``config.base_url`` in process, the served address
    #: under ``serve`` and ``run_in_thread`` (its certificates' CRL distribution point)
    url: str = field(init=False)
    user_ids: dict[str, int] = field(init=False)
    ordered: int = field(init=False)
    started: float = field(init=False)
    _next_outcomes: deque[tuple[str, str | None]] = field(init=False, factory=deque)
    _outcomes_lock: threading.Lock = field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self.url = self.config.base_url.rstrip("/")
        self.user_ids = self.store.ensure_users(list(self.config.users))
        self.ordered = sum(a.balance for a in self.config.initial_authorities())
        self.started = self.clock()

    def __repr__(self) -> str:
        return f"<Service users={sorted(self.config.users)}>"

    # -- who is asking -----------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> str:
        """The user of a ``Bearer`` access token, or a 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "Full authentication is required to access this resource",
                ErrorCode.AUTHENTICATION,
            )
        return self.verify(token, ACCESS_SCOPE)

    def verify(self, token: str, scope: str) -> str:
        """The user of a token of ``scope`` issued here to a configured user, or a 401."""
        try:
            username = self.tokens.verify(token, scope)
        except TokenError as exc:
            logger.info("token refused: %s", exc)
            raise ApiError(401, "Invalid or expired token", ErrorCode.AUTHENTICATION) from None
        if username not in self.config.users:
            raise ApiError(401, "Invalid or expired token", ErrorCode.AUTHENTICATION)
        return username

    # -- authorities -------------------------------------------------------------------

    def authorities(self) -> list[Authority]:
        """The authorities with their current balances."""
        return self.store.authorities()

    def resolve_authority(self, value: int) -> Authority | None:
        """The authority meant by a create's ``authorityId`` or an upload's ``profileId``.

        The API documentation calls ``authorityId`` an authority id and the directory
        service sends ``authorities[i].id``, while the original CLI's README says its
        ``-a`` flag "should be a profile id". Real Sectigo's answer is unknown, so the
        emulator accepts both: an authority ``id`` first, else an authority whose
        ``profileId`` matches. This is the only place that decides it.
        """
        authorities = self.store.authorities()
        by_id = (a for a in authorities if a.id == value)
        by_profile = (a for a in authorities if a.profile_id == value)
        return next(by_id, None) or next(by_profile, None)

    def issued_count(self) -> int:
        """Certificates in batches that have finished processing."""
        return self.store.count_certificates(issued_by=self.clock())

    # -- batches -----------------------------------------------------------------------

    def batch_row(self, username: str, batch_id: int) -> BatchRow:
        """One of the user's stored batches, or a 404."""
        row = self.store.batch(batch_id, username)
        if row is None:
            raise ApiError(404, f"Batch {batch_id} not found", ErrorCode.NOT_FOUND)
        return row

    def status(self, row: BatchRow) -> str:
        """The status a stored batch shows now."""
        if self.clock() < row.ready_at:
            return BatchStatus.PROCESSING
        if row.outcome == BatchStatus.READY_FOR_DOWNLOAD and row.collected:
            return BatchStatus.COLLECTED
        return row.outcome

    def set_next_outcome(self, outcome: str, reason: str | None, times: int) -> None:
        """Make the next ``times`` valid batches end as ``outcome``."""
        if outcome not in BATCH_OUTCOMES:
            raise ValueError(
                f"unknown batch outcome {outcome!r}; expected one of {', '.join(BATCH_OUTCOMES)}"
            )
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._outcomes_lock:
            self._next_outcomes.extend([(outcome, reason)] * times)

    def take_outcome(self) -> tuple[str, str]:
        """The final status and reason of the batch being created."""
        with self._outcomes_lock:
            outcome, reason = (
                self._next_outcomes.popleft()
                if self._next_outcomes
                else (self.config.batch_outcome, None)
            )
        status, default_reason = _OUTCOMES[outcome]
        return status, default_reason if reason is None else reason
