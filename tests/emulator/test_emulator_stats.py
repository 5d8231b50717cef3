"""``GET /emulator/stats``: the emulator's counters over HTTP, for a separate process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sectigo_iot.emulator import Emulator
from tests.emulator.helpers import JSON, PASSWORD, USER, login, raw_client


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


async def test_counts_logins_refreshes_and_requests(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        await login(http)
        tokens = await login(http)
        refused = await http.post("/auth/pwd", json={"username": USER, "password": "wrong"})
        assert refused.status_code == 401
        refreshed = await http.post("/auth/refresh", content=tokens["refreshToken"].encode())
        assert refreshed.status_code == 200
        response = await http.get("/emulator/stats")  # no token needed
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == {
        "logins": 2,
        "failedLogins": 1,
        "refreshes": 1,
        "requests": 5,  # the request for the stats counts too
        "requestsByRoute": {
            "POST /auth/pwd": 3,
            "POST /auth/refresh": 1,
            "GET /emulator/stats": 1,
        },
    }


async def test_matches_the_in_process_counters(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        await login(http, USER, PASSWORD)
        emu.stats.reset()
        after_reset = (await http.get("/emulator/stats")).json()
    assert after_reset["logins"] == 0 and after_reset["requests"] == 1
    assert emu.stats.snapshot() == after_reset
    assert USER not in str(emu.stats.snapshot())  # no usernames on an open endpoint
