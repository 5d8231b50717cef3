"""``ClientSettings``: what a client was given, handed to its Session as one object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from attrs import Factory, frozen

from ._hooks import Observers
from .auth import TokenStore

__all__ = ["ClientSettings"]


@frozen(kw_only=True)
class ClientSettings:
    """The arguments of :class:`SectigoClient`, the token store resolved (see there)."""

    base_url: str
    username: str
    password: str
    token_store: TokenStore
    timeout: float | httpx.Timeout
    max_retries: int
    transport: httpx.AsyncBaseTransport | None
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[Any]]
    allow_insecure_http: bool
    trust_env: bool
    limits: httpx.Limits | None
    #: hooks, OpenTelemetry, metrics: what the client was given to observe it with
    observers: Observers = Factory(Observers)
