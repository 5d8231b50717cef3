"""``certificates.find`` with 10,000 matches against raw httpx + ``json.loads``.

The server is this file run as a script (``python bench/_measure_find.py --serve N``):
a minimal HTTP/1.1 server in its own process that answers a login and a find whose
body holds ``N`` certificates (distinct serial numbers and dates, in the real
service's date format). It prints ``{"url": ...}`` once listening and exits when its
stdin closes. Both sides use one kept-alive connection, so the ratio is the SDK's
work on the body (checks, redaction, models) over the bare transfer and decode.
"""

from __future__ import annotations

import asyncio
import base64
import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
from _report import Scale, ratio

__all__ = ["find_body", "find_server", "measure_find"]

FIND_PATH = "/api/v1/certificates/find"
COMMON_NAME = "fleet.example.com"
PASSWORD = "bench-find-password"
COUNT = 10_000  # certificates in the answer
CALLS = 4  # finds per side per round


def _jwt(**claims: Any) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS512'})}.{part(claims)}.c2lnbmF0dXJl"


def _tokens() -> bytes:
    now = int(time.time())
    sub = "/account/1/user/1"
    return json.dumps(
        {
            "accessToken": _jwt(sub=sub, iat=now, exp=now + 3600),
            "refreshToken": _jwt(sub=sub, iat=now, exp=now + 7200, jti="bench"),
        }
    ).encode()


def find_body(count: int) -> bytes:
    """A find answer with ``count`` certificates of one common name."""
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    items = [
        {
            "deviceId": str(100_000 + i),
            "commonName": COMMON_NAME,
            "serialNumber": f"{0x3A7F0000_00000000_00000000 + i * 7919:032X}",
            "creationDate": (start + timedelta(seconds=37 * i, milliseconds=i % 1000)).strftime(
                "%Y-%m-%dT%H:%M:%S.%f"
            )[:-3]
            + "+0000",
            "status": "REVOKED" if i % 10 == 0 else "READY_FOR_DOWNLOAD",
        }
        for i in range(count)
    ]
    return json.dumps({"totalCount": count, "items": items}, separators=(",", ":")).encode()


async def _serve(count: int) -> None:
    body = find_body(count)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                status, content = "200 OK", body
                if path == "/auth/pwd":
                    content = _tokens()
                elif path != FIND_PATH:
                    status, content = "404 Not Found", b"{}"
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(content)}\r\n\r\n".encode()
                    + content
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    print(json.dumps({"url": f"http://{host}:{port}"}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)  # until the parent goes


@contextmanager
def find_server(count: int) -> Iterator[str]:
    """Run the find server in a child process; yields its URL."""
    from _processes import child_server

    command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(count)]
    with child_server(command, "the find server") as info:
        yield info["url"]


def measure_find(scale: Scale, notes: dict[str, str]) -> float:
    """find_ratio: the median over ``scale.rounds`` rounds of SDK time / raw time for
    ``CALLS`` finds each, interleaved, of a find answering ``COUNT`` certificates."""
    ratios, sdk_times, raw_times = anyio.run(_measure, COUNT, scale.rounds)
    notes["find_ratio"] = (
        f"{COUNT:,} certificates: SDK {1000 * statistics.median(sdk_times):.0f} ms, "
        f"raw httpx + json.loads {1000 * statistics.median(raw_times):.0f} ms "
        f"(json.loads alone {1000 * _loads_time(COUNT, scale.rounds):.0f} ms)"
    )
    return statistics.median(ratios)


def _loads_time(count: int, rounds: int) -> float:
    """The median time of ``json.loads`` of the answer alone: the part both sides share."""
    body, times = find_body(count), []
    for _ in range(rounds):
        start = time.perf_counter()
        json.loads(body)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _measure(count: int, rounds: int) -> tuple[list[float], list[float], list[float]]:
    import httpx

    from sectigo_iot import SectigoClient

    with find_server(count) as url:
        async with (
            SectigoClient("bench", PASSWORD, base_url=url, token_store="memory") as client,
            httpx.AsyncClient(base_url=url) as http,
        ):

            async def sdk() -> float:
                start = time.perf_counter()
                found = await client.certificates.find(common_name=COMMON_NAME)
                elapsed = time.perf_counter() - start
                if len(found) != count:
                    raise RuntimeError(f"the SDK found {len(found)} certificates, not {count}")
                return elapsed

            async def raw() -> float:
                start = time.perf_counter()
                response = await http.post(FIND_PATH, json={"commonName": COMMON_NAME})
                response.raise_for_status()
                items = json.loads(response.content)["items"]
                elapsed = time.perf_counter() - start
                if len(items) != count:
                    raise RuntimeError(f"raw httpx read {len(items)} certificates, not {count}")
                return elapsed

            await sdk()  # warm up: the login, the connections, the code paths
            await raw()
            ratios, sdk_times, raw_times = [], [], []
            for _ in range(rounds):
                sdk_time = raw_time = 0.0
                for i in range(CALLS):
                    first, second = (sdk, raw) if i % 2 == 0 else (raw, sdk)
                    one, other = await first(), await second()
                    sdk_time += one if first is sdk else other
                    raw_time += other if first is sdk else one
                ratios.append(ratio(sdk_time, raw_time))
                sdk_times.append(sdk_time / CALLS)
                raw_times.append(raw_time / CALLS)
    return ratios, sdk_times, raw_times


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    asyncio.run(_serve(int(sys.argv[2])))
