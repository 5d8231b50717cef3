"""Fault injection, seen by a raw httpx client running the emulator in process."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
import zlib

import httpx
import pytest

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import BatchStatus, ErrorBody
from tests.emulator.helpers import (
    CREATE,
    assert_cut_short,
    authed,
    batch_body,
    create,
    create_id,
    params,
    read_body,
    strict,
    unzip,
)


async def stalled_read(
    emu: Emulator, http: httpx.AsyncClient, timeout: float, **stall: float
) -> tuple[bytes, httpx.Response, bytes, httpx.TransportError | None, float]:
    """Stall a new batch's detail (``stall`` options), then stream it with ``timeout``: the
    whole body, what ``read_body`` gives, and the seconds the read took."""
    url, whole = await batch_body(http)
    emu.inject("GET", url, "stall", **stall)
    started = time.monotonic()
    response, received, error = await read_body(http, url, timeout=timeout)
    return whole, response, received, error, time.monotonic() - started


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


async def test_error_after_makes_the_batch_then_answers_an_error(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    emu.inject("PUT", CREATE, "error_after", status=503, message="lost reply")
    response = await create(http, name="made anyway")
    assert response.status_code == 503
    assert strict(response, ErrorBody).message == "lost reply"
    [batch] = emu.batches()
    assert batch.name == "made anyway" and emu.balance == 9
    assert (await create(http, name="healthy")).status_code == 200


async def test_a_seeded_probability_picks_the_same_requests_again() -> None:
    async def statuses(seed: int) -> list[int]:
        with Emulator(key_type="ec-p256") as emulator:
            async with authed(emulator) as client:
                emulator.inject(
                    "GET", "/api/v1/devices", "error", 1000, status=503, probability=0.25, seed=seed
                )
                return [(await client.get("/api/v1/devices")).status_code for _ in range(200)]

    first, again, other = await statuses(7), await statuses(7), await statuses(8)
    assert first == again and first != other
    assert set(first) == {200, 503}
    assert 30 <= first.count(503) <= 70  # a quarter of 200, give or take


async def test_a_request_a_probability_passes_over_goes_to_the_next_fault(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    rare = emu.inject("GET", "/api/v1/devices", "error", 5, status=503, probability=0.5, seed=1)
    always = emu.inject("GET", "/api/v1/devices", "rate_limit", 1000)
    statuses = [(await http.get("/api/v1/devices")).status_code for _ in range(40)]
    assert statuses.count(503) == rare.hits == 5 and rare.remaining == 0  # then it expired
    assert statuses.count(429) == always.hits == 35
    last_hit = max(index for index, status in enumerate(statuses) if status == 503)
    assert 429 in statuses[:last_hit]  # passed over while still live, not only once expired


async def test_drop_after_download_still_collects(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http)
    emu.inject("GET", "/api/v1/batches/*/download", "drop_after")
    with pytest.raises(httpx.TransportError):
        await http.get(f"/api/v1/batches/{batch_id}/download")
    assert emu.batches()[0].status == BatchStatus.COLLECTED


async def test_delay_after_commits_before_the_timeout(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    emu.inject("PUT", CREATE, "delay_after", seconds=0.3)
    body = {"authorityId": 1, "batchName": "slow answer", "profileParams": params()}
    with pytest.raises(httpx.ReadTimeout):
        await http.put(CREATE, json=body, timeout=0.1)
    [batch] = emu.batches()
    assert batch.name == "slow answer" and emu.balance == 9

    emu.inject("GET", "/api/v1/batches/{id}", "delay_after", seconds=0.1)
    started = time.monotonic()
    response = await http.get(f"/api/v1/batches/{batch.batch_id}", timeout=5)
    assert response.status_code == 200 and response.json()["batchName"] == "slow answer"
    assert time.monotonic() - started >= 0.1


async def test_truncate_cuts_the_body_after_the_headers(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    url, whole = await batch_body(http)
    emu.inject("GET", url, "truncate")
    response, received, error = await read_body(http, url)
    assert_cut_short(response, received, error, whole, len(whole) // 2, httpx.RemoteProtocolError)

    emu.inject("GET", url, "truncate", keep_bytes=7)
    _, received, error = await read_body(http, url)
    assert received == whole[:7] and isinstance(error, httpx.RemoteProtocolError)
    emu.inject("GET", url, "truncate", keep_bytes=10**6)  # never the whole body
    _, received, error = await read_body(http, url)
    assert received == whole[:-1] and isinstance(error, httpx.RemoteProtocolError)
    emu.inject("GET", url, "truncate")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.get(url)
    assert (await http.get(url)).content == whole


async def test_truncated_download_still_collects(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http)
    emu.inject("GET", "/api/v1/batches/*/download", "truncate", keep_bytes=100)
    response, received, error = await read_body(http, f"/api/v1/batches/{batch_id}/download")
    assert response.headers["content-type"] == "application/octet-stream"
    assert int(response.headers["content-length"]) > 100 == len(received)
    assert received.startswith(b"PK") and isinstance(error, httpx.RemoteProtocolError)
    assert emu.batches()[0].status == BatchStatus.COLLECTED


async def test_truncate_sends_an_empty_body_whole(emu: Emulator, http: httpx.AsyncClient) -> None:
    await create_id(http, "cut.example.com")
    [serial] = emu.batches()[0].serial_numbers
    emu.inject("POST", "/api/v1/certificates/{id}/revoke", "truncate")
    response = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 0, "serialNumber": serial}
    )
    assert response.status_code == 200 and response.content == b""
    assert [r.serial_number for r in emu.revocations()] == [serial]


async def test_stall_meets_the_read_timeout_mid_body(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    whole, response, received, error, took = await stalled_read(emu, http, 0.2, keep_bytes=5)
    assert_cut_short(response, received, error, whole, 5, httpx.ReadTimeout)
    assert 0.2 <= took < 5


async def test_a_short_stall_delivers_the_whole_body(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    whole, _, received, error, took = await stalled_read(emu, http, 2, seconds=0.2)
    assert error is None and received == whole
    assert took >= 0.2


async def test_gzip_compresses_the_real_body(emu: Emulator, http: httpx.AsyncClient) -> None:
    url, whole = await batch_body(http)
    emu.inject("GET", url, "gzip")
    response, received, error = await read_body(http, url)
    assert error is None and response.headers["content-encoding"] == "gzip"
    assert response.headers["content-length"] == str(len(received))
    assert gzip.decompress(received) == whole
    emu.inject("GET", url, "gzip")
    assert (await http.get(url)).json() == json.loads(whole)  # httpx decodes it


async def test_gzip_bomb_pads_json_with_spaces(emu: Emulator, http: httpx.AsyncClient) -> None:
    url, whole = await batch_body(http)
    emu.inject("GET", url, "gzip", inflate_to=8 << 20)
    response, received, _ = await read_body(http, url)
    assert int(response.headers["content-length"]) == len(received) < 64 << 10
    inflated = gzip.decompress(received)
    assert len(inflated) == 8 << 20
    assert inflated.startswith(whole) and inflated[len(whole) :].strip(b" ") == b""
    assert json.loads(inflated) == json.loads(whole)


async def test_gzip_bomb_pads_binary_with_zeros(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http)
    emu.inject("GET", "/api/v1/batches/{id}/download", "gzip")
    archive = (await http.get(f"/api/v1/batches/{batch_id}/download")).content
    assert list(unzip(archive)) == ["api.example.com.p12"]
    emu.inject("GET", "/api/v1/batches/{id}/download", "gzip", inflate_to=4 << 20)
    _, received, _ = await read_body(http, f"/api/v1/batches/{batch_id}/download")
    inflated = gzip.decompress(received)
    assert len(inflated) == 4 << 20
    end = inflated.rfind(b"PK\x05\x06") + 22  # the ZIP's end record, no comment
    assert list(unzip(inflated[:end])) == ["api.example.com.p12"]
    assert inflated[end:] == bytes(len(inflated) - end)


async def test_gzip_bomb_never_holds_the_inflated_size(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    size = 64 << 20
    emu.inject("GET", "/api/v1/devices", "gzip", inflate_to=size)
    tracemalloc.start()
    try:
        _, received, _ = await read_body(http, "/api/v1/devices")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size // 8
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert (
        sum(len(inflater.decompress(received[i : i + 4096])) for i in range(0, len(received), 4096))
        == size
    )


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
    with pytest.raises(ValueError, match="keep_bytes applies to truncate and stall"):
        emu.inject("GET", "/", "gzip", keep_bytes=3)
    with pytest.raises(ValueError, match="inflate_to applies to gzip"):
        emu.inject("GET", "/", "truncate", inflate_to=3)
    with pytest.raises(ValueError, match="at least 0"):
        emu.inject("GET", "/", "stall", keep_bytes=-1)
    for probability in (0, -0.5, 1.5, True):
        with pytest.raises(ValueError, match="probability must be above 0 and at most 1"):
            emu.inject("GET", "/", "error", probability=probability)
    assert emu.inject("GET", "/", "stall").seconds == 300
    assert emu.inject("GET", "/", "delay_after").seconds == 1


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
                batch_id = emulator.batches()[0].batch_id
                emulator.inject("GET", "/api/v1/batches/{id}", "stall", keep_bytes=3)
                _, received, error = await read_body(
                    http, f"/api/v1/batches/{batch_id}", timeout=0.05
                )
                assert len(received) == 3 and isinstance(error, httpx.ReadTimeout)
                emulator.inject("GET", "/api/v1/batches/{id}", "truncate")
                _, _, error = await read_body(http, f"/api/v1/batches/{batch_id}")
                assert isinstance(error, httpx.RemoteProtocolError)
            assert len(emulator.batches()) == 1

    trio.run(scenario)
