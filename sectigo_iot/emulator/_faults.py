"""Fault injection: an ASGI middleware that delays, fails, throttles, cuts or drops requests.

Some faults need the server's help, because an ASGI app cannot close its connection or
make a client wait in the middle of a body:

* in process, the middleware raises :class:`InterruptedResponse`; the emulator's httpx
  transport acts it out (``httpx.RemoteProtocolError`` for a hang-up, a body stream
  that stops or stalls);
* under uvicorn started by the emulator, the server's protocol registers every
  connection here (:func:`register_connection`); the middleware writes what the client
  should see, closes the socket, and returns once uvicorn has noticed the disconnect,
  so uvicorn sends nothing more (no 500);
* under any other server (``emulator.app`` mounted elsewhere) the exception reaches
  the server, which typically answers 500: drops, truncations and stalls are only
  faithful in the two cases above.

Before hanging up, the rest of the request body is read: closing a socket with unread
data makes the kernel reset the connection, and the client would see a reset
(``httpx.ReadError``) instead of a clean hang-up.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import zlib
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

import anyio
import anyio.to_thread
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._middleware import HttpMiddleware
from ._responses import ErrorCode, error_response

__all__ = [
    "FAULT_KINDS",
    "CapturedResponse",
    "Fault",
    "FaultMiddleware",
    "FaultRegistry",
    "InterruptedResponse",
    "register_connection",
    "unregister_connection",
]

#: the kinds of fault ``Emulator.inject`` accepts
FAULT_KINDS = (
    "delay",
    "delay_after",
    "error",
    "error_after",
    "rate_limit",
    "drop_before",
    "drop_after",
    "truncate",
    "stall",
    "gzip",
)
#: how long a ``stall`` lasts unless told (the client usually gives up first)
STALL_SECONDS = 300.0
_DELAY_SECONDS = 1.0
_CUT_KINDS = ("truncate", "stall")
_PAD_CHUNK = 1 << 20

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


@dataclass(frozen=True)
class CapturedResponse:
    """A response the app produced, held back so a fault can alter how it is sent."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def start_message(self) -> Message:
        """The ASGI ``http.response.start`` message."""
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}

    def header(self, name: bytes) -> bytes:
        """One header's value (``b""`` when absent)."""
        return next((value for key, value in self.headers if key.lower() == name), b"")

    def with_body(self, body: bytes, *extra: tuple[bytes, bytes]) -> CapturedResponse:
        """The same response with another body (Content-Length follows) and more headers."""
        kept = [(k, v) for k, v in self.headers if k.lower() != b"content-length"]
        length = (b"content-length", str(len(body)).encode())
        return replace(self, headers=[*kept, length, *extra], body=body)

    async def replay(self, send: Send) -> None:
        """Send the whole response."""
        await send(self.start_message())
        await send({"type": "http.response.body", "body": self.body})


class InterruptedResponse(Exception):
    """Raised in process for the transport to act out a response that goes wrong.

    The client gets ``response`` (none: a hang-up before any answer) up to ``keep``
    body bytes; then the connection closes, or with ``pause`` the body stalls that
    many seconds before the rest arrives.
    """

    def __init__(
        self, response: CapturedResponse | None, keep: int = 0, pause: float | None = None
    ) -> None:
        super().__init__("the emulator interrupts this response")
        self.response = response
        self.keep = keep
        self.pause = pause


def _compile(pattern: str) -> re.Pattern[str]:
    """``/api/v1/batches/{id}`` or ``/api/v1/batches/*`` as a regular expression."""
    parts = re.split(r"(\{[^/{}]*\}|\*)", pattern)
    regex = "".join(
        "[^/]+" if part.startswith("{") else ".*" if part == "*" else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


def _check_option(name: str, value: int | None, kind: str, kinds: tuple[str, ...]) -> None:
    if value is None:
        return
    if kind not in kinds:
        raise ValueError(f"{name} applies to {' and '.join(kinds)} faults, not {kind}")
    if value < 0:
        raise ValueError(f"{name} must be at least 0")


class Fault:
    """One injected fault; it applies to ``times`` matching requests, then expires."""

    method: str
    """The HTTP method it applies to (upper case), or ``*`` for any."""
    path: str
    """The request path it applies to: ``{id}`` matches one path segment, ``*`` anything."""
    kind: str
    """What it does: one of ``FAULT_KINDS``."""
    remaining: int
    """How many more matching requests it applies to."""
    hits: int
    """How many requests it has applied to so far."""
    seconds: float
    """How long a ``delay``, ``delay_after`` or ``stall`` lasts."""
    status: int
    """The status of an ``error`` reply."""
    retry_after: int
    """The ``Retry-After`` seconds of a ``rate_limit`` reply."""
    message: str
    """The message of an ``error`` reply's body."""
    keep_bytes: int | None
    """For the faults that cut a body: how many bytes of it are sent first."""
    inflate_to: int | None
    """For ``gzip``: the size the compressed body inflates to."""
    probability: float
    """The chance that it applies to a matching request (drawn from a generator seeded
    with ``seed``); a request it passes over goes on to the next fault."""

    def __init__(
        self,
        method: str,
        path: str,
        kind: str,
        times: int,
        *,
        seconds: float | None = None,
        status: int = 500,
        retry_after: int = 1,
        message: str = "Injected fault",
        keep_bytes: int | None = None,
        inflate_to: int | None = None,
        probability: float = 1.0,
        seed: int | None = None,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        _check_option("keep_bytes", keep_bytes, kind, _CUT_KINDS)
        _check_option("inflate_to", inflate_to, kind, ("gzip",))
        if isinstance(probability, bool) or not 0 < probability <= 1:
            raise ValueError(f"probability must be above 0 and at most 1, got {probability!r}")
        self.method = method.upper()
        self.path = path
        self.kind = kind
        self.remaining = times
        self.hits = 0
        default = STALL_SECONDS if kind == "stall" else _DELAY_SECONDS
        self.seconds = default if seconds is None else seconds
        self.status = status
        self.retry_after = retry_after
        self.message = message
        self.keep_bytes = keep_bytes
        self.inflate_to = inflate_to
        self.probability = probability
        self._random = random.Random(seed)
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

    def strikes(self) -> bool:
        """Whether it applies to this matching request (always, unless a ``probability``)."""
        return self.probability == 1 or self._random.random() < self.probability


class FaultRegistry:
    """The injected faults, consumed first-in first-out (a fault with a ``probability``
    that passes over a request leaves it to the next one)."""

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
                if fault.matches(method, path) and fault.strikes():
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


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> CapturedResponse:
    """Run the app (its work is done and committed) and keep its response."""
    start: MutableMapping[str, Any] = {}
    chunks: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return CapturedResponse(start["status"], list(start.get("headers", [])), b"".join(chunks))


async def _disconnected(receive: Receive, within: float) -> bool:
    """Wait up to ``within`` seconds for the client to go away; whether it did."""
    with anyio.move_on_after(within):
        while (await receive())["type"] != "http.disconnect":
            pass
        return True
    return False


async def _interrupt(
    scope: Scope,
    receive: _BodyTracker,
    send: Send,
    response: CapturedResponse | None = None,
    *,
    keep: int = 0,
    pause: float | None = None,
) -> None:
    """Send ``response`` up to ``keep`` body bytes; then hang up, or pause and finish."""
    await receive.drain()
    with _CONNECTIONS_LOCK:
        transport = _CONNECTIONS.get((scope.get("server"), scope.get("client")))
    if transport is None:
        raise InterruptedResponse(response, keep, pause)
    if response is not None:
        await send(response.start_message())
        await send({"type": "http.response.body", "body": response.body[:keep], "more_body": True})
    if pause is None:
        transport.close()
        await _disconnected(receive, 5)
    elif not await _disconnected(receive, pause):
        assert response is not None
        await send({"type": "http.response.body", "body": response.body[keep:]})


def _gzip(response: CapturedResponse, inflate_to: int | None) -> CapturedResponse:
    """The response gzip-compressed; with ``inflate_to``, padded to that size first.

    JSON and text are padded with spaces (still valid), anything else with zero bytes.
    The padding is compressed a chunk at a time, so it never exists in memory whole.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(response.body)]
    missing = max(0, (inflate_to or 0) - len(response.body))
    content_type = response.header(b"content-type")
    textual = b"json" in content_type or content_type.startswith(b"text/")
    filler = memoryview((b" " if textual else b"\0") * min(missing, _PAD_CHUNK))
    while missing:
        step = min(missing, _PAD_CHUNK)
        parts.append(compressor.compress(filler[:step]))
        missing -= step
    parts.append(compressor.flush())
    return response.with_body(b"".join(parts), (b"content-encoding", b"gzip"))


def _keep(fault: Fault, body: bytes) -> int:
    """How much of the body a truncate or stall sends first (never all of it)."""
    wanted = len(body) // 2 if fault.keep_bytes is None else fault.keep_bytes
    return min(wanted, len(body) - 1)


class FaultMiddleware(HttpMiddleware):
    """Applies injected faults around the wrapped app."""

    def __init__(
        self,
        app: ASGIApp,
        registry: FaultRegistry,
        *,
        clock: Callable[[], float],
        on_request: Callable[[str, str], None],
    ) -> None:
        super().__init__(app, clock=clock)
        self.registry = registry
        self.on_request = on_request

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request: its fault, if one is injected for it."""
        method, path = scope["method"], scope["path"]
        self.on_request(method, path)
        fault = self.registry.take(method, path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "delay":
            await anyio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "error":
            await self._error(fault)(scope, receive, send)
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
            await _interrupt(scope, _BodyTracker(receive), send)
        else:  # the rest do the work first, then spoil the answer
            tracker = _BodyTracker(receive)
            await self._after(fault, scope, tracker, send, await _capture(self.app, scope, tracker))

    def _error(self, fault: Fault) -> Response:
        """The Sectigo error reply of an ``error`` or ``error_after`` fault."""
        return error_response(
            fault.status, fault.message, now=self.clock(), error_code=ErrorCode.FAULT
        )

    async def _after(
        self, fault: Fault, scope: Scope, receive: _BodyTracker, send: Send, done: CapturedResponse
    ) -> None:
        """Deliver (or not) the response of a request that was processed."""
        if fault.kind == "drop_after":
            await _interrupt(scope, receive, send)
        elif fault.kind == "error_after":
            await self._error(fault)(scope, receive, send)
        elif fault.kind == "delay_after":
            await anyio.sleep(fault.seconds)
            await done.replay(send)
        elif fault.kind == "gzip":
            await (await anyio.to_thread.run_sync(_gzip, done, fault.inflate_to)).replay(send)
        elif not done.body:  # truncate or stall, but there is nothing to cut
            await done.replay(send)
        else:
            pause = fault.seconds if fault.kind == "stall" else None
            await _interrupt(scope, receive, send, done, keep=_keep(fault, done.body), pause=pause)
