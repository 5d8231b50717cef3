"""The emulator over real HTTP (uvicorn on a free loopback port), persistence and the CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import Batch, BatchStatus, ErrorBody
from tests.emulator.helpers import (
    CREATE,
    JSON,
    PASSWORD,
    USER,
    assert_cut_short,
    batch_body,
    create,
    create_id,
    login,
    params,
    read_body,
    strict,
    unzip,
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Emulator, str]]:
    with Emulator(key_type="ec-p256") as emulator, emulator.run_in_thread() as url:
        yield emulator, url


@pytest.fixture
async def http(served: tuple[Emulator, str]) -> AsyncIterator[httpx.AsyncClient]:
    emulator, url = served
    emulator.clear_faults()
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        tokens = await login(client)
        client.headers["Authorization"] = f"Bearer {tokens['accessToken']}"
        yield client


async def test_flow_over_http(served: tuple[Emulator, str], http: httpx.AsyncClient) -> None:
    emulator, url = served
    assert url.startswith("http://127.0.0.1:")
    batch_id = await create_id(http, "http.example.com")
    batch = strict(await http.get(f"/api/v1/batches/{batch_id}"), Batch)
    assert batch.status == BatchStatus.READY_FOR_DOWNLOAD
    download = await http.get(f"/api/v1/batches/{batch_id}/download")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="{batch_id}.zip"'
    assert list(unzip(download.content)) == ["http.example.com.p12"]
    assert (await http.get("/emulator/ca.pem")).content == emulator.ca_pem
    assert (await http.get("/api/v1/devices")).headers["content-type"] == JSON
    missing = await http.get("/api/v1/batches/1")
    assert missing.status_code == 404
    strict(missing, ErrorBody)
    beyond = await http.get("/api/v1/batches/99999999999999999999999")
    assert beyond.status_code == 404
    assert strict(beyond, ErrorBody).message == "Batch 99999999999999999999999 not found"
    heartbeat = await http.get("/status", headers={"Authorization": ""})
    assert heartbeat.headers["content-type"] == "application/json; charset=utf-8"
    assert heartbeat.json()["status"] == "ok"


async def test_drop_before_over_http(served: tuple[Emulator, str], http: httpx.AsyncClient) -> None:
    emulator, _ = served
    before = len(emulator.batches())
    emulator.inject("PUT", CREATE, "drop_before")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await create(http, name="dropped before")
    assert len(emulator.batches()) == before
    assert (await http.get("/api/v1/devices")).status_code == 200


async def test_drop_after_over_http(served: tuple[Emulator, str], http: httpx.AsyncClient) -> None:
    emulator, _ = served
    emulator.inject("PUT", CREATE, "drop_after")
    with pytest.raises(httpx.RemoteProtocolError):
        await create(http, name="dropped after")
    assert emulator.batches()[-1].name == "dropped after"
    assert (await create(http)).status_code == 200


async def test_delay_and_rate_limit_over_http(
    served: tuple[Emulator, str], http: httpx.AsyncClient
) -> None:
    emulator, _ = served
    emulator.inject("GET", "/api/v1/devices", "delay", seconds=0.5)
    with pytest.raises(httpx.ReadTimeout):
        await http.get("/api/v1/devices", timeout=0.1)
    emulator.inject("GET", "/api/v1/devices", "rate_limit", retry_after=3)
    response = await http.get("/api/v1/devices")
    assert response.status_code == 429 and response.headers["retry-after"] == "3"


async def _eventually(condition: Callable[[], bool]) -> None:
    """Wait until the server thread has made ``condition`` true."""
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - set by the server thread
            await anyio.sleep(0.01)


async def test_delay_after_over_http(served: tuple[Emulator, str], http: httpx.AsyncClient) -> None:
    emulator, _ = served
    emulator.inject("PUT", CREATE, "delay_after", seconds=1)
    body = {"authorityId": 1, "batchName": "answer held", "profileParams": params()}
    with pytest.raises(httpx.ReadTimeout):
        await http.put(CREATE, json=body, timeout=0.3)
    await _eventually(lambda: emulator.batches()[-1].name == "answer held")
    assert (await http.get("/api/v1/devices")).status_code == 200


async def test_truncate_over_http(served: tuple[Emulator, str], http: httpx.AsyncClient) -> None:
    emulator, _ = served
    url, whole = await batch_body(http)
    emulator.inject("GET", url, "truncate")
    response, received, error = await read_body(http, url)
    assert_cut_short(response, received, error, whole, len(whole) // 2, httpx.RemoteProtocolError)
    emulator.inject("GET", "/api/v1/batches/{id}/download", "truncate", keep_bytes=10)
    response, received, error = await read_body(http, f"{url}/download")
    assert int(response.headers["content-length"]) > 10 == len(received)
    assert received.startswith(b"PK\x03\x04")
    assert isinstance(error, httpx.RemoteProtocolError)
    assert strict(await http.get(url), Batch).status == BatchStatus.COLLECTED  # work done


async def test_stall_over_http(served: tuple[Emulator, str], http: httpx.AsyncClient) -> None:
    emulator, _ = served
    url, whole = await batch_body(http)
    emulator.inject("GET", url, "stall", keep_bytes=5)
    response, received, error = await read_body(http, url, timeout=0.3)
    assert_cut_short(response, received, error, whole, 5, httpx.ReadTimeout)
    emulator.inject("GET", url, "stall", seconds=0.2)
    _, received, error = await read_body(http, url, timeout=2)
    assert error is None and received == whole


async def test_gzip_over_http(served: tuple[Emulator, str], http: httpx.AsyncClient) -> None:
    emulator, _ = served
    batch_id = await create_id(http, "gzip.example.com")
    url = f"/api/v1/batches/{batch_id}"
    emulator.inject("GET", "/api/v1/batches/{id}/download", "gzip")
    download = await http.get(f"{url}/download")
    assert download.headers["content-encoding"] == "gzip"
    assert list(unzip(download.content)) == ["gzip.example.com.p12"]
    whole = (await http.get(url)).content
    emulator.inject("GET", url, "gzip", inflate_to=8 << 20)
    response, received, error = await read_body(http, url)
    assert error is None and response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(received) < 64 << 10
    inflated = gzip.decompress(received)
    assert len(inflated) == 8 << 20 and json.loads(inflated) == json.loads(whole)


def test_run_in_thread_refuses_remote_hosts() -> None:
    with (
        Emulator() as emulator,
        pytest.raises(ValueError, match="loopback"),
        emulator.run_in_thread(host="0.0.0.0"),  # noqa: S104
    ):
        pass


async def test_state_persists_across_restarts(tmp_path: Path) -> None:
    db = tmp_path / "emulator.sqlite"
    with Emulator(db_path=db, key_type="ec-p256") as first:
        async with httpx.AsyncClient(transport=first.transport(), base_url=first.base_url) as http:
            tokens = await login(http)
            http.headers["Authorization"] = f"Bearer {tokens['accessToken']}"
            batch_id = await create_id(http, "persist.example.com")
        ca_pem = first.ca_pem
    with Emulator(db_path=db, key_type="ec-p256") as second:
        assert second.ca_pem == ca_pem
        assert second.balance == 9 and second.licenses_used == 1
        async with httpx.AsyncClient(
            transport=second.transport(), base_url=second.base_url
        ) as http:
            http.headers["Authorization"] = f"Bearer {tokens['accessToken']}"
            download = await http.get(f"/api/v1/batches/{batch_id}/download")
            assert download.status_code == 200
            assert list(unzip(download.content)) == ["persist.example.com.p12"]
            refreshed = await http.post("/auth/refresh", content=tokens["refreshToken"].encode())
            assert refreshed.status_code == 200
            assert await create_id(http) == batch_id + 1
            assert (await http.get("/api/v1/authorities/1/balanceavailable")).json() == 8


async def test_in_memory_state_is_fresh_per_emulator() -> None:
    with Emulator(key_type="ec-p256") as first:
        async with httpx.AsyncClient(transport=first.transport(), base_url=first.base_url) as http:
            tokens = await login(http)
    with Emulator(key_type="ec-p256") as second:
        assert second.batches() == [] and second.balance == 10
        async with httpx.AsyncClient(
            transport=second.transport(), base_url=second.base_url
        ) as http:
            response = await http.get(
                "/api/v1/devices", headers={"Authorization": f"Bearer {tokens['accessToken']}"}
            )
            assert response.status_code == 401


def test_command_line_serves_on_loopback(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "sectigo_iot.emulator",
        "--port",
        "0",
        "--db",
        str(tmp_path / "x"),
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            first_line = process.stdout.readline()
            url = first_line.rsplit(" ", 1)[-1].strip()
            assert url.startswith("http://127.0.0.1:"), first_line
            rest = [process.stdout.readline().strip() for _ in range(4)]
            assert f"SECTIGO_USERNAME={USER}" in rest
            response = httpx.post(f"{url}/auth/pwd", json={"username": USER, "password": PASSWORD})
            assert response.status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_command_line_refuses_remote_hosts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sectigo_iot.emulator", "--host", "0.0.0.0"],  # noqa: S104
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "--allow-remote" in result.stderr
