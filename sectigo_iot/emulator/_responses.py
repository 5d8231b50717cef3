"""Response helpers shared by the routes and the fault middleware."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from ..models import ErrorBody, converter

__all__ = [
    "GIN_JSON_TYPE",
    "JSON_TYPE",
    "TEXT_TYPE",
    "ApiError",
    "ErrorCode",
    "error_response",
    "json_response",
]

#: Sectigo's JSON content type, exactly as the real service writes it
JSON_TYPE = "application/json;charset=UTF-8"
#: content type of the text status endpoint
TEXT_TYPE = "text/plain;charset=UTF-8"
#: the original emulator's JSON content type (gin's default), kept for ``GET /status``
GIN_JSON_TYPE = "application/json; charset=utf-8"


class ErrorCode:
    """The ``errorCode`` values the emulator uses (Sectigo's real codes are unknown)."""

    GENERIC = -1
    AUTHENTICATION = 1
    NOT_FOUND = 2
    BALANCE = 3
    FAULT = 99


class ApiError(Exception):
    """An error answer: HTTP status, Sectigo message and error code."""

    def __init__(self, status: int, message: str, error_code: int = ErrorCode.GENERIC) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``value`` (a model, a list of models or plain JSON) as a Sectigo JSON response."""
    body = json.dumps(converter.unstructure(value), separators=(",", ":"))
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


def error_response(
    status: int,
    message: str,
    *,
    now: float,
    error_code: int = ErrorCode.GENERIC,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A Sectigo error body ``{status, message, errorCode, timestamp}``."""
    body = ErrorBody(
        status=status, message=message, error_code=error_code, timestamp=int(now * 1000)
    )
    return json_response(body, status, headers)
