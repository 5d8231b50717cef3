"""The emulator's own routes: the heartbeat, the CA certificate, and the counters at
``GET /emulator/stats`` (over HTTP, for a separate process)."""

from __future__ import annotations

import re

import pytest

from sectigo_iot import __version__
from sectigo_iot.emulator import Emulator
from sectigo_iot.emulator.api.control import go_duration
from tests.emulator.helpers import JSON, PASSWORD, USER, login, raw_client


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


async def test_status_heartbeat_as_the_original(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        response = await http.get("/status")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        body = response.json()
        assert list(body) == ["status", "version", "uptime"]
        assert (body["status"], body["version"]) == ("ok", __version__)
        assert re.fullmatch(r"\d+(\.\d+)?(ns|µs|ms|s)", body["uptime"])
        emu.clock.advance(3723)
        assert re.fullmatch(r"1h2m3(\.\d+)?s", (await http.get("/status")).json()["uptime"])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (5e-9, "5ns"),
        (2.5e-6, "2.5µs"),
        (0.0125, "12.5ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (61, "1m1s"),
        (3600, "1h0m0s"),
        (3723.5, "1h2m3.5s"),
        (90061.000000001, "25h1m1.000000001s"),
    ],
)
def test_uptime_reads_like_a_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


async def test_ca_pem_needs_no_auth(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        response = await http.get("/emulator/ca.pem")
    assert response.status_code == 200
    assert response.content == emu.ca_pem
    assert response.content.startswith(b"-----BEGIN CERTIFICATE-----")
