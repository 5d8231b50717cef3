"""Checks of the caller's arguments shared by the resources and the lifecycle.

Each returns the checked value, normalized, or raises InvalidInputError saying what
was wrong, before anything is sent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from .errors import InvalidInputError

__all__ = [
    "RESERVED_PARAMS",
    "domain_names",
    "name_sequence",
    "positive_id",
    "profile_params",
    "seconds",
]

#: the profile parameters that have arguments of their own
RESERVED_PARAMS = frozenset({"commonName", "dNSName", "pkcs12Password"})


def positive_id(name: str, value: object) -> int:
    """``value`` as a positive int (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value


def seconds(name: str, value: object, *, zero: bool = False) -> float:
    """``value`` as a finite number of seconds, > 0 (>= 0 with ``zero``; bools refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        bound = ">= 0" if zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def name_sequence(dns_names: Iterable[str]) -> tuple[str, ...]:
    """``dns_names`` as a tuple; a single string (a common slip) is refused."""
    if isinstance(dns_names, str):
        raise InvalidInputError("dns_names must be a sequence of names, not a single string")
    return tuple(dns_names)


def domain_names(common_name: str, dns_names: Iterable[str]) -> tuple[str, ...]:
    """The common name, then the other DNS names, each validated, normalized and once."""
    from .certs import validate_domain

    others = name_sequence(dns_names)
    names = [validate_domain(common_name), *(validate_domain(name) for name in others)]
    return tuple(dict.fromkeys(names))


def profile_params(params: Mapping[str, str] | None, *, reserved_hint: str = "") -> dict[str, str]:
    """Profile parameters as a plain dict of strings; with ``reserved_hint``, the
    :data:`RESERVED_PARAMS` are refused and the hint says what to use instead."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidInputError(f"params must be a mapping of strings, got {params!r}")
    for key, value in params.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidInputError(
                f"profile parameter {key!r} must be a string with a non-empty name, got {value!r}"
            )
        if reserved_hint and key in RESERVED_PARAMS:
            raise InvalidInputError(f"params must not set {key!r}: {reserved_hint}")
    return dict(params)
