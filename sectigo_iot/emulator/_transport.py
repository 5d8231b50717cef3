"""An httpx transport that runs the emulator in process, with real transport errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
from starlette.types import ASGIApp

from ._faults import InterruptedResponse

__all__ = ["EmulatorTransport"]


def _read_timeout(request: httpx.Request) -> float | None:
    timeout: float | None = request.extensions.get("timeout", {}).get("read")
    return timeout


def _read_timed_out(request: httpx.Request) -> httpx.ReadTimeout:
    return httpx.ReadTimeout("Timed out waiting for the emulator", request=request)


class _InterruptedStream(httpx.AsyncByteStream):
    """A response body that stops short (hang-up) or stalls before the rest."""

    def __init__(self, interrupted: InterruptedResponse, request: httpx.Request) -> None:
        assert interrupted.response is not None
        self._body = interrupted.response.body
        self._keep = interrupted.keep
        self._pause = interrupted.pause
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._keep:
            yield self._body[: self._keep]
        if self._pause is None:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                f"(received {self._keep} bytes, expected {len(self._body)})",
                request=self._request,
            )
        try:
            with anyio.fail_after(_read_timeout(self._request)):
                await anyio.sleep(self._pause)
        except TimeoutError:
            raise _read_timed_out(self._request) from None
        yield self._body[self._keep :]


class EmulatorTransport(httpx.AsyncBaseTransport):
    """Runs an ASGI app in process, like ``httpx.ASGITransport``, but behaves like a network.

    * a dropped connection (fault ``drop_before``/``drop_after``) raises
      ``httpx.RemoteProtocolError``, as a server that hangs up would;
    * a cut body (fault ``truncate``) gives the status and headers, then raises
      ``httpx.RemoteProtocolError`` while the body is read;
    * a stalled body (fault ``stall``) pauses while the body is read, and raises
      ``httpx.ReadTimeout`` when the pause outlasts the read timeout;
    * the request's read timeout bounds the whole exchange and raises
      ``httpx.ReadTimeout`` (so ``delay`` faults meet client timeouts);
    * a bug in the app surfaces as its own exception, not as a 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def __repr__(self) -> str:
        return "<EmulatorTransport>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request to the app."""
        try:
            with anyio.fail_after(_read_timeout(request)):
                return await self._asgi.handle_async_request(request)
        except InterruptedResponse as interrupted:
            if interrupted.response is None:
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                ) from None
            return httpx.Response(
                interrupted.response.status,
                headers=interrupted.response.headers,
                stream=_InterruptedStream(interrupted, request),
            )
        except TimeoutError:
            raise _read_timed_out(request) from None
