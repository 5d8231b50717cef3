"""Peak memory of one SDK download, measured in a fresh process.

Run by ``bench/run.py`` as
``python bench/_download_probe.py URL USERNAME PASSWORD BATCH_ID DEST_DIR [--raw]``.
It logs in, makes one warm-up call, reads the resident set size, downloads the batch
archive with ``client.batches.download`` (or with plain httpx streaming when ``--raw``),
then reads the high-water mark, and prints one JSON line::

    {"rss_before_kb": ..., "hwm_kb": ..., "peak_growth_mb": ..., "bytes": ...}

The growth is the high-water mark minus the RSS before the download. Where the kernel
allows it, the high-water mark is first reset to the current RSS (``/proc/self/clear_refs``);
otherwise the process is fresh, so little happened before the download to raise it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import anyio
import httpx

import sectigo_iot
from sectigo_iot import SectigoClient

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
OCTET_STREAM = "application/octet-stream"


def memory_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB; from getrusage when /proc is missing."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            peak //= 1024  # bytes there, KiB on Linux
        return peak, peak


def reset_high_water_mark() -> None:
    """Reset VmHWM to VmRSS when the kernel allows it (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


async def sdk_download(
    url: str, username: str, password: str, batch_id: int, dest: Path
) -> tuple[int, int]:
    async with SectigoClient(
        username, password, base_url=url, token_store="memory", timeout=120.0
    ) as client:
        await client.authenticate()
        await client.batches.get(batch_id)  # warm up: connection, JSON path, models
        before, _ = memory_kb()
        reset_high_water_mark()
        path = await client.batches.download(batch_id, dest, overwrite=True)
        size = path.stat().st_size
        path.unlink()
    return before, size


async def raw_download(
    url: str, username: str, password: str, batch_id: int, dest: Path
) -> tuple[int, int]:
    headers = {"User-Agent": f"sectigo-iot/{sectigo_iot.__version__}"}
    async with httpx.AsyncClient(base_url=url, timeout=120.0, headers=headers) as http:
        login = await http.post(
            "/auth/pwd",
            json={"username": username, "password": password},
            headers={"Content-Type": JSON_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE},
        )
        login.raise_for_status()
        http.headers["Authorization"] = f"Bearer {login.json()['accessToken']}"
        warm = await http.get(f"/api/v1/batches/{batch_id}")
        warm.raise_for_status()
        before, _ = memory_kb()
        reset_high_water_mark()
        target = dest / f"{batch_id}.zip"
        download_headers = {"Content-Type": OCTET_STREAM, "Accept": OCTET_STREAM}
        async with http.stream(
            "GET", f"/api/v1/batches/{batch_id}/download", headers=download_headers
        ) as response:
            response.raise_for_status()
            with open(target, "wb") as handle:  # noqa: ASYNC230 - as the SDK does
                async for chunk in response.aiter_bytes():
                    handle.write(chunk)
        size = target.stat().st_size
        target.unlink()
    return before, size


def main(argv: list[str]) -> int:
    url, username, password, batch_id, dest = argv[:5]
    download = raw_download if "--raw" in argv[5:] else sdk_download
    started = time.perf_counter()
    before, size = anyio.run(download, url, username, password, int(batch_id), Path(dest))
    _, hwm = memory_kb()
    result = {
        "rss_before_kb": before,
        "hwm_kb": hwm,
        "peak_growth_mb": round(max(0, hwm - before) / 1024, 2),
        "bytes": size,
        "seconds": round(time.perf_counter() - started, 3),
        "pid": os.getpid(),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
