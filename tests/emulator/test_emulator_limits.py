"""The emulator as a server users run: bodies capped, deep JSON refused, never a 500.

The big-body tests send 300 MiB from a real client to an emulator in its own process
(the body generated as it is sent, never held) and read the server's peak memory from
``/proc``; the nesting tests hit every endpoint that decodes JSON.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from sectigo_iot.emulator import MAX_BODY_BYTES, Emulator
from sectigo_iot.emulator._limits import MAX_JSON_DEPTH, decode_json
from sectigo_iot.emulator._responses import ApiError
from sectigo_iot.models import ErrorBody
from tests.emulator.helpers import (
    CREATE,
    JSON,
    PASSWORD,
    UPLOAD,
    USER,
    create_id,
    login,
    raw_client,
    strict,
    upload,
)
from tests.support import skip_outside_ci

MIB = 1024 * 1024
HUGE = 300 * MIB
CHUNK = MIB

_SERVER = textwrap.dedent(
    """
    import anyio
    from sectigo_iot.emulator import Emulator

    emulator = Emulator(key_type="ec-p256")
    anyio.run(lambda: emulator.serve(port=0, on_ready=lambda url: print(url, flush=True)))
    """
)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The emulator served by ``Emulator.serve`` in its own process, as users run it."""
    if not Path("/proc/self/status").exists():
        skip_outside_ci("needs /proc to read the server's peak memory")
    process = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield process, url
    finally:
        process.terminate()
        process.wait(10)


_FILE_PART = (
    b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.csr"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)


async def _chunks(
    total: int, seen: list[int] | None = None, *, first: bytes = b"["
) -> AsyncIterator[bytes]:
    """``total`` bytes starting with ``first``, one MiB at a time (never held whole)."""
    block = first + b" " * (CHUNK - len(first))
    sent = 0
    while sent < total:
        piece = block[: min(CHUNK, total - sent)]
        block = b" " * CHUNK
        sent += len(piece)
        if seen is not None:
            seen.append(sent)
        yield piece


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    body = strict(response, ErrorBody)
    assert body.status == 413 and str(MAX_BODY_BYTES) in body.message


@pytest.mark.parametrize("route", ["/auth/pwd", CREATE, UPLOAD])
async def test_a_300_mib_chunked_body_gets_413_and_the_server_stays_small(
    server: tuple[subprocess.Popen[str], str], route: str
) -> None:
    process, url = server
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        tokens = await login(http)
        http.headers["Authorization"] = f"Bearer {tokens['accessToken']}"
        before = _peak_rss_kib(process.pid)
        method = "PUT" if route == CREATE else "POST"
        multipart = route == UPLOAD  # one file part that never ends
        headers = {"Content-Type": "multipart/form-data; boundary=x"} if multipart else {}
        body = _chunks(HUGE, first=_FILE_PART if multipart else b"[")
        request = http.build_request(method, route, content=body, headers=headers)
        assert "content-length" not in request.headers  # chunked: only counting stops it
        _assert_too_large(await http.send(request))
        growth_mib = (_peak_rss_kib(process.pid) - before) / 1024
        assert growth_mib < 48, f"the server grew by {growth_mib:.0f} MiB"
        # and it still serves
        assert (await http.get("/api/v1/authorities/allowed")).status_code == 200


def test_a_declared_300_mib_body_is_refused_before_it_is_sent(
    server: tuple[subprocess.Popen[str], str],
) -> None:
    _, url = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /auth/pwd HTTP/1.1\r\nHost: emulator\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n{" % HUGE
        )
        answer = _read_response(sock)  # the 413 comes without the body being sent
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body)["status"] == 413


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server hung up after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server hung up mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


async def test_in_process_the_body_is_not_read_past_the_cap(emu: Emulator) -> None:
    seen: list[int] = []
    async with raw_client(emu) as http:
        response = await http.post("/auth/pwd", content=_chunks(HUGE, seen))
    _assert_too_large(response)
    assert seen[-1] <= MAX_BODY_BYTES + CHUNK  # the rest was never pulled


async def test_a_body_at_the_cap_is_read(emu: Emulator) -> None:
    body = json.dumps({"username": "tester", "password": "x" * (MAX_BODY_BYTES - 100)})
    assert len(body) <= MAX_BODY_BYTES
    async with raw_client(emu) as http:
        response = await http.post("/auth/pwd", content=body.encode())
    assert response.status_code == 401  # read and checked, not refused for its size


async def test_a_bad_content_length_is_a_400(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        body = json.dumps({"username": USER, "password": PASSWORD}).encode()
        response = await http.post("/auth/pwd", content=body, headers={"Content-Length": "2x"})
    assert response.status_code == 400
    assert strict(response, ErrorBody).status == 400


# -- nesting ---------------------------------------------------------------------------

DEEP = ["[" * 100_000, '{"a":' * 100_000, "[" * 50_000 + "]" * 50_000]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def _json_endpoints(http: httpx.AsyncClient, body: str) -> list[httpx.Response]:
    """``body`` sent to login, create, find, revoke and as the upload's JSON part."""
    content = body.encode()
    upload_parts = {"csrBatchRequest": ("blob", content, "application/json")}
    return [
        await http.post("/auth/pwd", content=content),
        await http.put(CREATE, content=content),
        await http.post("/api/v1/certificates/find", content=content),
        await http.post("/api/v1/certificates/42/revoke", content=content),
        await http.post(UPLOAD, data={"profileId": "42"}, files=upload_parts),
    ]


@pytest.mark.parametrize("body", DEEP, ids=["open-arrays", "open-objects", "balanced"])
async def test_deep_json_is_a_400_on_every_json_endpoint(
    http: httpx.AsyncClient, body: str
) -> None:
    for response in await _json_endpoints(http, body):
        assert response.status_code == 400, (response.request.url, response.text[:200])
        error = strict(response, ErrorBody)
        assert error.status == 400 and f"deeper than {MAX_JSON_DEPTH}" in error.message


async def test_deep_json_inside_a_field_is_a_400(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http)
    body = {"authorityId": 1, "batchName": "x", "profileParams": {"commonName": "PLACEHOLDER"}}
    text = json.dumps(body).replace('"PLACEHOLDER"', _nested(MAX_JSON_DEPTH + 5))
    response = await http.put(CREATE, content=text.encode())
    assert response.status_code == 400 and "deeper" in strict(response, ErrorBody).message
    assert [b.batch_id for b in emu.batches()] == [batch_id]


async def test_brackets_inside_strings_are_not_nesting() -> None:
    # a password may hold any characters, escaped quotes and brackets included
    password = '\\"' + "[" * 1000 + '"{' * 100
    with Emulator(users={"tester": password}, key_type="ec-p256") as emulator:
        async with raw_client(emulator) as http:
            response = await http.post(
                "/auth/pwd", content=json.dumps({"username": "tester", "password": password})
            )
    assert response.status_code == 200, response.text


def test_the_depth_bound_is_exact() -> None:
    assert decode_json(_nested(MAX_JSON_DEPTH), "body") is not None
    assert decode_json('{"a": ' * MAX_JSON_DEPTH + "1" + "}" * MAX_JSON_DEPTH, "body")
    for text in (_nested(MAX_JSON_DEPTH + 1), "[" * (MAX_JSON_DEPTH + 1), "[{]" * 40):
        with pytest.raises(ApiError) as caught:
            decode_json(text, "body")
        assert caught.value.status == 400


async def test_malformed_json_is_still_a_400(http: httpx.AsyncClient) -> None:
    for response in await _json_endpoints(http, '{"username": '):
        assert response.status_code == 400
        assert response.headers["content-type"] == JSON


async def test_an_uploaded_zip_unpacking_past_the_cap_is_a_400(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    # nine CSR files of a MiB each: a few kilobytes sent, more than the cap unpacked
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(MAX_BODY_BYTES // MIB + 1):
            archive.writestr(f"{index}.csr", b"-" * (MIB - 1))
    assert len(buffer.getvalue()) < MIB
    response = await upload(http, ("csrs.zip", buffer.getvalue(), "application/zip"))
    assert response.status_code == 400
    assert "unpacks to more than" in strict(response, ErrorBody).message
    assert emu.batches() == [] and emu.balance == 10
