"""What the areas' handlers share: the state and the caller, ids, integers and JSON
bodies read from a request, and the error answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...models import converter
from .._limits import decode_json
from .._responses import ApiError, ErrorCode, error_response, json_response
from .._service import Service

__all__ = [
    "API",
    "ERROR_HANDLERS",
    "int_param",
    "json_get",
    "parse",
    "path_id",
    "state",
    "structure",
    "user",
]

T = TypeVar("T")
#: the prefix of Sectigo's API paths
API = "/api/v1"
_MAX_ID = 2**63 - 1


class _IdConvertor(Convertor[str]):
    """A path id: digits, kept as text until :func:`path_id` checks its size."""

    regex = "[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sectigo_id", _IdConvertor())


def state(request: Request) -> Service:
    """The emulator's state (``build_app`` keeps it in ``app.state.service``)."""
    service: Service = request.app.state.service
    return service


def user(request: Request) -> str:
    """The user the request's bearer token names, or a 401."""
    return state(request).authenticate(request.headers.get("authorization"))


def path_id(request: Request, name: str, what: str) -> int:
    """A path id as an int; one beyond 64 bits names nothing, so it is a 404."""
    text: str = request.path_params[name]
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(_MAX_ID)) or int(digits) > _MAX_ID:
        raise ApiError(404, f"{what} {text} not found", ErrorCode.NOT_FOUND)
    return int(digits)


def int_param(request: Request, name: str, default: int, lowest: int, highest: int) -> int:
    """An integer query parameter within bounds, or a 400."""
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise ApiError(400, f"Query parameter {name} must be an integer") from None
    if not lowest <= value <= highest:
        raise ApiError(400, f"Query parameter {name} must be between {lowest} and {highest}")
    return value


def structure(data: bytes | str, model: type[T], what: str) -> T:
    """A JSON document as ``model``; a 400 naming ``what`` when it is not one."""
    value = decode_json(data, what)
    try:
        return converter.structure(value, model)
    except Exception:
        raise ApiError(400, f"Invalid {what}") from None


async def parse(request: Request, model: type[T]) -> T:
    """The request's JSON body as ``model``, or a 400."""
    return structure(await request.body(), model, f"{model.__name__} body")


def json_get(path: str, view: Callable[[Service, str, Request], object]) -> Route:
    """A GET route: check the bearer token, answer ``view(state, username, request)``."""

    async def endpoint(request: Request) -> Response:
        username = user(request)
        return json_response(view(state(request), username, request))

    return Route(path, endpoint, methods=["GET"])


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status, exc.message, now=state(request).clock(), error_code=exc.error_code
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.GENERIC
    return error_response(
        exc.status_code,
        exc.detail,
        now=state(request).clock(),
        error_code=code,
        headers=exc.headers,
    )


#: Sectigo error bodies for what the handlers raise and for Starlette's own errors
ERROR_HANDLERS = {ApiError: _api_error, HTTPException: _http_error}
