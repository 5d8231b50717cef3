"""The emulator's queries use their indexes: what the API runs is never a full table scan.

Every statement the store runs while the API lists, counts, downloads, finds and
revokes is recorded from SQLite itself and explained: a ``SCAN`` of a table means the
request would slow down with every batch stored. (How flat it stays is measured by
``emulator_scale_ratio`` in ``bench/run.py``.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from sectigo_iot.emulator import Emulator
from tests.emulator.helpers import authed, create_id


@contextmanager
def _statements(emulator: Emulator) -> Iterator[list[str]]:
    """The SQL statements the emulator's store runs in the block, values bound."""
    connection: sqlite3.Connection = emulator._store._conn
    seen: list[str] = []
    connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        connection.set_trace_callback(None)


def _plan(emulator: Emulator, statement: str) -> list[str]:
    rows = emulator._store._conn.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
    return [row[3] for row in rows]


async def _api_reads(http: httpx.AsyncClient, batch_id: int) -> None:
    """What clients do all day: list (with the count), detail, download, find, revoke."""
    page = (await http.get("/api/v1/batches", params={"page": 0, "size": 5})).json()
    assert page["totalElements"] == 4
    assert (await http.get(f"/api/v1/batches/{batch_id}")).status_code == 200
    for _ in range(2):  # the first download stores the archive, the second reads it
        assert (await http.get(f"/api/v1/batches/{batch_id}/download")).status_code == 200
    assert (await http.get(f"/api/v1/batches/{batch_id}/processing_info")).status_code == 200
    assert (await http.get("/api/v1/devices")).json()["issued"] == 4
    find = "/api/v1/certificates/find"
    item = (await http.post(find, json={"commonName": "api.example.com"})).json()["items"][0]
    assert (await http.post(find, json={"serialNumber": item["serialNumber"]})).status_code == 200
    revoke = {"reasonCode": 4, "serialNumber": item["serialNumber"]}
    assert (await http.post("/api/v1/certificates/42/revoke", json=revoke)).status_code == 200


async def test_no_api_query_scans_a_table(emu: Emulator) -> None:
    async with authed(emu) as http:
        ids = [await create_id(http, f"host{index}.example.com") for index in range(3)]
        ids.append(await create_id(http))
        with _statements(emu) as statements:
            await _api_reads(http, ids[0])
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "UPDATE"))]
    assert len(selects) >= 10
    # the authorities are the configuration (a handful of rows), not the traffic
    scans = {
        statement: plan
        for statement in selects
        for plan in [_plan(emu, statement)]
        if any(step.startswith("SCAN") and step != "SCAN authorities" for step in plan)
    }
    assert scans == {}


async def test_counts_follow_every_insert_and_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "emulator.sqlite3"
    users = {"tester": "pw-one", "other": "pw-two"}
    with Emulator(users=users, db_path=db, key_type="ec-p256") as emulator:
        async with authed(emulator, "tester", "pw-one") as http:
            for _ in range(3):
                await create_id(http)
        async with authed(emulator, "other", "pw-two") as http:
            await create_id(http)
    # a database written before counts were kept: the counts are rebuilt when it opens
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TABLE counts")
    with Emulator(users=users, db_path=db, key_type="ec-p256") as emulator:
        async with authed(emulator, "tester", "pw-one") as http:
            await create_id(http)
            page = (await http.get("/api/v1/batches", params={"size": 1})).json()
            assert page["totalElements"] == 4 and page["totalPages"] == 4
            assert (await http.get("/api/v1/devices")).json()["issued"] == 5
        assert emulator.licenses_used == 5


async def test_a_batch_still_processing_is_not_counted_as_issued() -> None:
    with Emulator(key_type="ec-p256", processing_delay=60) as slow:
        async with authed(slow) as http:
            await create_id(http)
            assert (await http.get("/api/v1/devices")).json()["issued"] == 0
            assert slow.licenses_used == 1
            slow.clock.advance(61)
            assert (await http.get("/api/v1/devices")).json()["issued"] == 1


@pytest.mark.parametrize("size", [1, 3, 2000])
async def test_pages_are_the_newest_first(emu: Emulator, size: int) -> None:
    async with authed(emu) as http:
        ids = [await create_id(http, f"p{index}.example.com") for index in range(5)]
        page = (await http.get("/api/v1/batches", params={"page": 1, "size": size})).json()
    expected = list(reversed(ids))[size : 2 * size]
    assert [batch["batchId"] for batch in page["content"]] == expected
    assert page["totalElements"] == 5
