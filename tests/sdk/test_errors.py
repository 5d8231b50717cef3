"""Error mapping: every status family and every body shape becomes a typed error."""

from __future__ import annotations

from typing import Any

import pytest

from sectigo_iot import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    InvalidInputError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SectigoClient,
    SectigoError,
    ServerError,
)
from tests.support import BASE

PATH = "/api/v1/batches/7"
SECTIGO_BODY = {
    "status": 400,
    "message": "Profile parameter dNSName is required",
    "errorCode": -1,
    "timestamp": 1607618132805,
}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (418, APIError),
    ],
)
async def test_status_families(
    client: SectigoClient, httpx_mock: Any, login: Any, status: int, error: type
) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}{PATH}", status_code=status)
    with pytest.raises(error) as caught:
        await client.batches.get(7)
    assert caught.value.status_code == status
    assert caught.value.path == PATH and caught.value.method == "GET"
    assert isinstance(caught.value, SectigoError)


@pytest.mark.parametrize(
    "content_type",
    ["application/json;charset=UTF-8", "application/json; charset=utf-8", "APPLICATION/JSON", ""],
)
async def test_sectigo_error_body_whatever_the_content_type(
    client: SectigoClient, httpx_mock: Any, login: Any, content_type: str
) -> None:
    login()
    import json

    httpx_mock.add_response(
        url=f"{BASE}{PATH}",
        status_code=400,
        content=json.dumps(SECTIGO_BODY).encode(),
        headers={"Content-Type": content_type} if content_type else {},
    )
    with pytest.raises(BadRequestError) as caught:
        await client.batches.get(7)
    error = caught.value
    assert (error.message, error.error_code, error.timestamp) == (
        "Profile parameter dNSName is required",
        -1,
        1607618132805,
    )
    assert str(error) == f"400 Profile parameter dNSName is required [errorCode -1] (GET {PATH})"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "Batch not found"}, "Batch not found"),
        ({"json": {"success": False, "error": "batch not found"}}, "batch not found"),
        ({"content": b""}, "Not Found"),
        ({"html": "<html><body>Bad gateway</body></html>"}, "HTML page"),
        ({"content": b"\xff\xfe\x00garbage"}, "garbage"),
        ({"json": "unrecognized authority id"}, "unrecognized authority id"),
    ],
)
async def test_other_error_bodies(
    client: SectigoClient, httpx_mock: Any, login: Any, kwargs: dict[str, Any], message: str
) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}{PATH}", status_code=404, **kwargs)
    with pytest.raises(NotFoundError, match=message) as caught:
        await client.batches.get(7)
    assert caught.value.error_code is None


async def test_rate_limit_carries_retry_after(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}{PATH}", status_code=429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimitError) as caught:
        await client.batches.get(7)
    assert caught.value.retry_after == 120


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"html": "<html>maintenance</html>"}, "HTML page"),
        ({"text": "{not json"}, "not valid JSON"),
        ({"content": b""}, "empty"),
        ({"content": b"\xff\xfe\xfa"}, "not UTF-8|not valid JSON"),
        ({"json": [1, 2]}, "unexpected response shape"),
    ],
)
async def test_bad_success_bodies(
    client: SectigoClient, httpx_mock: Any, login: Any, kwargs: dict[str, Any], message: str
) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}{PATH}", **kwargs)
    with pytest.raises(InvalidResponseError, match=message):
        await client.batches.get(7)


async def test_a_200_carrying_an_error_body_is_an_error(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}{PATH}", json=SECTIGO_BODY)
    with pytest.raises(BadRequestError, match="dNSName"):
        await client.batches.get(7)


async def test_huge_response_is_refused(client: SectigoClient, httpx_mock: Any, login: Any) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}{PATH}", content=b" " * (10 * 1024 * 1024 + 1))
    with pytest.raises(InvalidResponseError, match="limit"):
        await client.batches.get(7)


async def test_connection_errors(client: SectigoClient, httpx_mock: Any, login: Any) -> None:
    import httpx

    login()
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}{PATH}")
    with pytest.raises(APIConnectionError) as caught:
        await client.batches.get(7)
    assert caught.value.request_sent is False
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=f"{BASE}{PATH}")
    with pytest.raises(APITimeoutError, match="read timeout") as timed_out:
        await client.batches.get(7)
    assert timed_out.value.request_sent is True


@pytest.mark.parametrize("bad", [0, -1, True, "7", 1.5, None])
async def test_invalid_ids_fail_before_sending(
    client: SectigoClient, httpx_mock: Any, bad: Any
) -> None:
    with pytest.raises(InvalidInputError, match="batch_id must be a positive integer"):
        await client.batches.get(bad)
    assert httpx_mock.get_requests() == []


async def test_error_messages_never_hold_secrets(make_client: Any, httpx_mock: Any) -> None:
    password = "pw-canary-51a7"
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/auth/pwd",
        status_code=401,
        json={"message": f"bad password {password}"},
    )
    async with make_client(password=password) as client:
        with pytest.raises(APIError) as caught:
            await client.authenticate()
    assert password not in str(caught.value) and password not in repr(caught.value)
