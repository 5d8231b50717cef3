"""The fleet's lifecycle events: milestones once per certificate, recorded before the
callback (again after a crash in between, never recorded twice), EXPIRED, and the
events of every step, through the emulator and, for crashes, in real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest

from sectigo_iot import SectigoClient
from sectigo_iot.emulator import Emulator
from sectigo_iot.fleet import Fleet, RecordState, SQLiteStore
from sectigo_iot.fleet._store import Change, Row
from sectigo_iot.lifecycle import CertificateSpec, LifecycleEvent, RenewalPolicy
from tests.fleet.test_fleet import Sink, fleet_of, spec

pytestmark = pytest.mark.sectigo_emulator(key_type="ec-p256", balance=1000)

S = RecordState
DAY = timedelta(days=1)
CREATE = "/api/v1/batches/createSingleCertBatch"
KEY = "0123456789abcdef0123456789abcdef0123456789abcdef"  # SECTIGO_FLEET_KEY of the tests


class Events(list[LifecycleEvent]):
    """An on_event that keeps every event."""

    def __call__(self, event: LifecycleEvent) -> None:
        self.append(event)

    def kinds(self) -> list[str]:
        return [event.kind for event in self]

    def milestones(self) -> list[tuple[str | None, int | None]]:
        return [(e.serial_number, e.milestone) for e in self if e.kind == "milestone"]


async def days_until(emulator: Emulator, fleet: Fleet, *days_left: float, key: str = "m") -> None:
    """Move the clock to each point where the record's current certificate has that
    many days left, with a pass at each."""
    for left in days_left:
        record = await fleet.get(key)
        assert record is not None and record.not_after is not None
        emulator.clock.advance((record.not_after - fleet.now() - left * DAY).total_seconds())
        await fleet.run_once()


async def test_each_milestone_fires_once_per_certificate_in_order_and_starts_over(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    events = Events()
    late = RenewalPolicy(at=0.99, spread=0.0)  # 365 days: renewed with 3.65 days left
    async with fleet_of(sectigo_client, tmp_path, Sink("a"), policy=late, on_event=events) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        first = await fleet.get("m")
        assert first is not None and first.serial_number is not None
        assert events.kinds() == ["issued", "delivered"]
        assert events[0].serial_number == first.serial_number and events[0].key == "m"
        # the next action is the first milestone, long before the renewal
        assert first.next_action_at == first.not_after - 30 * DAY  # type: ignore[operator]
        await days_until(sectigo_emulator, fleet, 30.5, 29.5, 10.5, 9.5, 7.1, 6.9, 3.0)
        second = await fleet.get("m")
        assert second is not None and second.serial_number != first.serial_number
        assert events.milestones() == [
            (first.serial_number, 30),
            (first.serial_number, 10),
            (first.serial_number, 7),
        ]
        kinds = events.kinds()
        assert kinds[-2:] == ["renewed", "delivered"] and "expired" not in kinds
        [milestone_30] = [e for e in events if e.milestone == 30]
        assert milestone_30.days_left is not None and 29 <= milestone_30.days_left <= 30
        # the new certificate's milestones start over
        await days_until(sectigo_emulator, fleet, 29.0)
        assert events.milestones()[-1] == (second.serial_number, 30)
        history = [entry.description for entry in (await fleet.get("m")).history]  # type: ignore[union-attr]
        assert sum("30 days left" in text for text in history) == 2  # once per certificate


async def test_a_milestone_fires_before_the_renewal_due_in_the_same_pass(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    events = Events()
    async with fleet_of(
        sectigo_client, tmp_path, Sink("a"), renew_before=timedelta(days=8), on_event=events
    ) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        first = await fleet.get("m")
        assert first is not None and first.not_after is not None
        del events[:]
        # one jump past the 30- and 10-day milestones and the renewal time
        # (renewed with 8 days left, spread an hour either way)
        sectigo_emulator.clock.advance((first.not_after - fleet.now() - 7.5 * DAY).total_seconds())
        [result] = await fleet.run_once()
        assert (result.from_state, result.to_state) == (S.VALID, S.VALID)
        assert events.kinds() == ["milestone", "milestone", "renewed", "delivered"]
        assert [e.milestone for e in events[:2]] == [30, 10]
        assert {e.serial_number for e in events[:2]} == {first.serial_number}


async def test_a_milestone_above_the_life_left_at_receipt_never_fires(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    events = Events()
    policy = RenewalPolicy(at=0.99, spread=0.0, milestones=(400, 30))
    options = {"policy": policy, "on_event": events}
    async with fleet_of(sectigo_client, tmp_path, Sink("a"), **options) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        await days_until(sectigo_emulator, fleet, 100.0, 20.0)
        assert [m for _, m in events.milestones()] == [30]


async def test_an_expired_certificate_makes_the_record_expired_once_until_a_new_one(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    events = Events()
    policy = RenewalPolicy(at=0.99, spread=0.0, min_interval=timedelta(hours=1))
    options = {"policy": policy, "on_event": events}
    async with fleet_of(sectigo_client, tmp_path, Sink("a"), **options) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        first = await fleet.get("m")
        assert first is not None and first.not_after is not None
        refused = sectigo_emulator.inject("PUT", CREATE, "error", times=10_000, status=400)
        await days_until(sectigo_emulator, fleet, 29.0, 9.0, 6.0, 3.0, 0.5)
        failing = await fleet.get("m")
        assert failing is not None and failing.state is S.FAILED
        sectigo_emulator.clock.advance(DAY.total_seconds())  # past not_after
        await fleet.run_once()
        expired = await fleet.get("m")
        assert expired is not None and expired.state is S.EXPIRED
        assert events.kinds().count("expired") == 1
        [gone] = [e for e in events if e.kind == "expired"]
        assert gone.serial_number == first.serial_number and gone.days_left <= 0  # type: ignore[operator]
        assert (0, first.serial_number) in [(e.milestone, e.serial_number) for e in events]
        # it keeps trying, at most min_interval apart (the emergency interval)
        assert expired.next_action_at is not None
        assert expired.next_action_at - fleet.now() <= timedelta(hours=1)
        sends = refused.hits
        for _ in range(5):
            sectigo_emulator.clock.advance(3600)
            await fleet.run_once()
        again = await fleet.get("m")
        assert again is not None and again.state is S.EXPIRED and refused.hits == sends + 5
        assert events.kinds().count("expired") == 1  # once per certificate
        refused.remaining = 0
        sectigo_emulator.clock.advance(3600)
        await fleet.run_once()
        renewed = await fleet.get("m")
        assert renewed is not None and renewed.state is S.VALID
        assert renewed.serial_number != first.serial_number
        assert events.kinds()[-2:] == ["renewed", "delivered"]


async def test_failures_revocations_and_deliveries_are_events(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    events = Events()
    sink = Sink("a", failing=1)
    async with fleet_of(sectigo_client, tmp_path, sink, on_event=events) as fleet:
        await fleet.want("m", spec("m.example.com"))
        await fleet.run_once()
        [failed] = [e for e in events if e.kind == "failed"]
        assert failed.error == "sink a: OSError: a is down"
        sectigo_emulator.clock.advance(3600)
        await fleet.run_once()
        record = await fleet.get("m")
        assert record is not None and record.state is S.VALID
        await fleet.revoke("m", "cessation_of_operation")
        await fleet.run_once()
        [revoked] = [e for e in events if e.kind == "revoked"]
        assert revoked.serial_number == record.serial_number
        assert events.kinds() == ["issued", "failed", "delivered", "revoked"]


async def test_an_on_event_that_raises_is_logged_and_the_work_goes_on(
    sectigo_client: SectigoClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    told: list[str] = []

    async def on_event(event: LifecycleEvent) -> None:
        told.append(event.kind)
        raise RuntimeError("receiver down")

    async with fleet_of(sectigo_client, tmp_path, Sink("a"), on_event=on_event) as fleet:
        await fleet.want("m", spec("m.example.com"))
        [result] = await fleet.run_once()
        assert result.to_state is S.VALID and told == ["issued", "delivered"]
        assert "on_event failed" in caplog.text and "receiver down" in caplog.text
        assert await fleet.run_once() == []  # told once, not again


async def test_two_workers_record_each_milestone_once(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    events = Events()
    policy = RenewalPolicy(at=0.99, spread=0.0)
    path = tmp_path / "fleet.sqlite3"
    async with Fleet(sectigo_client, SQLiteStore(path), sinks=[Sink("a")], policy=policy) as one:
        for number in range(6):
            await one.want(f"m{number}", spec(f"m{number}.example.com"))
        await one.run_once()
    sectigo_emulator.clock.advance(360 * DAY.total_seconds())  # past 30, 10 and 7 days
    fleets = [
        Fleet(sectigo_client, SQLiteStore(path), sinks=[Sink("a")], policy=policy, on_event=events)
        for _ in range(2)
    ]
    async with fleets[0], fleets[1]:
        for _ in range(3):
            async with anyio.create_task_group() as group:
                for fleet in fleets:
                    group.start_soon(fleet.run_once)
    milestones = events.milestones()
    assert sorted(m for _, m in milestones) == [7] * 6 + [10] * 6 + [30] * 6
    assert len(set(milestones)) == len(milestones)  # never one twice


# -- a crash between the record and the callback, in a real process ----------------------

WATCHER = textwrap.dedent(
    """
    import anyio, json, os, signal, sys
    from datetime import timedelta
    from sectigo_iot import SectigoClient
    from sectigo_iot.fleet import Fleet, SQLiteStore

    store_path, events_path, now, kill = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]

    def on_event(event):
        with open(events_path, "a") as out:
            out.write(json.dumps(event.to_dict()) + "\\n")
        if kill == "kill":
            os.kill(os.getpid(), signal.SIGKILL)

    async def main():
        client = SectigoClient("user", "password", base_url="https://127.0.0.1:9",
                               token_store="memory", clock=lambda: now, timeout=0.2)
        lease = timedelta(seconds=0.5)  # a killed worker's lease ends soon
        async with client, Fleet(
            client, SQLiteStore(store_path), on_event=on_event, lease=lease
        ) as fleet:
            await fleet.run_once()

    anyio.run(main)
    """
)


def watch_in_a_process(store: Path, events: Path, now: datetime, kill: bool) -> int:
    command = [sys.executable, "-c", WATCHER, str(store), str(events), str(now.timestamp())]
    command.append("kill" if kill else "live")
    env = {**os.environ, "SECTIGO_FLEET_KEY": KEY}
    done = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
    return done.returncode


def told(events: Path) -> list[int | None]:
    if not events.exists():
        return []
    return [json.loads(line)["milestone"] for line in events.read_text().splitlines()]


async def test_a_crash_between_the_record_and_the_callback_tells_again_records_once(
    tmp_path: Path,
) -> None:
    store_path, events = tmp_path / "fleet.sqlite3", tmp_path / "events.jsonl"
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    end = start + 90 * DAY
    store = SQLiteStore(store_path, secret_key=KEY)
    await store.open()
    valid = Row(
        key="m",
        spec=CertificateSpec(authority_id=1, common_name="m.example.com"),
        state=S.VALID,
        serial_number="0A1B",
        not_before=start,
        not_after=end,
        renewal_at=end - DAY,
        next_action_at=end - DAY,
        wake_at=start,  # as the fleet stamps it: looked at for its first milestone
    )
    await store.change("m", lambda _: Change(row=valid))
    await store.close()

    assert watch_in_a_process(store_path, events, end - 29.5 * DAY, kill=True) == -signal.SIGKILL
    assert told(events) == [30]  # told, then killed before it was marked told
    time.sleep(0.6)  # its lease ends
    assert watch_in_a_process(store_path, events, end - 29.4 * DAY, kill=False) == 0
    assert told(events) == [30, 30]  # told again after the crash: at least once
    assert watch_in_a_process(store_path, events, end - 29.3 * DAY, kill=False) == 0
    assert told(events) == [30, 30]  # and then never again
    assert watch_in_a_process(store_path, events, end - 9 * DAY, kill=False) == 0
    assert told(events) == [30, 30, 10]

    store = SQLiteStore(store_path, secret_key=KEY)
    await store.open()
    row = await store.get("m")
    history = await store.history("m")
    await store.close()
    assert row is not None and row.outbox == () and row.watch is not None
    assert row.watch.fired == (30, 10)  # recorded once each
    assert sum("30 days left" in entry.description for entry in history) == 1
    assert row.state is S.VALID and row.next_action_at == end - DAY  # its work unchanged
