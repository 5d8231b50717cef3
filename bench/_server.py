"""The benchmark's server: the emulator under uvicorn on loopback, in its own process.

Run by ``bench/run.py`` as ``python bench/_server.py [options]``. It builds an
``Emulator`` with a large balance, creates one real single-certificate batch that is
ready for download, and serves the emulator's ASGI app wrapped in a middleware that
answers that batch's download with a large archive (the emulator's real archives are a
few kilobytes). When it is listening it prints one JSON line on stdout::

    {"url": "http://127.0.0.1:PORT", "batch_id": 10001, "archive_bytes": 52428800, ...}

and serves until it gets SIGTERM or SIGINT (or, with ``--watch-stdin``, until its stdin
is closed: ``bench/run.py`` uses that so that no server outlives it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import anyio
import uvicorn

from sectigo_iot.emulator import Emulator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHUNK_SIZE = 256 * 1024  # bytes per ASGI body message
BLOCK_CHUNKS = 4  # distinct chunks generated once and cycled through
ENTRY_NAME = b"bench-archive.bin"
PKCS12_PASSWORD = "bench-pkcs12-password"


def zip_local_header(payload_size: int) -> bytes:
    """A valid ZIP local file header for one stored (uncompressed) entry."""
    size = min(payload_size, 0xFFFFFFFF)
    return (
        struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,  # version needed to extract
            0,  # flags
            0,  # method: stored
            0,  # modification time
            0x21,  # modification date: 1980-01-01
            0,  # CRC-32 (not checked by anything in the benchmark)
            size,  # compressed size
            size,  # uncompressed size
            len(ENTRY_NAME),
            0,  # extra field length
        )
        + ENTRY_NAME
    )


class LargeArchive:
    """ASGI middleware: ``GET path`` streams ``size`` deterministic bytes, in chunks.

    The body starts with a ZIP local file header. Only ``BLOCK_CHUNKS`` chunks are ever
    held in memory (generated once from a fixed seed), whatever the size served. A
    request without a bearer token gets the 401 the emulator would give. Anything else
    goes to the wrapped app.
    """

    def __init__(self, app: ASGIApp, path: str, size: int, chunk_size: int = CHUNK_SIZE) -> None:
        self.app = app
        self.path = path
        self.size = size
        rng = random.Random(20240607)
        first = zip_local_header(size)
        first += rng.randbytes(chunk_size - len(first))
        self.chunks = [first] + [rng.randbytes(chunk_size) for _ in range(BLOCK_CHUNKS - 1)]
        self.chunk_size = chunk_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not headers.get(b"authorization", b"").lower().startswith(b"bearer "):
            await self.app(scope, receive, send)  # the emulator answers the 401
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(self.size).encode()),
                    (b"content-disposition", b'attachment; filename="bench.zip"'),
                ],
            }
        )
        sent, index = 0, 0
        while sent < self.size:
            chunk = self.chunks[index % len(self.chunks)]
            index += 1
            if self.size - sent < len(chunk):
                chunk = chunk[: self.size - sent]
            sent += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": sent < self.size})


async def create_ready_batch(emulator: Emulator) -> int:
    """Create one single-certificate batch in process and wait until it is ready."""
    async with emulator.client() as client:
        batch = await client.batches.create(
            1, common_name="bench.example.com", pkcs12_password=PKCS12_PASSWORD
        )
        await client.batches.wait(batch.batch_id, timeout=60)
    return batch.batch_id


async def serve(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {
        "balance": args.balance,
        "access_ttl": args.access_ttl,
        "processing_delay": args.processing_delay,
    }
    if args.key_type:
        options["key_type"] = args.key_type
    emulator = Emulator(**options)
    if args.latency:  # every request, as a remote service's round trip would
        emulator.inject("*", "*", "delay", times=2**62, seconds=args.latency)
    try:
        batch_id = await create_ready_batch(emulator)
        size = args.archive_bytes
        app = LargeArchive(emulator.app, f"/api/v1/batches/{batch_id}/download", size)
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.create_server((args.host, args.port), family=family, backlog=1024)
        # no Nagle delay: asyncio sets TCP_NODELAY only on sockets of proto IPPROTO_TCP
        # (create_server's are proto 0), and without it each keep-alive request waited
        # ~40 ms for a delayed ACK; accepted sockets inherit it from this one
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            http="h11",  # what the emulator itself runs (python -m sectigo_iot.emulator)
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        async with anyio.create_task_group() as group:

            async def run_server() -> None:
                try:
                    await server.serve(sockets=[sock])
                finally:
                    group.cancel_scope.cancel()

            group.start_soon(run_server)
            if args.watch_stdin:

                async def exit_with_parent() -> None:
                    # stdin reaches EOF when the parent closes it or dies: no orphan server
                    await anyio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
                    server.should_exit = True

                group.start_soon(exit_with_parent)
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                await anyio.sleep(0.01)
            ready = {
                "url": f"http://{host}:{port}",
                "batch_id": batch_id,
                "archive_bytes": size,
                "username": next(iter(emulator.config.users)),
                "password": next(iter(emulator.config.users.values())),
                "access_ttl": emulator.config.access_ttl,
                "refresh_ttl": emulator.config.refresh_ttl,
                "key_type": emulator.config.key_type,
                "pid": os.getpid(),
            }
            print(json.dumps(ready), flush=True)
        sock.close()
    finally:
        emulator.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--balance", type=int, default=1_000_000)
    parser.add_argument("--access-ttl", type=int, default=600)
    parser.add_argument(
        "--key-type", default=None, help="key type of issued certificates (default: emulator's)"
    )
    parser.add_argument(
        "--processing-delay", type=float, default=0.0, help="seconds each batch takes"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds each request waits first"
    )
    parser.add_argument("--archive-bytes", type=int, default=50 * 1024 * 1024)
    parser.add_argument(
        "--watch-stdin", action="store_true", help="exit when stdin is closed (parent gone)"
    )
    args = parser.parse_args(argv)
    anyio.run(serve, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
