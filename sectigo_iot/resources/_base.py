"""What every resource namespace shares: the session, id checks, decoding into models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, get_origin

from ..errors import InvalidInputError, InvalidResponseError

if TYPE_CHECKING:
    from .._session import Session

__all__ = ["Resource", "decode", "encode", "positive_id"]

T = TypeVar("T")


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


def decode(data: Any, cls: type[T], path: str) -> T:
    """Structure JSON into a model; InvalidResponseError when its shape is wrong."""
    expected = list if get_origin(cls) is list else dict
    if not isinstance(data, expected):
        raise InvalidResponseError(
            f"unexpected response shape for {getattr(cls, '__name__', cls)}: "
            f"expected a JSON {'array' if expected is list else 'object'}",
            path=path,
        )
    from ..models._converter import converter  # cattrs loads on first use, not at import

    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs raises several exception types
        raise InvalidResponseError(
            f"unexpected response shape for {cls.__name__}: {exc}", path=path
        ) from None


def encode(model: Any) -> Any:
    """A request model as JSON-ready data (camelCase keys)."""
    from ..models._converter import converter

    return converter.unstructure(model)
