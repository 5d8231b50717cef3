"""OpenTelemetry: a span per operation, a child span per physical send with the stable
HTTP client attributes, the request-duration histogram; nothing imported or paid
without a provider."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sectigo_iot import InvalidInputError, NotFoundError, SectigoClient
from sectigo_iot._hooks import step_span
from sectigo_iot.certs import open_batch_zip
from sectigo_iot.emulator import Emulator
from sectigo_iot.resources import (
    Authorities,
    Batches,
    Certificates,
    Licenses,
    Organizations,
    Profiles,
)
from tests.sdk.helpers import no_sleep
from tests.sdk.test_sync import sync_client
from tests.support import BASE, Clock, token_pair

P12 = "otel-P12-pw-8c2d4e"
DETAIL = f"{BASE}/api/v1/batches/5"
NAMESPACES = {
    "authorities": Authorities,
    "profiles": Profiles,
    "licenses": Licenses,
    "organizations": Organizations,
    "batches": Batches,
    "certificates": Certificates,
}


class Traces:
    """A tracer provider whose finished spans are kept in memory, and a meter provider
    read in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    @property
    def providers(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The spans directly under ``parent``, in the order they started."""
        parent_id = parent.context.span_id
        found = [s for s in self.spans() if s.parent is not None and s.parent.span_id == parent_id]
        return sorted(found, key=lambda s: s.start_time or 0)

    def sends(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The physical sends directly under ``parent``."""
        return [s for s in self.children(parent) if s.kind == SpanKind.CLIENT]

    def durations(self) -> list[Any]:
        data = self.reader.get_metrics_data()
        points = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "http.client.request.duration":
                        assert metric.unit == "s"
                        points += list(metric.data.data_points)
        return points


@pytest.fixture
def traces() -> Iterator[Traces]:
    found = Traces()
    yield found
    found.tracer_provider.shutdown()
    found.meter_provider.shutdown()


def public_operations() -> set[str]:
    """``namespace.method`` for every public async method of every namespace."""
    return {
        f"{namespace}.{name}"
        for namespace, cls in NAMESPACES.items()
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


async def every_operation(client: SectigoClient, emulator: Emulator, tmp: Path, csr: bytes) -> None:
    """Call each public operation once (and a refresh)."""
    [authority] = await client.authorities.list()
    await client.authorities.balance(authority.id)
    await client.profiles.list()
    await client.profiles.get(authority.profile_id)
    await client.profiles.parameters(authority.profile_id)
    await client.licenses.used()
    await client.organizations.current()
    batch = await client.batches.create(
        authority.id, common_name="ops.example.com", pkcs12_password=P12, name="ops-batch"
    )
    await client.batches.status(batch.batch_id)
    await client.batches.processing_info(batch.batch_id)
    await client.batches.check(batch.batch_id)
    await client.batches.wait(batch.batch_id, timeout=30)
    await client.batches.list()
    await client.batches.find_by_name("ops-batch")
    archive = await client.batches.download(batch.batch_id, tmp)
    [bundle] = open_batch_zip(archive, P12)
    await client.batches.upload_csrs(authority.profile_id, csr)
    await client.certificates.find(common_name="ops.example.com")
    await client.certificates.check_revocation(bundle.certificate, emulator.ca_certificate)
    await client.certificates.revoke(authority.profile_id, bundle.serial_number, "superseded")
    await client.certificates.is_revoked(bundle.serial_number)
    await client.certificates.revoke_all("ops.example.com", "superseded", dry_run=True)
    emulator.clock.advance(601)  # the access token expires: a refresh
    await client.batches.get(batch.batch_id)


async def test_a_span_for_every_public_operation_with_its_attributes(
    traces: Traces, tmp_path: Path, csr_pem: bytes
) -> None:
    emulator = Emulator()
    async with emulator.client(sleep=no_sleep, **traces.providers) as client:
        await every_operation(client, emulator, tmp_path, csr_pem)
    operations = {
        s.name.removeprefix("sectigo ") for s in traces.spans() if s.name[:8] == "sectigo "
    }
    assert public_operations() <= operations
    assert {"auth.login", "auth.refresh"} <= operations
    [create] = traces.named("sectigo batches.create")
    assert create.kind == SpanKind.INTERNAL
    attributes = dict(create.attributes or {})
    assert attributes["sectigo.operation"] == "batches.create"
    assert attributes["sectigo.idempotent"] is False
    assert attributes["sectigo.authority.id"] == 1
    assert isinstance(attributes["sectigo.batch.id"], int)  # learnt from the reply
    [upload] = traces.named("sectigo batches.upload_csrs")
    assert dict(upload.attributes or {})["sectigo.idempotent"] is False
    [login] = traces.named("sectigo auth.login")
    assert (
        login.parent is not None
        and login.parent.span_id == traces.named("sectigo authorities.list")[0].context.span_id
    )  # the first call needed the login: its child
    [refresh] = traces.named("sectigo auth.refresh")
    [last_get] = [s for s in traces.named("sectigo batches.get") if s.parent is None][-1:]
    assert refresh.parent is not None and refresh.parent.span_id == last_get.context.span_id


async def test_each_send_is_a_client_span_with_the_http_attributes(traces: Traces) -> None:
    emulator = Emulator()
    async with emulator.client(sleep=no_sleep, **traces.providers) as client:
        batch = await client.batches.create(1, common_name="a.example.com", pkcs12_password=P12)
        await client.batches.get(batch.batch_id)
    [operation] = traces.named("sectigo batches.get")
    [send] = traces.sends(operation)
    assert send.name == "GET /api/v1/batches/{id}"
    assert send.kind == SpanKind.CLIENT
    assert dict(send.attributes or {}) == {
        "http.request.method": "GET",
        "server.address": "emulator.local",
        "server.port": 80,
        "url.scheme": "http",
        "url.full": f"http://emulator.local/api/v1/batches/{batch.batch_id}",
        "url.template": "/api/v1/batches/{id}",
        "http.response.status_code": 200,
        "sectigo.operation": "batches.get",
        "sectigo.idempotent": True,
        "sectigo.batch.id": batch.batch_id,
    }
    assert "http.request.resend_count" not in (send.attributes or {})
    assert dict(operation.attributes or {}) == {
        "sectigo.operation": "batches.get",
        "sectigo.idempotent": True,
        "sectigo.batch.id": batch.batch_id,
    }
    points = traces.durations()
    sends = [s for s in traces.spans() if s.kind == SpanKind.CLIENT]
    assert sum(p.count for p in points) == len(sends) == 3  # login, create, get
    [get_point] = [p for p in points if p.attributes["url.template"] == "/api/v1/batches/{id}"]
    assert dict(get_point.attributes) == {
        "http.request.method": "GET",
        "server.address": "emulator.local",
        "server.port": 80,
        "url.scheme": "http",
        "url.template": "/api/v1/batches/{id}",
        "http.response.status_code": 200,
        "sectigo.operation": "batches.get",
        "sectigo.idempotent": True,
    }


async def test_a_get_retried_twice_has_attempts_with_resend_count_1_and_2(
    make_client: Any, httpx_mock: Any, login: Any, traces: Traces
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=503)
    httpx_mock.add_response(url=DETAIL, status_code=503)
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5})
    async with make_client(max_retries=2, **traces.providers) as client:
        await client.batches.get(5)
    [operation] = traces.named("sectigo batches.get")
    sends = traces.sends(operation)
    assert [s.name for s in sends] == ["GET /api/v1/batches/{id}"] * 3
    resends = [(s.attributes or {}).get("http.request.resend_count") for s in sends]
    assert resends == [None, 1, 2]
    assert [(s.attributes or {}).get("error.type") for s in sends] == ["503", "503", None]
    assert [s.status.status_code for s in sends] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert [e.name for e in operation.events] == ["sectigo.retry", "sectigo.retry"]
    assert [dict(e.attributes or {})["sectigo.cause"] for e in operation.events] == [
        "http_503",
        "http_503",
    ]
    assert operation.status.status_code == StatusCode.UNSET


async def test_the_resend_after_a_401_has_resend_count_and_the_refresh_inside(
    make_client: Any, httpx_mock: Any, login: Any, clock: Clock, traces: Traces
) -> None:
    login()
    httpx_mock.add_response(url=DETAIL, status_code=401)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/refresh", json=token_pair(clock.now))
    httpx_mock.add_response(url=DETAIL, json={"batchId": 5})
    async with make_client(**traces.providers) as client:
        await client.batches.get(5)
    [operation] = traces.named("sectigo batches.get")
    children = traces.children(operation)
    assert [c.name for c in children] == [
        "sectigo auth.login",  # the first call needed a login: inside it
        "GET /api/v1/batches/{id}",
        "sectigo auth.refresh",
        "GET /api/v1/batches/{id}",
    ]
    assert [(c.attributes or {}).get("http.request.resend_count") for c in children] == [
        None,
        None,
        None,
        1,
    ]
    [refresh_send] = traces.children(children[2])
    assert refresh_send.name == "POST /auth/refresh"


async def test_an_ambiguous_create_shows_one_attempt_and_the_reconcile_under_it(
    traces: Traces,
) -> None:
    emulator = Emulator()
    emulator.inject("PUT", "/api/v1/batches/createSingleCertBatch", "drop_after")
    async with emulator.client(sleep=no_sleep, **traces.providers) as client:
        await client.authorities.list()
        batch = await client.batches.create(1, common_name="amb.example.com", pkcs12_password=P12)
    [create] = traces.named("sectigo batches.create")
    sends = traces.sends(create)
    assert sends[0].name == "PUT /api/v1/batches/createSingleCertBatch"
    assert [s.name for s in sends].count("PUT /api/v1/batches/createSingleCertBatch") == 1
    assert {s.name for s in sends[1:]} == {"GET /api/v1/batches"}
    assert dict(sends[0].attributes or {})["error.type"] == "APIConnectionError"
    assert "http.response.status_code" not in (sends[0].attributes or {})
    assert all(dict(s.attributes or {})["sectigo.idempotent"] is False for s in sends)
    assert dict(create.attributes or {})["sectigo.batch.id"] == batch.batch_id
    assert create.status.status_code == StatusCode.UNSET  # reconciled: it succeeded


async def test_a_failed_operation_has_its_error_type(traces: Traces) -> None:
    emulator = Emulator()
    async with emulator.client(**traces.providers) as client:
        with pytest.raises(NotFoundError):
            await client.batches.get(424242)
    [operation] = traces.named("sectigo batches.get")
    assert operation.status.status_code == StatusCode.ERROR
    assert dict(operation.attributes or {})["error.type"] == "sectigo_iot.errors.NotFoundError"
    [send] = traces.sends(operation)
    assert dict(send.attributes or {})["error.type"] == "404"


async def test_a_fleet_step_is_a_span_with_the_key_its_operations_inherit(traces: Traces) -> None:
    emulator = Emulator()
    async with emulator.client(**traces.providers) as client:
        with step_span(client, "fleet.submit", key="member-7", state_from="WANTED") as step:
            await client.batches.create(1, common_name="k.example.com", pkcs12_password=P12)
            step.attributes["state_to"] = "SUBMITTED"
    [submit] = traces.named("sectigo fleet.submit")
    assert dict(submit.attributes or {}) == {
        "sectigo.operation": "fleet.submit",
        "sectigo.idempotent": True,
        "sectigo.record.key": "member-7",
        "sectigo.state_from": "WANTED",
        "sectigo.state_to": "SUBMITTED",
    }
    [create] = traces.named("sectigo batches.create")
    assert create.parent is not None and create.parent.span_id == submit.context.span_id
    assert dict(create.attributes or {})["sectigo.record.key"] == "member-7"


async def test_the_global_provider_is_used_when_one_is_set(
    traces: Traces, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace

    monkeypatch.setattr(trace, "get_tracer_provider", lambda: traces.tracer_provider)
    async with Emulator().client() as client:
        await client.licenses.used()
    assert [s.name for s in traces.spans()][-1] == "sectigo licenses.used"


async def test_no_provider_set_means_no_observer() -> None:
    import opentelemetry.trace  # noqa: F401  (imported, but no provider set)

    async with Emulator().client() as client:
        assert not client._session.observers
        await client.licenses.used()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_spans_nest_on_each_backend(backend: str) -> None:
    traces = Traces()

    async def scenario() -> None:
        emulator = Emulator()
        async with emulator.client(sleep=no_sleep, **traces.providers) as client:
            batch = await client.batches.create(1, common_name="b.example.com", pkcs12_password=P12)
            await client.batches.wait(batch.batch_id, timeout=30)

    anyio.run(scenario, backend=backend)
    [wait] = traces.named("sectigo batches.wait")
    gets = traces.named("sectigo batches.get")
    assert gets and all(
        g.parent is not None and g.parent.span_id == wait.context.span_id for g in gets
    )
    assert all(traces.sends(g)[0].name == "GET /api/v1/batches/{id}" for g in gets)


_NOTHING_IMPORTED = """
import json, sys, anyio
{preamble}
from sectigo_iot.emulator import Emulator

async def main():
    emulator = Emulator()
    async with emulator.client() as client:
        batch = await client.batches.create(
            1, common_name="x.example.com", pkcs12_password="p12-pass-123"
        )
        await client.batches.wait(batch.batch_id, timeout=30)
        await client.certificates.find(common_name="x.example.com")
        observers = list(client._session.observers)
    return observers

observers = anyio.run(main)
print(json.dumps({{
    "observers": len(observers),
    "modules": sorted(
        m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "prometheus_client")
    ),
}}))
"""


@pytest.mark.parametrize(
    ("preamble", "allowed"),
    [
        ("", set()),
        # the API imported, no provider set: nothing more is imported, no observer made
        ("import opentelemetry.trace, opentelemetry.metrics", None),
    ],
)
def test_without_a_provider_nothing_is_imported_or_observed(
    preamble: str, allowed: set[str] | None
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _NOTHING_IMPORTED.format(preamble=preamble)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["observers"] == 0
    if allowed is not None:
        assert found["modules"] == []
    else:
        assert not [
            m for m in found["modules"] if m.startswith(("opentelemetry.sdk", "prometheus"))
        ]
        assert "opentelemetry.trace" in found["modules"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"tracer_provider": "console"}, "tracer_provider must be an OpenTelemetry tracer"),
        ({"meter_provider": object()}, "meter_provider must be an OpenTelemetry meter"),
    ],
)
def test_a_provider_that_is_none_is_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        SectigoClient("user", "password", **arguments)


def test_without_opentelemetry_a_provider_says_which_extra(
    traces: Traces, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails, as uninstalled
    with pytest.raises(InvalidInputError, match=r"pip install 'sectigo-iot\[otel\]'"):
        SectigoClient("user", "password", tracer_provider=traces.tracer_provider)


def test_the_blocking_client_makes_the_same_spans(traces: Traces) -> None:
    emulator = Emulator()
    with sync_client(emulator, **traces.providers) as client:
        client.licenses.used()
    [used] = traces.named("sectigo licenses.used")
    assert [c.name for c in traces.children(used)] == ["sectigo auth.login", "GET /api/v1/devices"]


async def test_fleet_steps_are_spans_with_the_key_and_state_change(
    traces: Traces, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sectigo_iot.fleet import Delivery, Fleet, SQLiteStore
    from sectigo_iot.lifecycle import CertificateSpec

    class Sink:
        name = "memory"

        async def deliver(self, delivery: Delivery) -> None:
            logging.getLogger("sectigo_iot.fleet").info("test sink got %s", delivery.key)

    caplog.set_level(logging.INFO, logger="sectigo_iot")
    emulator = Emulator()
    async with emulator.client(sleep=no_sleep, **traces.providers) as client:
        store = SQLiteStore(tmp_path / "fleet.sqlite3")
        async with Fleet(client, store, sinks=[Sink()]) as fleet:  # type: ignore[list-item]
            await fleet.want(
                "member-9", CertificateSpec(authority_id=1, common_name="m9.example.com")
            )
            await fleet.run_once()
    steps = [s for s in traces.spans() if s.name.startswith("sectigo fleet.")]
    names = [s.name for s in sorted(steps, key=lambda s: s.start_time or 0)]
    assert {"sectigo fleet.submit", "sectigo fleet.deliver"} <= set(names)
    for step in steps:
        attributes = dict(step.attributes or {})
        assert attributes["sectigo.record.key"] == "member-9"
        assert {"sectigo.state_from", "sectigo.state_to"} <= attributes.keys()
    [submit] = traces.named("sectigo fleet.submit")
    assert dict(submit.attributes or {})["sectigo.state_from"] == "SUBMITTING"
    [create] = traces.named("sectigo batches.create")
    assert create.parent is not None and create.parent.span_id == submit.context.span_id
    assert dict(create.attributes or {})["sectigo.record.key"] == "member-9"
    [deliver] = traces.named("sectigo fleet.deliver")
    assert dict(deliver.attributes or {})["sectigo.state_to"] == "VALID"
    [got] = [r for r in caplog.records if r.getMessage() == "test sink got member-9"]
    assert (got.operation, got.key) == ("fleet.deliver", "member-9")  # type: ignore[attr-defined]


async def test_folder_steps_are_spans_with_the_folder_as_key(
    traces: Traces, tmp_path: Path
) -> None:
    from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate

    emulator = Emulator()
    folder = tmp_path / "api.example.com"
    async with emulator.client(sleep=no_sleep, **traces.providers) as client:
        spec = CertificateSpec(authority_id=1, common_name="api.example.com")
        await ensure_certificate(client, spec, folder)
    names = [s.name for s in traces.spans() if s.name.startswith("sectigo lifecycle.")]
    assert sorted(names) == [
        "sectigo lifecycle.deliver",
        "sectigo lifecycle.download",
        "sectigo lifecycle.submit",
    ]
    for name in names:
        [step] = traces.named(name)
        assert dict(step.attributes or {})["sectigo.record.key"] == str(folder)
    [submit] = traces.named("sectigo lifecycle.submit")
    [create] = traces.named("sectigo batches.create")
    assert create.parent is not None and create.parent.span_id == submit.context.span_id
    [download] = traces.named("sectigo lifecycle.download")
    assert traces.named("sectigo batches.download")[0].parent.span_id == download.context.span_id  # type: ignore[union-attr]
