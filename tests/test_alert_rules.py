"""docs/alerts/sectigo.rules.yml: valid for ``promtool check rules``, and each alert tested
with ``promtool test rules`` on series written here from real Metrics objects (two
workers of one store, sampled once a minute), so the rules and the exported names and
labels cannot drift apart. Needs promtool (Debian's prometheus package): skipped
without it, a failure in CI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sectigo_iot.fleet import FleetRecord, RecordState
from sectigo_iot.lifecycle import CertificateSpec
from sectigo_iot.metrics import Metrics
from tests.support import skip_outside_ci
from tests.test_metrics import samples

RULES = Path(__file__).parent.parent / "docs" / "alerts" / "sectigo.rules.yml"
S = RecordState
#: promtool's tests start at the Unix epoch
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ZERO, MINUTE, DAY = timedelta(0), timedelta(minutes=1), timedelta(days=1)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        skip_outside_ci("promtool is not installed (apt-get install prometheus)")
    assert path is not None
    return path


def record(
    key: str,
    state: RecordState,
    since: timedelta,
    *,
    not_after: timedelta | None = None,
    renewal_at: timedelta | None = None,
) -> FleetRecord:
    """A record as the fleet writes it, its times counted from promtool's start."""
    return FleetRecord(
        key=key,
        spec=CertificateSpec(authority_id=1, common_name=f"{key}.example.com"),
        state=state,
        state_since=EPOCH + since,
        not_after=None if not_after is None else EPOCH + not_after,
        renewal_at=None if renewal_at is None else EPOCH + renewal_at,
    )


class Timeline:
    """Workers' Metrics sampled once a minute into promtool's input series (each
    worker's series labelled with its ``instance``)."""

    def __init__(self, **workers: Metrics) -> None:
        self.workers = workers
        self.series: dict[str, list[str]] = {}
        self.minutes = 0

    def run(self, minutes: int, steps: dict[int, Callable[[], None]] | None = None) -> None:
        for _ in range(minutes):
            if steps and self.minutes in steps:
                steps[self.minutes]()
            for name in self.series:
                self.series[name].append("_")
            for instance, metrics in self.workers.items():
                for sample, by_labels in samples(metrics.text()).items():
                    if sample.endswith("_created"):
                        continue
                    for labels, value in by_labels.items():
                        selector = _selector(sample, {**dict(labels), "instance": instance})
                        values = self.series.setdefault(selector, ["_"] * (self.minutes + 1))
                        values[-1] = repr(value)
            self.minutes += 1

    def input_series(self) -> list[dict[str, str]]:
        return [{"series": s, "values": " ".join(v)} for s, v in sorted(self.series.items())]


def _selector(name: str, labels: dict[str, str]) -> str:
    inside = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return f"{name}{{{inside}}}"


def alert_names() -> list[str]:
    return re.findall(r"^\s*- alert: (\w+)$", RULES.read_text(), re.MULTILINE)


def expect(at: int, firing: dict[str, list[tuple[dict[str, str], dict[str, str]]]]) -> list[Any]:
    """promtool's alert tests at minute ``at``: every alert of the file, those not in
    ``firing`` expected silent."""
    return [
        {
            "eval_time": f"{at}m",
            "alertname": name,
            "exp_alerts": [
                {"exp_labels": {**labels, "severity": severity(name)}, "exp_annotations": notes}
                for labels, notes in firing.get(name, [])
            ],
        }
        for name in alert_names()
    ]


def severity(alert: str) -> str:
    return "info" if alert == "SectigoMetricsCapped" else "warning"


def said(summary: str, description: str) -> dict[str, str]:
    return {"summary": summary, "description": description}


def fleet_of_two_workers() -> Timeline:
    """Two workers, A and B, of one store; B's view of some records is older."""
    a, b = Metrics(), Metrics()
    for metrics, counts in ((a, {S.VALID: 4}), (b, {S.VALID: 4})):
        metrics.record_counts(counts)
    a.record_changed(record("soon", S.VALID, MINUTE, not_after=20 * DAY, renewal_at=10 * DAY))
    b.record_changed(record("soon", S.VALID, ZERO, not_after=5 * DAY, renewal_at=3 * DAY))
    a.record_changed(record("renewed", S.VALID, ZERO, not_after=90 * DAY, renewal_at=ZERO))
    a.record_changed(record("stuck", S.PROCESSING, ZERO))
    b.record_changed(record("done", S.PROCESSING, ZERO))  # A finished it at 30m
    a.record_changed(record("cancelled", S.CANCELLED, ZERO, not_after=5 * DAY, renewal_at=ZERO))
    a.record_changed(record("rejected", S.REJECTED, ZERO, not_after=30 * DAY, renewal_at=ZERO))
    for authority, licenses in ((1, 5), (2, 100), (3, 5)):
        a.balance(authority, licenses)
    timeline = Timeline(A=a, B=b)
    timeline.run(
        76,
        {
            3: lambda: a.balance(3, 50),  # low for 3 minutes only: not for 5
            20: lambda: b.delivery_failed("hook"),
            30: lambda: a.record_changed(
                record("done", S.VALID, 30 * MINUTE, not_after=90 * DAY, renewal_at=60 * DAY)
            ),
            50: lambda: a.record_changed(record("fresh", S.PENDING, 50 * MINUTE)),
        },
    )
    return timeline


def test_the_rules_file_is_valid() -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_names()) + 1} rules found" in checked.stdout  # + 1 recorded
    assert {
        "SectigoCertificateExpiresSoon",
        "SectigoCertificateRenewalOverdue",
        "SectigoFleetRecordStuck",
        "SectigoAuthorityBalanceLow",
        "SectigoDeliveriesFailing",
    } <= set(alert_names())


def test_each_alert_fires_when_it_should_and_no_other(tmp_path: Path) -> None:
    fleet = fleet_of_two_workers()
    soon = {"key": "soon", "common_name": "soon.example.com"}
    expires_soon = "The certificate of soon (soon.example.com) expires in less than 21 days"
    rejected = (
        {"key": "rejected", "state": "REJECTED"},
        said(
            "The CA rejected the certificate of fleet record rejected",
            "Nothing more happens until `sectigo fleet retry rejected` or a new request "
            "(`sectigo fleet want`).",
        ),
    )
    low = (
        {"authority_id": "1"},
        said(
            "Authority 1 has 5 licenses left",
            "Fewer than 10 licenses: renewals fail once none is left. Buy more.",
        ),
    )
    main = {
        "interval": "1m",
        "input_series": fleet.input_series(),
        "alert_rule_test": [
            *expect(4, {"SectigoFleetRecordRejected": [rejected]}),  # the rest are pending
            *expect(
                6, {"SectigoFleetRecordRejected": [rejected], "SectigoAuthorityBalanceLow": [low]}
            ),
            *expect(
                15,
                {
                    "SectigoCertificateExpiresSoon": [
                        (
                            soon,
                            said(
                                expires_soon,
                                "It expires in 19d 23h 45m 0s and was not renewed: see "
                                "`sectigo fleet show soon`.",
                            ),
                        )
                    ],
                    "SectigoFleetRecordRejected": [rejected],
                    "SectigoAuthorityBalanceLow": [low],
                },
            ),
            *expect(
                30,
                {
                    "SectigoCertificateExpiresSoon": [
                        (
                            soon,
                            said(
                                expires_soon,
                                "It expires in 19d 23h 30m 0s and was not renewed: see "
                                "`sectigo fleet show soon`.",
                            ),
                        )
                    ],
                    "SectigoFleetRecordRejected": [rejected],
                    "SectigoAuthorityBalanceLow": [low],
                    "SectigoDeliveriesFailing": [
                        (
                            {"sink": "hook"},
                            said(
                                "Sink hook refuses deliveries",
                                "Certificates issued are not delivered to hook; the fleet "
                                "retries with backoff (the error is on each record: "
                                "`sectigo fleet list --state DELIVERING`).",
                            ),
                        )
                    ],
                },
            ),
            *expect(
                70,
                {
                    "SectigoCertificateExpiresSoon": [
                        (
                            soon,
                            said(
                                expires_soon,
                                "It expires in 19d 22h 50m 0s and was not renewed: see "
                                "`sectigo fleet show soon`.",
                            ),
                        )
                    ],
                    "SectigoCertificateRenewalOverdue": [
                        (
                            {"key": "renewed", "common_name": "renewed.example.com"},
                            said(
                                "The renewal of renewed (renewed.example.com) is overdue by "
                                "more than an hour",
                                "Its renewal time passed 1h 10m 0s ago: is a `sectigo fleet "
                                "run` worker running, and what does `sectigo fleet show "
                                "renewed` say?",
                            ),
                        )
                    ],
                    "SectigoFleetRecordStuck": [
                        (
                            {"key": "stuck", "state": "PROCESSING"},
                            said(
                                "Fleet record stuck has been PROCESSING for more than an hour",
                                "It entered PROCESSING 1h 10m 0s ago: see its last error "
                                "with `sectigo fleet show stuck`.",
                            ),
                        )
                    ],
                    "SectigoFleetRecordRejected": [rejected],
                    "SectigoAuthorityBalanceLow": [low],
                },
            ),
        ],
    }
    capped = Metrics(max_keyed_series=1)
    capped.record_changed(record("one", S.VALID, ZERO, not_after=DAY))
    capped.record_changed(record("two", S.PROCESSING, ZERO))  # over the cap
    capped.record_counts({S.VALID: 1, S.PROCESSING: 1})
    over = Timeline(A=capped)
    over.run(20)
    capped_alert = said(
        "The fleet has more records than Metrics(max_keyed_series=...)",
        "Only the counts by state are exported: the per-record alerts (expiry, renewal, "
        "stuck) are blind. Raise max_keyed_series.",
    )
    absent = said(
        "No fleet worker exports metrics",
        "No `sectigo fleet run` is running or scraped: nothing renews, and the alerts above "
        "cannot fire.",
    )
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            main,
            {
                "interval": "1m",
                "input_series": over.input_series(),
                "alert_rule_test": expect(10, {"SectigoMetricsCapped": [({}, capped_alert)]}),
            },
            {  # nothing exported at all
                "interval": "1m",
                "input_series": [{"series": 'up{job="sectigo"}', "values": "0x20"}],
                "alert_rule_test": [
                    *expect(10, {}),
                    *expect(20, {"SectigoFleetMetricsAbsent": [({}, absent)]}),
                ],
            },
        ],
    }
    fired = {
        test["alertname"]
        for case in tests["tests"]
        for test in case["alert_rule_test"]  # type: ignore[index]
        if test["exp_alerts"]
    }
    assert fired == set(alert_names())  # every alert of the file is seen firing
    path = tmp_path / "sectigo.rules.test.yml"
    path.write_text(json.dumps(tests, indent=1))  # JSON is YAML
    tested = subprocess.run(
        [promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_a_rule_that_would_not_fire_is_caught(tmp_path: Path) -> None:
    """The harness fails when an expectation is wrong (here: a balance that is fine)."""
    metrics = Metrics()
    metrics.balance(1, 50)
    metrics.record_counts({S.VALID: 1})
    timeline = Timeline(A=metrics)
    timeline.run(10)
    wrong = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": timeline.input_series(),
                "alert_rule_test": expect(
                    9, {"SectigoAuthorityBalanceLow": [({"authority_id": "1"}, {})]}
                ),
            }
        ],
    }
    path = tmp_path / "wrong.test.yml"
    path.write_text(json.dumps(wrong))
    tested = subprocess.run(
        [promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert tested.returncode != 0
    assert "SectigoAuthorityBalanceLow" in tested.stdout + tested.stderr
