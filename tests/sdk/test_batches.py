"""``client.batches``: the requests the batch calls send (one per poll, no second
readiness check, lookups by name that stop early and never prove a batch absent from a
fixed number of pages), and ``batches.wait``'s ready, rejected, failed, COLLECTED and
timeout paths (injected sleep)."""

from __future__ import annotations

import stat
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sectigo_iot import (
    Batch,
    BatchFailedError,
    BatchRejectedError,
    BatchStatus,
    InvalidInputError,
    InvalidResponseError,
    SectigoClient,
    WaitProgress,
    WaitTimeoutError,
)
from sectigo_iot.emulator import Emulator
from sectigo_iot.resources.batches import FIND_PAGE_SIZE
from tests.sdk.helpers import no_sleep
from tests.support import BASE

P12 = "batch-requests-p12"
LIST = f"{BASE}/api/v1/batches"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(key_type="ec-p256", processing_delay=5, balance=10_000) as emulator:
        yield emulator


def api_requests(emulator: Emulator) -> int:
    """Requests to the API (logins and refreshes left out)."""
    return sum(n for key, n in emulator.stats.requests.items() if " /api/" in key)


def client_of(emulator: Emulator, **kwargs: Any) -> SectigoClient:
    async def advance(seconds: float) -> None:  # a pause moves the emulator's time
        emulator.clock.advance(seconds)

    return emulator.client(sleep=advance, **kwargs)


async def fill(emulator: Emulator, count: int, name: str = "someone else's") -> None:
    """``count`` batches made by another client of the account (they end FAILED: fast)."""
    emulator.set_next_outcome("failed", times=count)
    async with emulator.client() as other:
        for _ in range(count):
            await other.batches.create(
                1, common_name="busy.example.com", pkcs12_password=P12, name=name
            )


# -- wait and download ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_create_wait_download_takes_polls_plus_two_requests(
    emulator: Emulator, tmp_path: Path, backend: str
) -> None:
    polls: list[WaitProgress] = []

    async def issue() -> Path:
        async with client_of(emulator) as client:
            await client.authenticate()
            batch = await client.batches.create(1, common_name="a.example.com", pkcs12_password=P12)
            ready = await client.batches.wait(batch.batch_id, on_progress=polls.append)
            return await client.batches.download(ready.batch_id, tmp_path)

    archive = anyio.run(issue, backend=backend)
    batch_id = int(archive.stem)
    assert archive.stat().st_size > 0
    assert len(polls) >= 3  # 1 s, 1.5 s, 2.25 s... until the 5 s of processing are over
    assert api_requests(emulator) == len(polls) + 2
    assert emulator.stats.requests[f"GET /api/v1/batches/{batch_id}/processing_info"] == 0


async def test_download_of_a_batch_not_seen_ready_checks_it_first(
    emulator: Emulator, tmp_path: Path
) -> None:
    async with client_of(emulator) as client:
        batch = await client.batches.create(1, common_name="b.example.com", pkcs12_password=P12)
        emulator.clock.advance(10)
        async with client_of(emulator) as fresh:  # another process, say
            await fresh.batches.download(batch.batch_id, tmp_path)
    assert emulator.stats.requests[f"GET /api/v1/batches/{batch.batch_id}"] == 1


@pytest.mark.parametrize("dest", ["new/deeper", "new/deeper/mine.zip"])
async def test_download_creates_a_missing_folder_private(
    emulator: Emulator, tmp_path: Path, dest: str
) -> None:
    async with client_of(emulator) as client:
        batch = await client.batches.create(1, common_name="c.example.com", pkcs12_password=P12)
        await client.batches.wait(batch.batch_id)
        archive = await client.batches.download(batch.batch_id, tmp_path / dest)
    assert archive.is_file() and archive.parent == tmp_path / "new" / "deeper"
    for folder in (tmp_path / "new", tmp_path / "new" / "deeper"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


async def test_a_batch_not_ready_creates_no_folder(emulator: Emulator, tmp_path: Path) -> None:
    from sectigo_iot import BatchNotReadyError

    async with client_of(emulator) as client:
        batch = await client.batches.create(1, common_name="d.example.com", pkcs12_password=P12)
        with pytest.raises(BatchNotReadyError):
            await client.batches.download(batch.batch_id, tmp_path / "new")
    assert not (tmp_path / "new").exists()


# -- find_by_name and the reconcile of an ambiguous create ---------------------------


async def test_a_lost_create_reply_is_found_behind_1200_newer_batches(
    emulator: Emulator,
) -> None:
    """A busy account makes 1,200 batches between a create whose reply is lost and the
    lookup by name: the batch is found (no second license), with 2 list requests."""
    await fill(emulator, 20, name="older")
    emulator.clock.advance(60)

    class BusyAccount(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = emulator.transport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                return await self.inner.handle_async_request(request)
            finally:
                if request.method == "PUT":
                    await fill(emulator, 1200)

    emulator.inject("PUT", "/api/v1/batches/createSingleCertBatch", "drop_after")

    async def advance(seconds: float) -> None:
        emulator.clock.advance(seconds)

    user, password = next(iter(emulator.config.users.items()))
    busy = SectigoClient(
        user,
        password,
        base_url=emulator.base_url,
        transport=BusyAccount(),
        token_store="memory",
        clock=emulator.clock,
        sleep=advance,
        allow_insecure_http=True,
    )
    async with busy as client:
        batch = await client.batches.create(1, common_name="e.example.com", pkcs12_password=P12)
    names = [b.name for b in emulator.batches()]
    assert names.count(batch.batch_name) == 1
    assert emulator.licenses_used == 1
    assert emulator.stats.requests["GET /api/v1/batches"] == 2


async def test_the_newest_batch_is_found_with_one_request(emulator: Emulator) -> None:
    await fill(emulator, 30)
    emulator.inject("PUT", "/api/v1/batches/createSingleCertBatch", "drop_after")
    async with client_of(emulator) as client:
        batch = await client.batches.create(1, common_name="f.example.com", pkcs12_password=P12)
    assert batch.batch_name.startswith("sectigo-iot-")
    assert emulator.stats.requests["GET /api/v1/batches"] == 1


async def test_find_by_name_reads_past_the_first_500(emulator: Emulator) -> None:
    async with client_of(emulator) as client:
        made = await client.batches.create(
            1, common_name="g.example.com", pkcs12_password=P12, name="deep"
        )
        await fill(emulator, 1100)
        found = await client.batches.find_by_name("deep", created_after=made.creation_date)
        assert found is not None and found.batch_id == made.batch_id
        assert await client.batches.find_by_name("nowhere") is None
    # 2 pages to find it; proving "nowhere" absent reads to the end (2 more)
    assert emulator.stats.requests["GET /api/v1/batches"] == 4


def page(
    ages: list[float], *, name: str = "other", number: int = 0, **extra: Any
) -> dict[str, Any]:
    """A Spring page of batches created ``ages`` seconds after T0 (None: no date)."""
    content = [
        {
            "batchId": 1000 + i,
            "batchName": name,
            "creationDate": None
            if age is None
            else (T0 + timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        }
        for i, age in enumerate(ages)
    ]
    return {"content": content, "number": number, **extra}


def add_page(httpx_mock: Any, number: int, body: Any) -> None:
    url = httpx.URL(LIST, params={"page": number, "size": FIND_PAGE_SIZE})
    httpx_mock.add_response(url=url, json=body)


async def test_absence_is_proven_by_a_page_older_than_the_attempt(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    add_page(httpx_mock, 0, page([300, 200, 100], totalPages=9))
    add_page(httpx_mock, 1, page([50, -1], number=1, totalPages=9))  # one older: not proof
    add_page(httpx_mock, 2, page([-2, -3], number=2, totalPages=9))  # all older: proof
    after = T0
    assert await client.batches.find_by_name("mine", created_after=after) is None
    assert len(httpx_mock.get_requests()) == 4  # the login and 3 pages, not the 9


async def test_a_short_plain_page_is_not_the_end(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    """A server may cut the page size silently: only an empty page ends a plain list."""
    login()
    add_page(httpx_mock, 0, page([30, 20])["content"])
    add_page(httpx_mock, 1, page([10], name="mine")["content"])
    found = await client.batches.find_by_name("mine", created_after=T0)
    assert found is not None and found.batch_id == 1000


async def test_undated_batches_never_prove_absence(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    add_page(httpx_mock, 0, page([None, -5]))
    add_page(httpx_mock, 1, page([None], number=1))
    add_page(httpx_mock, 2, page([None], name="mine", number=2, last=True))
    found = await client.batches.find_by_name("mine", created_after=T0)
    assert found is not None


async def test_a_list_that_never_ends_is_an_error_not_absence(
    client: SectigoClient, httpx_mock: Any, login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sectigo_iot.resources import batches

    monkeypatch.setattr(batches, "FIND_MAX_PAGES", 3)
    login()
    for number in range(3):
        add_page(httpx_mock, number, page([10], number=number))
    with pytest.raises(InvalidResponseError, match="did not end"):
        await client.batches.find_by_name("mine", created_after=T0)


async def test_a_server_ignoring_the_page_number_is_caught(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    add_page(httpx_mock, 0, page([10]))
    add_page(httpx_mock, 1, page([10], number=0))
    with pytest.raises(InvalidResponseError, match="got page 0"):
        await client.batches.find_by_name("mine")


# -- batches.wait: every path, mocked ------------------------------------------------

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


#: ``client.batches.wait``
Wait = Callable[..., Awaitable[Batch]]


@pytest.fixture
def wait(client: SectigoClient, login: Any) -> Wait:
    """``client.batches.wait`` after a login: the test mocks the batch's replies."""
    login()
    return client.batches.wait


async def test_ready_after_processing_one_request_per_poll(
    httpx_mock: Any, wait: Wait, sleeps: list[float]
) -> None:
    for _ in range(3):
        httpx_mock.add_response(url=DETAIL, json={**batch("PROCESSING"), "active": True})
    httpx_mock.add_response(url=DETAIL, json=batch("READY_FOR_DOWNLOAD"))
    seen: list[WaitProgress] = []
    ready = await wait(5, on_progress=seen.append)
    assert ready.status == "READY_FOR_DOWNLOAD"
    assert sleeps == pytest.approx([1.0, 1.5, 2.25])
    assert [p.status for p in seen] == ["PROCESSING"] * 3 + ["READY_FOR_DOWNLOAD"]
    assert [(p.info.active, p.info.success) for p in seen] == [(1, 0)] * 3 + [(0, 1)]
    assert seen[-1].elapsed == pytest.approx(4.75)
    assert len(httpx_mock.get_requests(url=DETAIL)) == 4  # nothing but the detail
    assert not httpx_mock.get_requests(url=INFO) and not httpx_mock.get_requests(url=STATUS)


async def test_backoff_is_capped_at_twenty_seconds(
    httpx_mock: Any, wait: Wait, sleeps: list[float]
) -> None:
    httpx_mock.add_response(url=DETAIL, json=batch("PROCESSING"), is_reusable=True)
    with pytest.raises(WaitTimeoutError) as caught:
        await wait(5, timeout=200)
    assert max(sleeps) == 20.0
    assert sum(sleeps) == pytest.approx(200)
    assert caught.value.status == "PROCESSING" and caught.value.batch.batch_id == 5


async def test_collected_falls_back_to_the_text_status(
    httpx_mock: Any, wait: Wait, sleeps: list[float]
) -> None:
    text_status_poll(httpx_mock, "COLLECTED", "Ready for download")
    assert (await wait(5)).batch_id == 5
    assert len(httpx_mock.get_requests(url=STATUS)) == 1


async def test_empty_status_falls_back_too(
    httpx_mock: Any, wait: Wait, sleeps: list[float]
) -> None:
    text_status_poll(httpx_mock, "", "Processing")
    text_status_poll(httpx_mock, "", "Ready for download")
    await wait(5)
    assert sleeps == [1.0]


async def test_rejected(httpx_mock: Any, wait: Wait, sleeps: list[float]) -> None:
    reason = "Cert subject name error: SubjectAlternativeName dNSName value is missing"
    httpx_mock.add_response(url=DETAIL, json=batch("REJECTED", reason))
    with pytest.raises(BatchRejectedError, match="dNSName value is missing") as caught:
        await wait(5)
    assert caught.value.reject_reason == reason


@pytest.mark.parametrize("status", ["FAILED", "BROKEN", "NOT_ACCEPTABLE"])
async def test_failed(httpx_mock: Any, wait: Wait, sleeps: list[float], status: str) -> None:
    httpx_mock.add_response(url=DETAIL, json=batch(status))
    with pytest.raises(BatchFailedError, match=status):
        await wait(5)


async def test_ready_but_still_active_keeps_polling(
    httpx_mock: Any, wait: Wait, sleeps: list[float]
) -> None:
    httpx_mock.add_response(url=DETAIL, json={**batch("READY_FOR_DOWNLOAD"), "active": True})
    httpx_mock.add_response(url=DETAIL, json=batch("READY_FOR_DOWNLOAD"))
    await wait(5)
    assert sleeps == [1.0]


async def test_check_is_one_poll_without_waiting(
    client: SectigoClient, httpx_mock: Any, login: Any, sleeps: list[float]
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json={**batch("PROCESSING"), "active": True})
    assert await client.batches.check(5) is None
    httpx_mock.add_response(url=DETAIL, json=batch("COLLECTED"))
    httpx_mock.add_response(url=STATUS, text="Ready for download")
    ready = await client.batches.check(5)
    assert ready is not None and ready.batch_id == 5
    httpx_mock.add_response(url=DETAIL, json=batch("REJECTED", "no"))
    with pytest.raises(BatchRejectedError):
        await client.batches.check(5)
    assert sleeps == []  # never waits
    assert len(httpx_mock.get_requests(url=DETAIL)) == 3
    with pytest.raises(InvalidInputError):
        await client.batches.check(0)


async def test_unknown_status_asks_the_counts(
    httpx_mock: Any, wait: Wait, sleeps: list[float]
) -> None:
    httpx_mock.add_response(url=DETAIL, json=batch("PENDING_ISSUE"))
    httpx_mock.add_response(url=INFO, json=counts(active=1))
    httpx_mock.add_response(url=DETAIL, json=batch("READY_FOR_DOWNLOAD"))
    ready = await wait(5)
    assert ready.status == "READY_FOR_DOWNLOAD" and sleeps == [1.0]
    assert len(httpx_mock.get_requests(url=INFO)) == 1


async def test_unknown_status_that_only_failed_is_a_failure(
    httpx_mock: Any, wait: Wait, sleeps: list[float]
) -> None:
    httpx_mock.add_response(url=DETAIL, json=batch("ISSUE_ERROR"))
    httpx_mock.add_response(url=INFO, json=counts(failed=1))
    with pytest.raises(BatchFailedError):
        await wait(5)


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
    async with sectigo_emulator.client(sleep=no_sleep) as client:
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
