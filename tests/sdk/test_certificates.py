"""``certificates.find``: a name searched as ``create`` sends it (IDNA), end to end."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sectigo_iot import InvalidInputError
from sectigo_iot._response import decode
from sectigo_iot.emulator import Emulator
from sectigo_iot.models import FindCertificateResponse
from sectigo_iot.resources._certificate_find import plain_items as _plain_items

P12 = "find-test-p12-pass"


async def issue(emulator: Emulator, common_name: str) -> str:
    """Issue a certificate for ``common_name``; its serial number."""
    async with emulator.client() as client:
        batch = await client.batches.create(1, common_name=common_name, pkcs12_password=P12)
        await client.batches.wait(batch.batch_id)
    (certificate,) = [c for c in emulator.certificates() if c.batch_id == batch.batch_id]
    return certificate.serial_number


@pytest.mark.parametrize("searched", ["bücher.example", "BÜCHER.Example.", "xn--bcher-kva.example"])
async def test_a_unicode_name_finds_what_create_issued_in_idna(
    sectigo_emulator: Emulator, searched: str
) -> None:
    serial = await issue(sectigo_emulator, "bücher.example")
    async with sectigo_emulator.client() as client:
        found = await client.certificates.find(common_name=searched)
    assert [c.serial_number for c in found] == [serial]
    assert found[0].common_name == "xn--bcher-kva.example" and found.total_count == 1


async def test_a_name_in_normal_form_is_one_request(sectigo_emulator: Emulator) -> None:
    await issue(sectigo_emulator, "plain.example.com")
    async with sectigo_emulator.client() as client:
        assert len(await client.certificates.find(common_name="plain.example.com")) == 1
        assert len(await client.certificates.find(common_name="Device 7 (not a domain)")) == 0
    assert sectigo_emulator.stats.requests["POST /api/v1/certificates/find"] == 2


async def test_a_certificate_found_by_both_searches_is_listed_once(
    sectigo_emulator: Emulator,
) -> None:
    serial = await issue(sectigo_emulator, "straße.example")
    async with sectigo_emulator.client() as client:
        found = await client.certificates.find(common_name="straße.example", serial_number=serial)
    assert [c.serial_number for c in found] == [serial] and found.total_count == 1
    assert sectigo_emulator.stats.requests["POST /api/v1/certificates/find"] == 2


async def test_a_common_name_that_is_not_text_is_refused(sectigo_emulator: Emulator) -> None:
    async with sectigo_emulator.client() as client:
        with pytest.raises(InvalidInputError, match="common_name"):
            await client.certificates.find(common_name=b"x.example")  # type: ignore[arg-type]
    assert sum(sectigo_emulator.stats.requests.values()) == 0


# -- the fast path for large answers gives exactly what the converter gives ------------

FIND = "https://iot.sectigo.com/api/v1/certificates/find"
ITEM = {
    "deviceId": "42",
    "commonName": "a.example.com",
    "serialNumber": "0A1B",
    "creationDate": "2020-12-10T16:35:32.805+0000",
    "status": "READY_FOR_DOWNLOAD",
}


def converted(body: dict[str, Any]) -> tuple[list[Any], int]:
    found = decode(body, FindCertificateResponse, "/")
    return found.items or [], found.total_count


def fields(item: Any) -> tuple[Any, ...]:
    date = item.creation_date
    return (
        item.device_id,
        item.common_name,
        item.serial_number,
        item.status,
        date,
        type(date),
        getattr(date, "text", None),
        item._unparsed_dates,
    )


PLAIN = [
    {"totalCount": 1, "items": [ITEM]},
    {"totalCount": 1, "items": [{**ITEM, "creationDate": "2024-03-01T12:05:02.52710041Z"}]},
    {"totalCount": None, "items": [{**ITEM, "deviceId": None, "status": None}]},
    {"items": [{"commonName": "only.example.com"}, {**ITEM, "extra": [1, 2]}]},
    {"totalCount": 3, "items": None},
    {"totalCount": 0},
    {"items": [ITEM, {**ITEM, "creationDate": None}, {"commonName": "no-date.example.com"}]},
    {"items": [ITEM, {**ITEM, "creationDate": "2020-12-10T16:35:32.805000"}]},  # no offset
    {"items": [ITEM, {**ITEM, "creationDate": "2020-12-10 16:35:32"}]},  # the pattern only
    {"items": [ITEM, {**ITEM, "creationDate": "2020-12-10T16:35:32.805 +0000"}]},
    {"items": [ITEM, {**ITEM, "serialNumber": None, "commonName": None}, ITEM]},
]
#: shapes the fast path leaves to the converter
OTHER = [
    {"totalCount": 1, "items": [{**ITEM, "deviceId": 42}]},
    {"totalCount": 1, "items": [{**ITEM, "creationDate": "10/12/2020"}]},
    {"totalCount": 1, "items": [{**ITEM, "creationDate": ""}]},
    {"totalCount": 1, "items": [{**ITEM, "creationDate": 1607618132}]},
    {"totalCount": "2", "items": [ITEM]},
    {"totalCount": 1, "items": [None, ITEM]},
    {"totalCount": 1, "items": [{**ITEM, "status": 0}]},
    {"items": [ITEM, ITEM, {**ITEM, "creationDate": ""}]},  # the converter keeps its text
    {"items": [ITEM, {**ITEM, "creationDate": None}, {**ITEM, "creationDate": ""}]},
    {"items": [ITEM, ITEM, {**ITEM, "creationDate": "yesterday"}]},
    {"items": [ITEM, {**ITEM, "serialNumber": ["0A"]}]},
    {"items": [ITEM, {**ITEM, "commonName": True}]},
    {"items": [ITEM, ["not", "an", "object"]]},
]


@pytest.mark.parametrize("body", PLAIN)
def test_the_fast_path_equals_the_converter(body: dict[str, Any]) -> None:
    fast = _plain_items(copy.deepcopy(body))
    assert fast is not None
    items, total = converted(copy.deepcopy(body))
    assert [fields(i) for i in fast[0]] == [fields(i) for i in items]
    assert fast[1] == total


@pytest.mark.parametrize("body", OTHER)
def test_other_shapes_are_left_to_the_converter(body: dict[str, Any]) -> None:
    assert _plain_items(copy.deepcopy(body)) is None


async def test_ten_thousand_matches(client: Any, httpx_mock: Any, login: Any) -> None:
    """10,000 certificates of one name: every one structured, as the converter would."""
    login()
    items = [
        {**ITEM, "serialNumber": f"{i:08X}", "creationDate": f"2024-03-01T12:00:{i % 60:02d}Z"}
        for i in range(10_000)
    ]
    httpx_mock.add_response(url=FIND, json={"totalCount": 10_000, "items": items})
    found = await client.certificates.find(common_name="a.example.com")
    assert len(found) == found.total_count == 10_000
    expected, _ = converted({"items": items})
    assert [fields(i) for i in found] == [fields(i) for i in expected]


async def test_a_secret_echoed_in_a_large_answer_is_still_redacted(
    client: Any, httpx_mock: Any, login: Any
) -> None:
    tokens = login()
    items = [{**ITEM, "serialNumber": f"{i:08X}"} for i in range(1000)]
    items[500] = {**ITEM, "status": f"odd {tokens['accessToken']}"}
    httpx_mock.add_response(url=FIND, json={"totalCount": 1000, "items": items})
    found = await client.certificates.find(common_name="a.example.com")
    assert found[500].status == "odd ***" and found[499].status == "READY_FOR_DOWNLOAD"


@pytest.mark.parametrize(
    ("echoed", "shown"),
    [
        ("password=hunter2-echo", "password=***"),  # looks like a secret
        ("hunter2-Zq8w7e6r5t4y", "***"),  # the client's own password
    ],
)
async def test_a_secret_anywhere_in_a_large_answer_is_still_redacted(
    make_client: Any, httpx_mock: Any, login: Any, echoed: str, shown: str
) -> None:
    login()
    items = [{**ITEM, "serialNumber": f"{i:08X}"} for i in range(10_000)]
    items[7_000] = {**ITEM, "commonName": f"cn {echoed}", "deviceId": echoed}
    httpx_mock.add_response(url=FIND, json={"totalCount": 10_000, "items": items})
    async with make_client(password="hunter2-Zq8w7e6r5t4y") as client:
        found = await client.certificates.find(common_name="a.example.com")
    assert (found[7_000].common_name, found[7_000].device_id) == (f"cn {shown}", shown)
    assert found[6_999].common_name == "a.example.com" and len(found) == 10_000
