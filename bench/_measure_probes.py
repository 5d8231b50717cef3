"""Measurements made in other processes: peak memory, hostile inputs, the server's rate."""

from __future__ import annotations

import time
from pathlib import Path

from _processes import (
    MEASUREMENT_TIMEOUT,
    ServerInfo,
    cpu_seconds,
    last_json_line,
    load_generators,
    run_probe,
)
from _report import Scale

__all__ = [
    "measure_bomb_rss",
    "measure_download_rss",
    "measure_emulator_rps",
    "measure_hostile_inputs",
]


def measure_download_rss(info: ServerInfo, workdir: Path, *, raw: bool = False) -> float:
    """Peak RSS growth (MB) of a fresh process during one SDK (or raw httpx) download."""
    args = [info.url, info.username, info.password, str(info.batch_id), str(workdir)]
    result = run_probe("_download_probe.py", *args, *(["--raw"] if raw else []))
    if result["bytes"] != info.archive_bytes:
        raise RuntimeError(f"the probe downloaded {result['bytes']} bytes")
    return float(result["peak_growth_mb"])


def measure_bomb_rss() -> float:
    """Peak RSS growth (MB) of a fresh process while the SDK reads (and refuses) a gzip
    JSON reply inflating to 200 MiB and a gzip download inflating to 315 MiB."""
    result = run_probe("_bomb_probe.py")
    if not (result.get("json_refused") and result.get("download_refused")):
        raise RuntimeError(f"a decompression bomb was not refused: {result}")
    if result["files_left"]:
        raise RuntimeError("the refused download left a file behind")
    return float(result["peak_growth_mb"])


def measure_hostile_inputs(notes: dict[str, str]) -> float:
    """Seconds the toolkit takes on the worst input of tests/certs/hostile_inputs.py (PKCS#12
    iteration bombs, unterminated PEM, thousands of same-name certificates, zip bombs...),
    timed in a fresh process by ``bench/_hostile.py``."""
    result = run_probe("_hostile.py")
    notes["hostile_input_worst_s"] = f"{len(result['cases'])} inputs; slowest: {result['slowest']}"
    return float(result["worst_s"])


def measure_emulator_rps(
    info: ServerInfo, scale: Scale, notes: dict[str, str] | None = None
) -> float:
    """Requests per second the served emulator answers for ``GET /authorities/allowed``
    with ``rps_clients`` concurrent raw httpx clients (one keep-alive connection each).

    The clients are spread over ``rps_processes`` load-generator processes
    (``bench/_load.py``): one Python process running httpx spends more CPU per request
    than the emulator does, and would measure itself rather than the server.
    """
    processes = max(1, min(scale.rps_processes, scale.rps_clients))
    shares = [scale.rps_clients // processes] * processes
    for index in range(scale.rps_clients % processes):
        shares[index] += 1
    with load_generators(info, shares, "/api/v1/authorities/allowed") as generators:
        start = time.time() + min(0.5, scale.rps_seconds)  # warm-up: every connection open
        stop = start + scale.rps_seconds
        for generator in generators:
            assert generator.stdin is not None
            generator.stdin.write(f"{start} {stop}\n")
            generator.stdin.flush()
        time.sleep(max(0.0, start - time.time()))
        server0 = cpu_seconds(info.pid)
        time.sleep(max(0.0, stop - time.time()))
        server1 = cpu_seconds(info.pid)
        results = []
        for generator in generators:
            out, _ = generator.communicate(timeout=MEASUREMENT_TIMEOUT)
            if generator.returncode != 0:
                raise RuntimeError("a load generator failed")
            results.append(last_json_line(out))
    if any(result["errors"] for result in results):
        raise RuntimeError(f"the emulator answered errors: {results}")
    if notes is not None:
        load_cpu = sum(result["cpu_s"] for result in results) / scale.rps_seconds
        server_cpu = (
            f"server CPU {100 * (server1 - server0) / scale.rps_seconds:.0f} %, "
            if server0 is not None and server1 is not None
            else ""
        )
        notes["emulator_rps"] = (
            f"{server_cpu}load generators CPU {100 * load_cpu:.0f} % "
            f"({processes} process(es), {scale.rps_clients} clients)"
        )
    return float(sum(int(result["count"]) for result in results)) / scale.rps_seconds
