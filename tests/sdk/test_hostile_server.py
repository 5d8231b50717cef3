"""A hostile or broken server, at the wire: bodies cut, stalled, compressed into bombs,
errors on a 200, echoed secrets, lying clocks and non-unique batch names."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from sectigo_iot import (
    AmbiguousRequestError,
    APIConnectionError,
    APITimeoutError,
    BatchRejectedError,
    InvalidInputError,
    InvalidResponseError,
    NotFoundError,
    SectigoClient,
    ServerError,
)
from sectigo_iot._session import MAX_BODY_BYTES
from tests.support import BASE, Wire, gzip_bomb, token_pair

DETAIL = f"{BASE}/api/v1/batches/5"
CREATE = f"{BASE}/api/v1/batches/createSingleCertBatch"
LIST = f"{BASE}/api/v1/batches?page=0&size=1000"
DOWNLOAD = f"{BASE}/api/v1/batches/5/download"
P12 = "canary-pkcs12-pass-Zx81"
READY = {"batchId": 5, "batchName": "n", "status": "READY_FOR_DOWNLOAD"}


class CutStream(httpx.AsyncByteStream):
    """A body that sends ``head`` and then fails with ``error`` (a hang-up or a stall)."""

    def __init__(self, head: bytes, error: type[httpx.TransportError]) -> None:
        self.head = head
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise self.error("the body stopped here")


def cut(json_text: str, error: type[httpx.TransportError] = httpx.RemoteProtocolError) -> Any:
    return CutStream(json_text.encode()[: len(json_text) // 2], error)


def batch_json(batch_id: int, name: str, created: datetime) -> dict[str, Any]:
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {"batchId": batch_id, "batchName": name, "status": "CREATED", "creationDate": stamp}


def page_of(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """The only page of a batch list, as a Spring page object."""
    return {"content": batches, "number": 0, "totalPages": 1}


def server_time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.pem", "x")
    return buffer.getvalue()


# -- bodies cut or stalled after the headers -------------------------------------------


@pytest.mark.parametrize(
    ("error", "typed"),
    [(httpx.RemoteProtocolError, APIConnectionError), (httpx.ReadTimeout, APITimeoutError)],
)
async def test_get_cut_mid_body_is_typed_and_retried(
    make_client: Any, httpx_mock: Any, login: Any, error: Any, typed: Any
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, stream=cut(json.dumps(READY), error))
    httpx_mock.add_response(url=DETAIL, stream=cut(json.dumps(READY), error))
    async with make_client(max_retries=1) as client:
        with pytest.raises(typed) as caught:
            await client.batches.get(5)
    assert caught.value.request_sent is True
    assert "while reading the response body" in str(caught.value)
    assert len(httpx_mock.get_requests(url=DETAIL)) == 2  # retried once, as GETs are


async def test_get_cut_once_then_whole_succeeds(
    make_client: Any, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, stream=cut(json.dumps(READY)))
    httpx_mock.add_response(url=DETAIL, json=READY)
    async with make_client(max_retries=2) as client:
        assert (await client.batches.get(5)).status == "READY_FOR_DOWNLOAD"


async def test_login_cut_mid_body_is_typed(client: SectigoClient, httpx_mock: Any) -> None:
    body = json.dumps(token_pair(1_700_000_000))
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", stream=cut(body))
    with pytest.raises(APIConnectionError, match="while reading"):
        await client.authenticate()


@pytest.mark.parametrize("error", [httpx.RemoteProtocolError, httpx.ReadTimeout])
async def test_create_cut_mid_body_reconciles_by_name(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Any, error: Any
) -> None:
    login()
    name = "sectigo-iot-0d6e1c3a-5a1e-4b6f-9c2d-1f2e3d4c5b6a"
    made = batch_json(77, name, server_time(clock.now + 1))
    httpx_mock.add_response(url=CREATE, stream=cut(json.dumps(made), error))
    httpx_mock.add_response(url=LIST, json=page_of([made]))
    batch = await client.batches.create(
        1, common_name="a.example.com", pkcs12_password=P12, name=name
    )
    assert batch.batch_id == 77
    assert len(httpx_mock.get_requests(url=CREATE)) == 1  # never sent twice


async def test_download_cut_mid_body_leaves_no_file(
    make_client: Any, httpx_mock: Any, login: Any, tmp_path: Path
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json=READY)
    httpx_mock.add_response(
        url=DOWNLOAD, stream=CutStream(zip_bytes()[:20], httpx.RemoteProtocolError)
    )
    async with make_client(max_retries=0) as client:
        with pytest.raises(APIConnectionError, match="while reading"):
            await client.batches.download(5, tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_download_retried_after_a_cut_starts_the_file_afresh(
    make_client: Any, httpx_mock: Any, login: Any, tmp_path: Path
) -> None:
    login()
    whole = zip_bytes()
    httpx_mock.add_response(url=DETAIL, json=READY)
    httpx_mock.add_response(url=DOWNLOAD, stream=CutStream(whole[:20], httpx.ReadError))
    httpx_mock.add_response(url=DOWNLOAD, content=whole)
    async with make_client(max_retries=1) as client:
        path = await client.batches.download(5, tmp_path)
    assert path.read_bytes() == whole
    assert [p.name for p in tmp_path.iterdir()] == ["5.zip"]


# -- decompression bombs ---------------------------------------------------------------


async def test_gzip_json_bomb_is_refused(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    bomb = gzip_bomb(json.dumps(READY).encode(), 64 * 1024 * 1024, b" ")
    assert len(bomb) < MAX_BODY_BYTES // 50  # small on the wire, 64 MiB once inflated
    httpx_mock.add_response(url=DETAIL, stream=Wire(bomb), headers={"Content-Encoding": "gzip"})
    with pytest.raises(InvalidResponseError, match="after decompression"):
        await client.batches.get(5)


async def test_gzip_json_within_the_cap_is_read(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    body = gzip.compress(json.dumps(READY).encode())
    httpx_mock.add_response(url=DETAIL, stream=Wire(body), headers={"Content-Encoding": "gzip"})
    assert (await client.batches.get(5)).batch_name == "n"
    assert httpx_mock.get_requests(url=DETAIL)[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "body", "problem"),
    [
        ("br", b"\x00\x01", "was not asked for"),
        ("gzip", b"not gzip at all", "not valid gzip"),
        ("gzip", gzip.compress(b'{"batchId": 5}')[:-12], "not valid gzip"),
    ],
)
async def test_unknown_or_corrupt_encodings_are_refused(
    client: SectigoClient, httpx_mock: Any, login: Any, encoding: str, body: bytes, problem: str
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, stream=Wire(body), headers={"Content-Encoding": encoding})
    with pytest.raises(InvalidResponseError, match=problem):
        await client.batches.get(5)


async def test_gzip_download_bomb_is_refused_and_leaves_no_file(
    client: SectigoClient, httpx_mock: Any, login: Any, tmp_path: Path
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json=READY)
    bomb = gzip_bomb(zip_bytes(), 8 * 1024 * 1024, b"\0")
    httpx_mock.add_response(url=DOWNLOAD, stream=Wire(bomb), headers={"Content-Encoding": "gzip"})
    with pytest.raises(InvalidResponseError, match="4194304-byte limit"):
        await client.batches.download(5, tmp_path, max_bytes=4 * 1024 * 1024)
    assert list(tmp_path.iterdir()) == []


# -- 2xx replies that are not what they claim ------------------------------------------


ERROR_ON_200 = {"status": 500, "message": "Internal error", "errorCode": -1, "timestamp": 1}


@pytest.mark.parametrize(
    ("call", "url", "method"),
    [
        (lambda c: c.organizations.current(), f"{BASE}/api/v1/organizations/user", "GET"),
        (lambda c: c.licenses.used(), f"{BASE}/api/v1/devices", "GET"),
        (lambda c: c.authorities.list(), f"{BASE}/api/v1/authorities/allowed", "GET"),
        (lambda c: c.profiles.get(3), f"{BASE}/api/v1/profiles/3", "GET"),
        (lambda c: c.batches.processing_info(5), f"{BASE}/api/v1/batches/5/processing_info", "GET"),
        (
            lambda c: c.certificates.find(common_name="a.example.com"),
            f"{BASE}/api/v1/certificates/find",
            "POST",
        ),
    ],
)
async def test_sectigo_error_body_on_a_200_is_an_error_everywhere(
    client: SectigoClient, httpx_mock: Any, login: Any, call: Any, url: str, method: str
) -> None:
    login()
    httpx_mock.add_response(method=method, url=url, json=ERROR_ON_200)
    with pytest.raises(ServerError, match="Internal error"):
        await call(client)


async def test_upload_with_error_body_on_a_200_is_ambiguous(
    client: SectigoClient, httpx_mock: Any, login: Any, csr_pem: bytes
) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}/api/v1/batches/upload", json=ERROR_ON_200)
    with pytest.raises(AmbiguousRequestError) as caught:
        await client.batches.upload_csrs(7, csr_pem)
    assert caught.value.common_names == ("api.example.com",)


@pytest.mark.parametrize(
    "reply",
    [
        {"content": b""},
        {"content": b"<html><body>Gateway says hi</body></html>"},
        {"json": ["not", "a", "batch"]},
        {"json": ERROR_ON_200},
    ],
    ids=["empty", "html", "wrong-shape", "error-body"],
)
async def test_create_answered_2xx_with_a_bad_body_is_reconciled(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Any, reply: dict[str, Any]
) -> None:
    login()
    name = "sectigo-iot-0d6e1c3a-5a1e-4b6f-9c2d-1f2e3d4c5b6a"
    httpx_mock.add_response(url=CREATE, **reply)
    made = batch_json(78, name, server_time(clock.now))
    httpx_mock.add_response(url=LIST, json=page_of([made]))
    batch = await client.batches.create(
        1, common_name="a.example.com", pkcs12_password=P12, name=name
    )
    assert batch.batch_id == 78
    assert len(httpx_mock.get_requests(url=CREATE)) == 1


# -- reconciliation by name -------------------------------------------------------------


def _ambiguous_create(httpx_mock: Any, listing: list[dict[str, Any]]) -> None:
    httpx_mock.add_response(url=CREATE, status_code=502)
    httpx_mock.add_response(url=LIST, json=page_of(listing), is_reusable=True)


async def test_an_earlier_batch_of_the_same_name_30_s_before_is_not_ours(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Any
) -> None:
    login()
    earlier = batch_json(70, "new certs for a.example.com", server_time(clock.now - 30))
    _ambiguous_create(httpx_mock, [earlier])
    with pytest.raises(AmbiguousRequestError, match="no batch with this name appeared"):
        await client.batches.create(
            1, common_name="a.example.com", pkcs12_password=P12, name=earlier["batchName"]
        )


async def test_two_batches_of_the_name_in_the_window_are_ambiguous(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Any
) -> None:
    login()
    name = "nightly"
    twins = [batch_json(i, name, server_time(clock.now + i)) for i in (81, 82)]
    _ambiguous_create(httpx_mock, twins)
    with pytest.raises(AmbiguousRequestError, match="2 batches of this name") as caught:
        await client.batches.create(1, common_name="a.example.com", pkcs12_password=P12, name=name)
    assert {b.batch_id for b in caught.value.candidates} == {81, 82}


async def test_a_caller_name_with_unknown_creation_date_is_not_proof(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    undated = {"batchId": 90, "batchName": "nightly", "status": "CREATED", "creationDate": None}
    _ambiguous_create(httpx_mock, [undated])
    with pytest.raises(AmbiguousRequestError):
        await client.batches.create(
            1, common_name="a.example.com", pkcs12_password=P12, name="nightly"
        )


async def test_a_generated_name_is_proof_even_without_a_date(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_response(url=CREATE, status_code=503)
    sent: list[str] = []

    def listing(request: httpx.Request) -> httpx.Response:
        create = json.loads(httpx_mock.get_requests(url=CREATE)[0].content)
        sent.append(create["batchName"])
        undated = {"batchId": 91, "batchName": create["batchName"], "creationDate": None}
        return httpx.Response(200, json=page_of([undated]))

    httpx_mock.add_callback(listing, url=LIST)
    batch = await client.batches.create(1, common_name="a.example.com", pkcs12_password=P12)
    assert batch.batch_id == 91 and sent[0].startswith("sectigo-iot-")


async def test_attempt_time_is_on_the_server_clock(
    make_client: Any, httpx_mock: Any, clock: Any
) -> None:
    """A fresh process whose clock is 10 minutes fast still finds its own batch."""
    server_now = clock.now
    clock.advance(600)  # our clock runs 10 minutes ahead of the server's
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/auth/pwd", json=token_pair(server_now, access_ttl=3600)
    )
    mine = batch_json(83, "mine", server_time(server_now + 1))
    _ambiguous_create(httpx_mock, [mine])
    async with make_client() as client:
        batch = await client.batches.create(
            1, common_name="a.example.com", pkcs12_password=P12, name="mine"
        )
    assert batch.batch_id == 83


# -- secrets a server echoes -----------------------------------------------------------


async def test_a_password_echoed_in_reject_reason_is_redacted(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Any
) -> None:
    login()
    made = batch_json(5, "n", server_time(clock.now))
    httpx_mock.add_response(url=CREATE, json=made)
    await client.batches.create(1, common_name="a.example.com", pkcs12_password=P12, name="n")
    rejected = {**made, "status": "REJECTED", "rejectReason": f"weak password {P12}"}
    httpx_mock.add_response(url=DETAIL, json=rejected)  # the detail alone tells
    with pytest.raises(BatchRejectedError) as caught:
        await client.batches.wait(5)
    assert P12 not in str(caught.value) and P12 not in repr(caught.value.batch)
    assert P12 not in (caught.value.reject_reason or "")


# -- bad input refused before anything is sent -----------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "https://iot.sectigo.com\r\nX-Evil: 1",
        "https://iot.sectigo.com:70000",
        "http://[::1",
        "http://iot.sectigo.com",
        "http://10.0.0.8:8080",
        "ftp://iot.sectigo.com",
    ],
)
def test_bad_base_urls_are_refused(base_url: str) -> None:
    with pytest.raises(InvalidInputError):
        SectigoClient("u", "p", base_url=base_url, token_store="memory")


@pytest.mark.parametrize(
    ("base_url", "origin"),
    [
        ("http://127.0.0.1:8080/api", "http://127.0.0.1:8080"),
        ("http://localhost:9", "http://localhost:9"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://iot.sectigo.com/", "https://iot.sectigo.com"),
    ],
)
def test_loopback_http_and_https_are_accepted(base_url: str, origin: str) -> None:
    assert SectigoClient("u", "p", base_url=base_url, token_store="memory").base_url == origin


def test_plain_http_elsewhere_needs_an_explicit_opt_in() -> None:
    client = SectigoClient(
        "u", "p", base_url="http://ca.internal:8080", token_store="memory", allow_insecure_http=True
    )
    assert client.base_url == "http://ca.internal:8080"


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), "5", None, True, 0, -1])
async def test_wait_refuses_a_timeout_that_is_not_a_positive_number(
    client: SectigoClient, httpx_mock: Any, timeout: Any
) -> None:
    with pytest.raises(InvalidInputError, match="timeout"):
        await client.batches.wait(5, timeout=timeout)
    assert httpx_mock.get_requests() == []


# -- what the server says beyond our models -------------------------------------------


async def test_find_keeps_the_total_count(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    item = {"serialNumber": "4ADD", "status": "ISSUED", "commonName": "a.example.com"}
    httpx_mock.add_response(
        url=f"{BASE}/api/v1/certificates/find", json={"totalCount": 12, "items": [item]}
    )
    found = await client.certificates.find(common_name="a.example.com")
    assert found.total_count == 12
    assert [i.serial_number for i in found] == ["4ADD"] and len(found) == 1


async def test_upload_sends_profile_parameters(
    client: SectigoClient, httpx_mock: Any, login: Any, csr_pem: bytes
) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}/api/v1/batches/upload", json={"batchId": 9})
    await client.batches.upload_csrs(7, csr_pem, params={"organizationName": "Example"})
    request = httpx_mock.get_requests(url=f"{BASE}/api/v1/batches/upload")[0]
    part = _form_part(request, "csrBatchRequest")
    assert json.loads(part)["profileParams"] == {"organizationName": "Example"}


def _form_part(request: httpx.Request, name: str) -> bytes:
    boundary = request.headers["Content-Type"].split("boundary=")[1].encode()
    for chunk in _parts(request.content, boundary):
        head, _, body = chunk.partition(b"\r\n\r\n")
        if f'name="{name}"'.encode() in head:
            return body.rstrip(b"\r\n")
    raise AssertionError(f"no part {name}")


def _parts(content: bytes, boundary: bytes) -> Iterator[bytes]:
    yield from content.split(b"--" + boundary)[1:-1]


@pytest.mark.parametrize("max_bytes", [0, -5, 1.5, True])
async def test_download_cap_must_be_a_positive_integer(
    client: SectigoClient, httpx_mock: Any, tmp_path: Path, max_bytes: Any
) -> None:
    with pytest.raises(InvalidInputError, match="max_bytes"):
        await client.batches.download(5, tmp_path, max_bytes=max_bytes)
    assert httpx_mock.get_requests() == []


async def test_an_error_body_nested_too_deep_is_still_a_typed_error(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    """A 404 whose JSON body nests 200,000 levels: the error is typed, never RecursionError."""
    login()
    httpx_mock.add_response(url=DETAIL, status_code=404, content=b'{"a":' * 200_000)
    with pytest.raises(NotFoundError):
        await client.batches.get(5)
