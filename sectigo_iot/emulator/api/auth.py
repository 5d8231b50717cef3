"""Authentication: a password login and a refresh, each answering a fresh token pair.

Checking the bearer token of every other request is the state's
(:meth:`Service.authenticate <sectigo_iot.emulator._service.Service.authenticate>`).
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...models import AuthenticationReply, AuthenticationRequest
from .._responses import ApiError, ErrorCode, json_response
from .._service import Service
from .._tokens import REFRESH_SCOPE
from ._http import parse, state

__all__ = ["ROUTES", "login", "refresh"]

logger = logging.getLogger("sectigo_iot.emulator")


def login(service: Service, username: str, password: str) -> AuthenticationReply:
    """Check a username and password; answer a fresh token pair."""
    expected = service.config.users.get(username)
    matches = hmac.compare_digest(
        (expected if expected is not None else "\0" + password).encode(), password.encode()
    )
    if expected is None or not matches:
        service.stats.record_failed_login()
        logger.info("login refused for %r", username)
        raise ApiError(401, "Invalid username or password", ErrorCode.AUTHENTICATION)
    service.stats.record_login(username)
    access, refresh_token = service.tokens.issue_pair(username)
    return AuthenticationReply(access_token=access, refresh_token=refresh_token)


def refresh(service: Service, body: bytes) -> AuthenticationReply:
    """Exchange a refresh token (the raw request body) for a fresh pair."""
    username = service.verify(body.decode("latin-1"), REFRESH_SCOPE)
    service.stats.record_refresh(username)
    access, refresh_token = service.tokens.issue_pair(username)
    return AuthenticationReply(access_token=access, refresh_token=refresh_token)


async def handle_login(request: Request) -> Response:
    body = await parse(request, AuthenticationRequest)
    return json_response(login(state(request), body.username, body.password))


async def handle_refresh(request: Request) -> Response:
    return json_response(refresh(state(request), await request.body()))


ROUTES = [
    Route("/auth/pwd", handle_login, methods=["POST"]),
    Route("/auth/refresh", handle_refresh, methods=["POST"]),
]
