"""What a keeper tells its caller: lifecycle events, and the milestones of a certificate.

A milestone *m* (days) of a certificate is reached when it has *m* days or fewer left
and had more than *m* when it was received; each fires once per certificate. The
certificate's expiry fires once too. A :class:`Watch` is what has been seen of the
current certificate; the fleet keeps it in the store, a folder in its journal, and
both record an event before the callback is called (at least once to the callback,
exactly once recorded).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from attrs import evolve, frozen

from .._logging import get_logger, redact
from ..errors import InvalidInputError

__all__ = ["EventKind", "LifecycleEvent", "OnEvent", "Watch", "days_left", "notify"]

logger = get_logger("sectigo_iot.lifecycle")

EventKind = Literal["issued", "renewed", "delivered", "failed", "milestone", "revoked", "expired"]
_KINDS = frozenset(get_args(EventKind))
_DAY = timedelta(days=1)


def days_left(not_after: datetime, now: datetime) -> float:
    """The days from ``now`` to ``not_after``, as a float (negative once expired)."""
    return (not_after - now) / _DAY


@frozen(kw_only=True)
class LifecycleEvent:
    """Something that happened to a certificate kept by a fleet (``key``) or in a
    folder (``folder``). ``days_left`` is counted at the event; ``milestone`` is the
    days of the milestone reached (kind ``milestone``); ``error`` is redacted text
    (kind ``failed``)."""

    kind: EventKind
    key: str | None = None
    folder: Path | None = None
    serial_number: str | None = None
    not_after: datetime | None = None
    days_left: float | None = None
    milestone: int | None = None
    error: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidInputError(f"unknown event kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON values (kept in a store or journal until notified)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "folder": None if self.folder is None else str(self.folder),
            "serial_number": self.serial_number,
            "not_after": None if self.not_after is None else self.not_after.isoformat(),
            "days_left": self.days_left,
            "milestone": self.milestone,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LifecycleEvent:
        return cls(
            kind=data["kind"],
            key=data["key"],
            folder=None if data["folder"] is None else Path(data["folder"]),
            serial_number=data["serial_number"],
            not_after=None
            if data["not_after"] is None
            else datetime.fromisoformat(data["not_after"]),
            days_left=data["days_left"],
            milestone=data["milestone"],
            error=data["error"],
        )


#: called with each event (sync or async); what it raises is logged, never propagated
OnEvent = Callable[[LifecycleEvent], Awaitable[Any] | Any]


@frozen(kw_only=True)
class Watch:
    """What has been seen of the current certificate: when it was received, the
    milestones fired, and whether its expiry was."""

    serial_number: str
    received_at: datetime
    fired: tuple[int, ...] = ()
    expired: bool = False

    @property
    def has_fired(self) -> bool:
        """True once a milestone or the expiry was seen."""
        return bool(self.fired) or self.expired

    def reached(
        self, milestones: tuple[int, ...], not_after: datetime, now: datetime
    ) -> tuple[tuple[int, ...], bool]:
        """The milestones reached at ``now`` and not fired yet (largest first), and
        whether the expiry is reached and not fired yet."""
        at_receipt, left = days_left(not_after, self.received_at), days_left(not_after, now)
        reached = tuple(
            m
            for m in sorted(milestones, reverse=True)
            if m not in self.fired and left <= m < at_receipt
        )
        return reached, not self.expired and now >= not_after

    def next_at(self, milestones: tuple[int, ...], not_after: datetime) -> datetime | None:
        """When the next milestone or the expiry is reached (None when all were)."""
        at_receipt = days_left(not_after, self.received_at)
        times = [not_after - m * _DAY for m in milestones if m not in self.fired and m < at_receipt]
        if not self.expired:
            times.append(not_after)
        return min(times) if times else None

    def seen(self, milestones: tuple[int, ...], expired: bool) -> Watch:
        """This watch with ``milestones`` fired (and the expiry, when ``expired``)."""
        fired = tuple(sorted({*self.fired, *milestones}, reverse=True))
        return evolve(self, fired=fired, expired=self.expired or expired)

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial_number": self.serial_number,
            "received_at": self.received_at.isoformat(),
            "fired": list(self.fired),
            "expired": self.expired,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Watch:
        return cls(
            serial_number=str(data["serial_number"]),
            received_at=datetime.fromisoformat(data["received_at"]),
            fired=tuple(int(m) for m in data["fired"]),
            expired=bool(data["expired"]),
        )


async def notify(on_event: OnEvent | None, events: tuple[LifecycleEvent, ...]) -> None:
    """Call ``on_event`` with each event in order; what it raises is logged and the
    others are still told."""
    if on_event is None:
        return
    for event in events:
        try:
            outcome = on_event(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            logger.warning(
                "on_event failed on a %s event: %s",
                event.kind,
                redact(f"{type(exc).__name__}: {exc}"),
            )
