"""Fault injection: an ASGI middleware that delays, fails, throttles or drops requests.

Drops need the server's help, because an ASGI app cannot close its connection:

* in process, the middleware raises :class:`DropConnection`; the emulator's httpx
  transport turns it into ``httpx.RemoteProtocolError``;
* under uvicorn started by the emulator, the server's protocol registers every
  connection here (:func:`register_connection`); the middleware closes the socket
  without writing a response and returns once uvicorn has noticed the disconnect, so
  uvicorn sends nothing either (no 500);
* under any other server (``emulator.app`` mounted elsewhere) the exception reaches
  the server, which typically answers 500: drops are only faithful in the two cases
  above.

Before hanging up, the rest of the request body is read: closing a socket with unread
data makes the kernel reset the connection, and the client would see a reset
(``httpx.ReadError``) instead of a clean hang-up.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._responses import ErrorCode, error_response

__all__ = [
    "FAULT_KINDS",
    "DropConnection",
    "Fault",
    "FaultMiddleware",
    "FaultRegistry",
    "register_connection",
    "unregister_connection",
]

#: the kinds of fault ``Emulator.inject`` accepts
FAULT_KINDS = ("delay", "error", "rate_limit", "drop_before", "drop_after")

ConnectionKey = tuple[Any, Any]
_CONNECTIONS: dict[ConnectionKey, asyncio.Transport] = {}
_CONNECTIONS_LOCK = threading.Lock()


def register_connection(key: ConnectionKey, transport: asyncio.Transport) -> None:
    """Remember a server connection by its ``(server, client)`` addresses."""
    with _CONNECTIONS_LOCK:
        _CONNECTIONS[key] = transport


def unregister_connection(key: ConnectionKey) -> None:
    """Forget a closed server connection."""
    with _CONNECTIONS_LOCK:
        _CONNECTIONS.pop(key, None)


class DropConnection(Exception):
    """Raised by the middleware when the connection must close without a response."""


def _compile(pattern: str) -> re.Pattern[str]:
    """``/api/v1/batches/{id}`` or ``/api/v1/batches/*`` as a regular expression."""
    parts = re.split(r"(\{[^/{}]*\}|\*)", pattern)
    regex = "".join(
        "[^/]+" if part.startswith("{") else ".*" if part == "*" else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


class Fault:
    """One injected fault; it applies to ``times`` matching requests, then expires."""

    def __init__(
        self,
        method: str,
        path: str,
        kind: str,
        times: int,
        *,
        seconds: float = 1.0,
        status: int = 500,
        retry_after: int = 1,
        message: str = "Injected fault",
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        self.method = method.upper()
        self.path = path
        self.kind = kind
        self.remaining = times
        self.hits = 0
        self.seconds = seconds
        self.status = status
        self.retry_after = retry_after
        self.message = message
        self._regex = _compile(path)

    def __repr__(self) -> str:
        return (
            f"<Fault {self.kind} {self.method} {self.path} "
            f"hits={self.hits} remaining={self.remaining}>"
        )

    def matches(self, method: str, path: str) -> bool:
        """Whether the fault still applies to this request."""
        return (
            self.remaining > 0
            and self.method in ("*", method.upper())
            and self._regex.fullmatch(path) is not None
        )


class FaultRegistry:
    """The injected faults, consumed first-in first-out."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        """Register a fault."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first live fault for this request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    fault.hits += 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()


async def _discard(message: MutableMapping[str, Any]) -> None:
    """An ASGI ``send`` that throws the response away (the work is already done)."""


class _BodyTracker:
    """Wraps ``receive`` to know whether the whole request body has been read."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.complete = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.complete = True
        return message

    async def drain(self) -> None:
        """Read the rest of the body: closing with unread data would reset the connection."""
        while not self.complete:
            await self()


async def _drop(scope: Scope, receive: _BodyTracker) -> None:
    await receive.drain()
    with _CONNECTIONS_LOCK:
        transport = _CONNECTIONS.get((scope.get("server"), scope.get("client")))
    if transport is None:
        raise DropConnection
    transport.close()
    with anyio.move_on_after(5):
        message: Message = {}
        while message.get("type") != "http.disconnect":
            message = await receive()


class FaultMiddleware:
    """Applies injected faults before the wrapped app sees a request."""

    def __init__(
        self,
        app: ASGIApp,
        registry: FaultRegistry,
        *,
        clock: Callable[[], float],
        on_request: Callable[[str, str], None],
    ) -> None:
        self.app = app
        self.registry = registry
        self.clock = clock
        self.on_request = on_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        self.on_request(method, path)
        fault = self.registry.take(method, path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "delay":
            await anyio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "error":
            response = error_response(
                fault.status, fault.message, now=self.clock(), error_code=ErrorCode.FAULT
            )
            await response(scope, receive, send)
        elif fault.kind == "rate_limit":
            response = error_response(
                429,
                "Too many requests",
                now=self.clock(),
                error_code=ErrorCode.FAULT,
                headers={"Retry-After": str(fault.retry_after)},
            )
            await response(scope, receive, send)
        elif fault.kind == "drop_before":
            await _drop(scope, _BodyTracker(receive))
        else:  # drop_after: do the work, commit it, then lose the answer
            tracker = _BodyTracker(receive)
            await self.app(scope, tracker, _discard)
            await _drop(scope, tracker)
