"""A simulated year: certificates of 90 days kept valid by a fleet (SQLite) or by folders
(``renew_due``), on the emulator's clock (frozen, then moved forward), with a share of the creates
failing: a third refused with 429, a third answered 503 before anything is made, a
third answered 503 after the batch was made (the reply is lost). The emulator's faults
decide which creates fail, from a seeded generator, so a run is reproducible; the
clients never sleep in real time. The fleet is driven each hour until nothing is due at
that hour (``run_once()`` again); the folders get one ``renew_due()`` every 12 hours,
as certbot's timer runs (hourly, 50 idle folders would cost minutes a year).

- ``year_expired``: certificates still in use at or after their ``notAfter`` (a successor
  handed over only then, or none by the end);
- ``year_max_hour_share``: the most renewals handed over in one hour, as a share of all
  the renewals of the run (the tests also bound it as a share of the fleet: of one wave);
- ``year_extra_licenses``: licenses the emulator counted (certificates made, by its own
  books) beyond the certificates handed over, once the last attempts are finished;
- ``year_certificates``: certificates handed over (first issues and renewals);
- ``year_days``: the days simulated.

The tests (``tests/fleet/test_year.py``) run the same :func:`fleet_year` and
:func:`folder_year` and check the rest: each milestone reached fired exactly once.
"""

from __future__ import annotations

import bisect
import collections
import inspect
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from _report import Scale

from sectigo_iot import SectigoClient
from sectigo_iot.emulator import Clock, Emulator, Fault
from sectigo_iot.fleet import Delivery, Fleet, RecordState, SQLiteStore
from sectigo_iot.lifecycle import (
    JOURNAL_NAME,
    CertificateResult,
    CertificateSpec,
    LifecycleEvent,
    RenewalPolicy,
    ensure_certificate,
    load_certificate,
    read_journal,
    renew_due,
)

__all__ = [
    "CREATE",
    "FAILURE_KINDS",
    "KEYS",
    "Handed",
    "Year",
    "fleet_year",
    "folder_year",
    "measure_year",
]

#: the metrics of this module, in report order
KEYS = (
    "year_expired",
    "year_max_hour_share",
    "year_extra_licenses",
    "year_certificates",
    "year_days",
)
CREATE = "/api/v1/batches/createSingleCertBatch"
#: how a failing create fails, in equal shares: (fault, status)
FAILURE_KINDS = (("rate_limit", 429), ("error", 503), ("error_after", 503))
FAILING = 0.20  # the share of creates that fail
VALIDITY_DAYS = 90
#: 2026-01-01 00:00 UTC, where every simulated year starts
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
MAX_PASSES = 50  # passes in one hour before the fleet is taken to be looping
SETTLE_HOURS = 72  # hours after the year for attempts in flight to finish (no faults)
#: how often the folders' renew_due runs: twice a day, as certbot's timer does (an idle
#: run costs about a millisecond per folder, mostly file reads in worker threads)
FOLDER_RUNS = timedelta(hours=12)
#: the faults' seeds are SEED, SEED + 1, SEED + 2: these give each kind its third of the
#: failures early (within a fifth of it from the first 75 creates to 8,000)
SEED = 180


@dataclass(frozen=True)
class Handed:
    """A certificate handed over: to a fleet's sink, or put in place in a folder."""

    key: str
    serial: str
    not_after: datetime
    at: datetime


@dataclass
class Year:
    """What a simulated year did: every hour driven, every certificate handed over,
    every event, and the emulator's own books."""

    keys: int
    days: int
    ticks: list[datetime] = field(default_factory=list)
    handed: list[Handed] = field(default_factory=list)
    events: list[LifecycleEvent] = field(default_factory=list)
    licenses: int = 0
    creates: int = 0
    #: the serial each key holds at the end: by the fleet's store, or in the folder
    kept: dict[str, str | None] = field(default_factory=dict)
    fault_hits: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def certificates(self) -> int:
        return len(self.handed)

    @property
    def extra_licenses(self) -> int:
        return self.licenses - self.certificates

    def lives(self) -> Iterator[tuple[Handed, datetime]]:
        """Each certificate with the time it stopped being current (its successor was
        handed over, or the last hour driven)."""
        by_key: dict[str, list[Handed]] = collections.defaultdict(list)
        for handed in self.handed:
            by_key[handed.key].append(handed)
        for certificates in by_key.values():
            certificates.sort(key=lambda handed: handed.at)
            ends = [successor.at for successor in certificates[1:]] + [self.ticks[-1]]
            yield from zip(certificates, ends, strict=True)

    def lapsed(self) -> list[Handed]:
        """The certificates still current at or after their ``notAfter``."""
        return [handed for handed, end in self.lives() if end >= handed.not_after]

    def renewals_by_hour(self) -> collections.Counter[datetime]:
        """Renewals (not first issues) handed over in each hour."""
        seen: set[str] = set()
        counts: collections.Counter[datetime] = collections.Counter()
        for handed in sorted(self.handed, key=lambda handed: handed.at):
            if handed.key in seen:
                counts[handed.at] += 1
            seen.add(handed.key)
        return counts

    @property
    def max_hour_share(self) -> float:
        """The most renewals in one hour / every renewal of the run."""
        counts = self.renewals_by_hour()
        return max(counts.values(), default=0) / max(sum(counts.values()), 1)

    @property
    def max_hour_fleet_share(self) -> float:
        """The most renewals in one hour / the number of keys: a wave renews each key
        once, so this is the share of a wave (1.0 without a spread)."""
        return max(self.renewals_by_hour().values(), default=0) / self.keys

    def milestones_reached(self, milestones: tuple[int, ...]) -> set[tuple[str, int]]:
        """``(serial, days)`` of each milestone a certificate reached while current: an
        hour driven at or after ``notAfter - days`` and no later than its successor (the
        milestone fires before the renewal of the same pass), and more than ``days``
        left when it was handed over."""
        reached = set()
        for handed, end in self.lives():
            for days in milestones:
                due = handed.not_after - timedelta(days=days)
                if handed.not_after - handed.at <= timedelta(days=days):
                    continue
                first = bisect.bisect_left(self.ticks, due)
                if first < len(self.ticks) and self.ticks[first] <= end:
                    reached.add((handed.serial, days))
        return reached

    def milestones_fired(self) -> collections.Counter[tuple[str, int]]:
        """How often each ``(serial, days)`` milestone event was received."""
        return collections.Counter(
            (str(event.serial_number), int(event.milestone or 0))
            for event in self.events
            if event.kind == "milestone"
        )

    def metrics(self) -> dict[str, float]:
        return {
            "year_expired": len(self.lapsed()),
            "year_max_hour_share": self.max_hour_share,
            "year_extra_licenses": self.extra_licenses,
            "year_certificates": self.certificates,
            "year_days": self.days,
        }


async def _no_sleep(seconds: float) -> None:
    """A client's pause in simulated time: it never waits in real time."""
    await anyio.lowlevel.checkpoint()


@contextmanager
def _emulator(records: int, failing: float, seed: int) -> Iterator[tuple[Emulator, list[Fault]]]:
    """An emulator on a frozen clock whose creates fail ``failing`` of the time, in the
    three ways of :data:`FAILURE_KINDS` equally (seeded), and those faults."""
    clock = Clock(start=START.timestamp())
    options: dict[str, Any] = {"key_type": "ec-p256", "pkcs12_format": "modern"}
    with Emulator(
        clock=clock, balance=records * 100, validity_days=VALIDITY_DAYS, **options
    ) as emulator:
        yield emulator, _inject_failures(emulator, failing, seed)


def _inject_failures(emulator: Emulator, failing: float, seed: int) -> list[Fault]:
    """Each fault strikes its share of what the ones before it passed over."""
    faults: list[Fault] = []
    if failing <= 0:
        return faults
    share, left = failing / len(FAILURE_KINDS), 1.0
    for index, (kind, status) in enumerate(FAILURE_KINDS):
        probability = share / left
        faults.append(
            emulator.inject(
                "PUT",
                CREATE,
                kind,
                10**9,
                status=status,
                probability=probability,
                seed=seed + index,
            )
        )
        left -= share
    return faults


def _client(emulator: Emulator) -> SectigoClient:
    return emulator.client(sleep=_no_sleep, timeout=30)


def _book(year: Year, emulator: Emulator, faults: list[Fault], started: float) -> Year:
    """The emulator's own books, the faults' hits, and the time the year took."""
    year.fault_hits = {fault.kind: fault.hits for fault in faults}
    year.licenses = emulator.licenses_used
    year.creates = emulator.stats.requests[f"PUT {CREATE}"]
    year.seconds = time.perf_counter() - started
    return year


# -- the fleet -------------------------------------------------------------------------


async def fleet_year(
    records: int,
    days: int,
    workdir: Path,
    *,
    failing: float = FAILING,
    policy: RenewalPolicy | None = None,
    seed: int = SEED,
    on_hour: Callable[[Fleet], Any] | None = None,
) -> Year:
    """``records`` certificates kept for ``days`` by one fleet on an SQLite store in
    ``workdir``; ``on_hour`` (sync or async) sees the fleet after each hour."""
    year = Year(keys=records, days=days)
    started = time.perf_counter()
    with _emulator(records, failing, seed) as (emulator, faults):

        def sink(delivery: Delivery) -> None:
            bundle = delivery.bundle
            year.handed.append(
                Handed(delivery.key, delivery.serial_number, bundle.not_after, year.ticks[-1])
            )

        store = SQLiteStore(workdir / "year.sqlite3")
        async with (
            _client(emulator) as client,
            Fleet(client, store, sinks=[sink], policy=policy, on_event=year.events.append) as fleet,
        ):
            for index in range(records):
                spec = CertificateSpec(authority_id=1, common_name=f"m{index}.year.example.com")
                await fleet.want(f"m{index}", spec)
            for hour in range(days * 24):
                if hour:
                    emulator.clock.advance(HOUR.total_seconds())
                await _fleet_hour(fleet, year)
                if on_hour is not None:
                    outcome = on_hour(fleet)
                    if inspect.isawaitable(outcome):
                        await outcome
            emulator.clear_faults()  # the attempts in flight finish, nothing new is due
            for _ in range(SETTLE_HOURS):
                if await _settled(fleet):
                    break
                emulator.clock.advance(HOUR.total_seconds())
                await _fleet_hour(fleet, year)
            if not await _settled(fleet):
                raise RuntimeError(f"records still not valid {SETTLE_HOURS} h after the year")
            year.kept = {record.key: record.serial_number for record in await fleet.list()}
        return _book(year, emulator, faults, started)


async def _fleet_hour(fleet: Fleet, year: Year) -> None:
    """Passes until nothing is due at this hour."""
    now = fleet.now()
    year.ticks.append(now)
    for _ in range(MAX_PASSES):
        await fleet.run_once()
        due = await fleet.store.next_action_at()
        if due is None or due > now:
            return
    raise RuntimeError(f"the fleet still has work due at {now} after {MAX_PASSES} passes")


async def _settled(fleet: Fleet) -> bool:
    return all(record.state is RecordState.VALID for record in await fleet.list())


# -- folders ---------------------------------------------------------------------------


async def folder_year(
    folders: int,
    days: int,
    workdir: Path,
    *,
    failing: float = FAILING,
    policy: RenewalPolicy | None = None,
    seed: int = SEED,
    every: timedelta = FOLDER_RUNS,
) -> Year:
    """``folders`` certificates kept for ``days`` in folders under ``workdir`` by one
    ``renew_due()`` ``every`` so often (a folder without a journal yet gets
    ``ensure_certificate``), the clock moved that much between runs."""
    if every % HOUR or timedelta(days=days) % every:
        raise ValueError(f"runs every {every} must be whole hours that divide the days")
    year = Year(keys=folders, days=days)
    started = time.perf_counter()
    paths = [(workdir / f"f{index}").resolve() for index in range(folders)]
    specs = {
        path: CertificateSpec(authority_id=1, common_name=f"{path.name}.year.example.com")
        for path in paths
    }
    with _emulator(folders, failing, seed) as (emulator, faults):
        async with _client(emulator) as client:
            for run in range(timedelta(days=days) // every):
                if run:
                    emulator.clock.advance(every.total_seconds())
                await _folder_run(client, paths, specs, policy, year)
            emulator.clear_faults()
            for _ in range(SETTLE_HOURS):
                if _folders_settled(paths):
                    break
                emulator.clock.advance(HOUR.total_seconds())
                await _folder_run(client, paths, specs, policy, year)
            if not _folders_settled(paths):
                raise RuntimeError(f"folders still pending {SETTLE_HOURS} h after the year")
            year.kept = {path.name: load_certificate(path).serial_number for path in paths}
        return _book(year, emulator, faults, started)


async def _folder_run(
    client: SectigoClient,
    paths: list[Path],
    specs: dict[Path, CertificateSpec],
    policy: RenewalPolicy | None,
    year: Year,
) -> None:
    now = datetime.fromtimestamp(client.clock(), timezone.utc)
    year.ticks.append(now)
    fresh = [path for path in paths if not (path / JOURNAL_NAME).exists()]
    results: list[CertificateResult] = []
    for path in fresh:
        try:
            results.append(
                await ensure_certificate(
                    client, specs[path], path, policy=policy, on_event=year.events.append
                )
            )
        except Exception as exc:  # as renew_due does: the next hour tries again
            results.append(CertificateResult.failure(path, exc, dry_run=False))
    kept = [path for path in paths if path not in fresh]
    if kept:
        results += await renew_due(client, kept, policy=policy, on_event=year.events.append)
    for result in results:
        if result.changed:
            assert result.bundle is not None
            bundle = result.bundle
            year.handed.append(
                Handed(result.folder.name, bundle.serial_number, bundle.not_after, now)
            )


def _folders_settled(paths: list[Path]) -> bool:
    """Whether no folder has an attempt in flight (its journal's ``pending``)."""
    for path in paths:
        journal = read_journal(path)
        if journal is None or journal.pending is not None or journal.current is None:
            return False
    return True


# -- the measurement -------------------------------------------------------------------


def measure_year(scale: Scale, notes: dict[str, str]) -> dict[str, float]:
    """The year's figures for ``scale.year_records`` records over ``scale.year_days``."""

    async def simulate() -> Year:
        with tempfile.TemporaryDirectory(prefix="sectigo-bench-year-") as workdir:
            return await fleet_year(scale.year_records, scale.year_days, Path(workdir))

    year = anyio.run(simulate)
    failed = sum(year.fault_hits.values())
    notes["year_certificates"] = (
        f"{scale.year_records:,} records of {VALIDITY_DAYS} days over {scale.year_days} days "
        f"(a fleet on SQLite, the clock moved an hour at a time) in {year.seconds:.1f} s; "
        f"{year.creates:,} creates, {failed:,} failed ({failed / max(year.creates, 1):.0%})"
    )
    return year.metrics()
