"""Hooks: one typed, redacted event per physical send, retry and token refresh, named
after the innermost operation; a hook that raises or hangs never breaks the call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import httpx
import pytest

from sectigo_iot import (
    Hooks,
    InvalidInputError,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    SectigoClient,
    ServerError,
    TokenRefreshEvent,
)
from sectigo_iot._hooks import Observer, Operation, redact_url, url_template
from sectigo_iot.emulator import Emulator
from tests.sdk.helpers import no_sleep
from tests.sdk.test_sync import sync_client
from tests.support import BASE, Clock, token_pair

DETAIL = f"{BASE}/api/v1/batches/5"
P12 = "hook-P12-pw-5e1f0c"


class Recorder:
    """Every hook's events, in order, as (hook name, event)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def hooks(self, **options: Any) -> Hooks:
        def keep(name: str) -> Callable[[Any], None]:
            return lambda event: self.seen.append((name, event))

        return Hooks(
            on_request=keep("request"),
            on_response=keep("response"),
            on_retry=keep("retry"),
            on_token_refresh=keep("token"),
            **options,
        )

    def of(self, name: str, operation: str | None = None) -> list[Any]:
        return [e for n, e in self.seen if n == name and operation in (None, e.operation)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def test_a_get_retried_twice(
    make_client: Any, httpx_mock: Any, login: Any, sleeps: list[float], recorder: Recorder
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=503)
    httpx_mock.add_response(url=DETAIL, status_code=502)
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5, "status": "PROCESSING"})
    async with make_client(max_retries=2, hooks=recorder.hooks()) as client:
        await client.batches.get(5)
    assert [(n, e.operation) for n, e in recorder.seen[:3]] == [
        ("request", "auth.login"),
        ("response", "auth.login"),
        ("token", "auth.login"),
    ]
    requests = recorder.of("request", "batches.get")
    assert [(e.attempt, e.max_attempts, e.resend_count) for e in requests] == [
        (1, 3, 0),
        (2, 3, 1),
        (3, 3, 2),
    ]
    first = requests[0]
    assert first == RequestEvent(
        operation="batches.get",
        method="GET",
        url=DETAIL,
        url_template="/api/v1/batches/{id}",
        attempt=1,
        max_attempts=3,
        resend_count=0,
        batch_id=5,
    )
    responses = recorder.of("response", "batches.get")
    assert [(e.status_code, e.error_type, e.outcome) for e in responses] == [
        (503, "503", "http_5xx"),
        (502, "502", "http_5xx"),
        (200, None, "ok"),
    ]
    assert all(e.duration >= 0 for e in responses)
    retries = recorder.of("retry")
    assert [(e.attempt, e.cause, e.status_code) for e in retries] == [
        (1, "http_503", 503),
        (2, "http_502", 502),
    ]
    assert [e.delay for e in retries] == sleeps  # the pause the client really took
    order = [n for n, e in recorder.seen if e.operation == "batches.get"]
    assert order == ["request", "response", "retry"] * 2 + ["request", "response"]


async def test_the_resend_after_a_401_counts_in_attempt_not_in_max_attempts(
    make_client: Any, httpx_mock: Any, login: Any, clock: Clock, recorder: Recorder
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=401)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/refresh", json=token_pair(clock.now))
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5})
    async with make_client(hooks=recorder.hooks()) as client:  # max_retries=0
        await client.batches.get(5)
    gets = [(e.attempt, e.max_attempts, e.resend_count) for e in recorder.of("request")][1:]
    assert [(n, e.operation) for n, e in recorder.seen][3:] == [
        ("request", "batches.get"),
        ("response", "batches.get"),
        ("request", "auth.refresh"),
        ("response", "auth.refresh"),
        ("token", "auth.refresh"),
        ("request", "batches.get"),
        ("response", "batches.get"),
    ]
    assert gets == [(1, 1, 0), (1, 1, 0), (2, 1, 1)]  # the get, the refresh, the resend
    tokens = recorder.of("token")
    assert tokens == [
        TokenRefreshEvent(operation="auth.login", grant="password"),
        TokenRefreshEvent(operation="auth.refresh", grant="refresh_token"),
    ]
    assert recorder.of("retry") == []  # a resend after a 401 is not a retry
    refresh = recorder.of("request", "auth.refresh")[0]
    assert (refresh.attempt, refresh.max_attempts, refresh.url) == (1, 1, f"{BASE}/auth/refresh")


@pytest.mark.parametrize(
    ("exc", "error_type", "outcome"),
    [
        (httpx.ConnectError("refused"), "APIConnectionError", "connection_error"),
        (httpx.ConnectTimeout("slow"), "APITimeoutError", "timeout"),
    ],
)
async def test_a_send_that_failed_has_a_response_event_without_status(
    make_client: Any,
    httpx_mock: Any,
    login: Any,
    recorder: Recorder,
    exc: Exception,
    error_type: str,
    outcome: str,
) -> None:
    login()
    httpx_mock.add_exception(exc, url=DETAIL)
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5})
    async with make_client(max_retries=1, hooks=recorder.hooks()) as client:
        await client.batches.get(5)
    failed, ok = recorder.of("response", "batches.get")
    assert (failed.status_code, failed.error_type, failed.outcome) == (None, error_type, outcome)
    assert (ok.status_code, ok.attempt) == (200, 2)
    [retry] = recorder.of("retry")
    assert (retry.cause, retry.attempt, retry.status_code) == (outcome, 1, None)


async def test_a_4xx_is_answered_once_with_its_status_as_error_type(
    make_client: Any, httpx_mock: Any, login: Any, recorder: Recorder
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=404, json={"message": "no batch"})
    async with make_client(max_retries=2, hooks=recorder.hooks()) as client:
        with pytest.raises(Exception, match="no batch"):
            await client.batches.get(5)
    [response] = recorder.of("response", "batches.get")
    assert (response.status_code, response.error_type, response.outcome) == (404, "404", "http_4xx")


async def test_async_hooks_are_awaited(make_client: Any, httpx_mock: Any, login: Any) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5})
    seen: list[str] = []

    async def on_response(event: ResponseEvent) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event.operation)

    async with make_client(hooks=Hooks(on_response=on_response)) as client:
        await client.batches.get(5)
    assert seen == ["auth.login", "batches.get"]


def _raise(event: Any) -> None:
    raise RuntimeError(f"hook broke on {type(event).__name__}")


async def _raise_async(event: Any) -> None:
    raise ValueError("async hook broke")


@pytest.mark.parametrize("hook", [_raise, _raise_async])
async def test_a_hook_that_raises_is_logged_and_does_not_break_the_call(
    make_client: Any,
    httpx_mock: Any,
    login: Any,
    caplog: pytest.LogCaptureFixture,
    hook: Callable[[Any], Any],
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=503)
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5})
    hooks = Hooks(on_request=hook, on_response=hook, on_retry=hook, on_token_refresh=hook)
    async with make_client(max_retries=1, hooks=hooks) as client:
        batch = await client.batches.get(5)
    assert batch.batch_id == 5
    warnings = [r for r in caplog.records if r.name == "sectigo_iot.hooks"]
    assert all(r.levelno == logging.WARNING for r in warnings)
    # login: request, response, token; the get: request, response, retry, request, response
    assert len(warnings) == 8
    assert {r.getMessage().split(" raised")[0] for r in warnings} == {
        "hook on_request",
        "hook on_response",
        "hook on_retry",
        "hook on_token_refresh",
    }
    assert all(r.getMessage().endswith("(the call goes on)") for r in warnings)


async def test_an_async_hook_that_hangs_is_abandoned_after_its_timeout(
    make_client: Any, httpx_mock: Any, login: Any, caplog: pytest.LogCaptureFixture
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5})
    entered: list[str] = []

    async def hang(event: RequestEvent) -> None:
        entered.append(event.operation)
        await anyio.sleep_forever()

    async with make_client(hooks=Hooks(on_request=hang, timeout=0.01)) as client:
        with anyio.fail_after(30):  # a bound, not a measure: a hang would fail here
            assert (await client.batches.get(5)).batch_id == 5
    assert entered == ["auth.login", "batches.get"]
    abandoned = [r.getMessage() for r in caplog.records if "abandoned" in r.getMessage()]
    assert abandoned == ["hook on_request did not finish within 0.01 s: abandoned"] * 2


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        (lambda: Hooks(on_request="print"), "on_request"),
        (lambda: Hooks(on_retry=3), "on_retry"),
        (lambda: Hooks(timeout=0), "timeout"),
        (lambda: Hooks(timeout=True), "timeout"),
        (lambda: SectigoClient("u", "p", hooks=print), "hooks must be a sectigo_iot.Hooks"),
        (lambda: SectigoClient("u", "p", metrics=object()), "metrics must be"),
    ],
)
def test_wrong_hooks_are_refused_before_anything_is_sent(
    hooks: Callable[[], Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        hooks()


def test_events_are_frozen() -> None:
    event = RetryEvent(
        operation="batches.get",
        method="GET",
        url=DETAIL,
        url_template="/api/v1/batches/{id}",
        attempt=1,
        max_attempts=3,
        resend_count=0,
        cause="http_503",
        delay=0.5,
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.attempt = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/batches/12/status", "/api/v1/batches/{id}/status"),
        ("/api/v1/batches?page=0&size=1000", "/api/v1/batches"),
        ("/api/v1/authorities/7/balanceavailable", "/api/v1/authorities/{id}/balanceavailable"),
        ("/api/v1/batches/createSingleCertBatch", "/api/v1/batches/createSingleCertBatch"),
    ],
)
def test_url_templates(path: str, template: str) -> None:
    assert url_template(path) == template


def test_urls_lose_user_info_and_secret_query_values() -> None:
    url = "https://user:pa55word@iot.example:8443/x?page=2&access_token=abc&Password=p&size=5"
    assert redact_url(url) == (
        "https://iot.example:8443/x?page=2&access_token=REDACTED&Password=REDACTED&size=5"
    )


class Operations(Observer):
    """The operations started, with their parent's name and their ids."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str | None, int | None]] = []
        self.ended: list[tuple[str, str | None]] = []

    def operation_started(self, operation: Operation) -> None:
        parent = operation.parent.name if operation.parent else None
        self.started.append((operation.name, parent, operation.batch_id))

    def operation_ended(self, operation: Operation, error: BaseException | None) -> None:
        self.ended.append((operation.name, type(error).__name__ if error else None))


async def test_wait_polling_get_gives_events_of_the_innermost_operation(
    recorder: Recorder,
) -> None:
    operations = Operations()
    emulator = Emulator()
    async with emulator.client(
        sleep=no_sleep, hooks=recorder.hooks(), metrics=operations
    ) as client:
        batch = await client.batches.create(1, common_name="wait.example.com", pkcs12_password=P12)
        await client.batches.wait(batch.batch_id, timeout=30)
    batch_id = batch.batch_id
    assert operations.started[:3] == [
        ("batches.create", None, None),
        ("auth.login", "batches.create", None),  # the login the create needed, inside it
        ("batches.wait", None, batch_id),
    ]
    assert ("batches.get", "batches.wait", batch_id) in operations.started
    assert {name for name, _ in operations.ended} == {n for n, _, _ in operations.started}
    assert all(error is None for _, error in operations.ended)
    names = {e.operation for _, e in recorder.seen}
    assert names == {"auth.login", "batches.create", "batches.get"}  # wait itself sends nothing
    [created] = recorder.of("request", "batches.create")
    assert (created.authority_id, created.batch_id) == (1, None)
    assert all(e.batch_id == batch_id for e in recorder.of("request", "batches.get"))


async def test_an_ambiguous_create_shows_one_send_and_the_reconcile_under_it(
    recorder: Recorder,
) -> None:
    emulator = Emulator()
    emulator.inject("PUT", "/api/v1/batches/createSingleCertBatch", "drop_after")
    async with emulator.client(sleep=no_sleep, hooks=recorder.hooks()) as client:
        batch = await client.batches.create(1, common_name="amb.example.com", pkcs12_password=P12)
    sends = recorder.of("response", "batches.create")
    assert [(e.method, e.url_template) for e in sends[:1]] == [
        ("PUT", "/api/v1/batches/createSingleCertBatch")
    ]
    assert sends[0].error_type == "APIConnectionError" and sends[0].status_code is None
    assert {e.url_template for e in sends[1:]} == {"/api/v1/batches"}  # the search by name
    assert [e.method for e in sends].count("PUT") == 1
    assert batch.batch_id > 0


def test_the_blocking_client_calls_hooks_in_its_loop(recorder: Recorder) -> None:
    threads: list[threading.Thread] = []

    def on_response(event: ResponseEvent) -> None:
        threads.append(threading.current_thread())

    emulator = Emulator()
    hooks = Hooks(on_response=on_response, on_token_refresh=recorder.hooks().on_token_refresh)
    with sync_client(emulator, hooks=hooks) as client:
        client.authorities.list()
    assert len(threads) == 2 and threading.current_thread() not in threads
    assert recorder.of("token") == [TokenRefreshEvent(operation="auth.login", grant="password")]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_hooks_and_their_timeout_on_each_backend(backend: str, tmp_path: Path) -> None:
    async def scenario() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []

        async def slow(event: ResponseEvent) -> None:
            seen.append(("response", event.operation))
            await anyio.sleep_forever()

        emulator = Emulator()
        emulator.inject("GET", "/api/v1/authorities/allowed", "error", status=503)
        hooks = Hooks(
            on_response=slow,
            on_retry=lambda e: seen.append(("retry", e.cause)),
            timeout=0.01,
        )
        async with emulator.client(sleep=no_sleep, max_retries=1, hooks=hooks) as client:
            with anyio.fail_after(30):
                await client.authorities.list()
        return seen

    assert anyio.run(scenario, backend=backend) == [
        ("response", "auth.login"),
        ("response", "authorities.list"),
        ("retry", "http_503"),
        ("response", "authorities.list"),
    ]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_send_still_ends_with_a_response_event(backend: str) -> None:
    async def scenario() -> list[ResponseEvent]:
        ended: list[ResponseEvent] = []
        emulator = Emulator()
        async with emulator.client(hooks=Hooks(on_response=ended.append)) as client:
            await client.authorities.list()
            emulator.inject("GET", "/api/v1/authorities/allowed", "delay", seconds=30)
            with anyio.move_on_after(0.2):
                await client.authorities.list()
        return ended

    ended = anyio.run(scenario, backend=backend)
    last = ended[-1]
    assert (last.operation, last.status_code) == ("authorities.list", None)
    assert last.error_type in ("CancelledError", "Cancelled")


async def test_a_server_error_after_retries_is_raised_as_before(
    make_client: Any, httpx_mock: Any, login: Any, recorder: Recorder
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=503, is_reusable=True)
    async with make_client(max_retries=2, hooks=recorder.hooks()) as client:
        with pytest.raises(ServerError):
            await client.batches.get(5)
    assert len(recorder.of("response", "batches.get")) == 3
    assert [e.attempt for e in recorder.of("retry")] == [1, 2]
