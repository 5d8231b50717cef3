"""The emulator speaks the real wire format (spec/api.md §2-§6), endpoint by endpoint."""

from __future__ import annotations

import re

import httpx
import pytest

from sectigo_iot import __version__, models
from sectigo_iot.emulator import Emulator
from sectigo_iot.emulator.api.control import go_duration
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
from tests.support import EMULATOR_AUTHORITY


async def test_login_answers_token_pair(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        response = await http.post(
            "/auth/pwd", json={"username": "tester", "password": "supersecretsquirrel"}
        )
    assert response.status_code == 200
    reply = strict(response, models.AuthenticationReply)
    assert reply.access_token.count(".") == 2 and reply.refresh_token.count(".") == 2


async def test_authorities_allowed_default(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/authorities/allowed")
    assert response.status_code == 200
    assert response.json() == [EMULATOR_AUTHORITY]
    strict_converter.structure(response.json(), list[models.Authority])
    assert response.headers["content-type"] == JSON


async def test_balance_is_a_bare_integer(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/authorities/1/balanceavailable")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.content == b"10"
    missing = await http.get("/api/v1/authorities/77/balanceavailable")
    assert missing.status_code == 404
    strict(missing, models.ErrorBody)


async def test_devices_counts_licenses(http: httpx.AsyncClient) -> None:
    assert strict(await http.get("/api/v1/devices"), models.Licenses) == models.Licenses(
        ordered=10, issued=0
    )
    await create_id(http)
    assert strict(await http.get("/api/v1/devices"), models.Licenses) == models.Licenses(
        ordered=10, issued=1
    )


async def test_organization(http: httpx.AsyncClient) -> None:
    org = strict(await http.get("/api/v1/organizations/user"), models.Organization)
    assert org.org_status == "ACTIVE"
    assert org.organization_name
    assert org.authorities is not None and [a.id for a in org.authorities] == [1]
    assert org.ecosystem_id == 100


async def test_profiles_list_detail_and_parameters(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/profiles")
    profiles = strict_converter.structure(response.json(), list[models.Profile])
    assert [p.profile_id for p in profiles] == [42]
    assert response.headers["content-type"] == JSON

    detail = strict(await http.get("/api/v1/profiles/42"), models.ProfileDetail)
    assert detail.profile_name == "TRISA Profile" and detail.profile_id == 42
    assert detail.raw_profile_config and detail.key_algorithm_info.startswith("EC")

    response = await http.get("/api/v1/profiles/42/parameters")
    parameters = strict_converter.structure(response.json(), list[models.ProfileParameter])
    required = {p.name for p in parameters if p.required}
    optional = {p.name for p in parameters if not p.required}
    assert required == {"commonName", "dNSName", "pkcs12Password"}
    assert optional == {"organizationName", "localityName", "stateOrProvinceName", "countryName"}

    for path in ("/api/v1/profiles/7", "/api/v1/profiles/7/parameters"):
        assert (await http.get(path)).status_code == 404


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


async def test_p12_opens_with_the_batch_password(http: httpx.AsyncClient) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    batch_id = await create_id(http, "p12.example.com")
    archive = unzip((await http.get(f"/api/v1/batches/{batch_id}/download")).content)
    bundle = pkcs12.load_pkcs12(archive["p12.example.com.p12"], P12_PASSWORD.encode())
    assert bundle.key is not None and bundle.cert is not None
    assert len(bundle.additional_certs) == 2
