"""Lifecycle events of certificate folders, end to end through the emulator with its
clock moved: issued / renewed once live, revoked, milestones and the expiry once per
certificate, failed; recorded in the journal before the callback is called (a process
killed inside the callback tells it again at the next run); never a secret. Unit tests
of the Watch (property-tested) come first.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sectigo_iot import BadRequestError, BatchRejectedError, SectigoClient
from sectigo_iot.emulator import Emulator
from sectigo_iot.errors import InvalidInputError
from sectigo_iot.lifecycle import (
    JOURNAL_NAME,
    CertificateSpec,
    LifecycleEvent,
    RenewalPolicy,
    ensure_certificate,
    read_journal,
    renew_due,
)
from sectigo_iot.lifecycle._events import Watch, days_left
from sectigo_iot.lifecycle._journal import write_journal
from tests.lifecycle.helpers import CREATE, DAY, SPEC, journal_of
from tests.lifecycle.test_lifecycle_hostile import drop_root_powers
from tests.support import skip_outside_ci

pytestmark = pytest.mark.sectigo_emulator(key_type="ec-p256", validity_days=40)

#: renewed at expiry (give or take an hour): every milestone is reached first
AT_EXPIRY = RenewalPolicy(renew_before=timedelta(0))
T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


class Events(list[LifecycleEvent]):
    """A sync ``on_event`` that keeps each event."""

    def __call__(self, event: LifecycleEvent) -> None:
        self.append(event)

    def kinds(self) -> list[str]:
        return [event.kind if event.milestone is None else f"{event.milestone}" for event in self]


class AsyncEvents(Events):
    """The same, async."""

    async def __call__(self, event: LifecycleEvent) -> None:  # type: ignore[override]
        await anyio.lowlevel.checkpoint()
        self.append(event)


def journal_file(folder: Path) -> tuple[int, int]:
    """The journal's inode and change time: the same while it is not written."""
    info = (folder / JOURNAL_NAME).stat()
    return info.st_ino, info.st_mtime_ns


# -- the Watch ------------------------------------------------------------------------

MILESTONES = st.lists(st.integers(0, 60), max_size=5).map(
    lambda days: tuple(sorted(set(days), reverse=True))
)


@given(
    milestones=MILESTONES,
    lifetime=st.integers(1, 90 * DAY),
    received=st.integers(0, 90 * DAY),
    steps=st.lists(st.integers(1, 5 * DAY), min_size=1, max_size=80),
)
def test_a_watch_fires_each_milestone_reached_once_largest_first(
    milestones: tuple[int, ...], lifetime: int, received: int, steps: list[int]
) -> None:
    not_after = T0 + timedelta(seconds=lifetime)
    received_at = T0 + timedelta(seconds=min(received, lifetime + DAY))
    watch = Watch(serial_number="AB", received_at=received_at)
    fired: list[int] = []
    expiries = 0
    now = received_at
    for step in steps:
        now += timedelta(seconds=step)
        reached, expired = watch.reached(milestones, not_after, now)
        assert list(reached) == sorted(reached, reverse=True)
        fired += reached
        expiries += expired
        watch = watch.seen(reached, expired)
        assert watch.reached(milestones, not_after, now) == ((), False)  # seen: never again
    at_receipt, left = days_left(not_after, received_at), days_left(not_after, now)
    assert fired == [m for m in milestones if left <= m < at_receipt]  # in order, each once
    assert expiries == (now >= not_after)
    assert Watch.from_dict(json.loads(json.dumps(watch.to_dict()))) == watch


@given(
    milestones=MILESTONES,
    lifetime=st.integers(1, 90 * DAY),
    fired=st.lists(st.integers(0, 60), max_size=3),
    expired=st.booleans(),
)
def test_next_at_is_when_the_watch_first_reaches_something(
    milestones: tuple[int, ...], lifetime: int, fired: list[int], expired: bool
) -> None:
    not_after = T0 + timedelta(seconds=lifetime)
    watch = Watch(serial_number="AB", received_at=T0, fired=tuple(fired), expired=expired)
    at = watch.next_at(milestones, not_after)
    if at is None:
        assert expired and all(m in fired or m * DAY >= lifetime for m in milestones)
        assert watch.reached(milestones, not_after, not_after + timedelta(days=999)) == ((), False)
        return
    assert T0 < at <= not_after
    assert watch.reached(milestones, not_after, at - timedelta(microseconds=1)) == ((), False)
    assert watch.reached(milestones, not_after, at) != ((), False)


def test_seen_adds_to_what_was_fired_and_keeps_the_expiry() -> None:
    watch = Watch(serial_number="AB", received_at=T0, fired=(10,))
    seen = watch.seen((30, 7), expired=False).seen((), expired=True).seen((7,), expired=False)
    assert (seen.fired, seen.expired) == ((30, 10, 7), True)
    assert (watch.fired, watch.expired) == ((10,), False)  # frozen: a new watch each time


def test_a_certificate_received_with_less_left_fires_only_the_milestones_below() -> None:
    not_after = T0 + timedelta(days=20)
    watch = Watch(serial_number="AB", received_at=T0)
    assert watch.reached((30, 10, 7, 0), not_after, T0 + timedelta(days=30)) == ((10, 7, 0), True)
    assert watch.next_at((30, 10, 7, 0), not_after) == T0 + timedelta(days=10)


# -- the journal keeps the watch and the outbox ---------------------------------------


async def test_a_journal_of_before_reads_fine_and_its_certificate_is_watched_from_not_before(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    issued = await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY)
    assert issued.bundle is not None
    data = json.loads((tmp_path / JOURNAL_NAME).read_text())
    assert data["watch"]["serial_number"] == issued.bundle.serial_number and data["outbox"] == []
    del data["watch"], data["outbox"]  # as the SDK wrote it before events
    (tmp_path / JOURNAL_NAME).write_text(json.dumps(data))
    journal = journal_of(tmp_path)
    assert (journal.watch, journal.outbox) == (None, ())

    sectigo_emulator.clock.advance(11 * DAY)
    events = Events()
    kept = await ensure_certificate(
        sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events
    )
    assert kept.action == "kept" and events.kinds() == ["30"]
    watch = journal_of(tmp_path).watch
    assert watch is not None and watch.fired == (30,)
    assert watch.received_at == issued.bundle.not_before  # dated by the certificate


@pytest.mark.parametrize(
    "damage",
    [
        {
            "watch": {
                "serial_number": "AB",
                "received_at": "2030-01-01T00:00:00",
                "fired": [],
                "expired": False,
            }
        },
        {
            "watch": {
                "serial_number": "AB",
                "received_at": "2030-01-01T00:00:00+00:00",
                "fired": [-1],
                "expired": False,
            }
        },
        {"outbox": [{**LifecycleEvent(kind="issued").to_dict(), "kind": "exploded"}]},
        {"outbox": "not a list of events"},
    ],
    ids=["naive time", "negative days", "unknown kind", "not a list"],
)
async def test_a_damaged_watch_or_outbox_is_a_journal_error(
    sectigo_client: SectigoClient, tmp_path: Path, damage: dict[str, object]
) -> None:
    from sectigo_iot.lifecycle import JournalError

    await ensure_certificate(sectigo_client, SPEC, tmp_path)
    data = json.loads((tmp_path / JOURNAL_NAME).read_text())
    (tmp_path / JOURNAL_NAME).write_text(json.dumps({**data, **damage}))
    with pytest.raises(JournalError, match="damaged"):
        read_journal(tmp_path)


# -- milestones and the expiry, moving the clock day by day ---------------------------


async def test_milestones_fire_once_each_in_order_day_by_day_and_start_over_when_renewed(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    events = Events()
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events)
    sectigo_emulator.clock.advance(DAY / 2)  # runs land half a day off each threshold
    by_day: dict[int, list[str]] = {}
    for day in range(1, 86):
        sectigo_emulator.clock.advance(DAY)
        before, told = journal_file(tmp_path), len(events)
        await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events)
        if len(events) > told:
            by_day[day] = events.kinds()[told:]
            if "renewed" in by_day[day]:
                sectigo_emulator.clock.advance(DAY / 2)  # the next one half a day off too
        else:
            assert journal_file(tmp_path) == before  # nothing reached: nothing written
    # 40 days of validity, runs half a day off: the renewal at expiry comes last that day
    assert by_day == {
        10: ["30"],
        30: ["10"],
        33: ["7"],
        40: ["0", "expired", "renewed"],
        50: ["30"],
        70: ["10"],
        73: ["7"],
        80: ["0", "expired", "renewed"],
    }
    serials = [event.serial_number for event in events]
    assert events[0].kind == "issued" and len(set(serials)) == 3
    for event in events:
        assert event.folder == tmp_path and event.key is None and event.error is None
        assert event.days_left is not None and event.not_after is not None
        if event.milestone is not None:
            assert event.milestone - 1 < event.days_left <= event.milestone  # on its day
    journal = journal_of(tmp_path)
    assert journal.outbox == () and journal.watch is not None
    assert journal.current is not None and journal.watch.serial_number == journal.current.serial
    assert journal.watch.fired == () and not journal.watch.expired  # the third: nothing yet


@pytest.mark.sectigo_emulator(key_type="ec-p256", validity_days=20)
async def test_a_certificate_received_with_20_days_left_fires_10_7_0_not_30(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    events = Events()
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events)
    for _ in range(21):
        sectigo_emulator.clock.advance(DAY)
        await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events)
    assert events.kinds() == ["issued", "10", "7", "0", "expired", "renewed"]


async def test_a_milestone_due_with_the_renewal_fires_first(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    policy = RenewalPolicy(renew_before=timedelta(days=10))
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=policy)
    sectigo_emulator.clock.advance(30.5 * DAY)  # 9.5 days left: 30 and 10 reached, renewal due
    events = Events()
    renewed = await ensure_certificate(
        sectigo_client, SPEC, tmp_path, policy=policy, on_event=events
    )
    assert renewed.action == "renewed" and renewed.bundle is not None and first.bundle is not None
    assert events.kinds() == ["30", "10", "renewed"]
    old, new = first.bundle.serial_number, renewed.bundle.serial_number
    assert [event.serial_number for event in events] == [old, old, new]
    assert events[2].days_left == pytest.approx(40, abs=0.01)
    watch = journal_of(tmp_path).watch
    assert watch is not None and (watch.serial_number, watch.fired) == (new, ())


async def test_expired_fires_once_while_renewals_fail_then_renewed_and_the_next_starts_over(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    policy = RenewalPolicy(renew_before=timedelta(days=3))
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=policy)
    assert first.bundle is not None
    sectigo_emulator.clock.advance(DAY / 2)
    refused = sectigo_emulator.inject("PUT", CREATE, "error", times=6, status=400)
    events = Events()
    for run in range(6):  # days 37.5 to 42.5 after the issue: due from 37, expired from 40
        sectigo_emulator.clock.advance((37 if run == 0 else 1) * DAY)
        with pytest.raises(BadRequestError):
            await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=policy, on_event=events)
    assert refused.hits == 6
    assert events.kinds() == [
        *["30", "10", "7", "failed"],  # all reached by the jump to day 37.5
        *["failed", "failed"],
        *["0", "expired", "failed"],
        *["failed", "failed"],
    ]
    assert {event.serial_number for event in events} == {first.bundle.serial_number}
    failures = [event for event in events if event.kind == "failed"]
    assert all(event.error and "BadRequestError" in event.error for event in failures)
    assert [round(event.days_left or 0, 1) for event in failures] == [
        2.5,
        1.5,
        0.5,
        -0.5,
        -1.5,
        -2.5,
    ]

    sectigo_emulator.clock.advance(DAY)
    told = len(events)
    renewed = await ensure_certificate(
        sectigo_client, SPEC, tmp_path, policy=policy, on_event=events
    )
    assert renewed.action == "renewed" and events.kinds()[told:] == ["renewed"]
    sectigo_emulator.clock.advance(11 * DAY)
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=policy, on_event=events)
    assert events.kinds()[told:] == ["renewed", "30"]
    assert renewed.bundle is not None and events[-1].serial_number == renewed.bundle.serial_number


@pytest.mark.sectigo_emulator(key_type="ec-p256", validity_days=400)
async def test_hundreds_of_milestones_at_once_keep_the_journal_small_and_readable(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    policy = RenewalPolicy(renew_before=timedelta(0), milestones=range(400))
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=policy)
    sectigo_emulator.clock.advance(401 * DAY)  # all 400 reached in one run
    told: list[tuple[str, int]] = []

    def on_event(event: LifecycleEvent) -> None:
        try:
            owed = len(journal_of(tmp_path).outbox)  # what a crash now would leave
        except Exception as exc:
            owed = -1
            told.append((repr(exc), owed))
        told.append((_kind(event), owed))

    result = await ensure_certificate(
        sectigo_client, SPEC, tmp_path, policy=policy, on_event=on_event
    )
    assert result.action == "renewed"
    assert [kind for kind, _ in told] == [*map(str, range(399, -1, -1)), "expired", "renewed"]
    assert max(owed for _, owed in told) <= 16 and min(owed for _, owed in told) >= 1


# -- with and without a callback ------------------------------------------------------


async def test_without_on_event_milestones_are_recorded_so_they_do_not_fire_later(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY)
    sectigo_emulator.clock.advance(31 * DAY)  # 30 and 10 reached, no one told
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY)
    journal = journal_of(tmp_path)
    assert journal.watch is not None and journal.watch.fired == (30, 10)
    assert journal.outbox == ()
    sectigo_emulator.clock.advance(3 * DAY)
    events = Events()
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events)
    assert events.kinds() == ["7"]


async def test_dry_run_fires_nothing_and_writes_nothing(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY)
    sectigo_emulator.clock.advance(41 * DAY)  # every milestone, the expiry and the renewal
    before, events = (tmp_path / JOURNAL_NAME).read_bytes(), Events()
    plan = await ensure_certificate(
        sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events, dry_run=True
    )
    assert (plan.action, plan.dry_run, events) == ("renewed", True, [])
    assert (tmp_path / JOURNAL_NAME).read_bytes() == before
    await ensure_certificate(sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events)
    assert events.kinds() == ["30", "10", "7", "0", "expired", "renewed"]


@pytest.mark.parametrize("kind", [Events, AsyncEvents], ids=["sync", "async"])
async def test_a_sync_or_async_callback_is_told_issued_renewed_and_revoked(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path, kind: type[Events]
) -> None:
    events = kind()
    issued = await ensure_certificate(sectigo_client, SPEC, tmp_path, on_event=events)
    renewed = await ensure_certificate(
        sectigo_client, SPEC, tmp_path, force=True, revoke_replaced=True, on_event=events
    )
    assert issued.bundle is not None and renewed.bundle is not None and renewed.revoked
    old, new = issued.bundle.serial_number, renewed.bundle.serial_number
    assert [(event.kind, event.serial_number) for event in events] == [
        ("issued", old),
        ("renewed", new),
        ("revoked", old),
    ]
    assert events[1].not_after == renewed.bundle.not_after
    assert [r.serial_number for r in sectigo_emulator.revocations()] == [old]
    assert journal_of(tmp_path).outbox == ()


async def test_a_revocation_owed_by_an_earlier_run_is_told_when_a_keep_settles_it(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    await ensure_certificate(sectigo_client, SPEC, tmp_path, force=True)
    assert first.bundle is not None
    old = first.bundle.serial_number
    write_journal(tmp_path, journal_of(tmp_path).replace(revoke_pending=(old,)))
    events = Events()
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path, on_event=events)
    assert (kept.action, kept.revoked) == ("kept", True)
    assert [(event.kind, event.serial_number) for event in events] == [("revoked", old)]
    assert [r.serial_number for r in sectigo_emulator.revocations()] == [old]
    journal = journal_of(tmp_path)
    assert (journal.revoke_pending, journal.outbox) == ((), ())


async def test_the_new_certificate_is_live_when_the_callback_is_told(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    seen: list[tuple[str, str | None, int]] = []

    def on_event(event: LifecycleEvent) -> None:
        live = (tmp_path / "live").readlink().name
        recorded = journal_of(tmp_path)
        seen.append((live, event.serial_number, len(recorded.outbox)))

    result = await ensure_certificate(sectigo_client, SPEC, tmp_path, on_event=on_event)
    assert result.bundle is not None
    serial = result.bundle.serial_number
    assert seen == [(serial, serial, 1)]  # live, and recorded before the call
    assert journal_of(tmp_path).outbox == ()  # cleared after


async def test_a_callback_that_raises_is_logged_and_the_run_goes_on(
    sectigo_client: SectigoClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    changes: list[str] = []

    def on_event(event: LifecycleEvent) -> None:
        raise RuntimeError(f"the pager is down ({event.kind})")

    result = await ensure_certificate(
        sectigo_client,
        SPEC,
        tmp_path,
        force=True,
        on_event=on_event,
        on_change=lambda result: changes.append(result.action),
    )
    assert result.action == "issued" and changes == ["issued"]
    assert "on_event failed on a issued event: RuntimeError: the pager is down" in caplog.text
    assert journal_of(tmp_path).outbox == ()  # told: a raising callback was still called


async def test_on_event_that_is_not_callable_is_refused_before_anything_is_written(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="on_event must be callable"):
        await ensure_certificate(sectigo_client, SPEC, tmp_path, on_event="pager")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="on_event must be callable"):
        await renew_due(sectigo_client, [tmp_path], on_event=42)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


async def test_events_owed_are_kept_without_a_callback_and_told_by_the_next_with_one(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    issued = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    owed = LifecycleEvent(kind="issued", folder=tmp_path, serial_number="0A")
    write_journal(tmp_path, journal_of(tmp_path).replace(outbox=(owed,)))
    before = journal_file(tmp_path)
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert kept.action == "kept" and journal_file(tmp_path) == before  # no one to tell
    events = Events()
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path, on_event=events)
    assert kept.action == "kept" and events == [owed] and journal_of(tmp_path).outbox == ()
    assert issued.bundle is not None and kept.bundle is not None
    assert kept.bundle.serial_number == issued.bundle.serial_number


# -- failures -------------------------------------------------------------------------


async def test_a_rejected_batch_fires_failed_then_raises(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    sectigo_emulator.set_next_outcome("rejected")
    events = Events()
    with pytest.raises(BatchRejectedError):
        await ensure_certificate(sectigo_client, SPEC, tmp_path, on_event=events)
    assert events.kinds() == ["failed"]
    assert events[0].error is not None and events[0].error.startswith("BatchRejectedError")
    assert (events[0].folder, events[0].serial_number) == (tmp_path, None)
    journal = journal_of(tmp_path)
    assert journal.last_failure is not None and journal.outbox == ()
    await ensure_certificate(sectigo_client, SPEC, tmp_path, on_event=events)
    assert events.kinds() == ["failed", "issued"]


async def test_renew_due_over_several_folders_tells_each_folder_its_events(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folders = [tmp_path / name for name in ("a", "b", "c")]
    for index, folder in enumerate(folders):
        spec = CertificateSpec(authority_id=1, common_name=f"{index}.example.com")
        await ensure_certificate(sectigo_client, spec, folder)
    stranger = tmp_path / "no-journal"
    stranger.mkdir()
    sectigo_emulator.clock.advance(31 * DAY)  # 30 and 10 reached; the 2/3 renewal due
    events = Events()
    results = await renew_due(
        sectigo_client, [*folders, stranger], policy=AT_EXPIRY, on_event=events, concurrency=2
    )
    assert [result.action for result in results] == ["kept", "kept", "kept", "failed"]
    told: dict[Path | None, list[str]] = {}
    for event in events:
        told.setdefault(event.folder, []).append(_kind(event))
    assert told == {
        **{folder.resolve(): ["30", "10"] for folder in folders},
        stranger.resolve(): ["failed"],
    }
    failed = next(event for event in events if event.kind == "failed")
    assert failed.error is not None and "has no journal" in failed.error

    sectigo_emulator.clock.advance(10 * DAY)
    events.clear()
    results = await renew_due(sectigo_client, folders, on_event=events)  # default policy: due
    assert [result.action for result in results] == ["renewed"] * 3
    assert sorted(map(_kind, events)) == sorted(["7", "0", "expired", "renewed"] * 3)
    for folder in folders:
        mine = [_kind(event) for event in events if event.folder == folder.resolve()]
        assert mine == ["7", "0", "expired", "renewed"]


def _kind(event: LifecycleEvent) -> str:
    return event.kind if event.milestone is None else f"{event.milestone}"


# -- secrets --------------------------------------------------------------------------

PASSWORD = "canary-login-pw-5e21"
P12 = "canary-P12-pw-91c4d7"


@pytest.mark.sectigo_emulator(key_type="ec-p256", validity_days=40, users={"canary": PASSWORD})
async def test_events_never_hold_a_password(
    sectigo_emulator: Emulator,
    sectigo_client: SectigoClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import sectigo_iot.certs

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(sectigo_iot.certs, "generate_password", lambda *a, **k: P12)
    journals: list[str] = []
    events = Events()

    def on_event(event: LifecycleEvent) -> None:
        events(event)
        journals.append((tmp_path / JOURNAL_NAME).read_text())

    # a hostile server echoes both passwords in its refusal
    sectigo_emulator.inject("PUT", CREATE, "error", status=400, message=f"no: {PASSWORD} / {P12}")
    with pytest.raises(BadRequestError):
        await ensure_certificate(
            sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=on_event
        )
    sectigo_emulator.set_next_outcome("rejected")
    with pytest.raises(BatchRejectedError):
        await ensure_certificate(
            sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=on_event
        )

    def leaky_hook(result: object) -> None:  # a caller's hook that fails with both in hand
        raise RuntimeError(f"hook saw {P12} and {PASSWORD}")

    with pytest.raises(RuntimeError, match="hook saw"):
        await ensure_certificate(
            sectigo_client,
            SPEC,
            tmp_path,
            policy=AT_EXPIRY,
            on_event=on_event,
            on_change=leaky_hook,
        )
    sectigo_emulator.clock.advance(41 * DAY)
    await ensure_certificate(
        sectigo_client, SPEC, tmp_path, policy=AT_EXPIRY, revoke_replaced=True, on_event=on_event
    )
    kinds = [_kind(event) for event in events]
    assert kinds == [
        "failed",
        "failed",
        "issued",
        "failed",
        "30",
        "10",
        "7",
        "0",
        "expired",
        "renewed",
        "revoked",
    ]
    assert "***" in (events[0].error or "") and "***" in (events[3].error or "")
    shown = [repr(event) for event in events] + [json.dumps(e.to_dict()) for e in events]
    for secret in (PASSWORD, P12):
        assert not any(secret in text for text in shown)
        assert not any(secret in text for text in journals)
        assert secret not in caplog.text


# -- a process killed inside the callback ---------------------------------------------

WORKER = """
import json, os, signal, sys, time
from datetime import timedelta
import anyio
from sectigo_iot import SectigoClient
from sectigo_iot.lifecycle import CertificateSpec, RenewalPolicy, ensure_certificate

async def main(url, folder, offset, kill_on):
    def on_event(event):
        print(json.dumps(event.to_dict()), flush=True)
        if event.kind == kill_on:
            os.kill(os.getpid(), signal.SIGKILL)

    clock = lambda: time.time() + float(offset)  # the emulator's time
    async with SectigoClient("tester", "supersecretsquirrel", base_url=url, clock=clock,
                             token_store="memory", allow_insecure_http=True) as client:
        spec = CertificateSpec(authority_id=1, common_name="node.example.com")
        policy = RenewalPolicy(renew_before=timedelta(0))
        result = await ensure_certificate(client, spec, folder, policy=policy,
                                          on_event=on_event)
        print(result.action, flush=True)

anyio.run(main, *sys.argv[1:])
"""


def run_worker(
    emulator: Emulator, url: str, folder: Path, kill_on: str = "", stderr: list[str] | None = None
) -> tuple[int, list[LifecycleEvent], str]:
    """One run of ``ensure_certificate`` in its own process (as root, one that obeys
    file permissions): its exit code, the events it was told and its last line."""
    import time

    offset = emulator.clock() - time.time()
    worker = subprocess.run(
        [sys.executable, "-c", WORKER, url, str(folder), str(offset), kill_on],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=drop_root_powers if os.geteuid() == 0 else None,
    )
    if stderr is not None:
        stderr.append(worker.stderr)
    lines = worker.stdout.splitlines()
    events = [LifecycleEvent.from_dict(json.loads(line)) for line in lines if line[:1] == "{"]
    last = lines[-1] if lines else ""
    return worker.returncode, events, last if last[:1] != "{" else ""


@pytest.mark.parametrize("kill_on", ["issued", "milestone"])
def test_a_process_killed_in_the_callback_is_told_again_and_recorded_once(
    tmp_path: Path, kill_on: str
) -> None:
    with Emulator(key_type="ec-p256", validity_days=40) as emulator:
        with emulator.run_in_thread() as url:
            if kill_on == "milestone":
                assert run_worker(emulator, url, tmp_path)[2] == "issued"
                emulator.clock.advance(11 * DAY)
            code, told, _ = run_worker(emulator, url, tmp_path, kill_on=kill_on)
            assert code == -9 and [event.kind for event in told][-1] == kill_on
            killed = told[-1]
            journal = journal_of(tmp_path)
            assert journal.outbox == (killed,)  # recorded once, not cleared
            assert journal.watch is not None
            assert journal.watch.fired == ((30,) if kill_on == "milestone" else ())

            code, told, action = run_worker(emulator, url, tmp_path)
            assert (code, action) == (0, "kept")
            assert told == [killed]  # told again, once
            journal = journal_of(tmp_path)
            assert journal.outbox == ()
            assert journal.watch is not None
            assert journal.watch.fired == ((30,) if kill_on == "milestone" else ())

            assert run_worker(emulator, url, tmp_path)[1:] == ([], "kept")  # nothing more
        assert emulator.licenses_used == 1


def test_a_read_only_folder_is_kept_and_its_milestone_told_once_it_can_be_recorded(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "node"
    with (
        Emulator(key_type="ec-p256", validity_days=40) as emulator,
        emulator.run_in_thread() as url,
    ):
        assert run_worker(emulator, url, folder)[2] == "issued"
        emulator.clock.advance(11 * DAY)  # milestone 30 reached
        paths = [folder, *folder.rglob("*")]
        listing = sorted((str(p), p.lstat().st_mtime_ns) for p in paths)
        for path in paths:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o222)
        try:
            probe = subprocess.run(
                [sys.executable, "-c", "import sys; open(sys.argv[1], 'w')", str(folder / "p")],
                capture_output=True,
                preexec_fn=drop_root_powers if os.geteuid() == 0 else None,
            )
            if probe.returncode == 0:
                skip_outside_ci("this system lets the process write a read-only folder")
            logs: list[str] = []
            assert run_worker(emulator, url, folder, stderr=logs) == (0, [], "kept")
            assert "milestones reached, not recorded" in logs[0]
        finally:
            for path in paths:
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | 0o200)
        assert sorted((str(p), p.lstat().st_mtime_ns) for p in paths) == listing

        code, told, action = run_worker(emulator, url, folder)
        assert (code, [event.milestone for event in told], action) == (0, [30], "kept")
        assert run_worker(emulator, url, folder)[1:] == ([], "kept")


# -- under trio too -------------------------------------------------------------------


def test_events_under_trio(tmp_path: Path) -> None:
    async def main() -> list[str]:
        with Emulator(key_type="ec-p256", validity_days=40) as emulator:
            events = AsyncEvents()
            async with emulator.client() as client:
                await ensure_certificate(client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events)
                emulator.clock.advance(11 * DAY)
                await ensure_certificate(client, SPEC, tmp_path, policy=AT_EXPIRY, on_event=events)
            return events.kinds()

    assert anyio.run(main, backend="trio") == ["issued", "30"]
