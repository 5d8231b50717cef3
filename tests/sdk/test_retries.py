"""The retry policy: what is retried, how long it waits, what is never re-sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from sectigo_iot import (
    AmbiguousRequestError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    RateLimitError,
    SectigoClient,
    ServerError,
    _retry,
)
from tests.support import BASE

DETAIL = f"{BASE}/api/v1/batches/5"
CREATE = f"{BASE}/api/v1/batches/createSingleCertBatch"
BATCH = {"batchId": 5, "status": "PROCESSING"}


@pytest.fixture
async def client(make_client: Any) -> AsyncIterator[SectigoClient]:
    """A client that retries as by default (pauses recorded in ``sleeps``, not slept)."""
    async with make_client(max_retries=2) as c:
        yield c


@pytest.mark.parametrize("status", sorted(_retry.RETRYABLE_STATUSES))
async def test_gets_are_retried_on_transient_statuses(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float], status: int
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=status)
    httpx_mock.add_response(url=DETAIL, json=BATCH)
    assert (await client.batches.get(5)).batch_id == 5
    assert len(sleeps) == 1 and 0.375 <= sleeps[0] <= 0.5


async def test_at_most_max_retries_with_doubling_backoff(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=503, is_reusable=True)
    with pytest.raises(ServerError):
        await client.batches.get(5)
    assert len(httpx_mock.get_requests(url=DETAIL)) == 3
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 501])
async def test_other_statuses_are_not_retried(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float], status: int
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=status, is_reusable=True)
    if status == 401:
        httpx_mock.add_response(method="POST", url=f"{BASE}/auth/refresh", status_code=401)
        login()
    with pytest.raises(APIError) as caught:
        await client.batches.get(5)
    assert caught.value.status_code == status
    assert sleeps == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "later"}, None),
    ],
)
async def test_retry_after_is_honoured(
    client: SectigoClient,
    httpx_mock: Any,
    login: Any,
    sleeps: list[float],
    headers: dict[str, str],
    expected: float | None,
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=429, headers=headers)
    httpx_mock.add_response(url=DETAIL, json=BATCH)
    await client.batches.get(5)
    if expected is None:
        assert 0.375 <= sleeps[0] <= 0.5
    else:
        assert sleeps == [expected]


def test_retry_after_as_http_date() -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    wait = _retry.retry_after_seconds(
        httpx.Headers({"Retry-After": format_datetime(when, usegmt=True)})
    )
    assert wait is not None and 25 <= wait <= 30


async def test_long_retry_after_is_surfaced(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=429, headers={"Retry-After": "120"})
    with pytest.raises(RateLimitError) as caught:
        await client.batches.get(5)
    assert caught.value.retry_after == 120 and sleeps == []


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")]
)
async def test_connect_phase_failures_are_retried_even_for_put(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float], exc: Exception
) -> None:
    login()
    httpx_mock.add_exception(exc, url=CREATE, method="PUT")
    httpx_mock.add_response(url=CREATE, method="PUT", json=BATCH)
    batch = await client.batches.create(
        1, common_name="a.example.com", pkcs12_password="secretsecret"
    )
    assert batch.batch_id == 5 and len(sleeps) == 1


async def test_read_timeout_on_get_is_retried(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=DETAIL)
    httpx_mock.add_response(url=DETAIL, json=BATCH)
    assert (await client.batches.get(5)).batch_id == 5
    assert len(httpx_mock.get_requests(url=DETAIL)) == 2  # sent again after the timeout
    assert len(sleeps) == 1  # after one backoff pause


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")])
async def test_put_is_never_resent_after_it_may_have_arrived(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float], exc: Exception
) -> None:
    login()
    httpx_mock.add_exception(exc, url=CREATE, method="PUT")
    # the lookup by name finds nothing, every time
    httpx_mock.add_response(
        method="GET",
        url=httpx.URL(f"{BASE}/api/v1/batches", params={"page": 0, "size": 1000}),
        json={"content": []},
        is_reusable=True,
    )
    with pytest.raises(AmbiguousRequestError) as caught:
        await client.batches.create(
            1, common_name="a.example.com", pkcs12_password="secretsecret", name="n-1"
        )
    assert caught.value.batch_name == "n-1" and caught.value.operation == "create"
    assert len(httpx_mock.get_requests(method="PUT")) == 1
    assert sum(sleeps) == pytest.approx(30)


async def test_max_retries_zero_disables_retries(
    make_client: Any, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=DETAIL)
    async with make_client(max_retries=0) as client:
        with pytest.raises(APIConnectionError):
            await client.batches.get(5)
    assert len(httpx_mock.get_requests(url=DETAIL)) == 1


def test_timeouts_apply_to_every_phase() -> None:
    client = SectigoClient("u", "p", token_store="memory", timeout=7.5)
    timeout = client._session._http.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (7.5, 7.5, 7.5, 7.5)


def test_backoff_is_capped() -> None:
    assert all(6.0 <= _retry.backoff_delay(n) <= 8.0 for n in range(5, 12))


async def test_timeout_error_type(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=DETAIL, is_reusable=True)
    with pytest.raises(APITimeoutError):
        await client.batches.get(5)
    assert len(httpx_mock.get_requests(url=DETAIL)) == 3
