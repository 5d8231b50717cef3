"""Prometheus metrics of the SDK's requests and of a fleet's certificates (the
``[metrics]`` extra: ``pip install 'sectigo-iot[metrics]'``).

::

    from sectigo_iot.metrics import Metrics

    metrics = Metrics()  # its own CollectorRegistry: metrics.registry
    client = SectigoClient(metrics=metrics)  # the request families
    fleet = Fleet(client, store, sinks=[...], metrics=metrics)  # the certificate families
    server = metrics.serve(9464)  # /metrics on 127.0.0.1; server.close() stops it

prometheus_client is imported when a Metrics is made, never by ``import sectigo_iot``.
Labels hold no secret: record keys, common names, states, operation names, sink names
and authority ids only.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._files import write_atomic
from ._hooks import Observer
from ._logging import get_logger
from .errors import InvalidInputError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

    from ._client import SectigoClient
    from ._hooks import Operation, ResponseEvent, RetryEvent, TokenRefreshEvent
    from .fleet import FleetRecord, RecordState

__all__ = ["DEFAULT_MAX_KEYED_SERIES", "Metrics", "MetricsServer"]

logger = get_logger("sectigo_iot.metrics")

#: records exported one by one at most; a larger fleet exports only its counts by state
DEFAULT_MAX_KEYED_SERIES = 10_000
#: request durations, seconds: a quick API call to a request that times out
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Exported:
    """What is exported of one record: the labels its series carry now."""

    __slots__ = ("common_name", "since", "state")

    def __init__(self, common_name: str, state: str, since: float) -> None:
        self.common_name = common_name
        self.state = state
        self.since = since


class Metrics(Observer):
    """The Prometheus families of the SDK and the fleet, in ``registry`` (a new
    CollectorRegistry when None).

    At most ``max_keyed_series`` records are exported by key (expiry, renewal,
    readiness, state since); once the fleet has more, those families are emptied and
    only ``sectigo_fleet_records`` (by state) remains, with
    ``sectigo_metrics_keyed_series_capped`` set to 1.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_keyed_series: int = DEFAULT_MAX_KEYED_SERIES,
    ) -> None:
        if (
            isinstance(max_keyed_series, bool)
            or not isinstance(max_keyed_series, int)
            or max_keyed_series < 0
        ):
            raise InvalidInputError(
                f"max_keyed_series must be an integer >= 0, got {max_keyed_series!r}"
            )
        try:
            import prometheus_client as prom
        except ImportError:
            raise InvalidInputError(
                "Metrics needs prometheus-client: pip install 'sectigo-iot[metrics]'"
            ) from None
        self.registry = prom.CollectorRegistry() if registry is None else registry
        self.max_keyed_series = max_keyed_series
        self._exported: dict[str, _Exported] = {}
        self._capped = False
        self._lock = threading.Lock()  # record_changed may be called from several threads

        def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Any:
            return prom.Gauge(name, text, labels, registry=self.registry)

        def counter(name: str, text: str, labels: tuple[str, ...]) -> Any:
            return prom.Counter(name, text, labels, registry=self.registry)

        key = ("key", "common_name")
        self.expiration = gauge(
            "sectigo_certificate_expiration_timestamp_seconds",
            "The current certificate's notAfter (Unix time), by record.",
            key,
        )
        self.renewal = gauge(
            "sectigo_certificate_renewal_timestamp_seconds",
            "When the fleet renews the current certificate (Unix time), by record.",
            key,
        )
        self.ready = gauge(
            "sectigo_certificate_ready_status",
            "1 when the record is VALID (every sink has its current certificate), else 0; "
            "one series per record, labelled with its current state.",
            (*key, "state"),
        )
        self.state_since = gauge(
            "sectigo_fleet_record_state_since_timestamp_seconds",
            "When the record entered its current state (Unix time).",
            ("key", "state"),
        )
        self.records = gauge("sectigo_fleet_records", "The fleet's records by state.", ("state",))
        self.capped = gauge(
            "sectigo_metrics_keyed_series_capped",
            "1 when the fleet has more records than max_keyed_series: the per-record "
            "families are then empty and only sectigo_fleet_records remains.",
        )
        self.requests = counter(
            "sectigo_requests_total",
            "Physical sends to the API (every retry and resend included), by outcome.",
            ("operation", "outcome"),
        )
        self.duration = prom.Histogram(
            "sectigo_request_duration_seconds",
            "Duration of each physical send, by operation and outcome.",
            ("operation", "outcome"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.retries = counter(
            "sectigo_retries_total", "Retries, by operation and cause.", ("operation", "cause")
        )
        self.token_refreshes = counter(
            "sectigo_token_refreshes_total",
            "New tokens obtained, by grant (password or refresh_token).",
            ("grant",),
        )
        self.authority_balance = gauge(
            "sectigo_authority_balance",
            "Licenses left on the authority, as last read from the API.",
            ("authority_id",),
        )
        self.deliveries_failed = counter(
            "sectigo_deliveries_failed_total", "Deliveries a sink refused, by sink.", ("sink",)
        )
        self.capped.set(0)

    def __repr__(self) -> str:
        return f"Metrics(records={len(self._exported)}, max_keyed_series={self.max_keyed_series})"

    # -- the client: an observer of its sends (see sectigo_iot._hooks) ------------------

    def operation_ended(self, operation: Operation, error: BaseException | None) -> None:
        """Keep the balances an authorities call returned."""
        if error is not None:
            return
        name, result, authority_id = operation.name, operation.result, operation.authority_id
        if name == "authorities.list" and isinstance(result, list):
            for authority in result:
                self.balance(authority.id, authority.balance)
        elif name == "authorities.balance" and authority_id is not None and type(result) is int:
            self.balance(authority_id, result)

    def response(self, event: ResponseEvent) -> None:
        """Count one physical send and its duration, by operation and outcome."""
        labels = (event.operation, event.outcome)
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(event.duration)

    def retry(self, event: RetryEvent) -> None:
        """Count a retry, by operation and cause."""
        self.retries.labels(event.operation, event.cause).inc()

    def token_refresh(self, event: TokenRefreshEvent) -> None:
        """Count new tokens, by grant."""
        self.token_refreshes.labels(event.grant).inc()

    # -- the fleet ----------------------------------------------------------------------

    def record_changed(self, record: FleetRecord) -> None:
        """Export ``record`` as it is now (called after every write of a record)."""
        with self._lock:
            if self._capped:
                return
            shown = self._exported.get(record.key)
            if shown is None and len(self._exported) >= self.max_keyed_series:
                self._cap(f"more than {self.max_keyed_series} records")
                return
            self._export(record, shown)

    def _export(self, record: FleetRecord, shown: _Exported | None) -> None:
        key, name, state = record.key, record.spec.common_name, record.state.value
        since = _seconds(record.state_since)
        if since is None:  # a record written before it was kept: when this process saw it
            since = shown.since if shown is not None and shown.state == state else time.time()
        if shown is not None:
            if shown.common_name != name:
                for family in (self.expiration, self.renewal):
                    _remove(family, key, shown.common_name)
            if (shown.common_name, shown.state) != (name, state):
                _remove(self.ready, key, shown.common_name, shown.state)
            if shown.state != state:
                _remove(self.state_since, key, shown.state)
        self._exported[key] = _Exported(name, state, since)
        times = ((self.expiration, record.not_after), (self.renewal, record.renewal_at))
        for family, moment in times:
            value = _seconds(moment)
            if value is None:
                _remove(family, key, name)
            else:
                family.labels(key, name).set(value)
        self.ready.labels(key, name, state).set(1 if state == "VALID" else 0)
        self.state_since.labels(key, state).set(since)

    def _cap(self, why: str) -> None:
        logger.warning(
            "metrics: the fleet has %s: only the counts by state are exported from now on "
            "(raise Metrics(max_keyed_series=...) to export every record)",
            why,
        )
        self._capped = True
        self._exported.clear()
        for family in (self.expiration, self.renewal, self.ready, self.state_since):
            family.clear()
        self.capped.set(1)

    def record_counts(self, counts: Mapping[RecordState, int]) -> None:
        """Set ``sectigo_fleet_records`` from the store's count by state (once a pass); a
        state not in ``counts`` has none."""
        from .fleet import RecordState

        for state in RecordState:
            self.records.labels(state.value).set(counts.get(state, 0))
        total = sum(counts.values())
        with self._lock:
            if not self._capped and total > self.max_keyed_series:
                self._cap(f"{total} records, more than {self.max_keyed_series}")

    def delivery_failed(self, sink: str) -> None:
        """Count a delivery that ``sink`` refused."""
        self.deliveries_failed.labels(sink).inc()

    def balance(self, authority_id: int, licenses: int) -> None:
        """Set the licenses left on ``authority_id``."""
        self.authority_balance.labels(str(authority_id)).set(licenses)

    async def update_balances(self, client: SectigoClient) -> None:
        """Read the balance of every authority of ``client``'s account (one
        ``authorities.list``). Also kept from any such call of a client given this
        Metrics; a fleet that spends nothing calls nothing, so call this now and then."""
        for authority in await client.authorities.list():
            self.balance(authority.id, authority.balance)

    # -- exposition ---------------------------------------------------------------------

    def text(self) -> bytes:
        """The registry in Prometheus' text format, as a scrape of /metrics gets it."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def write_textfile(self, path: str | Path) -> None:
        """Write :meth:`text` to ``path`` for node_exporter's textfile collector: a
        temporary file beside it, synced, then renamed over it (mode 0644)."""
        write_atomic(Path(path), self.text(), mode=0o644, overwrite=True)

    def serve(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        """Serve the registry over HTTP on ``host:port`` (``/metrics``; port 0: any free
        port, see ``server.port``) from a daemon thread, until ``close()``."""
        from prometheus_client import start_http_server

        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread)


class MetricsServer:
    """A running /metrics server at :attr:`url`; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, self.port = server.server_address[:2]
        self.host = host.decode() if isinstance(host, bytes) else host

    def __repr__(self) -> str:
        return f"MetricsServer({self.url})"

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics`` (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving, close the socket and wait for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _remove(family: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never exported (no expiry yet)
        family.remove(*labels)
