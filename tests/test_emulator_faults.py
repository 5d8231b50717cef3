"""Fault injection, seen by a raw httpx client running the emulator in process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from _emulator_helpers import CREATE, authed, create, create_id, strict

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import BatchStatus, ErrorBody


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(key_type="ec-p256") as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with authed(emu) as client:
        yield client


async def test_delay_meets_the_client_timeout(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.inject("GET", "/api/v1/devices", "delay", seconds=0.3)
    with pytest.raises(httpx.ReadTimeout):
        await http.get("/api/v1/devices", timeout=0.05)
    assert (await http.get("/api/v1/devices", timeout=0.05)).status_code == 200

    emu.inject("GET", "/api/v1/devices", "delay", seconds=0.1)
    started = time.monotonic()
    assert (await http.get("/api/v1/devices", timeout=5)).status_code == 200
    assert time.monotonic() - started >= 0.1


async def test_error_answers_a_sectigo_error(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http)
    fault = emu.inject("GET", "/api/v1/batches/{id}", "error", status=503, message="maintenance")
    response = await http.get(f"/api/v1/batches/{batch_id}")
    assert response.status_code == 503
    error = strict(response, ErrorBody)
    assert (error.status, error.message) == (503, "maintenance")
    assert (await http.get(f"/api/v1/batches/{batch_id}")).status_code == 200
    assert (fault.hits, fault.remaining) == (1, 0)


async def test_error_does_nothing(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.inject("PUT", CREATE, "error", status=500)
    assert (await create(http)).status_code == 500
    assert emu.batches() == [] and emu.balance == 10


async def test_rate_limit_sends_retry_after(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.inject("GET", "/api/v1/authorities/allowed", "rate_limit", retry_after=7)
    response = await http.get("/api/v1/authorities/allowed")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert strict(response, ErrorBody).status == 429
    assert (await http.get("/api/v1/authorities/allowed")).status_code == 200


async def test_drop_before_creates_nothing(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.inject("PUT", CREATE, "drop_before")
    with pytest.raises(httpx.RemoteProtocolError):
        await create(http)
    assert emu.batches() == [] and emu.balance == 10
    assert (await create(http)).status_code == 200


async def test_drop_after_keeps_the_batch(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.inject("PUT", CREATE, "drop_after")
    with pytest.raises(httpx.RemoteProtocolError):
        await create(http, name="lost answer")
    [batch] = emu.batches()
    assert batch.name == "lost answer" and emu.balance == 9


async def test_drop_after_download_still_collects(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http)
    emu.inject("GET", "/api/v1/batches/*/download", "drop_after")
    with pytest.raises(httpx.TransportError):
        await http.get(f"/api/v1/batches/{batch_id}/download")
    assert emu.batches()[0].status == BatchStatus.COLLECTED


async def test_times_then_healthy(emu: Emulator, http: httpx.AsyncClient) -> None:
    fault = emu.inject("*", "/api/v1/*", "error", times=3, status=502)
    statuses = [(await http.get("/api/v1/devices")).status_code for _ in range(4)]
    assert statuses == [502, 502, 502, 200]
    assert (fault.hits, fault.remaining) == (3, 0)


async def test_faults_apply_in_order_and_only_to_matches(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    emu.inject("GET", "/api/v1/devices", "error", status=500)
    emu.inject("GET", "/api/v1/devices", "rate_limit")
    assert (await http.get("/api/v1/organizations/user")).status_code == 200
    assert (await http.post("/api/v1/devices")).status_code == 405
    assert (await http.get("/api/v1/devices")).status_code == 500
    assert (await http.get("/api/v1/devices")).status_code == 429
    assert (await http.get("/api/v1/devices")).status_code == 200


async def test_login_fault_and_clear(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.inject("POST", "/auth/pwd", "error", status=401, times=5)
    response = await http.post("/auth/pwd", json={"username": "tester", "password": "x"})
    assert response.status_code == 401
    emu.clear_faults()
    response = await http.post(
        "/auth/pwd", json={"username": "tester", "password": "supersecretsquirrel"}
    )
    assert response.status_code == 200
    assert emu.stats.requests["POST /auth/pwd"] == 3  # the fixture's login, then these two


def test_inject_validates(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        emu.inject("GET", "/", "explode")
    with pytest.raises(ValueError, match="times"):
        emu.inject("GET", "/", "error", times=0)


def test_runs_under_trio() -> None:
    trio = pytest.importorskip("trio")

    async def scenario() -> None:
        with Emulator(key_type="ec-p256") as emulator:
            async with authed(emulator) as http:
                assert (await create(http)).status_code == 200
                emulator.inject("GET", "/api/v1/devices", "delay", seconds=0.3)
                with pytest.raises(httpx.ReadTimeout):
                    await http.get("/api/v1/devices", timeout=0.05)
                emulator.inject("PUT", CREATE, "drop_before")
                with pytest.raises(httpx.RemoteProtocolError):
                    await create(http)
            assert len(emulator.batches()) == 1

    trio.run(scenario)
