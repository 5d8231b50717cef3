"""Exact wire format of every endpoint the original Go client calls (spec/api.md §2.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sectigo_iot import Batch, InvalidInputError, SectigoClient
from sectigo_iot.certs import RevocationReason
from tests.support import BASE

JSON_CT = "application/json;charset=UTF-8"
BATCH = {
    "batchId": 1187,
    "orderNumber": 90231,
    "creationDate": "2021-06-02T09:14:07.512+0000",
    "profile": "CipherTrace EE",
    "size": 1,
    "status": "CREATED",
    "active": False,
    "batchName": "n",
    "rejectReason": "",
    "generatorParametersValues": None,
    "userId": 58,
    "downloadable": True,
    "rejectable": True,
}


def last_request(httpx_mock: Any, method: str, path: str) -> Any:
    matches = [r for r in httpx_mock.get_requests() if r.method == method and r.url.path == path]
    assert matches, f"no {method} {path}"
    return matches[-1]


def assert_json_headers(request: Any, token: str) -> None:
    assert request.headers["Content-Type"] == JSON_CT
    assert request.headers["Accept"] == JSON_CT
    assert request.headers["Authorization"] == f"Bearer {token}"
    assert request.headers["User-Agent"].startswith("sectigo-iot/")


async def test_login_body_and_headers(client: SectigoClient, httpx_mock: Any, login: Any) -> None:
    login()
    await client.authenticate()
    request = last_request(httpx_mock, "POST", "/auth/pwd")
    assert json.loads(request.content) == {"username": "api-user", "password": "pw-1234"}
    assert request.headers["Content-Type"] == JSON_CT
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("call", "path", "reply"),
    [
        (lambda c: c.authorities.list(), "/api/v1/authorities/allowed", []),
        (lambda c: c.authorities.balance(423), "/api/v1/authorities/423/balanceavailable", 100),
        (lambda c: c.licenses.used(), "/api/v1/devices", {"ordered": 1000, "issued": 3}),
        (lambda c: c.organizations.current(), "/api/v1/organizations/user", {"organizationId": 1}),
        (lambda c: c.profiles.list(), "/api/v1/profiles", [{"profileId": 17, "ca": "sectigo"}]),
        (lambda c: c.profiles.get(17), "/api/v1/profiles/17", {"profileId": 17}),
        (lambda c: c.profiles.parameters(17), "/api/v1/profiles/17/parameters", [{"name": "x"}]),
        (lambda c: c.batches.get(1187), "/api/v1/batches/1187", BATCH),
        (
            lambda c: c.batches.processing_info(5),
            "/api/v1/batches/5/processing_info",
            {"active": 0, "success": 1, "failed": 0},
        ),
    ],
)
async def test_get_endpoints(
    client: SectigoClient, httpx_mock: Any, login: Any, call: Any, path: str, reply: Any
) -> None:
    tokens = login()
    httpx_mock.add_response(method="GET", url=f"{BASE}{path}", json=reply)
    await call(client)
    request = last_request(httpx_mock, "GET", path)
    assert_json_headers(request, tokens["accessToken"])
    assert request.content == b""


async def test_create_is_a_put_with_string_params(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    tokens = login()
    httpx_mock.add_response(
        method="PUT", url=f"{BASE}/api/v1/batches/createSingleCertBatch", json=BATCH
    )
    batch = await client.batches.create(
        423,
        common_name="api.example.com",
        dns_names=["www.api.example.com", "api.example.com"],
        pkcs12_password="h3X9kQpR2mZt7LwA",
        name="my batch",
        params={"organizationName": "Example Inc"},
    )
    assert isinstance(batch, Batch) and batch.batch_id == 1187
    request = last_request(httpx_mock, "PUT", "/api/v1/batches/createSingleCertBatch")
    assert_json_headers(request, tokens["accessToken"])
    assert json.loads(request.content) == {
        "authorityId": 423,
        "batchName": "my batch",
        "profileParams": {
            "commonName": "api.example.com",
            "dNSName": "api.example.com\nwww.api.example.com",
            "organizationName": "Example Inc",
            "pkcs12Password": "h3X9kQpR2mZt7LwA",
        },
    }


async def test_create_generates_a_unique_batch_name(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_response(method="PUT", json=BATCH, is_reusable=True)
    for _ in range(2):
        await client.batches.create(1, common_name="a.example.com", pkcs12_password="secretsecret")
    names = [json.loads(r.content)["batchName"] for r in httpx_mock.get_requests(method="PUT")]
    assert len(set(names)) == 2 and all(n.startswith("sectigo-iot-") for n in names)


async def test_upload_multipart_layout(
    client: SectigoClient, httpx_mock: Any, login: Any, csr_pem: bytes, tmp_path: Path
) -> None:
    tokens = login()
    httpx_mock.add_response(method="POST", url=f"{BASE}/api/v1/batches/upload", json=BATCH)
    path = tmp_path / "node.csr"
    path.write_bytes(csr_pem)
    await client.batches.upload_csrs(42, path)
    request = last_request(httpx_mock, "POST", "/api/v1/batches/upload")
    assert request.headers["Authorization"] == f"Bearer {tokens['accessToken']}"
    assert request.headers["Accept"] == JSON_CT
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    assert int(request.headers["Content-Length"]) == len(request.content)
    boundary = content_type.split("boundary=")[1].encode()
    parts = [p for p in request.content.split(b"--" + boundary) if p.strip(b"-\r\n")]
    assert len(parts) == 3
    assert b'name="profileId"' in parts[0] and parts[0].rstrip().endswith(b"42")
    assert b"Content-Type" not in parts[0]
    assert b'name="csrBatchRequest"; filename="blob"' in parts[1]
    assert b"Content-Type: application/json" in parts[1]
    assert (
        parts[1].split(b"\r\n\r\n", 1)[1].strip()
        == b'{"profileId":42,"batchType":"BATCH","profileParams":{}}'
    )
    assert b'name="files"; filename="node.csr"' in parts[2]
    assert b"Content-Type: application/octet-stream" in parts[2]
    assert csr_pem.strip() in parts[2]


async def test_upload_accepts_pem_text_and_bytes(
    client: SectigoClient, httpx_mock: Any, login: Any, csr_pem: bytes
) -> None:
    login()
    httpx_mock.add_response(method="POST", json=BATCH, is_reusable=True)
    await client.batches.upload_csrs(42, csr_pem)
    await client.batches.upload_csrs(42, csr_pem.decode())
    assert len(httpx_mock.get_requests(method="POST", url=f"{BASE}/api/v1/batches/upload")) == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ready for download", "READY_FOR_DOWNLOAD"),
        ("  Processing\n", "PROCESSING"),
        ("COLLECTED", "COLLECTED"),
    ],
)
async def test_text_status_is_normalized(
    client: SectigoClient, httpx_mock: Any, login: Any, text: str, expected: str
) -> None:
    login()
    httpx_mock.add_response(
        url=f"{BASE}/api/v1/batches/9/status", text=text, headers={"Content-Type": "text/plain"}
    )
    assert await client.batches.status(9) == expected


async def test_find_omits_empty_fields(client: SectigoClient, httpx_mock: Any, login: Any) -> None:
    tokens = login()
    reply = {
        "totalCount": 1,
        "items": [
            {
                "deviceId": 42,
                "commonName": "api.example.com",
                "serialNumber": "4ADDF011CD7E6AC22CAFC9C6E7AF8974",
                "creationDate": "2024-03-01T12:05:02.52710041Z",
                "status": "READY_FOR_DOWNLOAD",
            }
        ],
    }
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/api/v1/certificates/find", json=reply, is_reusable=True
    )
    items = await client.certificates.find(common_name="api.example.com")
    assert items[0].device_id == "42"
    await client.certificates.find(serial_number="4a:dd:f0:11")
    bodies = [
        json.loads(r.content)
        for r in httpx_mock.get_requests(method="POST", url=f"{BASE}/api/v1/certificates/find")
    ]
    assert bodies == [{"commonName": "api.example.com"}, {"serialNumber": "4ADDF011"}]
    assert_json_headers(httpx_mock.get_requests(method="POST")[-1], tokens["accessToken"])


async def test_find_needs_a_field(client: SectigoClient) -> None:
    with pytest.raises(InvalidInputError):
        await client.certificates.find()


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("Cessation Of Operation", 5),
        (1, 1),
        (RevocationReason.SUPERSEDED, 4),
        ("unspecified", 0),
    ],
)
async def test_revoke_path_and_body(
    client: SectigoClient, httpx_mock: Any, login: Any, reason: Any, code: int
) -> None:
    login()
    httpx_mock.add_response(method="POST", url=f"{BASE}/api/v1/certificates/42/revoke", json=None)
    await client.certificates.revoke(42, "4ADDF011CD7E6AC22CAFC9C6E7AF8974", reason)
    request = last_request(httpx_mock, "POST", "/api/v1/certificates/42/revoke")
    assert json.loads(request.content) == {
        "reasonCode": code,
        "serialNumber": "4ADDF011CD7E6AC22CAFC9C6E7AF8974",
    }


async def test_download_checks_status_and_picks_the_name(
    client: SectigoClient, httpx_mock: Any, login: Any, tmp_path: Path
) -> None:
    tokens = login()
    ready = dict(BATCH, batchId=24, status="READY_FOR_DOWNLOAD")
    httpx_mock.add_response(url=f"{BASE}/api/v1/batches/24", json=ready)
    archive = b"PK\x05\x06" + b"\0" * 18
    httpx_mock.add_response(
        url=f"{BASE}/api/v1/batches/24/download",
        content=archive,
        headers={"Content-Disposition": 'attachment; filename="../../evil.zip"'},
    )
    path = await client.batches.download(24, tmp_path)
    assert path == tmp_path / "24.zip" and path.read_bytes() == archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["24.zip"]
    request = last_request(httpx_mock, "GET", "/api/v1/batches/24/download")
    assert request.headers["Accept"] == "application/octet-stream"
    assert request.headers["Content-Type"] == "application/octet-stream"
    assert request.headers["Authorization"] == f"Bearer {tokens['accessToken']}"


async def test_download_refuses_a_batch_not_ready(
    client: SectigoClient, httpx_mock: Any, login: Any, tmp_path: Path
) -> None:
    from sectigo_iot import BatchNotReadyError

    login()
    httpx_mock.add_response(url=f"{BASE}/api/v1/batches/24", json=dict(BATCH, status="PROCESSING"))
    with pytest.raises(BatchNotReadyError, match="PROCESSING"):
        await client.batches.download(24, tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_base_url_path_is_dropped(make_client: Any, httpx_mock: Any) -> None:
    client = make_client(base_url="http://localhost:8831/prefix/")
    assert client.base_url == "http://localhost:8831"
    await client.aclose()


async def test_a_wildcard_name_is_passed_through(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_response(
        method="PUT", url=f"{BASE}/api/v1/batches/createSingleCertBatch", json=BATCH
    )
    await client.batches.create(
        1, common_name="*.example.com", dns_names=["example.com"], pkcs12_password="p12-pass-1"
    )
    body = json.loads(
        last_request(httpx_mock, "PUT", "/api/v1/batches/createSingleCertBatch").content
    )
    assert body["profileParams"]["commonName"] == "*.example.com"
    assert body["profileParams"]["dNSName"] == "*.example.com\nexample.com"
