"""What observers and logs carry: no secret in any hook event, span, metric point or log
line at any level; the retry's INFO line; the operation, batch id and record key on
every record of the package."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sectigo_iot import Hooks, SectigoError
from sectigo_iot._hooks import step_span
from sectigo_iot.certs import open_batch_zip
from sectigo_iot.cli._logs import JSONFormatter
from sectigo_iot.emulator import Emulator
from tests.sdk.helpers import no_sleep
from tests.sdk.test_canary import P12, PASSWORD, every_flow
from tests.support import BASE

DETAIL = f"{BASE}/api/v1/batches/5"


def _leaking_hook(secret: str) -> Any:
    def hook(event: Any) -> None:
        raise RuntimeError(f"hook saw {event!r} and says {secret}")

    return hook


@pytest.mark.sectigo_emulator(users={"canary-user": PASSWORD})
async def test_no_secret_in_any_event_span_metric_or_log_line(
    sectigo_emulator: Emulator, tmp_path: Path, csr_pem: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(1)  # every level
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    events: list[Any] = []
    hooks = Hooks(
        on_request=events.append,
        on_response=events.append,
        on_retry=events.append,
        on_token_refresh=events.append,
    )
    sectigo_emulator.inject("GET", "/api/v1/devices", "error", status=503)  # a retry
    async with sectigo_emulator.client(
        sleep=no_sleep,
        hooks=hooks,
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    ) as client:
        with step_span(client, "fleet.submit", key="canary-record"):
            await every_flow(client, sectigo_emulator, tmp_path, csr_pem)
        tokens = client.tokens
        assert tokens is not None
        archive = next(tmp_path.glob("*.zip"))
        [bundle] = open_batch_zip(archive, P12)
        key_line = bundle.private_key_pem().decode().splitlines()[2]  # a line of the key
        secrets = [PASSWORD, P12, tokens.access_token, tokens.refresh_token, key_line]
    # hooks that raise with the password in their message: logged, redacted
    leaking = _leaking_hook(PASSWORD)
    async with sectigo_emulator.client(
        hooks=Hooks(on_response=leaking, on_token_refresh=leaking)
    ) as leaky:
        await leaky.licenses.used()
    async with sectigo_emulator.client(password="wrong-" + PASSWORD, hooks=hooks) as bad:
        with pytest.raises(SectigoError):
            await bad.licenses.used()
        secrets.append("wrong-" + PASSWORD)

    texts = [repr(e) for e in events]
    assert {type(e).__name__ for e in events} == {
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "TokenRefreshEvent",
    }
    spans = exporter.get_finished_spans()
    assert len(spans) > 40
    for span in spans:
        texts += [span.name, repr(dict(span.attributes or {})), repr(span.status.description)]
        texts += [repr(dict(e.attributes or {})) for e in span.events]
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                texts += [repr(dict(p.attributes)) for p in metric.data.data_points]
    records = [r for r in caplog.records if r.name.startswith("sectigo_iot")]
    assert {r.levelno for r in records} >= {logging.DEBUG, logging.INFO, logging.WARNING}
    assert any("hook on_response raised RuntimeError" in r.getMessage() for r in records)
    texts += [r.getMessage() for r in records]
    texts += [JSONFormatter().format(r) for r in records]
    texts += [
        repr({k: getattr(r, k, None) for k in ("operation", "batch_id", "key")}) for r in records
    ]
    for secret in secrets:
        leaks = [t for t in texts if secret in t]
        assert leaks == [], f"secret leaked: {leaks[:2]}"


async def test_a_retry_logs_one_info_line(
    make_client: Any,
    httpx_mock: Any,
    login: Any,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sectigo_iot")
    login()
    httpx_mock.add_response(url=DETAIL, status_code=503)
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5})
    async with make_client(max_retries=2) as client:
        await client.batches.get(5)
    lines = [r for r in caplog.records if r.levelno == logging.INFO]
    [retry] = lines
    assert retry.name == "sectigo_iot.http"
    assert retry.getMessage() == (
        f"batches.get: GET /api/v1/batches/5 attempt 1 of 3 failed (http_503); "
        f"retrying in {sleeps[0]:.2f} s"
    )
    assert (retry.operation, retry.batch_id) == ("batches.get", 5)  # type: ignore[attr-defined]
    assert not hasattr(retry, "key")


async def test_records_carry_the_operation_batch_id_and_key_when_known(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sectigo_iot")
    emulator = Emulator()
    async with emulator.client(sleep=no_sleep) as client:
        await client.authorities.list()
        with step_span(client, "fleet.submit", key="member-3"):
            batch = await client.batches.create(
                1, common_name="fields.example.com", pkcs12_password=P12
            )
            await client.batches.wait(batch.batch_id, timeout=30)
    logging.getLogger("sectigo_iot.http").debug("outside any operation")
    records = [r for r in caplog.records if r.name.startswith("sectigo_iot.")]
    fields = [
        (
            r.getMessage().split(" ->")[0],
            getattr(r, "operation", None),
            getattr(r, "batch_id", None),
            getattr(r, "key", None),
        )
        for r in records
    ]
    assert ("GET /api/v1/authorities/allowed", "authorities.list", None, None) in fields
    assert (
        "PUT /api/v1/batches/createSingleCertBatch",
        "batches.create",
        None,
        "member-3",
    ) in fields
    assert (
        f"GET /api/v1/batches/{batch.batch_id}",
        "batches.get",
        batch.batch_id,
        "member-3",
    ) in fields
    outside = records[-1]
    assert outside.getMessage() == "outside any operation"
    assert not any(hasattr(outside, name) for name in ("operation", "batch_id", "key"))


def test_a_value_given_in_extra_is_kept() -> None:
    from sectigo_iot._hooks import operation_scope
    from sectigo_iot._logging import get_logger

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = get_logger("sectigo_iot.test_fields")
    handler = Keep()
    logger.addHandler(handler)
    try:
        with operation_scope(None, "fleet.deliver", key="from-operation", batch_id=9):
            logger.warning("delivered", extra={"key": "from-extra"})
    finally:
        logger.removeHandler(handler)
    [record] = seen
    assert (record.operation, record.batch_id, record.key) == (  # type: ignore[attr-defined]
        "fleet.deliver",
        9,
        "from-extra",
    )


def test_json_lines_hold_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("sectigo_iot.http", logging.INFO, __file__, 1, "a %s", ("b",), None)
    record.operation, record.batch_id = "batches.get", 12
    line = json.loads(JSONFormatter().format(record))
    assert line.keys() == {"time", "level", "logger", "message", "operation", "batch_id"}
    assert (line["message"], line["operation"], line["batch_id"]) == ("a b", "batches.get", 12)
    assert line["time"].endswith("Z")
