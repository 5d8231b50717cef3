"""otel_noop_call_ratio and otel_sdk_call_ratio: what OpenTelemetry costs an SDK call.

Sequential ``authorities.list()`` / ``batches.get()`` against the bench server, by a
client made before ``opentelemetry`` is imported (the baseline) interleaved one by one
with:

* ``otel_noop_call_ratio``: a client made after ``opentelemetry.trace`` and
  ``opentelemetry.metrics`` were imported, no provider set (target: at most 1.05);
* ``otel_sdk_call_ratio``: a client given the OpenTelemetry SDK's tracer provider (a
  simple processor into an in-memory exporter) and meter provider (an in-memory reader):
  a span per operation and per send, and the duration histogram (reported).

When the bench process has imported ``opentelemetry`` already, the baseline is not a
clean one: the measurement then says so in the notes. Each round's ratio is of median
call times; the median round is reported.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from _measure_http import sdk_client
from _processes import ServerInfo
from _report import Scale, ratio

from sectigo_iot import SectigoClient

__all__ = ["measure_otel"]

Call = Callable[[int], Awaitable[object]]


async def measure_otel(info: ServerInfo, scale: Scale, notes: dict[str, str]) -> dict[str, float]:
    """Both ratios (see the module docstring)."""
    clean = not any(name.split(".")[0] == "opentelemetry" for name in sys.modules)
    async with sdk_client(info) as baseline:  # made before opentelemetry is imported
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401  (imported: no provider set)

        async with sdk_client(info) as noop:
            if noop._session.observers:
                raise RuntimeError("a client with no provider set has an observer")
            noop_ratio = await _interleaved(_calls(baseline, info), _calls(noop, info), scale)
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        traced = SectigoClient(
            info.username,
            info.password,
            base_url=info.url,
            token_store="memory",
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
        async with traced:
            sdk_ratio = await _interleaved(
                _calls(baseline, info), _calls(traced, info), scale, between=exporter.clear
            )
        spans = len(exporter.get_finished_spans())
        tracer_provider.shutdown()
        meter_provider.shutdown()
    notes["otel_noop_call_ratio"] = (
        "opentelemetry-api imported, no provider set, against a client made before"
        + ("" if clean else " (opentelemetry was imported before the baseline was made)")
    )
    notes["otel_sdk_call_ratio"] = (
        f"the OpenTelemetry SDK into an in-memory exporter and reader: {spans} spans a call"
    )
    return {"otel_noop_call_ratio": noop_ratio, "otel_sdk_call_ratio": sdk_ratio}


def _calls(client: SectigoClient, info: ServerInfo) -> Call:
    async def call(i: int) -> object:
        if i % 2:
            return await client.batches.get(info.batch_id)
        return await client.authorities.list()

    return call


async def _interleaved(
    baseline: Call, measured: Call, scale: Scale, between: Callable[[], None] | None = None
) -> float:
    """The median round's ratio of the measured side's median call time to the
    baseline's, the calls interleaved one by one (baseline first, then measured first,
    alternately) after a warm-up. Medians, not sums: a call the machine's load
    descheduled does not decide a round."""
    for i in range(min(20, scale.calls)):
        await baseline(i)
        await measured(i)
    ratios = []
    clock = time.perf_counter
    for _ in range(scale.rounds):
        base_times: list[float] = []
        measured_times: list[float] = []
        for i in range(scale.calls):
            if between is not None:
                between()
            first, second = (baseline, measured) if i % 4 in (0, 3) else (measured, baseline)
            start = clock()
            await first(i)
            middle = clock()
            await second(i)
            end = clock()
            (base_times if first is baseline else measured_times).append(middle - start)
            (measured_times if first is baseline else base_times).append(end - middle)
        ratios.append(ratio(statistics.median(measured_times), statistics.median(base_times)))
    return statistics.median(ratios)
