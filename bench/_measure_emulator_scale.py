"""Whether the emulator's queries stay flat: list + download with 10,000 batches against 10.

Two in-process emulators, one holding ``SMALL`` batches and one ``LARGE``. Each gets one
real batch through the API (its certificate, key and PKCS#12 password), then the rest
are stored directly through the emulator's store, copies of that batch with their own
serial numbers: seeding 10,000 takes well under a second, where 10,000 HTTP creates
would take minutes. The measured work, on both, is what a client does most: the newest
page of the batch list (with its total count) and the download of the oldest batch.
"""

from __future__ import annotations

import secrets
import statistics
import time
from dataclasses import fields, replace

import anyio
import httpx
from _report import Scale, ratio

from sectigo_iot.emulator import Emulator
from sectigo_iot.emulator._store import NewBatch, NewCertificate

__all__ = ["LARGE", "SMALL", "measure_emulator_scale"]

SMALL = 10
LARGE = 10_000
_USER, _PASSWORD = "tester", "supersecretsquirrel"
_PARAMS = {
    "commonName": "scale.example.com",
    "dNSName": "scale.example.com",
    "pkcs12Password": "bench-pkcs12-password",
}


async def _seeded(batches: int) -> tuple[Emulator, httpx.AsyncClient, int]:
    """An emulator with ``batches`` ready batches, a logged-in client, the oldest id."""
    emulator = Emulator(key_type="ec-p256", balance=batches + 1)
    http = httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.base_url)
    login = await http.post("/auth/pwd", json={"username": _USER, "password": _PASSWORD})
    http.headers["Authorization"] = f"Bearer {login.raise_for_status().json()['accessToken']}"
    body = {"authorityId": 1, "batchName": "scale 0", "profileParams": _PARAMS}
    created = await http.put("/api/v1/batches/createSingleCertBatch", json=body)
    oldest: int = created.raise_for_status().json()["batchId"]
    store = emulator._store  # the benchmark seeds through the store, as the module says
    row = store.batch(oldest)
    (certificate,) = store.batch_certificates(oldest)
    assert row is not None
    shared = {f.name: getattr(row, f.name) for f in fields(NewBatch) if f.name != "params"}
    template = NewBatch(**shared, params=store.batch_params(oldest))
    for index in range(1, batches):
        copy = NewCertificate(
            serial=secrets.token_hex(16).upper(),
            device_id=f"device-{index}",
            common_name=certificate.common_name,
            cert_pem=certificate.cert_pem,
            key_pem=certificate.key_pem,
        )
        store.add_batch(replace(template, name=f"scale {index}"), [copy], first_batch_id=1)
    return emulator, http, oldest


async def _time_work(http: httpx.AsyncClient, oldest: int, calls: int) -> float:
    """Seconds for ``calls`` rounds of: newest list page + download of the oldest batch."""
    started = time.perf_counter()
    for _ in range(calls):
        page = await http.get("/api/v1/batches", params={"page": 0, "size": SMALL})
        if len(page.raise_for_status().json()["content"]) != SMALL:
            raise RuntimeError("the list page is not full")
        (await http.get(f"/api/v1/batches/{oldest}/download")).raise_for_status()
    return time.perf_counter() - started


async def _measure(scale: Scale) -> tuple[float, float]:
    seeding = time.perf_counter()
    small, small_http, small_oldest = await _seeded(SMALL)
    large, large_http, large_oldest = await _seeded(LARGE)
    seed_s = time.perf_counter() - seeding
    try:
        for http, oldest in ((small_http, small_oldest), (large_http, large_oldest)):
            await _time_work(http, oldest, 3)  # warm up: the first download stores the archive
        if large._store.count_batches(_USER) != LARGE:
            raise RuntimeError("the large emulator was not seeded")
        ratios = []
        for index in range(scale.rounds):  # interleaved, each side first in turn
            sides = [(small_http, small_oldest), (large_http, large_oldest)]
            first, second = sides if index % 2 == 0 else sides[::-1]
            times = [await _time_work(*first, scale.calls), await _time_work(*second, scale.calls)]
            small_s, large_s = times if index % 2 == 0 else times[::-1]
            ratios.append(ratio(large_s, small_s))
        return statistics.median(ratios), seed_s
    finally:
        for emulator, http in ((small, small_http), (large, large_http)):
            await http.aclose()
            emulator.close()


def measure_emulator_scale(scale: Scale, notes: dict[str, str]) -> float:
    """Time of list + download with ``LARGE`` batches / the same with ``SMALL`` batches."""
    value, seed_s = anyio.run(_measure, scale)
    notes["emulator_scale_ratio"] = (
        f"{scale.calls} list pages + downloads per round, median of {scale.rounds} rounds; "
        f"seeding {SMALL} + {LARGE} batches took {seed_s:.2f} s"
    )
    return value
