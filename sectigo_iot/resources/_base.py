"""What every resource namespace shares: the session and id checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from .._session import Session

__all__ = ["Resource", "positive_id"]


class Resource:
    """A namespace of API calls bound to a session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._session.base_url}>"


def positive_id(name: str, value: object) -> int:
    """``value`` as a positive int; InvalidInputError for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return value
