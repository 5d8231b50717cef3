"""Finding certificates by CN or serial, and revoking them."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from _emulator_helpers import authed, create_id, strict

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import ErrorBody, FindCertificateResponse

FIND = "/api/v1/certificates/find"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(key_type="ec-p256") as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with authed(emu) as client:
        yield client


async def find(http: httpx.AsyncClient, **body: str) -> FindCertificateResponse:
    response = await http.post(FIND, json=body)
    assert response.status_code == 200, response.text
    return strict(response, FindCertificateResponse)


def serial_of(emu: Emulator, batch_id: int) -> str:
    return next(b for b in emu.batches() if b.batch_id == batch_id).serial_numbers[0]


async def test_find_by_common_name(emu: Emulator, http: httpx.AsyncClient) -> None:
    first = await create_id(http, "dup.example.com")
    second = await create_id(http, "dup.example.com")
    await create_id(http, "other.example.com")
    result = await find(http, commonName="dup.example.com")
    assert result.total_count == 2 and result.items is not None
    assert [i.serial_number for i in result.items] == [
        serial_of(emu, first),
        serial_of(emu, second),
    ]
    item = result.items[0]
    assert item.common_name == "dup.example.com"
    assert item.status == "READY_FOR_DOWNLOAD"
    assert uuid.UUID(item.device_id)
    assert item.creation_date is not None
    raw = (await http.post(FIND, json={"commonName": "dup.example.com"})).json()["items"][0]
    assert isinstance(raw["deviceId"], str)
    assert re.fullmatch(r"[0-9A-F]+", raw["serialNumber"]) and raw["serialNumber"][0] != "0"
    assert (await find(http, commonName="DUP.example.com")).total_count == 0


async def test_find_by_serial_ignores_case(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http, "serial.example.com")
    serial = serial_of(emu, batch_id)
    for query in (serial, serial.lower(), "00" + serial):
        result = await find(http, serialNumber=query)
        assert result.items is not None and [i.serial_number for i in result.items] == [serial]


async def test_find_is_a_union(emu: Emulator, http: httpx.AsyncClient) -> None:
    by_name = await create_id(http, "a.example.com")
    by_serial = await create_id(http, "b.example.com")
    result = await find(http, commonName="a.example.com", serialNumber=serial_of(emu, by_serial))
    assert result.items is not None
    assert {i.common_name for i in result.items} == {"a.example.com", "b.example.com"}
    same = await find(http, commonName="a.example.com", serialNumber=serial_of(emu, by_name))
    assert same.total_count == 1


async def test_find_nothing(http: httpx.AsyncClient) -> None:
    assert (await http.post(FIND, json={"commonName": "none.example.com"})).json() == {
        "totalCount": 0,
        "items": [],
    }


@pytest.mark.parametrize("body", [{}, {"commonName": ""}, {"serialNumber": ""}])
async def test_find_needs_a_field(http: httpx.AsyncClient, body: dict[str, str]) -> None:
    response = await http.post(FIND, json=body)
    assert response.status_code == 400
    strict(response, ErrorBody)


async def test_revoke_marks_the_certificate(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http, "revoke.example.com")
    serial = serial_of(emu, batch_id)
    emu.clock.advance(100)
    response = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 4, "serialNumber": serial.lower()}
    )
    assert response.status_code == 200
    result = await find(http, commonName="revoke.example.com")
    assert result.items is not None and result.items[0].status == "REVOKED"
    [revocation] = emu.revocations()
    assert (revocation.serial_number, revocation.reason_code, revocation.profile_id) == (
        serial,
        4,
        42,
    )
    assert abs(revocation.revoked_at.timestamp() - emu.clock()) < 5
    assert revocation.username == "tester" and revocation.common_name == "revoke.example.com"
    assert emu.certificates()[0].status == "REVOKED"
    again = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 4, "serialNumber": serial}
    )
    assert again.status_code == 400
    # the batch itself stays downloadable
    assert (await http.get(f"/api/v1/batches/{batch_id}/download")).status_code == 200


async def test_revoke_accepts_the_authority_id_too(emu: Emulator, http: httpx.AsyncClient) -> None:
    serial = serial_of(emu, await create_id(http))
    response = await http.post(
        "/api/v1/certificates/1/revoke", json={"reasonCode": 0, "serialNumber": serial}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("reason", [7, 11, -1, 100])
async def test_revoke_rejects_bad_reason_codes(
    emu: Emulator, http: httpx.AsyncClient, reason: int
) -> None:
    serial = serial_of(emu, await create_id(http))
    response = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": reason, "serialNumber": serial}
    )
    assert response.status_code == 400
    strict(response, ErrorBody)
    assert emu.revocations() == []


async def test_revoke_errors(emu: Emulator, http: httpx.AsyncClient) -> None:
    serial = serial_of(emu, await create_id(http))
    unknown = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 1, "serialNumber": "ABCDEF0123"}
    )
    assert unknown.status_code == 404
    strict(unknown, ErrorBody)
    wrong_profile = await http.post(
        "/api/v1/certificates/17/revoke", json={"reasonCode": 1, "serialNumber": serial}
    )
    assert wrong_profile.status_code == 400
    empty = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 1, "serialNumber": ""}
    )
    assert empty.status_code == 400
    malformed = await http.post("/api/v1/certificates/42/revoke", json={"serialNumber": serial})
    assert malformed.status_code == 400
    assert emu.revocations() == []
