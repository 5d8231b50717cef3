"""``batches.wait``: ready, rejected, failed, COLLECTED and timeout paths (injected sleep)."""

from __future__ import annotations

from typing import Any

import pytest

from sectigo_iot import (
    BatchFailedError,
    BatchRejectedError,
    BatchStatus,
    SectigoClient,
    WaitProgress,
    WaitTimeoutError,
)
from sectigo_iot.emulator import Emulator
from tests.support import BASE

DETAIL = f"{BASE}/api/v1/batches/5"
INFO = f"{BASE}/api/v1/batches/5/processing_info"
STATUS = f"{BASE}/api/v1/batches/5/status"


def batch(status: str, reject_reason: str = "") -> dict[str, Any]:
    return {"batchId": 5, "status": status, "rejectReason": reject_reason}


def counts(active: int = 0, success: int = 0, failed: int = 0) -> dict[str, int]:
    return {"active": active, "success": success, "failed": failed}


def text_status_poll(httpx_mock: Any, detail_status: str, text: str) -> None:
    """One poll whose detail status is of no use: the text status follows."""
    httpx_mock.add_response(url=DETAIL, json=batch(detail_status))
    httpx_mock.add_response(url=STATUS, text=text)


async def test_ready_after_processing_one_request_per_poll(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    for _ in range(3):
        httpx_mock.add_response(url=DETAIL, json={**batch("PROCESSING"), "active": True})
    httpx_mock.add_response(url=DETAIL, json=batch("READY_FOR_DOWNLOAD"))
    seen: list[WaitProgress] = []
    ready = await client.batches.wait(5, on_progress=seen.append)
    assert ready.status == "READY_FOR_DOWNLOAD"
    assert sleeps == pytest.approx([1.0, 1.5, 2.25])
    assert [p.status for p in seen] == ["PROCESSING"] * 3 + ["READY_FOR_DOWNLOAD"]
    assert [(p.info.active, p.info.success) for p in seen] == [(1, 0)] * 3 + [(0, 1)]
    assert seen[-1].elapsed == pytest.approx(4.75)
    assert len(httpx_mock.get_requests(url=DETAIL)) == 4  # nothing but the detail
    assert not httpx_mock.get_requests(url=INFO) and not httpx_mock.get_requests(url=STATUS)


async def test_backoff_is_capped_at_twenty_seconds(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json=batch("PROCESSING"), is_reusable=True)
    with pytest.raises(WaitTimeoutError) as caught:
        await client.batches.wait(5, timeout=200)
    assert max(sleeps) == 20.0
    assert sum(sleeps) == pytest.approx(200)
    assert caught.value.status == "PROCESSING" and caught.value.batch.batch_id == 5


async def test_collected_falls_back_to_the_text_status(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    text_status_poll(httpx_mock, "COLLECTED", "Ready for download")
    assert (await client.batches.wait(5)).batch_id == 5
    assert len(httpx_mock.get_requests(url=STATUS)) == 1


async def test_empty_status_falls_back_too(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    text_status_poll(httpx_mock, "", "Processing")
    text_status_poll(httpx_mock, "", "Ready for download")
    await client.batches.wait(5)
    assert sleeps == [1.0]


async def test_rejected(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    reason = "Cert subject name error: SubjectAlternativeName dNSName value is missing"
    httpx_mock.add_response(url=DETAIL, json=batch("REJECTED", reason))
    with pytest.raises(BatchRejectedError, match="dNSName value is missing") as caught:
        await client.batches.wait(5)
    assert caught.value.reject_reason == reason


@pytest.mark.parametrize("status", ["FAILED", "BROKEN", "NOT_ACCEPTABLE"])
async def test_failed(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float], status: str
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json=batch(status))
    with pytest.raises(BatchFailedError, match=status):
        await client.batches.wait(5)


async def test_ready_but_still_active_keeps_polling(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json={**batch("READY_FOR_DOWNLOAD"), "active": True})
    httpx_mock.add_response(url=DETAIL, json=batch("READY_FOR_DOWNLOAD"))
    await client.batches.wait(5)
    assert sleeps == [1.0]


async def test_unknown_status_asks_the_counts(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json=batch("PENDING_ISSUE"))
    httpx_mock.add_response(url=INFO, json=counts(active=1))
    httpx_mock.add_response(url=DETAIL, json=batch("READY_FOR_DOWNLOAD"))
    ready = await client.batches.wait(5)
    assert ready.status == "READY_FOR_DOWNLOAD" and sleeps == [1.0]
    assert len(httpx_mock.get_requests(url=INFO)) == 1


async def test_unknown_status_that_only_failed_is_a_failure(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json=batch("ISSUE_ERROR"))
    httpx_mock.add_response(url=INFO, json=counts(failed=1))
    with pytest.raises(BatchFailedError):
        await client.batches.wait(5)


@pytest.mark.parametrize(
    ("outcome", "error", "status"),
    [
        ("failed", BatchFailedError, "FAILED"),
        ("not_acceptable", BatchFailedError, "NOT_ACCEPTABLE"),
        ("rejected", BatchRejectedError, "REJECTED"),
    ],
)
async def test_every_failure_the_real_service_reports_ends_the_wait(
    sectigo_emulator: Emulator, outcome: str, error: type[Exception], status: str
) -> None:
    sectigo_emulator.set_next_outcome(outcome, reason="CA policy says no")
    async with sectigo_emulator.client(sleep=_no_sleep) as client:
        batch = await client.batches.create(
            1, common_name="no.example.com", pkcs12_password="wait-test-pass-1"
        )
        with pytest.raises(error) as caught:
            await client.batches.wait(batch.batch_id, timeout=60)
        assert caught.value.batch.batch_id == batch.batch_id  # type: ignore[attr-defined]
        assert await client.batches.status(batch.batch_id) == status
    assert sectigo_emulator.licenses_used == 0


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("Ready for download", "READY_FOR_DOWNLOAD"),
        ("Failed", "FAILED"),
        ("Not Acceptable. Status: Error", "NOT_ACCEPTABLE"),
        (" not acceptable. Status: key too weak ", "NOT_ACCEPTABLE"),
        ("Processing", "PROCESSING"),
    ],
)
def test_text_statuses_of_the_real_service_normalize_to_constants(
    text: str, normalized: str
) -> None:
    assert BatchStatus.normalize(text) == normalized


async def _no_sleep(_: float) -> None:
    return None
