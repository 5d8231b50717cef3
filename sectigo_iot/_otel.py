"""OpenTelemetry spans and the request-duration histogram, an observer of the session
(see ``_hooks``); the ``[otel]`` extra (``opentelemetry-api``).

Each operation is a span ``sectigo <operation>`` (``sectigo batches.create``) with the
``sectigo.*`` attributes; each physical send a child span ``{METHOD} {url.template}``
(kind CLIENT) with the stable HTTP client attributes of the semantic conventions and
the same ``sectigo.*`` attributes; each send is recorded in the histogram
``http.client.request.duration`` (seconds). Nothing here imports OpenTelemetry until a
provider is given, or a real (not proxy) global one is set in a process that has
imported it already: otherwise a client has no such observer and pays nothing.
"""

from __future__ import annotations

import contextvars
import sys
from typing import Any
from urllib.parse import urlsplit

from ._hooks import (
    Observer,
    Operation,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    TokenRefreshEvent,
    current_operation,
)
from ._version import __version__
from .errors import InvalidInputError

__all__ = ["OtelObserver", "otel_observer"]

SCOPE = "sectigo_iot"
#: the semantic conventions' advice for ``http.client.request.duration``
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


def otel_observer(tracer_provider: Any, meter_provider: Any) -> OtelObserver | None:
    """The observer for these providers (either may be None: the global one is used
    when OpenTelemetry is imported and a real one is set), or None when there is
    neither: then nothing of OpenTelemetry is imported. InvalidInputError for a
    provider that is none, or without the ``[otel]`` extra."""
    for name, value, method in (
        ("tracer_provider", tracer_provider, "get_tracer"),
        ("meter_provider", meter_provider, "get_meter"),
    ):
        if value is not None and not callable(getattr(value, method, None)):
            raise InvalidInputError(
                f"{name} must be an OpenTelemetry {name.replace('_', ' ')} (with "
                f"{method}()), got {value!r}"
            )
    if tracer_provider is None:
        tracer_provider = _global_provider("opentelemetry.trace", "get_tracer_provider")
    if meter_provider is None:
        meter_provider = _global_provider("opentelemetry.metrics", "get_meter_provider")
    if tracer_provider is None and meter_provider is None:
        return None
    try:
        return OtelObserver(tracer_provider, meter_provider)
    except ImportError:
        raise InvalidInputError(
            "OpenTelemetry is not installed: pip install 'sectigo-iot[otel]'"
        ) from None


def _global_provider(module_name: str, getter: str) -> Any:
    """The global provider of an OpenTelemetry module already imported, unless it is
    the proxy (none set) or a no-op one."""
    module = sys.modules.get(module_name)
    if module is None:
        return None
    provider = getattr(module, getter)()
    kind = type(provider).__name__
    return None if "Proxy" in kind or "NoOp" in kind else provider


def _sectigo_attributes(operation: Operation | None) -> dict[str, Any]:
    if operation is None:
        return {}
    attributes: dict[str, Any] = {
        "sectigo.operation": operation.name,
        "sectigo.idempotent": operation.idempotent,
    }
    if operation.batch_id is not None:
        attributes["sectigo.batch.id"] = operation.batch_id
    if operation.authority_id is not None:
        attributes["sectigo.authority.id"] = operation.authority_id
    if operation.key is not None:
        attributes["sectigo.record.key"] = operation.key
    for name, value in operation.attributes.items():
        attributes[f"sectigo.{name}"] = value
    return attributes


class OtelObserver(Observer):
    """Spans for operations and sends, and the request-duration histogram."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from opentelemetry import context, trace

        self._context = context
        self._trace = trace
        self._tracer = (
            None if tracer_provider is None else tracer_provider.get_tracer(SCOPE, __version__)
        )
        self._duration = None
        if meter_provider is not None:
            meter = meter_provider.get_meter(SCOPE, __version__)
            self._duration = meter.create_histogram(
                "http.client.request.duration",
                unit="s",
                description="Duration of HTTP client requests.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
        #: the span and context token of each open operation, by id
        self._operations: dict[int, tuple[Any, Any]] = {}
        #: the span of the send in progress in this context
        self._send: contextvars.ContextVar[Any] = contextvars.ContextVar(
            "sectigo_iot_otel_send", default=None
        )

    def operation_started(self, operation: Operation) -> None:
        if self._tracer is None:
            return
        span = self._tracer.start_span(
            f"sectigo {operation.name}", attributes=_sectigo_attributes(operation)
        )
        token = self._context.attach(self._trace.set_span_in_context(span))
        self._operations[id(operation)] = (span, token)

    def operation_ended(self, operation: Operation, error: BaseException | None) -> None:
        opened = self._operations.pop(id(operation), None)
        if opened is None:
            return
        span, token = opened
        span.set_attributes(_sectigo_attributes(operation))  # what it learned (a batch id)
        if error is not None:
            span.set_attribute("error.type", _error_type(error))
            span.set_status(self._trace.StatusCode.ERROR, type(error).__name__)
        self._context.detach(token)
        span.end()

    def request(self, event: RequestEvent) -> None:
        if self._tracer is None:
            return
        attributes = {**_sectigo_attributes(current_operation()), **_http_attributes(event)}
        attributes["url.full"] = event.url
        if event.batch_id is not None:
            attributes["sectigo.batch.id"] = event.batch_id
        if event.authority_id is not None:
            attributes["sectigo.authority.id"] = event.authority_id
        if event.resend_count:
            attributes["http.request.resend_count"] = event.resend_count
        span = self._tracer.start_span(
            f"{event.method} {event.url_template}",
            kind=self._trace.SpanKind.CLIENT,
            attributes=attributes,
        )
        self._send.set(span)

    def response(self, event: ResponseEvent) -> None:
        attributes = _http_attributes(event)
        if event.status_code is not None:
            attributes["http.response.status_code"] = event.status_code
        if event.error_type is not None:
            attributes["error.type"] = event.error_type
        span = self._send.get()
        if span is not None:
            self._send.set(None)
            span.set_attributes(attributes)
            if event.error_type is not None:
                span.set_status(self._trace.StatusCode.ERROR)
            span.end()
        if self._duration is not None:
            operation = current_operation()
            if operation is not None:
                attributes["sectigo.operation"] = operation.name
                attributes["sectigo.idempotent"] = operation.idempotent
            self._duration.record(event.duration, attributes)

    def retry(self, event: RetryEvent) -> None:
        span = self._trace.get_current_span()
        span.add_event(
            "sectigo.retry",
            {
                "sectigo.attempt": event.attempt,
                "sectigo.cause": event.cause,
                "sectigo.delay": event.delay,
            },
        )

    def token_refresh(self, event: TokenRefreshEvent) -> None:
        self._trace.get_current_span().set_attribute("sectigo.grant", event.grant)


def _http_attributes(event: RequestEvent) -> dict[str, Any]:
    """The HTTP client attributes a send's span and its duration share."""
    parts = urlsplit(event.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {
        "http.request.method": event.method,
        "server.address": parts.hostname or "",
        "server.port": port,
        "url.template": event.url_template,
        "url.scheme": parts.scheme,
    }


def _error_type(error: BaseException) -> str:
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
