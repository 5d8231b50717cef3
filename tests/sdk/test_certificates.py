"""``certificates.find``: a name searched as ``create`` sends it (IDNA), end to end;
``certificates.revoke_all``: every certificate of a name revoked, each once."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sectigo_iot import InvalidInputError
from sectigo_iot._response import decode
from sectigo_iot.emulator import Emulator
from sectigo_iot.models import FindCertificateResponse
from sectigo_iot.resources._certificate_find import plain_items as _plain_items
from tests.support import BASE

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

FIND = f"{BASE}/api/v1/certificates/find"
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


# -- revoke_all: every certificate of a name, each once ----------------------------------

REVOKE = "POST /api/v1/certificates/42/revoke"
FIND_REQUEST = "POST /api/v1/certificates/find"


async def issue_three(emulator: Emulator, common_name: str = "node.example.com") -> list[str]:
    """Three live certificates for ``common_name`` and one for another name."""
    serials = [await issue(emulator, common_name) for _ in range(3)]
    await issue(emulator, "other.example.com")
    return serials


def revoked_serials(emulator: Emulator) -> list[str]:
    return [r.serial_number for r in emulator.revocations()]


async def test_revoke_all_revokes_every_live_certificate_once(sectigo_emulator: Emulator) -> None:
    serials = await issue_three(sectigo_emulator)
    async with sectigo_emulator.client() as client:
        done = await client.certificates.revoke_all("node.example.com", "cessation of operation")
        assert done == [(serial, "revoked") for serial in serials]
        assert sectigo_emulator.stats.requests[REVOKE] == 3
        again = await client.certificates.revoke_all("node.example.com", 5)
    assert again == [(serial, "already revoked") for serial in serials]
    assert sectigo_emulator.stats.requests[REVOKE] == 3  # the second run sent none
    assert sorted(revoked_serials(sectigo_emulator)) == sorted(serials)  # not the other name
    assert {r.reason_code for r in sectigo_emulator.revocations()} == {5}


async def test_is_revoked_asks_the_server(sectigo_emulator: Emulator) -> None:
    serials = await issue_three(sectigo_emulator)
    async with sectigo_emulator.client() as client:
        [profile] = {a.profile_id for a in await client.authorities.list()}
        await client.certificates.revoke(profile, serials[0], "superseded")
        written = ":".join(serials[0][i : i + 2] for i in range(0, len(serials[0]), 2))
        assert await client.certificates.is_revoked(written.lower())
        assert not await client.certificates.is_revoked(serials[1])
        assert not await client.certificates.is_revoked("0BADC0DE")  # not found
        with pytest.raises(InvalidInputError):
            await client.certificates.is_revoked("not hex")


async def test_revoke_all_keeps_the_serials_it_is_told_to(sectigo_emulator: Emulator) -> None:
    serials = await issue_three(sectigo_emulator)
    written = ":".join(serials[1][i : i + 2] for i in range(0, len(serials[1]), 2)).lower()
    async with sectigo_emulator.client() as client:
        done = await client.certificates.revoke_all(
            "node.example.com", "superseded", except_serials=[written]
        )
    assert done == [(serials[0], "revoked"), (serials[1], "kept"), (serials[2], "revoked")]
    assert sorted(revoked_serials(sectigo_emulator)) == sorted([serials[0], serials[2]])


async def test_a_dry_run_revokes_nothing(sectigo_emulator: Emulator) -> None:
    serials = await issue_three(sectigo_emulator)
    async with sectigo_emulator.client() as client:
        await client.certificates.revoke(42, serials[0], "superseded")
        before = sum(sectigo_emulator.stats.requests.values())
        planned = await client.certificates.revoke_all(
            "node.example.com", "superseded", except_serials=(serials[2],), dry_run=True
        )
    assert planned == [
        (serials[0], "already revoked"),
        (serials[1], "would revoke"),
        (serials[2], "kept"),
    ]
    assert sum(sectigo_emulator.stats.requests.values()) == before + 1  # the search only
    assert revoked_serials(sectigo_emulator) == [serials[0]]


async def test_a_name_without_certificates_revokes_nothing(sectigo_emulator: Emulator) -> None:
    await issue(sectigo_emulator, "other.example.com")
    async with sectigo_emulator.client() as client:
        assert await client.certificates.revoke_all("none.example.com", "superseded") == []
    assert sectigo_emulator.stats.requests[FIND_REQUEST] == 1
    assert sectigo_emulator.stats.requests[REVOKE] == 0
    assert sectigo_emulator.stats.requests["GET /api/v1/authorities/allowed"] == 0


async def test_a_lost_reply_is_confirmed_not_sent_again(sectigo_emulator: Emulator) -> None:
    """The second revoke is done but its reply never arrives: the run checks, carries
    on, and no certificate is revoked twice (the emulator refuses a second revoke)."""
    serials = await issue_three(sectigo_emulator)
    sectigo_emulator.inject("POST", "/api/v1/certificates/{id}/revoke", "delay", seconds=0)
    sectigo_emulator.inject("POST", "/api/v1/certificates/{id}/revoke", "drop_after")
    async with sectigo_emulator.client() as client:
        done = await client.certificates.revoke_all("node.example.com", "superseded")
    assert done == [(serial, "revoked") for serial in serials]
    assert sectigo_emulator.stats.requests[REVOKE] == 3


async def test_a_run_that_fails_half_way_resumes(sectigo_emulator: Emulator) -> None:
    """The second revoke's reply is lost and the check fails too: the run stops with
    the outcome unknown; the next run revokes only the third."""
    from sectigo_iot import AmbiguousRequestError

    serials = await issue_three(sectigo_emulator)
    sectigo_emulator.inject("POST", "/api/v1/certificates/{id}/revoke", "delay", seconds=0)
    sectigo_emulator.inject("POST", "/api/v1/certificates/{id}/revoke", "drop_after")
    sectigo_emulator.inject("POST", "/api/v1/certificates/find", "delay", seconds=0)
    sectigo_emulator.inject("POST", "/api/v1/certificates/find", "error", times=10, status=503)
    async with sectigo_emulator.client(max_retries=0) as client:
        with pytest.raises(AmbiguousRequestError):
            await client.certificates.revoke_all("node.example.com", "superseded")
        assert revoked_serials(sectigo_emulator) == serials[:2]
        sectigo_emulator.clear_faults()
        done = await client.certificates.revoke_all("node.example.com", "superseded")
    assert done == [
        (serials[0], "already revoked"),
        (serials[1], "already revoked"),
        (serials[2], "revoked"),
    ]
    assert sectigo_emulator.stats.requests[REVOKE] == 3


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_run_cancelled_half_way_resumes(backend: str) -> None:
    """Cancelled while the second revoke's reply is held (the revocation is made): the
    next run revokes only the third, on either backend."""
    import anyio

    async def scenario(emulator: Emulator) -> list[tuple[str, str]]:
        serials = await issue_three(emulator)
        emulator.inject("POST", "/api/v1/certificates/{id}/revoke", "delay", seconds=0)
        emulator.inject("POST", "/api/v1/certificates/{id}/revoke", "delay_after", seconds=60)
        async with emulator.client() as client, anyio.create_task_group() as tasks:
            tasks.start_soon(client.certificates.revoke_all, "node.example.com", "superseded")
            with anyio.fail_after(30):
                while len(emulator.revocations()) < 2:  # noqa: ASYNC110 (emulator state)
                    await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
        assert revoked_serials(emulator) == serials[:2]
        async with emulator.client() as client:
            done = await client.certificates.revoke_all("node.example.com", "superseded")
        assert done == [(s, "already revoked") for s in serials[:2]] + [(serials[2], "revoked")]
        return done

    with Emulator() as emulator:
        anyio.run(scenario, emulator, backend=backend)
        assert emulator.stats.requests[REVOKE] == 3
        assert len(emulator.revocations()) == 3


async def test_a_partial_answer_revokes_nothing(client: Any, httpx_mock: Any, login: Any) -> None:
    """The server says it has three but returns two: a typed error, and no revoke sent
    (pytest-httpx fails any request not registered)."""
    from sectigo_iot import InvalidResponseError

    login()
    items = [{**ITEM, "serialNumber": serial} for serial in ("0A1B", "0A1C")]
    httpx_mock.add_response(url=FIND, json={"totalCount": 3, "items": items})
    with pytest.raises(InvalidResponseError, match="returned 2 of 3 certificates"):
        await client.certificates.revoke_all("a.example.com", "superseded")
    sent = [(r.method, r.url.path) for r in httpx_mock.get_requests()]
    assert sent == [("POST", "/auth/pwd"), ("POST", "/api/v1/certificates/find")]


async def test_an_unreadable_serial_revokes_nothing(
    client: Any, httpx_mock: Any, login: Any
) -> None:
    from sectigo_iot import InvalidResponseError

    login()
    items = [{**ITEM, "serialNumber": "0A1B"}, {**ITEM, "serialNumber": "not-hex"}]
    httpx_mock.add_response(url=FIND, json={"totalCount": 2, "items": items})
    with pytest.raises(InvalidResponseError, match="no usable serial number"):
        await client.certificates.revoke_all("a.example.com", "superseded")
    assert len(httpx_mock.get_requests()) == 2  # the login and the search


async def test_the_profile_is_the_one_of_the_authorities_or_given(
    client: Any, httpx_mock: Any, login: Any
) -> None:
    """Revoked under the profile the authorities share; with several, profile_id is
    required (nothing revoked), and a given one is used as is."""
    login()
    one = {"items": [{**ITEM, "serialNumber": "0A1B"}], "totalCount": 1}
    authority = {"id": 1, "profileId": 77, "enabled": True}
    httpx_mock.add_response(url=FIND, json=one)
    httpx_mock.add_response(url=f"{BASE}/api/v1/authorities/allowed", json=[authority])
    httpx_mock.add_response(url=f"{BASE}/api/v1/certificates/77/revoke", json=None)
    assert await client.certificates.revoke_all("a.example.com", 4) == [("0A1B", "revoked")]
    body = json.loads(httpx_mock.get_requests()[-1].content)
    assert body == {"reasonCode": 4, "serialNumber": "0A1B"}

    httpx_mock.add_response(url=FIND, json=one)
    two = [authority, {**authority, "id": 2, "profileId": 78}]
    httpx_mock.add_response(url=f"{BASE}/api/v1/authorities/allowed", json=two)
    with pytest.raises(InvalidInputError, match=r"profiles \[77, 78\]: give the profile_id"):
        await client.certificates.revoke_all("a.example.com", 4)

    httpx_mock.add_response(url=FIND, json=one)
    httpx_mock.add_response(url=f"{BASE}/api/v1/certificates/78/revoke", json=None)
    assert await client.certificates.revoke_all("a.example.com", 4, profile_id=78) == [
        ("0A1B", "revoked")
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"common_name": ""}, "common_name must be a non-empty string"),
        ({"common_name": "  "}, "common_name must be a non-empty string"),
        ({"common_name": None}, "common_name must be a non-empty string"),
        ({"reason": "bored"}, "bored"),
        ({"reason": 7}, "7"),
        ({"except_serials": "0A1B"}, "not a string"),
        ({"except_serials": ["XYZ"]}, "hexadecimal"),
        ({"dry_run": "no"}, "dry_run"),
        ({"profile_id": 0}, "profile_id"),
    ],
)
async def test_bad_input_sends_nothing(
    sectigo_emulator: Emulator, arguments: dict[str, Any], message: str
) -> None:
    call = {"common_name": "node.example.com", "reason": "superseded", **arguments}
    async with sectigo_emulator.client() as client:
        with pytest.raises(InvalidInputError, match=message):
            await client.certificates.revoke_all(**call)
    assert sum(sectigo_emulator.stats.requests.values()) == 0
