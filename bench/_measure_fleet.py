"""The fleet (``sectigo_iot.fleet``): idle passes that stay flat as the store grows, and
certificates issued end to end against a served emulator.

- ``fleet_pass_ratio``: an idle ``run_once()`` (no record due) over a store of
  ``scale.fleet_pass_records`` records / one over ``SMALL_STORE`` records, median round.
- ``fleet_pass_rss_mb``: the peak RSS of a fresh process (this file run with
  ``--pass-probe``) that opens a store of ``scale.fleet_rss_records`` records and runs
  idle passes, minus the same over ``RSS_SMALL_STORE`` records (the imports are alike).
- ``fleet_issue_rate_1`` / ``_4``: certificates per second, from ``want()`` of every
  record until every record is ``VALID`` (delivered once to a sink; one create per
  record), by one ``Fleet(concurrency=N)`` whose ``run()`` works in a task, against
  ``bench/_server.py`` served in its own process with EC keys, a processing delay of
  ``PROCESSING_DELAY`` and a ``LATENCY`` per request; ``fleet_issue_speedup`` is rate 4
  / rate 1 (4 must beat 1). A waiting record holds no slot, so concurrency 1 already
  waits for every batch at once: what 4 overlaps is the requests and the store's work.
- ``fleet_overhead_ratio``: the fleet (concurrency 4) issuing ``scale.fleet_certificates``
  certificates / a plain loop of ``create``/``wait``/``download`` doing the same, 4 at a
  time, in up to 3 interleaved rounds (the median reported) on an emulator of its own
  without a processing delay: the ratio is the fleet's own work (store, sealing,
  checks, delivery). With a delay the fleet wins easily: a waiting record holds none of
  its 4 slots, while each of the loop's waits holds one (100 certificates take the loop
  at least 25 delays).

Stores are seeded without issuing their records: one record is issued through the
public API (``want()`` and ``run_once()`` against an in-process emulator: ``VALID``,
renewed in 335 days), then copied row by row with SQL in one transaction (every column
as the store wrote it, only the key and the next-action time changed). A ``want()`` per
record is one committed (fsync'd) transaction each: minutes for 100,000 records, and
those records would be due.
"""

from __future__ import annotations

import collections
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from _measure_http import sdk_client
from _processes import (
    MEASUREMENT_TIMEOUT,
    ServerInfo,
    bench_server,
    cpu_seconds,
    last_json_line,
)
from _report import Scale, ratio

from sectigo_iot import SectigoClient
from sectigo_iot.fleet import Delivery, Fleet, RecordState, SQLiteStore
from sectigo_iot.lifecycle import CertificateSpec

__all__ = [
    "LATENCY",
    "PROCESSING_DELAY",
    "RSS_SMALL_STORE",
    "SMALL_STORE",
    "measure_fleet_issue",
    "measure_fleet_pass",
    "measure_fleet_rss",
    "seed_store",
]

SMALL_STORE = 100  # records in the small store of fleet_pass_ratio
RSS_SMALL_STORE = 1_000  # records in the small store of fleet_pass_rss_mb
#: seconds the served emulator takes per batch (the CA's work): between the fleet's
#: checks 1 s and 2 s after a create, so that no record is ready just at a check
PROCESSING_DELAY = 1.5
#: seconds each request waits in the served emulator before it is served: a round trip
#: to a remote service (loopback has none, and the work becomes the store's alone)
LATENCY = 0.02
PROBE_PASSES = 20  # idle passes the memory probe runs
SECRET = "bench-fleet-secret-key-of-at-least-32-characters"
CLIENT_TIMEOUT = 30.0  # shorter than the fleet's default lease (2 minutes), as it must be
ISSUE_TIMEOUT = 300.0  # seconds one issuing run may take before it is an error
_TEMPLATE_KEY = "member-0"


def _spec(index: int, run: str = "seed") -> CertificateSpec:
    return CertificateSpec(authority_id=1, common_name=f"m{index}.{run}.fleet.example.com")


async def _seed_template(path: Path) -> None:
    """One VALID record, its certificate issued by an in-process emulator (EC key)."""
    from sectigo_iot.emulator import Emulator  # here: the memory probe does without

    with Emulator(key_type="ec-p256") as emulator:
        async with emulator.client() as client:
            store = SQLiteStore(path, secret_key=SECRET)
            async with Fleet(client, store, sinks=[_kept_sink]) as fleet:
                await fleet.want(_TEMPLATE_KEY, _spec(0))
                await fleet.run_once()
                record = await fleet.get(_TEMPLATE_KEY)
    if record is None or record.state is not RecordState.VALID:
        raise RuntimeError(f"the template record is not VALID: {record}")


def _kept_sink(delivery: Delivery) -> None:
    """A sink that keeps nothing (the seeding needs only the record)."""


def seed_store(path: Path, records: int) -> None:
    """A fleet store at ``path`` holding ``records`` VALID records, none due for a year."""
    anyio.run(_seed_template, path)
    connection = sqlite3.connect(path)
    try:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(records)")]
        kept = ", ".join(name for name in columns if name not in ("key", "next_action_at"))
        copy = (
            f"INSERT INTO records (key, next_action_at, {kept}) "
            f"SELECT ?, next_action_at + ?, {kept} FROM records WHERE key = ?"
        )
        with connection:  # one transaction
            connection.executemany(
                copy, ((f"member-{index}", index, _TEMPLATE_KEY) for index in range(1, records))
            )
        (count,) = connection.execute("SELECT COUNT(*) FROM records").fetchone()
    finally:
        connection.close()
    if count != records:
        raise RuntimeError(f"the store holds {count} records, not {records}")


@asynccontextmanager
async def _idle_fleet(path: Path) -> AsyncIterator[Fleet]:
    """A fleet on the store at ``path`` whose client is never called (nothing is due)."""
    client = SectigoClient(
        "bench",
        "never-sent-password",
        base_url="http://127.0.0.1:9",
        token_store="memory",
        timeout=CLIENT_TIMEOUT,
    )
    store = SQLiteStore(path, secret_key=SECRET)
    async with client, Fleet(client, store, sinks=[_unused_sink]) as fleet:
        yield fleet


def _unused_sink(delivery: Delivery) -> None:
    raise RuntimeError(f"an idle pass delivered {delivery.key!r}")


async def _idle_passes(fleet: Fleet, passes: int) -> float:
    """Seconds for ``passes`` idle passes (RuntimeError if one touched a record)."""
    started = time.perf_counter()
    for _ in range(passes):
        if await fleet.run_once():
            raise RuntimeError("an idle pass touched a record")
    return time.perf_counter() - started


async def _pass_ratio(small: Path, large: Path, scale: Scale) -> tuple[float, float, float]:
    passes = max(scale.calls, 5)
    async with _idle_fleet(small) as small_fleet, _idle_fleet(large) as large_fleet:
        for fleet in (small_fleet, large_fleet):
            await _idle_passes(fleet, 3)  # warm up: threads, statements, pages
        ratios, small_times, large_times = [], [], []
        for index in range(max(scale.rounds, 3)):  # interleaved, each side first in turn
            order = (small_fleet, large_fleet) if index % 2 == 0 else (large_fleet, small_fleet)
            spent = {id(fleet): await _idle_passes(fleet, passes) for fleet in order}
            small_s, large_s = spent[id(small_fleet)], spent[id(large_fleet)]
            ratios.append(ratio(large_s, small_s))
            small_times.append(small_s / passes)
            large_times.append(large_s / passes)
    return statistics.median(ratios), statistics.median(small_times), statistics.median(large_times)


def measure_fleet_pass(scale: Scale, notes: dict[str, str]) -> float:
    """fleet_pass_ratio: an idle pass over the large store / one over ``SMALL_STORE``."""
    large_count = scale.fleet_pass_records
    with tempfile.TemporaryDirectory(prefix="sectigo-bench-fleet-") as workdir:
        small, large = Path(workdir) / "small.sqlite3", Path(workdir) / "large.sqlite3"
        seeding = time.perf_counter()
        seed_store(small, SMALL_STORE)
        seed_store(large, large_count)
        seed_s = time.perf_counter() - seeding
        value, small_s, large_s = anyio.run(_pass_ratio, small, large, scale)
    notes["fleet_pass_ratio"] = (
        f"idle run_once() over {large_count:,} records {large_s * 1e3:.2f} ms, over "
        f"{SMALL_STORE} records {small_s * 1e3:.2f} ms (SQLite, concurrency 4); seeding "
        f"took {seed_s:.2f} s"
    )
    return value


def _probe(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--pass-probe", str(path)],
        capture_output=True,
        text=True,
        timeout=MEASUREMENT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the fleet pass probe failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = last_json_line(done.stdout)
    return result


def measure_fleet_rss(scale: Scale, notes: dict[str, str]) -> float:
    """fleet_pass_rss_mb: peak RSS (MB) of a process passing idly over the large store
    above the peak of one passing over ``RSS_SMALL_STORE`` records."""
    large_count = scale.fleet_rss_records
    with tempfile.TemporaryDirectory(prefix="sectigo-bench-fleet-") as workdir:
        small, large = Path(workdir) / "small.sqlite3", Path(workdir) / "large.sqlite3"
        seed_store(small, RSS_SMALL_STORE)
        seed_store(large, large_count)
        size_mb = large.stat().st_size / 1e6
        small_peak, large_peak = _probe(small), _probe(large)
    growth = float(large_peak["hwm_kb"] - small_peak["hwm_kb"]) / 1024
    notes["fleet_pass_rss_mb"] = (
        f"{PROBE_PASSES} idle passes in a fresh process: peak RSS {large_peak['hwm_kb'] / 1024:.1f}"
        f" MB over {large_count:,} records ({size_mb:.0f} MB file), "
        f"{small_peak['hwm_kb'] / 1024:.1f} MB over {RSS_SMALL_STORE:,}"
    )
    return max(growth, 0.0)


def _pass_probe(path: Path) -> int:
    """In a fresh process: open the store, run idle passes, print the memory (JSON)."""
    from _download_probe import memory_kb

    async def passes() -> None:
        async with _idle_fleet(path) as fleet:
            await _idle_passes(fleet, PROBE_PASSES)

    before, _ = memory_kb()
    anyio.run(passes)
    _, hwm = memory_kb()
    print(json.dumps({"rss_before_kb": before, "hwm_kb": hwm}), flush=True)
    return 0


# -- issuing ---------------------------------------------------------------------------


async def _creates(info: ServerInfo) -> int:
    """Batches created so far on the served emulator (its request counters)."""
    import httpx

    async with httpx.AsyncClient(base_url=info.url) as http:
        stats = (await http.get("/emulator/stats")).raise_for_status().json()
    return int(stats["requestsByRoute"].get("PUT /api/v1/batches/createSingleCertBatch", 0))


async def _fleet_issue(info: ServerInfo, count: int, concurrency: int, workdir: Path) -> float:
    """Seconds for one fleet to take ``count`` new records to VALID (want() included)."""
    run = f"fleet{concurrency}-{os.urandom(4).hex()}"
    delivered: collections.Counter[str] = collections.Counter()
    all_delivered = anyio.Event()

    def sink(delivery: Delivery) -> None:
        delivered[delivery.key] += 1
        if len(delivered) == count:
            all_delivered.set()

    store = SQLiteStore(workdir / f"{run}.sqlite3", secret_key=SECRET)
    creates_before = await _creates(info)
    async with sdk_client(info, timeout=CLIENT_TIMEOUT) as client:
        await client.authenticate()
        async with Fleet(client, store, sinks=[sink], concurrency=concurrency) as fleet:
            started = time.perf_counter()
            for index in range(count):
                await fleet.want(f"member-{index}", _spec(index, run))
            async with anyio.create_task_group() as group:
                group.start_soon(fleet.run)
                with anyio.move_on_after(ISSUE_TIMEOUT):
                    await all_delivered.wait()
                    while True:  # the last record's VALID follows its delivery at once
                        if (await store.count()).get(RecordState.VALID) == count:
                            break
                        await anyio.sleep(0.002)
                elapsed = time.perf_counter() - started
                group.cancel_scope.cancel()
            states = await store.count()
    creates = await _creates(info) - creates_before
    if states != {RecordState.VALID: count} or set(delivered.values()) != {1}:
        raise RuntimeError(
            f"the fleet left {dict(states)}, delivered {sum(delivered.values())} times "
            f"for {len(delivered)} of {count} records"
        )
    if creates != count:
        raise RuntimeError(f"the fleet sent {creates} creates for {count} records")
    return elapsed


async def _loop_issue(info: ServerInfo, count: int, concurrency: int, workdir: Path) -> float:
    """Seconds for a plain loop of create/wait/download, ``concurrency`` at a time."""
    folder = workdir / f"loop-{os.urandom(4).hex()}"
    limiter = anyio.Semaphore(concurrency)
    async with sdk_client(info, timeout=CLIENT_TIMEOUT) as client:
        await client.authenticate()

        async def issue(index: int) -> None:
            async with limiter:
                batch = await client.batches.create(
                    1,
                    common_name=_spec(index, folder.name).common_name,
                    pkcs12_password=f"bench-{index}-{folder.name}",
                )
                await client.batches.wait(batch.batch_id, timeout=ISSUE_TIMEOUT)
                await client.batches.download(batch.batch_id, folder)

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for index in range(count):
                group.start_soon(issue, index)
        elapsed = time.perf_counter() - started
    if len(list(folder.iterdir())) != count:
        raise RuntimeError(f"the loop downloaded {len(list(folder.iterdir()))} archives")
    return elapsed


async def _issue(scale: Scale, workdir: Path, notes: dict[str, str]) -> dict[str, float]:
    count = scale.fleet_certificates
    delayed = {"processing_delay": PROCESSING_DELAY, "latency": LATENCY}
    with bench_server(1024, key_type="ec-p256", **delayed) as info:
        await _fleet_issue(info, 1, 1, workdir)  # warm up: imports, threads, connections
        fleet_1 = await _fleet_issue(info, count, 1, workdir)
        fleet_4 = await _fleet_issue(info, count, 4, workdir)
    with bench_server(1024, key_type="ec-p256") as info:
        await _fleet_issue(info, min(count, 4), 4, workdir)  # warm up: this server's paths
        fleet_times: list[float] = []
        loop_times: list[float] = []
        cpu = [0.0, 0.0]  # the emulator's CPU seconds: fleet, loop
        for index in range(min(scale.rounds, 3)):  # interleaved, each side first in turn
            sides = [(_fleet_issue, fleet_times, 0), (_loop_issue, loop_times, 1)]
            for issue, times, side in sides if index % 2 == 0 else sides[::-1]:
                before = cpu_seconds(info.pid) or 0.0
                times.append(await issue(info, count, 4, workdir))
                cpu[side] += (cpu_seconds(info.pid) or 0.0) - before
        bare_1 = await _fleet_issue(info, count, 1, workdir)
    rounds = len(fleet_times)
    fleet_s, loop_s = statistics.median(fleet_times), statistics.median(loop_times)
    notes["fleet_overhead_ratio"] = (
        f"{count} certificates (EC keys), 4 at a time, median of {rounds} round(s): the fleet "
        f"{fleet_s:.2f} s, the plain loop {loop_s:.2f} s, no processing delay (emulator CPU "
        f"{cpu[0] / rounds:.2f} s / {cpu[1] / rounds:.2f} s)"
    )
    for concurrency in (1, 4):
        notes[f"fleet_issue_rate_{concurrency}"] = (
            f"{count} certificates, want() to VALID, EC keys, emulator served with a "
            f"{PROCESSING_DELAY:g} s processing delay and {LATENCY * 1e3:g} ms per request"
        )
    notes["fleet_issue_speedup"] = (
        f"without the delay and the latency: concurrency 1 {count / bare_1:.1f} cert/s, "
        f"4 {count / fleet_s:.1f} cert/s"
    )
    return {
        "fleet_issue_rate_1": count / fleet_1,
        "fleet_issue_rate_4": count / fleet_4,
        "fleet_issue_speedup": fleet_1 / fleet_4,
        "fleet_overhead_ratio": ratio(fleet_s, loop_s),
    }


def measure_fleet_issue(scale: Scale, notes: dict[str, str]) -> dict[str, float]:
    """fleet_issue_rate_1, fleet_issue_rate_4, their quotient fleet_issue_speedup, and
    fleet_overhead_ratio (see the module)."""

    async def bounded() -> dict[str, float]:
        with anyio.fail_after(MEASUREMENT_TIMEOUT):
            with tempfile.TemporaryDirectory(prefix="sectigo-bench-fleet-") as workdir:
                return await _issue(scale, Path(workdir), notes)

    return anyio.run(bounded)


if __name__ == "__main__" and sys.argv[1:2] == ["--pass-probe"]:
    sys.exit(_pass_probe(Path(sys.argv[2])))
