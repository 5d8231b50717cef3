"""The emulator speaks the real wire format (spec/api.md §2-§6): login, batches,
certificates, error bodies and ids (the account and control routes: test_account.py,
test_control.py)."""

from __future__ import annotations

import re

import httpx
import pytest

from sectigo_iot import models
from sectigo_iot.emulator import Emulator
from sectigo_iot.models import strict_converter
from tests.certs.helpers import make_csr
from tests.emulator.helpers import (
    CREATE,
    JSON,
    P12_PASSWORD,
    authed,
    create,
    create_id,
    raw_client,
    strict,
    unzip,
    upload,
)


async def test_login_answers_token_pair(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        response = await http.post(
            "/auth/pwd", json={"username": "tester", "password": "supersecretsquirrel"}
        )
    assert response.status_code == 200
    reply = strict(response, models.AuthenticationReply)
    assert reply.access_token.count(".") == 2 and reply.refresh_token.count(".") == 2


async def test_create_answers_batch_response(http: httpx.AsyncClient) -> None:
    response = await create(http, "api.example.com", name="wire batch")
    assert response.status_code == 200
    batch = strict(response, models.Batch)
    assert batch.batch_id == 10001
    assert batch.status == models.BatchStatus.CREATED
    assert batch.batch_name == "wire batch"
    assert batch.profile == "TRISA Profile"
    assert batch.size == 1 and batch.reject_reason == ""
    assert batch.creation_date is not None
    # the real date format: 2020-12-10T16:35:32.805+0000
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", response.json()["creationDate"]
    )


async def test_create_status_is_configurable() -> None:
    with Emulator(create_status=201, key_type="ec-p256") as emulator:
        async with authed(emulator) as http:
            assert (await create(http)).status_code == 201


async def test_create_is_a_put(http: httpx.AsyncClient) -> None:
    response = await http.post(CREATE, json={})
    assert response.status_code == 405
    strict(response, models.ErrorBody)


async def test_batch_detail_status_info_and_download(http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http, "API.Example.com")
    batch = strict(await http.get(f"/api/v1/batches/{batch_id}"), models.Batch)
    assert batch.status == models.BatchStatus.READY_FOR_DOWNLOAD and batch.downloadable

    status = await http.get(f"/api/v1/batches/{batch_id}/status")
    assert status.status_code == 200
    assert status.headers["content-type"].startswith("text/plain")
    assert status.text == "Ready for download"

    info = strict(
        await http.get(f"/api/v1/batches/{batch_id}/processing_info"), models.ProcessingInfo
    )
    assert info == models.ProcessingInfo(active=0, success=1, failed=0)

    download = await http.get(f"/api/v1/batches/{batch_id}/download")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == f'attachment; filename="{batch_id}.zip"'
    assert list(unzip(download.content)) == ["api.example.com.p12"]


async def test_upload_answers_batch_response(http: httpx.AsyncClient) -> None:
    response = await upload(http, ("device.csr", make_csr("device.example.com"), "text/plain"))
    assert response.status_code == 200, response.text
    batch = strict(response, models.Batch)
    assert batch.status == models.BatchStatus.CREATED and batch.size == 1
    assert batch.batch_name == "device.csr"


async def test_find_and_revoke(http: httpx.AsyncClient) -> None:
    await create_id(http, "find.example.com")
    response = await http.post("/api/v1/certificates/find", json={"commonName": "find.example.com"})
    found = strict(response, models.FindCertificateResponse)
    assert found.total_count == 1 and found.items is not None
    serial = found.items[0].serial_number
    revoke = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 1, "serialNumber": serial}
    )
    assert revoke.status_code == 200


async def test_batch_list_is_a_spring_page(http: httpx.AsyncClient) -> None:
    for _ in range(3):
        await create_id(http)
    response = await http.get("/api/v1/batches", params={"page": 0, "size": 2})
    assert response.status_code == 200 and response.headers["content-type"] == JSON
    body = response.json()
    assert set(body) == {"content", "totalElements", "totalPages", "number", "size"}
    assert (body["totalElements"], body["totalPages"], body["number"], body["size"]) == (3, 2, 0, 2)
    batches = strict_converter.structure(body["content"], list[models.Batch])
    assert [b.batch_id for b in batches] == [10003, 10002]


async def test_errors_use_the_sectigo_body(emu: Emulator, http: httpx.AsyncClient) -> None:
    cases = [
        (await http.get("/api/v1/batches/999"), 404),
        (await http.get("/api/v1/nothing-here"), 404),
        (await http.put(CREATE, content=b"{not json"), 400),
    ]
    async with raw_client(emu) as anonymous:
        cases.append((await anonymous.get("/api/v1/devices"), 401))
    for response, status in cases:
        assert response.status_code == status
        error = strict(response, models.ErrorBody)
        assert error.status == status and error.message
        assert error.error_code != 0
        assert abs(error.timestamp / 1000 - emu.clock()) < 60


BEYOND_64_BITS = str(2**63)


@pytest.mark.parametrize(
    ("method", "path", "what"),
    [
        ("GET", "/api/v1/batches/{}", "Batch"),
        ("GET", "/api/v1/batches/{}/status", "Batch"),
        ("GET", "/api/v1/batches/{}/processing_info", "Batch"),
        ("GET", "/api/v1/batches/{}/download", "Batch"),
        ("POST", "/api/v1/certificates/{}/revoke", "Profile"),
        ("GET", "/api/v1/authorities/{}/balanceavailable", "Authority"),
        ("GET", "/api/v1/profiles/{}", "Profile"),
        ("GET", "/api/v1/profiles/{}/parameters", "Profile"),
    ],
)
@pytest.mark.parametrize("ident", [BEYOND_64_BITS, "99999999999999999999999", "9" * 5000])
async def test_ids_beyond_64_bits_are_not_found(
    http: httpx.AsyncClient, method: str, path: str, what: str, ident: str
) -> None:
    body = {"reasonCode": 0, "serialNumber": "ABC"} if method == "POST" else None
    response = await http.request(method, path.format(ident), json=body)
    assert response.status_code == 404
    error = strict(response, models.ErrorBody)
    assert (error.status, error.message) == (404, f"{what} {ident} not found")


async def test_the_largest_64_bit_id_is_just_unknown(http: httpx.AsyncClient) -> None:
    largest = str(2**63 - 1)
    response = await http.get(f"/api/v1/batches/{largest}")
    assert strict(response, models.ErrorBody).message == f"Batch {largest} not found"
    batch_id = await create_id(http)
    padded = await http.get(f"/api/v1/batches/{batch_id:030d}")  # leading zeros: same id
    assert strict(padded, models.Batch).batch_id == batch_id


async def test_p12_opens_with_the_batch_password(http: httpx.AsyncClient) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    batch_id = await create_id(http, "p12.example.com")
    archive = unzip((await http.get(f"/api/v1/batches/{batch_id}/download")).content)
    bundle = pkcs12.load_pkcs12(archive["p12.example.com.p12"], P12_PASSWORD.encode())
    assert bundle.key is not None and bundle.cert is not None
    assert len(bundle.additional_certs) == 2
