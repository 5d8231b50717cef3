"""Measurements of SDK calls against raw httpx doing the same HTTP work, in this process."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from _processes import ServerInfo
from _report import Scale, ratio

import sectigo_iot
from sectigo_iot import SectigoClient

__all__ = [
    "emulator_stats",
    "measure_call_overhead",
    "measure_concurrent",
    "measure_download",
    "measure_issue",
]

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
OCTET_STREAM = "application/octet-stream"
USER_AGENT = f"sectigo-iot/{sectigo_iot.__version__}"
CLIENT_TIMEOUT = 120.0  # both sides: generous, a slow CI box must not time out
PKCS12_PASSWORD = "bench-pkcs12-password"
AUTHORITY_ID = 1


class MovableClock:
    """Wall-clock time plus an offset the benchmark moves (injected into the SDK)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def sdk_client(
    info: ServerInfo, clock: Callable[[], float] = time.time, timeout: float = CLIENT_TIMEOUT
) -> SectigoClient:
    """An SDK client of the bench server (memory token store, default pool limits)."""
    return SectigoClient(
        info.username,
        info.password,
        base_url=info.url,
        token_store="memory",
        timeout=timeout,
        clock=clock,
    )


@asynccontextmanager
async def raw_client(info: ServerInfo) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client, logged in, sending the SDK's default headers on every GET."""
    async with httpx.AsyncClient(
        base_url=info.url,
        timeout=CLIENT_TIMEOUT,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={
            "User-Agent": USER_AGENT,
            "Content-Type": JSON_CONTENT_TYPE,
            "Accept": JSON_CONTENT_TYPE,
        },
        follow_redirects=False,
    ) as http:
        reply = await http.post(
            "/auth/pwd", json={"username": info.username, "password": info.password}
        )
        reply.raise_for_status()
        http.headers["Authorization"] = f"Bearer {json.loads(reply.content)['accessToken']}"
        yield http


async def raw_get_json(http: httpx.AsyncClient, path: str) -> Any:
    """What a user does with raw httpx: GET, check the status, decode the JSON."""
    response = await http.get(path)
    response.raise_for_status()
    return json.loads(response.content)


async def emulator_stats(http: httpx.AsyncClient) -> dict[str, Any]:
    """The served emulator's counters (``GET /emulator/stats``: logins, refreshes...)."""
    stats: dict[str, Any] = await raw_get_json(http, "/emulator/stats")
    return stats


async def measure_call_overhead(info: ServerInfo, scale: Scale) -> float:
    """Sequential ``authorities.list()`` / ``batches.get()`` vs raw GETs + json.loads.

    Calls are interleaved one by one (SDK, raw, raw, SDK, ...) so that drift in machine
    load hits both sides alike; each round's ratio is SDK total / raw total.
    """
    batch_path = f"/api/v1/batches/{info.batch_id}"
    authorities_path = "/api/v1/authorities/allowed"
    async with sdk_client(info) as client, raw_client(info) as http:
        await client.authenticate()

        async def sdk_call(i: int) -> None:
            if i % 2:
                await client.batches.get(info.batch_id)
            else:
                await client.authorities.list()

        async def raw_call(i: int) -> None:
            await raw_get_json(http, batch_path if i % 2 else authorities_path)

        for i in range(min(20, scale.calls)):  # warm up both connections and code paths
            await sdk_call(i)
            await raw_call(i)
        ratios = []
        clock = time.perf_counter
        for _ in range(scale.rounds):
            sdk_time = raw_time = 0.0
            for i in range(scale.calls):
                first, second = (sdk_call, raw_call) if i % 4 in (0, 3) else (raw_call, sdk_call)
                start = clock()
                await first(i)
                middle = clock()
                await second(i)
                end = clock()
                if first is sdk_call:
                    sdk_time += middle - start
                    raw_time += end - middle
                else:
                    raw_time += middle - start
                    sdk_time += end - middle
            ratios.append(ratio(sdk_time, raw_time))
    return statistics.median(ratios)


async def _burst(call: Callable[[], Awaitable[Any]], count: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(call() for _ in range(count)))
    return time.perf_counter() - start


async def measure_concurrent(info: ServerInfo, scale: Scale) -> tuple[float, int]:
    """``concurrent`` simultaneous ``batches.get()`` starting with an expired access token,
    vs the same number of raw GETs with a valid token. Returns (median ratio, refreshes
    per burst as the emulator counted them; the worst burst when they differ)."""
    clock = MovableClock()
    path = f"/api/v1/batches/{info.batch_id}"
    async with sdk_client(info, clock) as client, raw_client(info) as http:
        await client.authenticate()

        async def sdk_call() -> None:
            await client.batches.get(info.batch_id)

        async def raw_call() -> None:
            await raw_get_json(http, path)

        async def sdk_burst(count: int = scale.concurrent) -> tuple[float, int]:
            # past the access token's expiry, well before the refresh token's
            clock.offset += info.access_ttl + 1
            before = await emulator_stats(http)
            elapsed = await _burst(sdk_call, count)
            after = await emulator_stats(http)
            if after["logins"] != before["logins"]:
                raise RuntimeError("the SDK logged in again instead of refreshing")
            return elapsed, int(after["refreshes"] - before["refreshes"])

        warm_up = min(scale.concurrent, 100)  # connections, the refresh path
        await sdk_burst(warm_up)
        await _burst(raw_call, warm_up)
        ratios, counts = [], []
        for round_ in range(scale.burst_rounds):
            if round_ % 2 == 0:
                sdk_time, refreshes = await sdk_burst()
                raw_time = await _burst(raw_call, scale.concurrent)
            else:
                raw_time = await _burst(raw_call, scale.concurrent)
                sdk_time, refreshes = await sdk_burst()
            ratios.append(ratio(sdk_time, raw_time))
            counts.append(refreshes)
    worst = max(counts, key=lambda count: (abs(count - 1), count))
    return statistics.median(ratios), worst


def _check_size(path: Path, expected: int) -> None:
    size = path.stat().st_size
    if size != expected:
        raise RuntimeError(f"downloaded {size} bytes to {path}, expected {expected}")


async def measure_download(
    info: ServerInfo, scale: Scale, workdir: Path, notes: dict[str, str] | None = None
) -> float:
    """``batches.download()`` of the large archive vs raw httpx streaming it to a file
    with the same durability: a temporary file, fsync, rename, fsync of the folder (the
    SDK's way of never showing a partial file). The note gives the fsyncs' share."""
    path = f"/api/v1/batches/{info.batch_id}/download"
    download_headers = {"Content-Type": OCTET_STREAM, "Accept": OCTET_STREAM}
    sdk_dir, raw_dir = workdir / "sdk", workdir / "raw"
    sdk_dir.mkdir(exist_ok=True)
    raw_dir.mkdir(exist_ok=True)
    async with sdk_client(info) as client, raw_client(info) as http:
        await client.authenticate()

        async def sdk_download() -> float:
            start = time.perf_counter()
            target = await client.batches.download(info.batch_id, sdk_dir)
            elapsed = time.perf_counter() - start
            _check_size(target, info.archive_bytes)
            target.unlink()
            return elapsed

        async def raw_download(*, durable: bool = True) -> float:
            start = time.perf_counter()
            part, target = raw_dir / "raw.zip.part", raw_dir / "raw.zip"
            async with http.stream("GET", path, headers=download_headers) as response:
                response.raise_for_status()
                with open(part, "wb") as handle:  # noqa: ASYNC230 - as the SDK does
                    async for chunk in response.aiter_bytes():
                        handle.write(chunk)
                    if durable:
                        handle.flush()
                        os.fsync(handle.fileno())
            os.replace(part, target)
            if durable:  # the folder made durable too, as the SDK does
                folder = os.open(raw_dir, os.O_RDONLY)
                try:
                    os.fsync(folder)
                finally:
                    os.close(folder)
            elapsed = time.perf_counter() - start
            _check_size(target, info.archive_bytes)
            target.unlink()
            return elapsed

        await sdk_download()  # warm up (page cache, connections)
        await raw_download()
        ratios, sdk_times, raw_times, volatile_times = [], [], [], []
        for round_ in range(scale.download_rounds):
            if round_ % 2 == 0:
                sdk_time, raw_time = await sdk_download(), await raw_download()
            else:
                raw_time = await raw_download()
                sdk_time = await sdk_download()
            volatile_times.append(await raw_download(durable=False))
            ratios.append(ratio(sdk_time, raw_time))
            sdk_times.append(sdk_time)
            raw_times.append(raw_time)
    if notes is not None:
        ms = [f"{1000 * statistics.median(times):.0f} ms" for times in (sdk_times, raw_times)]
        notes["download_ratio"] = (
            f"SDK {ms[0]}; raw httpx {ms[1]} with the same fsyncs, "
            f"{1000 * statistics.median(volatile_times):.0f} ms without them"
        )
    return statistics.median(ratios)


async def measure_issue(info: ServerInfo, scale: Scale) -> float:
    """Seconds to issue 100 certificates: single-certificate batches created through the
    SDK and awaited until ready (``issue_concurrency`` at a time, the emulator's key
    type). With fewer than 100 certificates the time is scaled to 100."""
    async with sdk_client(info) as client:
        await client.authenticate()
        limiter = anyio.Semaphore(scale.issue_concurrency)

        async def issue(index: int) -> None:
            async with limiter:
                batch = await client.batches.create(
                    AUTHORITY_ID,
                    common_name=f"bench-{index}.example.com",
                    pkcs12_password=PKCS12_PASSWORD,
                )
                await client.batches.wait(batch.batch_id, timeout=CLIENT_TIMEOUT)

        start = time.perf_counter()
        await asyncio.gather(*(issue(index) for index in range(scale.certificates)))
        elapsed = time.perf_counter() - start
    return elapsed * 100 / scale.certificates
