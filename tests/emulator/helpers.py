"""Shared helpers for the emulator tests: raw httpx clients, batches, archives, openssl."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import strict_converter

T = TypeVar("T")

USER = "tester"
PASSWORD = "supersecretsquirrel"
JSON = "application/json;charset=UTF-8"
CREATE = "/api/v1/batches/createSingleCertBatch"
UPLOAD = "/api/v1/batches/upload"
P12_PASSWORD = "p12-Secret-42"


def strict(response: httpx.Response, model: type[T]) -> T:
    """The JSON body as ``model``, failing on unknown fields, after checking the headers."""
    assert response.headers["content-type"] == JSON
    return strict_converter.structure(response.json(), model)


def raw_client(emulator: Emulator, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that runs the emulator in process."""
    return httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.base_url, **kwargs)


async def login(
    http: httpx.AsyncClient, username: str = USER, password: str = PASSWORD
) -> dict[str, str]:
    """Log in; return the reply body (``accessToken``, ``refreshToken``)."""
    response = await http.post("/auth/pwd", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


@asynccontextmanager
async def authed(
    emulator: Emulator, username: str = USER, password: str = PASSWORD, **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A logged-in raw client (``Authorization`` set on every request)."""
    async with raw_client(emulator, **kwargs) as http:
        tokens = await login(http, username, password)
        http.headers["Authorization"] = f"Bearer {tokens['accessToken']}"
        yield http


async def read_body(
    http: httpx.AsyncClient, url: str, **kwargs: Any
) -> tuple[httpx.Response, bytes, httpx.TransportError | None]:
    """Stream a GET; the response, the raw body bytes that arrived, and what stopped them."""
    received = bytearray()
    async with http.stream("GET", url, **kwargs) as response:
        try:
            async for chunk in response.aiter_raw():
                received += chunk
        except httpx.TransportError as exc:
            return response, bytes(received), exc
    return response, bytes(received), None


def params(
    common_name: str = "api.example.com", *extra: str, password: str = P12_PASSWORD, **more: str
) -> dict[str, str]:
    """``profileParams`` for a single-certificate batch."""
    return {
        "commonName": common_name,
        "dNSName": "\n".join([common_name, *extra]),
        "pkcs12Password": password,
        **more,
    }


async def create(
    http: httpx.AsyncClient,
    common_name: str = "api.example.com",
    *extra: str,
    authority_id: int = 1,
    name: str = "test batch",
    profile_params: dict[str, str] | None = None,
) -> httpx.Response:
    """``PUT createSingleCertBatch``."""
    body = {
        "authorityId": authority_id,
        "batchName": name,
        "profileParams": profile_params
        if profile_params is not None
        else params(common_name, *extra),
    }
    return await http.put(CREATE, json=body)


async def create_id(
    http: httpx.AsyncClient, common_name: str = "api.example.com", *extra: str
) -> int:
    """Create a batch that must succeed; return its id."""
    response = await create(http, common_name, *extra)
    assert response.status_code == 200, response.text
    batch_id: int = response.json()["batchId"]
    return batch_id


async def batch_body(http: httpx.AsyncClient) -> tuple[str, bytes]:
    """Create a batch; return its detail URL and the whole body that URL answers."""
    url = f"/api/v1/batches/{await create_id(http)}"
    return url, (await http.get(url)).content


def assert_cut_short(
    response: httpx.Response,
    received: bytes,
    error: httpx.TransportError | None,
    whole: bytes,
    keep: int,
    error_type: type[httpx.TransportError],
) -> None:
    """The headers announced ``whole``; only its first ``keep`` bytes came, then ``error_type``."""
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(whole))
    assert received == whole[:keep] and isinstance(error, error_type)


async def upload(
    http: httpx.AsyncClient,
    *files: tuple[str, bytes, str],
    profile_id: int = 42,
    batch_request: dict[str, Any] | None = None,
) -> httpx.Response:
    """``POST upload`` with the three-part layout of the real client."""
    request = batch_request or {"profileId": profile_id, "batchType": "BATCH", "profileParams": {}}
    parts: list[tuple[str, tuple[str, bytes, str]]] = [
        ("csrBatchRequest", ("blob", json.dumps(request).encode(), "application/json"))
    ]
    parts += [("files", file) for file in files]
    return await http.post(UPLOAD, data={"profileId": str(profile_id)}, files=parts)


def unzip(data: bytes) -> dict[str, bytes]:
    """The members of a ZIP archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zip_of(**members: bytes) -> bytes:
    """A ZIP archive of ``name=data`` members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name.replace("__", "."), data)
    return buffer.getvalue()


def openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run openssl; return the completed process (never raises on failure)."""
    return subprocess.run(
        ["openssl", *map(str, args)],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
