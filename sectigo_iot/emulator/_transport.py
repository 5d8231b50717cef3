"""An httpx transport that runs the emulator in process, with real transport errors."""

from __future__ import annotations

import anyio
import httpx
from starlette.types import ASGIApp

from ._faults import DropConnection

__all__ = ["EmulatorTransport"]


class EmulatorTransport(httpx.AsyncBaseTransport):
    """Runs an ASGI app in process, like ``httpx.ASGITransport``, but behaves like a network.

    * a dropped connection (fault ``drop_before``/``drop_after``) raises
      ``httpx.RemoteProtocolError``, as a server that hangs up would;
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
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            with anyio.fail_after(timeout):
                return await self._asgi.handle_async_request(request)
        except DropConnection:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        except TimeoutError:
            raise httpx.ReadTimeout("Timed out waiting for the emulator", request=request) from None
