"""What every resource namespace shares: the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._session import Session

__all__ = ["Resource"]


class Resource:
    """A namespace of API calls bound to a session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._session.base_url}>"
