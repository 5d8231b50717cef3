"""When to renew a certificate, and how long to wait after a failure.

Numbers from the trusted keepers: certbot and cert-manager renew at 2/3 of the lifetime;
certmagic spreads renewals over a window so a fleet issued in one hour does not renew in
one burst, and overrides its backoff when little lifetime is left; cert-manager backs
off from 1 h to 32 h after a failure, at once when the spec changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

from attrs import field, frozen

from ..errors import InvalidInputError

__all__ = ["RenewalPolicy", "policy_from"]

_Check = Callable[[object, object, object], None]
#: the window a ``renew_before`` renewal is spread over, either way
_RENEW_BEFORE_SPREAD = timedelta(hours=1)


def _fraction(name: str, low: float, high: float) -> _Check:
    def check(_: object, attribute: object, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(f"{name} must be a number, got {value!r}")
        if not low <= value <= high:
            raise InvalidInputError(f"{name} must be between {low} and {high}, got {value!r}")

    return check


def _duration(name: str) -> _Check:
    def check(_: object, attribute: object, value: object) -> None:
        if not isinstance(value, timedelta) or value < timedelta(0):
            raise InvalidInputError(f"{name} must be a timedelta >= 0, got {value!r}")

    return check


def _backoff(_: object, attribute: object, value: object) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(part, timedelta) and part > timedelta(0) for part in value)
        or value[0] > value[1]
    ):
        raise InvalidInputError(
            f"backoff must be (first, longest), two timedeltas > 0 in order, got {value!r}"
        )


def _milestones(value: object) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InvalidInputError(f"milestones must be a sequence of days, got {value!r}")
    days = tuple(value)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in days):
        raise InvalidInputError(f"milestones must be whole days >= 0, got {value!r}")
    return tuple(sorted(set(days), reverse=True))


@frozen(kw_only=True)
class RenewalPolicy:
    """When a certificate is renewed and how failures back off.

    By default a certificate is renewed at a point spread uniformly over
    ``[at - spread/2, at + spread/2]`` of its lifetime, the same point for the same key
    and certificate on every host (a hash, not ``random``); with ``renew_before`` it is
    ``not_after - renew_before``, spread over an hour either way. After a failure the
    next try waits ``backoff[0]``, doubling up to ``backoff[1]``; at once when the spec
    changed; at most ``min_interval`` once less than ``emergency`` of the lifetime is
    left. ``milestones`` are the days left at which events fire.
    """

    at: float = field(default=2 / 3, validator=_fraction("at", 0.0, 1.0))
    spread: float = field(default=0.10, validator=_fraction("spread", 0.0, 1.0))
    renew_before: timedelta | None = field(default=None)
    backoff: tuple[timedelta, timedelta] = field(
        default=(timedelta(hours=1), timedelta(hours=32)), validator=_backoff
    )
    emergency: float = field(default=1 / 20, validator=_fraction("emergency", 0.0, 1.0))
    min_interval: timedelta = field(default=timedelta(hours=1), validator=_duration("min_interval"))
    milestones: tuple[int, ...] = field(default=(30, 10, 7, 0), converter=_milestones)

    def __attrs_post_init__(self) -> None:
        if self.renew_before is not None:
            _duration("renew_before")(self, None, self.renew_before)
        if self.at - self.spread / 2 < 0 or self.at + self.spread / 2 > 1:
            raise InvalidInputError(
                f"at ± spread/2 must stay within the lifetime, got at={self.at}, "
                f"spread={self.spread}"
            )

    def renewal_time(self, not_before: datetime, not_after: datetime, key: str) -> datetime:
        """When the certificate valid from ``not_before`` to ``not_after`` held under
        ``key`` (a fleet key, a folder's absolute path) is renewed."""
        point = _uniform(key, not_before, not_after)  # in [0, 1)
        if self.renew_before is not None:
            return not_after - self.renew_before + (2 * point - 1) * _RENEW_BEFORE_SPREAD
        fraction = self.at - self.spread / 2 + point * self.spread
        return not_before + (not_after - not_before) * fraction

    def retry_delay(
        self,
        failures: int,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        now: datetime | None = None,
        spec_changed: bool = False,
    ) -> timedelta:
        """How long to wait after the ``failures``-th failure in a row (1 for the first)."""
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise InvalidInputError(f"failures must be an integer >= 1, got {failures!r}")
        if spec_changed:
            return timedelta(0)
        first, longest = self.backoff
        delay = min(first * (1 << min(failures - 1, 32)), longest)
        if (
            not_before is not None
            and not_after is not None
            and now is not None
            and not_after - now < (not_after - not_before) * self.emergency
        ):
            delay = min(delay, self.min_interval)
        return delay


def _uniform(key: str, not_before: datetime, not_after: datetime) -> float:
    """A number in [0, 1) that only the key and the certificate's dates decide."""
    text = f"{key}\0{not_before.isoformat()}\0{not_after.isoformat()}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") / 2**64


def policy_from(policy: RenewalPolicy | None, renew_before: timedelta | None) -> RenewalPolicy:
    """The policy a caller asked for: ``policy``, or ``renew_before`` as its shorthand,
    or the default one (at 2/3 of the lifetime, spread)."""
    if policy is not None and renew_before is not None:
        raise InvalidInputError("give policy= or renew_before=, not both")
    if policy is not None:
        if not isinstance(policy, RenewalPolicy):
            raise InvalidInputError(f"policy must be a RenewalPolicy, got {type(policy).__name__}")
        return policy
    if renew_before is not None:
        return RenewalPolicy(renew_before=renew_before)
    return RenewalPolicy()
