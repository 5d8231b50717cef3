"""Running the emulator under uvicorn: in the foreground, or in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_local_addr, get_remote_addr

from .._net import is_loopback
from ._faults import register_connection, unregister_connection

__all__ = ["is_loopback", "run_in_thread", "serve"]


_START_TIMEOUT = 10.0


class _DroppableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, registering its connection for drops and truncations."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._fault_key = (get_local_addr(transport), get_remote_addr(transport))
        register_connection(self._fault_key, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        unregister_connection(self._fault_key)
        super().connection_lost(exc)


def bind_socket(host: str, port: int, *, backlog: int = 128) -> socket.socket:
    """A listening TCP socket (port 0: a free one)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(backlog)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _config(app: ASGIApp, log_level: str, *, configure_logging: bool) -> uvicorn.Config:
    extra = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        log_level=log_level,
        http=_DroppableH11Protocol,
        lifespan="off",
        timeout_graceful_shutdown=2,
        **extra,  # type: ignore[arg-type]
    )


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve ``app`` with uvicorn until interrupted; ``on_ready`` gets the base URL."""
    sock = bind_socket(host, port)
    try:
        if on_ready is not None:
            on_ready(_url(sock))
        server = uvicorn.Server(_config(app, log_level, configure_logging=True))
        await server.serve(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def run_in_thread(app: ASGIApp, host: str, port: int, log_level: str) -> Iterator[str]:
    """Serve ``app`` in a daemon thread while the block runs; yields the base URL."""
    sock = bind_socket(host, port)
    server = uvicorn.Server(_config(app, log_level, configure_logging=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sectigo-iot-emulator", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator's uvicorn server did not start")
            time.sleep(0.005)
        yield _url(sock)
    finally:
        server.should_exit = True
        thread.join(_START_TIMEOUT)
        sock.close()
