"""Prometheus metrics (sectigo_iot.metrics): the certificate and fleet families as records
change, the cap on per-record series, the text format read back with prometheus-client's
own parser, the textfile written atomically, and the /metrics server started and stopped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sectigo_iot.emulator import Emulator
from sectigo_iot.errors import InvalidInputError
from sectigo_iot.fleet import Delivery, Fleet, FleetRecord, RecordState, SQLiteStore
from sectigo_iot.lifecycle import CertificateSpec
from sectigo_iot.metrics import Metrics
from tests.cli.helpers import record_bodies
from tests.sdk.helpers import no_sleep

S = RecordState
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
PER_KEY = (
    "sectigo_certificate_expiration_timestamp_seconds",
    "sectigo_certificate_renewal_timestamp_seconds",
    "sectigo_certificate_ready_status",
    "sectigo_fleet_record_state_since_timestamp_seconds",
)

Samples = dict[str, dict[frozenset[tuple[str, str]], float]]


def samples(text: bytes | str) -> Samples:
    """Every sample of a Prometheus text, by name, then by its labels."""
    text = text.decode() if isinstance(text, bytes) else text
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return found


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def record(
    key: str,
    state: RecordState,
    name: str | None = None,
    *,
    not_after: datetime | None = None,
    renewal_at: datetime | None = None,
    state_since: datetime | None = None,
) -> FleetRecord:
    spec = CertificateSpec(authority_id=1, common_name=name or f"{key}.example.com")
    return FleetRecord(
        key=key,
        spec=spec,
        state=state,
        not_after=not_after,
        renewal_at=renewal_at,
        state_since=state_since,
    )


def test_each_fleet_family_has_its_labels_and_values() -> None:
    metrics = Metrics()
    expires, renews = T0 + timedelta(days=90), T0 + timedelta(days=60)
    metrics.record_changed(record("a", S.VALID, not_after=expires, renewal_at=renews))
    metrics.record_changed(record("b", S.PROCESSING))
    metrics.record_changed(record("c", S.FAILED, not_after=expires - timedelta(days=1)))
    metrics.record_counts({S.VALID: 1, S.PROCESSING: 1, S.FAILED: 1})
    metrics.balance(1, 7)
    metrics.delivery_failed("folder")
    metrics.delivery_failed("folder")
    got = samples(metrics.text())

    a, b, c = (labels(key=k, common_name=f"{k}.example.com") for k in "abc")
    assert got["sectigo_certificate_expiration_timestamp_seconds"] == {
        a: expires.timestamp(),
        c: expires.timestamp() - 86400,
    }
    assert got["sectigo_certificate_renewal_timestamp_seconds"] == {a: renews.timestamp()}
    assert got["sectigo_certificate_ready_status"] == {
        a | {("state", "VALID")}: 1,
        b | {("state", "PROCESSING")}: 0,
        c | {("state", "FAILED")}: 0,
    }
    since = got["sectigo_fleet_record_state_since_timestamp_seconds"]
    assert set(since) == {
        labels(key="a", state="VALID"),
        labels(key="b", state="PROCESSING"),
        labels(key="c", state="FAILED"),
    }
    counts = got["sectigo_fleet_records"]
    assert counts == {
        labels(state=s.value): (1 if s in (S.VALID, S.PROCESSING, S.FAILED) else 0) for s in S
    }
    assert got["sectigo_authority_balance"] == {labels(authority_id="1"): 7}
    assert got["sectigo_deliveries_failed_total"] == {labels(sink="folder"): 2}
    assert got["sectigo_metrics_keyed_series_capped"] == {frozenset(): 0}


def test_a_change_of_state_or_name_replaces_the_series_it_had() -> None:
    metrics = Metrics()
    expires = T0 + timedelta(days=90)
    metrics.record_changed(record("k", S.PENDING))
    metrics.record_changed(record("k", S.VALID, not_after=expires, renewal_at=T0))
    got = samples(metrics.text())
    old = labels(key="k", common_name="k.example.com")
    assert got["sectigo_certificate_ready_status"] == {old | {("state", "VALID")}: 1}
    assert list(got["sectigo_fleet_record_state_since_timestamp_seconds"]) == [
        labels(key="k", state="VALID")
    ]

    # a new spec: the series move to the new name; the certificate in place is kept
    metrics.record_changed(record("k", S.PENDING, "new.example.com", not_after=expires))
    got = samples(metrics.text())
    new = labels(key="k", common_name="new.example.com")
    assert got["sectigo_certificate_ready_status"] == {new | {("state", "PENDING")}: 0}
    assert got["sectigo_certificate_expiration_timestamp_seconds"] == {new: expires.timestamp()}
    assert "sectigo_certificate_renewal_timestamp_seconds" not in got  # none now: removed


def test_state_since_is_the_records_own() -> None:
    metrics = Metrics()
    metrics.record_changed(record("k", S.PENDING, state_since=T0))
    metrics.record_changed(record("k", S.PROCESSING, state_since=T0 + timedelta(minutes=5)))
    got = samples(metrics.text())["sectigo_fleet_record_state_since_timestamp_seconds"]
    assert got == {labels(key="k", state="PROCESSING"): T0.timestamp() + 300}


def test_state_since_without_the_records_time_is_when_the_state_was_first_seen() -> None:
    metrics = Metrics()
    metrics.record_changed(record("k", S.FAILED))
    first = samples(metrics.text())["sectigo_fleet_record_state_since_timestamp_seconds"]
    metrics.record_changed(record("k", S.FAILED))  # written again, in the same state
    again = samples(metrics.text())["sectigo_fleet_record_state_since_timestamp_seconds"]
    assert again == first


def test_above_the_cap_only_the_counts_by_state_remain(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics(max_keyed_series=2)
    metrics.record_changed(record("a", S.VALID, not_after=T0))
    metrics.record_changed(record("b", S.VALID, not_after=T0))
    metrics.record_changed(record("a", S.PENDING, not_after=T0))  # a known key: still in
    assert len(samples(metrics.text())["sectigo_certificate_ready_status"]) == 2

    metrics.record_changed(record("c", S.PENDING))  # a third key: over the cap
    metrics.record_counts({S.VALID: 1, S.PENDING: 2})
    metrics.record_changed(record("b", S.FAILED))  # nothing per key any more
    got = samples(metrics.text())
    assert not set(PER_KEY) & set(got)
    assert got["sectigo_fleet_records"][labels(state="PENDING")] == 2
    assert got["sectigo_metrics_keyed_series_capped"] == {frozenset(): 1}
    assert "only the counts by state are exported" in caplog.text


def test_counts_above_the_cap_drop_the_per_record_series_too() -> None:
    """A worker that wrote few records still stops at the fleet's size."""
    metrics = Metrics(max_keyed_series=2)
    metrics.record_changed(record("a", S.VALID, not_after=T0))
    metrics.record_counts({S.VALID: 3})
    got = samples(metrics.text())
    assert not set(PER_KEY) & set(got)
    assert got["sectigo_fleet_records"][labels(state="VALID")] == 3


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_max_keyed_series_must_be_a_count(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="max_keyed_series must be an integer >= 0"):
        Metrics(max_keyed_series=bad)  # type: ignore[arg-type]


def test_keys_and_names_with_quotes_and_backslashes_come_back_exactly() -> None:
    metrics = Metrics()
    key = 'vasp "7" \\ end'
    metrics.record_changed(record(key, S.VALID, "a.example.com", not_after=T0))
    (labelled,) = samples(metrics.text())["sectigo_certificate_ready_status"]
    assert dict(labelled)["key"] == key


def test_an_existing_registry_is_used_and_each_metrics_has_its_own_otherwise() -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    assert Metrics(registry).registry is registry
    one, two = Metrics(), Metrics()  # the same names, no clash: two registries
    one.balance(1, 3)
    assert "sectigo_authority_balance" not in samples(two.text())


def test_nothing_imports_prometheus_client_until_a_metrics_is_made() -> None:
    code = (
        "import sys, sectigo_iot, sectigo_iot.metrics, sectigo_iot.fleet\n"
        "print('prometheus_client' in sys.modules)\n"
        "sectigo_iot.metrics.Metrics()\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_without_the_extra_metrics_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from sectigo_iot.metrics import Metrics\n"
        "try:\n    Metrics()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == (
        "InvalidInputError Metrics needs prometheus-client: pip install 'sectigo-iot[metrics]'"
    ), result.stderr


# -- the textfile and the server ----------------------------------------------------------


def test_the_textfile_replaces_the_old_one_in_one_step_with_mode_0644(tmp_path: Path) -> None:
    metrics = Metrics()
    target = tmp_path / "sectigo.prom"
    target.write_text("old\n")
    reader = target.open()  # a reader of the old file keeps reading the old file
    old_inode = target.stat().st_ino
    metrics.record_changed(record("a", S.VALID, not_after=T0))
    umask = os.umask(0o077)
    try:
        metrics.write_textfile(target)
    finally:
        os.umask(umask)
    assert reader.read() == "old\n"
    reader.close()
    assert target.stat().st_ino != old_inode  # renamed over it, not rewritten in place
    assert target.stat().st_mode & 0o777 == 0o644
    assert target.read_bytes() == metrics.text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sectigo.prom"]  # no temp left
    assert samples(target.read_text())["sectigo_certificate_expiration_timestamp_seconds"]


def test_the_textfile_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep\n")
    (tmp_path / "sectigo.prom").symlink_to(elsewhere)
    with pytest.raises(InvalidInputError, match="symlink"):
        Metrics().write_textfile(tmp_path / "sectigo.prom")
    assert elsewhere.read_text() == "keep\n"


def test_the_server_serves_metrics_on_loopback_and_closes(tmp_path: Path) -> None:
    metrics = Metrics()
    metrics.balance(4, 12)
    server = metrics.serve(0)
    try:
        assert server.host == "127.0.0.1" and server.url.endswith(f":{server.port}/metrics")
        reply = httpx.get(server.url, timeout=10)
        assert reply.status_code == 200
        assert samples(reply.text)["sectigo_authority_balance"] == {labels(authority_id="4"): 12}
    finally:
        server.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=10)
    with socket.socket() as again:  # nothing listens there any more (TIME_WAIT aside)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", server.port))


# -- end to end: a fleet of three records through the emulator ----------------------------

PASSWORD = "canary-API-pw-0e5d7a"
CREATE = "/api/v1/batches/createSingleCertBatch"


class FlakySink:
    """A sink that keeps every delivery and refuses the first one."""

    name = "hook"

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    async def deliver(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if len(self.deliveries) == 1:
            raise OSError("hook is down")


async def three_records(tmp_path: Path) -> tuple[Metrics, dict[str, Any]]:
    """A fleet of three records run to rest with a Metrics on the client and the fleet:
    two issued (one refused once by a sink), one whose create the CA refused."""
    metrics = Metrics()
    seen: dict[str, Any] = {"bodies": []}
    with Emulator(key_type="ec-p256", users={"tester": PASSWORD}) as emulator:
        record_bodies(emulator, "PUT", CREATE, seen["bodies"])
        emulator.inject("GET", "/api/v1/authorities/allowed", "error", status=503)
        sink = FlakySink()
        client = emulator.client(metrics=metrics, sleep=no_sleep)
        store = SQLiteStore(tmp_path / "fleet.sqlite3")
        async with client, Fleet(client, store, sinks=[sink], metrics=metrics) as fleet:
            await fleet.want("a", CertificateSpec(authority_id=1, common_name="a.example.com"))
            spec_b = CertificateSpec(
                authority_id=1, common_name="b.example.com", key_type="ec-p256"
            )
            await fleet.want("b", spec_b)
            await fleet.run_once()  # a and b issued, the first delivery refused
            emulator.inject("PUT", CREATE, "error", status=400, message="no such name")
            await fleet.want("c", CertificateSpec(authority_id=1, common_name="c.example.com"))
            emulator.clock.advance(3600)  # the refused delivery is due again
            await fleet.run_once()
            seen["records"] = {r.key: r for r in await fleet.list()}
            seen["deliveries"] = sink.deliveries
            seen["tokens"] = client.tokens
            seen["balance"] = (await client.authorities.list())[0].balance
    return metrics, seen


async def test_a_fleet_of_three_records_exports_each_family(tmp_path: Path) -> None:
    metrics, seen = await three_records(tmp_path)
    records = seen["records"]
    assert {k: r.state for k, r in records.items()} == {"a": S.VALID, "b": S.VALID, "c": S.FAILED}
    got = samples(metrics.text())

    def named(key: str) -> frozenset[tuple[str, str]]:
        return labels(key=key, common_name=f"{key}.example.com")

    delivered = {d.key: d.bundle for d in seen["deliveries"]}
    assert got["sectigo_certificate_expiration_timestamp_seconds"] == {
        named(k): delivered[k].not_after.timestamp() for k in "ab"
    }
    assert all(records[k].not_after == delivered[k].not_after for k in "ab")
    assert got["sectigo_certificate_renewal_timestamp_seconds"] == {
        named(k): records[k].renewal_at.timestamp() for k in "ab"
    }
    assert got["sectigo_certificate_ready_status"] == {
        named("a") | {("state", "VALID")}: 1,
        named("b") | {("state", "VALID")}: 1,
        named("c") | {("state", "FAILED")}: 0,
    }
    assert got["sectigo_fleet_record_state_since_timestamp_seconds"] == {
        labels(key=k, state=r.state.value): r.state_since.timestamp() for k, r in records.items()
    }
    assert got["sectigo_fleet_records"] == {
        labels(state=s.value): {S.VALID: 2, S.FAILED: 1}.get(s, 0) for s in S
    }
    assert got["sectigo_deliveries_failed_total"] == {labels(sink="hook"): 1}
    assert got["sectigo_authority_balance"] == {labels(authority_id="1"): seen["balance"]}
    assert got["sectigo_token_refreshes_total"] == {  # the hour passed outlived the token
        labels(grant="password"): 1,
        labels(grant="refresh_token"): 1,
    }
    requests = got["sectigo_requests_total"]
    assert requests[labels(operation="batches.create", outcome="ok")] == 1
    assert requests[labels(operation="batches.create", outcome="http_4xx")] == 1
    assert requests[labels(operation="authorities.list", outcome="http_5xx")] == 1
    assert got["sectigo_retries_total"] == {
        labels(operation="authorities.list", cause="http_503"): 1
    }
    counts = got["sectigo_request_duration_seconds_count"]
    assert counts == requests  # one duration per send, with the same labels

    # no secret anywhere: the API password, the tokens, the PKCS#12 password, the keys
    text = metrics.text().decode()
    p12 = [
        json.loads(body.split(b"\r\n\r\n", 1)[1])["profileParams"]["pkcs12Password"]
        for body in seen["bodies"]
    ]
    assert len(p12) == 2  # a's create and c's refused one
    tokens = seen["tokens"]
    secrets = [PASSWORD, *p12, tokens.access_token, tokens.refresh_token]
    secrets += [d.bundle.private_key_pem().decode() for d in seen["deliveries"]]
    for secret in secrets:
        assert secret and secret not in text
        assert secret[:16] not in text


def test_the_families_are_kept_under_trio(tmp_path: Path) -> None:
    metrics, seen = anyio.run(three_records, tmp_path, backend="trio")
    got = samples(metrics.text())
    assert got["sectigo_fleet_records"][labels(state="VALID")] == 2
    assert got["sectigo_requests_total"][labels(operation="batches.create", outcome="ok")] == 1
    expiry = got["sectigo_certificate_expiration_timestamp_seconds"]
    assert expiry[labels(key="a", common_name="a.example.com")] == (
        seen["records"]["a"].not_after.timestamp()
    )


def ignore(delivery: Delivery) -> None:
    """A sink that takes every delivery."""


async def test_a_worker_exports_the_records_it_finds_before_it_works_on_them(
    tmp_path: Path,
) -> None:
    """A worker started on a store of valid certificates has nothing due, and must still
    export their expiry: else a restarted worker would keep the expiry alert silent. Over
    the cap it exports only the counts."""
    found, capped = Metrics(), Metrics(max_keyed_series=1)
    with Emulator(key_type="ec-p256") as emulator:
        async with emulator.client() as client:
            store = tmp_path / "fleet.sqlite3"
            async with Fleet(client, SQLiteStore(store), sinks=[ignore]) as fleet:
                for key in "ab":
                    spec = CertificateSpec(authority_id=1, common_name=f"{key}.example.com")
                    await fleet.want(key, spec)
                await fleet.run_once()
            for metrics in (found, capped):
                fleet = Fleet(client, SQLiteStore(store), sinks=[ignore], metrics=metrics)
                async with fleet:
                    assert await fleet.run_once() == []  # nothing due
                    records = {r.key: r for r in await fleet.list()}
    assert {r.state for r in records.values()} == {S.VALID}
    got = samples(found.text())
    assert got["sectigo_certificate_expiration_timestamp_seconds"] == {
        labels(key=k, common_name=f"{k}.example.com"): r.not_after.timestamp()
        for k, r in records.items()
    }
    assert got["sectigo_fleet_records"][labels(state="VALID")] == 2
    over = samples(capped.text())
    assert not set(PER_KEY) & set(over)
    assert over["sectigo_fleet_records"][labels(state="VALID")] == 2
    assert over["sectigo_metrics_keyed_series_capped"] == {frozenset(): 1}
