"""The fleet: records worked through the lifecycle's state machine by any number of
workers, each record claimed under a lease and written under its fencing token."""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import inspect
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from attrs import evolve as _evolve

from .._hooks import step_span
from .._logging import get_logger, redact
from ..errors import (
    AmbiguousRequestError,
    BatchFailedError,
    BatchRejectedError,
    InvalidInputError,
    SectigoError,
)
from ..lifecycle import PENDING_SETTLE, CertificateSpec, PendingAttempt, RenewalPolicy
from ..lifecycle._events import EventKind, LifecycleEvent, OnEvent, Watch, days_left, notify
from ..lifecycle._policy import policy_from
from ..lifecycle._steps import (
    Subject,
    absence_is_proof,
    fetch,
    find_own,
    leaf_of,
    new_attempt,
    revoke_serials,
    settled_at,
    submit,
)
from ._model import FINAL_STATES, Delivery, FleetRecord, HistoryEntry, RecordState, StepResult
from ._sinks import DeliveryError
from ._store import Change, Row, Secrets, Store, StoreError, check_key

if TYPE_CHECKING:
    from .._client import SectigoClient
    from ..certs import CertificateBundle

__all__ = ["Fleet", "Sink"]

logger = get_logger("sectigo_iot.fleet")
S = RecordState

DEFAULT_LEASE = timedelta(minutes=2)
DEFAULT_POLL_INTERVAL = timedelta(seconds=30)
#: a failing sink is retried after 1 minute, doubling up to 1 hour
RETRY_FIRST, RETRY_MAX = timedelta(minutes=1), timedelta(hours=1)
_MAX_ERROR = 500  # characters of an error kept on a record


class _SinkObject(Protocol):
    name: str

    async def deliver(self, delivery: Delivery) -> None: ...


#: a sink: an object with ``name`` and ``async deliver(delivery)``, or a callable
#: (sync or async) taking the Delivery
Sink = _SinkObject | Callable[[Delivery], Any]


class _Stop(Exception):
    """The record was taken by another worker or a command: drop it here."""


class Fleet:
    """Many certificates kept valid, keyed by the application's ids (see the guide).

    ``client`` talks to the API and gives the clock; ``store`` keeps the records
    (opened on entry, closed on exit); ``sinks`` receive every new certificate.
    A ``VALID`` record is renewed when its ``policy`` says (a RenewalPolicy: by default
    at 2/3 of the lifetime, spread; ``renew_before`` is its shorthand), a failed one
    retried after the policy's backoff. ``concurrency`` records
    are worked on at once; each is claimed for ``lease`` (renewed while a step runs,
    longer than the client's request timeout). ``run()`` looks for due records at
    least every ``poll_interval``. A create whose batch is not listed is sent again
    only once ``settle`` has passed and a full listing proves it absent.

    ``on_event`` (sync or async) gets a :class:`LifecycleEvent` for each certificate
    issued, renewed, delivered, revoked, each failure, each milestone of the policy
    and each expiry. An event is recorded with the change that caused it, then told:
    at least once (again after a crash in between), each milestone recorded once per
    certificate. ``metrics`` (``sectigo_iot.metrics.Metrics``) is kept up to date.
    """

    def __init__(
        self,
        client: SectigoClient,
        store: Store,
        *,
        sinks: Iterable[Sink] = (),
        renew_before: timedelta | None = None,
        policy: RenewalPolicy | None = None,
        concurrency: int = 4,
        lease: timedelta = DEFAULT_LEASE,
        poll_interval: timedelta = DEFAULT_POLL_INTERVAL,
        settle: timedelta = PENDING_SETTLE,
        worker_id: str | None = None,
        on_event: OnEvent | None = None,
        metrics: Any = None,
    ) -> None:
        self.policy = policy_from(policy, renew_before)
        if on_event is not None and not callable(on_event):
            raise InvalidInputError("on_event must be callable")
        self.on_event = on_event
        self.metrics = metrics
        self._metrics_filled = False  # every record given to the metrics once
        for name, value in (
            ("lease", lease),
            ("poll_interval", poll_interval),
            ("settle", settle),
        ):
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise InvalidInputError(f"{name} must be a timedelta >= 0, got {value!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInputError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        request_timeout = client.request_timeout
        if request_timeout is None or lease.total_seconds() <= request_timeout:
            raise InvalidInputError(
                f"the lease ({lease.total_seconds():g} s) must be longer than one request of "
                f"the client (timeout={request_timeout}); give a longer lease or a shorter "
                "client timeout"
            )
        self.client = client
        self.store = store
        self.sinks = _named_sinks(sinks)
        if not self.sinks:
            logger.warning(
                "a fleet without sinks hands certificates to no one: each key is dropped "
                "once its certificate is issued (every worker of a store needs the same sinks)"
            )
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.settle = settle
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._stopping: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"Fleet({self.store!r}, worker={self.worker_id!r}, sinks={list(self.sinks)})"

    async def __aenter__(self) -> Fleet:
        self._stopping = anyio.Event()
        await self.store.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.store.close()

    def stop(self) -> None:
        """Make :meth:`run` return once the steps in flight are done (no new claims)."""
        if self._stopping is not None:
            self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    # -- commands -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The fleet's clock: the client's."""
        return datetime.fromtimestamp(self.client.clock(), timezone.utc)

    async def want(self, key: str, spec: CertificateSpec) -> FleetRecord:
        """Create the record of ``key`` or change its spec. The same spec again changes
        nothing; a new one schedules a reissue (and revives a record that was cancelled,
        revoked or rejected)."""
        key = check_key(key)
        if not isinstance(spec, CertificateSpec):
            raise InvalidInputError(f"spec must be a CertificateSpec, got {type(spec).__name__}")
        now = self.now()

        def decide(row: Row | None) -> Change | None:
            if row is None:
                new = Row(key=key, spec=spec, state=S.PENDING, next_action_at=now)
                return self._change(row, new, "wanted", now)
            if row.spec == spec:
                return None
            new = row.replace(spec=spec, failures=0, last_error=None, next_action_at=now)
            if row.attempt is None and row.state is not S.REVOKING:
                # an attempt in flight goes on; its end sees the new spec and reissues
                new = new.replace(state=S.PENDING, revoke_owed=())
            return self._change(row, new, "the spec changed", now)

        row = await self.store.change(key, decide)
        assert row is not None
        self._observed(row)
        return row.public()

    async def get(self, key: str) -> FleetRecord | None:
        """The record of ``key`` with its history, or None."""
        row = await self.store.get(check_key(key))
        if row is None:
            return None
        return row.public(await self.store.history(key))

    async def list(self, state: RecordState | None = None) -> builtins.list[FleetRecord]:
        """Every record (in ``state`` when given), by key, without history."""
        if state is not None:
            state = RecordState(state)
        return [row.public() for row in await self.store.list(state)]

    async def retry(self, key: str) -> FleetRecord:
        """Work on the record now: a failure is retried at once, a rejected, cancelled or
        revoked record is issued anew, and an attempt that could not be confirmed is
        given up (a new create is sent: check the old batch first)."""
        now = self.now()

        def decide(row: Row) -> Row:
            new = row.replace(failures=0, last_error=None, next_action_at=now)
            if row.state in FINAL_STATES:
                return new.replace(state=S.PENDING, revoke_owed=(), attempt=None, secrets=None)
            if row.state is S.UNCONFIRMED:
                return new.replace(state=S.PENDING, attempt=None, attempt_serial=None, secrets=None)
            return new

        return await self._command(key, decide, "retry asked", now)

    async def cancel(self, key: str) -> FleetRecord:
        """Stop all work on the record: an attempt already sent is left as it is, the
        certificate in place stays where it was delivered and is not renewed."""
        now = self.now()

        def decide(row: Row) -> Row:
            if row.attempt is not None:
                logger.info("%s: batch %r is left as it is", key, row.attempt.batch_name)
            return row.replace(
                state=S.CANCELLED,
                next_action_at=None,
                attempt=None,
                attempt_serial=None,
                secrets=None,
                delivered=(),
            )

        return await self._command(key, decide, "cancelled", now)

    async def revoke(
        self, key: str, reason: str = "unspecified", *, all_certificates: bool = False
    ) -> FleetRecord:
        """Revoke the record's certificate (and the one of an attempt in flight, once it
        is issued; with ``all_certificates`` also every earlier one not expired yet); the
        record ends REVOKED. A second call does nothing; one cut short half way goes on
        where it stopped, and never revokes a certificate twice."""
        from ..certs import RevocationReason

        reason = RevocationReason.parse(reason).name.lower()
        now = self.now()

        def decide(row: Row) -> Row:
            if row.state in (S.REVOKED, S.REVOKING):
                return row
            owed: tuple[str, ...] = (row.serial_number,) if row.serial_number else ()
            if all_certificates:
                owed += tuple(serial for serial, end in row.superseded if end > now)
            return row.replace(
                state=S.REVOKING, revoke_owed=owed, revoke_reason=reason, next_action_at=now
            )

        return await self._command(key, decide, f"revocation asked ({reason})", now)

    async def _command(
        self, key: str, decide: Callable[[Row], Row], description: str, now: datetime
    ) -> FleetRecord:
        key = check_key(key)
        missing = False

        def change(row: Row | None) -> Change | None:
            nonlocal missing
            if row is None:
                missing = True
                return None
            new = decide(row)
            return None if new is row else self._change(row, new, description, now)

        row = await self.store.change(key, change)
        if missing or row is None:
            raise InvalidInputError(f"no record {key!r} in {self.store.location}")
        self._observed(row)
        return row.public()

    def _change(self, old: Row | None, new: Row, description: str, now: datetime) -> Change:
        """``new`` with its wake time (and its state's start, when the state changed),
        and the history entry of the change."""
        if old is None or old.state is not new.state:
            new = new.replace(state_since=now)
        new = self._stamped(new, now)
        entry = HistoryEntry(
            at=now,
            from_state=old.state if old is not None else None,
            to_state=new.state,
            description=description,
            worker=self.worker_id,
        )
        return Change(row=new, history=(entry,))

    # -- passes ---------------------------------------------------------------------------

    async def run(
        self, *, on_pass: Callable[[builtins.list[StepResult]], Any] | None = None
    ) -> None:
        """Work on due records until cancelled or :meth:`stop`: a pass, then sleep until
        the next action (at most ``poll_interval``); ``on_pass`` gets each pass's
        results. A store that fails is logged and tried again."""
        while not self.stopping:
            try:
                results = await self.run_once()
                if on_pass is not None:
                    on_pass(results)
                earliest = await self.store.next_action_at()
            except SectigoError as exc:
                logger.warning("fleet pass failed: %s: %s", type(exc).__name__, exc)
                earliest = None
            pause = self.poll_interval.total_seconds()
            if earliest is not None:
                pause = min(pause, (earliest - self.now()).total_seconds())
            if self._stopping is not None:
                with anyio.move_on_after(max(pause, 0.05)):
                    await self._stopping.wait()

    async def run_once(self) -> builtins.list[StepResult]:
        """One pass: claim the records due now, ``concurrency`` at a time, and drive each
        as far as it goes without waiting. One result per record touched."""
        if self.metrics is not None and not self._metrics_filled:
            await self._fill_metrics()
        now = self.now()
        results: builtins.list[StepResult] = []
        seen: set[str] = set()
        failures: builtins.list[StoreError] = []  # raised after the group, as themselves

        async def worker() -> None:
            while not self.stopping and not failures:
                try:
                    rows = await self.store.claim(self.worker_id, now, 1, self.lease)
                    if not rows:
                        return
                    row = rows[0]
                    if row.key in seen:  # rescheduled to now by its own step: next pass
                        await self.store.release(rows, self.worker_id)
                        return
                    seen.add(row.key)
                    result = await self._work(row)
                except StoreError as exc:
                    failures.append(exc)
                    return
                if result is not None:
                    results.append(result)

        async with anyio.create_task_group() as group:
            for _ in range(self.concurrency):
                group.start_soon(worker)
        if failures:
            raise failures[0]
        if self.metrics is not None:
            self.metrics.record_counts(await self.store.count())
        return results

    async def _work(self, row: Row) -> StepResult | None:
        """Drive one claimed record, its lease renewed meanwhile; None when it was lost."""
        first = row.state
        try:
            return await self._heartbeating(row, first)
        except BaseException:  # cancelled (shut down) mid-step: another worker may go on
            with anyio.CancelScope(shield=True), contextlib.suppress(SectigoError):
                await self.store.release([row], self.worker_id)
            raise

    async def _heartbeating(self, row: Row, first: RecordState) -> StepResult | None:
        failure: StoreError | None = None  # raised after the task group, not in a group
        async with anyio.create_task_group() as group:
            group.start_soon(self._heartbeat, row)
            try:
                row, description, error = await self._drive(row)
            except _Stop:
                logger.warning("%s was taken over by another worker; dropped here", row.key)
                group.cancel_scope.cancel()
                return None
            except StoreError as exc:
                failure = exc
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return StepResult(
            key=row.key, from_state=first, to_state=row.state, description=description, error=error
        )

    async def _heartbeat(self, row: Row) -> None:
        """Renew the lease every third of it; a store that fails meanwhile is only logged
        (the step's next write tells whether the record is still this worker's)."""
        while True:
            await anyio.sleep(self.lease.total_seconds() / 3)
            try:
                held = await self.store.heartbeat([row], self.worker_id, self.lease)
            except StoreError as exc:
                logger.warning("%s: the lease could not be renewed: %s", row.key, exc)
                continue
            if row.key not in held:
                logger.warning("%s: the lease was lost", row.key)
                return

    async def _save(self, old: Row, new: Row, description: str, *, done: bool) -> Row:
        """Write ``new`` under ``old``'s fence (releasing the lease when ``done``), then
        tell the events it recorded and write it again without them."""
        now = self.now()
        if new.state is not old.state or (description and new.watch != old.watch):
            change = self._change(old, new, description, now)
        else:
            change = Change(row=self._stamped(new, now))
        # a new attempt must survive a power cut: its create may be sent next; so must
        # a milestone or an expiry seen (never recorded twice)
        durable = (
            new.attempt is not None
            and new.attempt is not old.attempt
            and (old.attempt is None or new.attempt.attempted_at != old.attempt.attempted_at)
        ) or (new.watch != old.watch and new.watch is not None and new.watch.has_fired)
        release = done and not change.row.outbox
        if not await self.store.save(change, self.worker_id, release=release, durable=durable):
            raise _Stop
        new = change.row
        self._observed(new)
        if new.outbox:
            await notify(self.on_event, new.outbox)
            told = self._stamped(new.replace(outbox=()), now)
            if not await self.store.save(Change(row=told), self.worker_id, release=done):
                raise _Stop
            new = told
        return new

    def _stamped(self, row: Row, now: datetime) -> Row:
        """``row`` with its wake time: now while it holds events not yet told, else the
        earlier of its own work and its certificate's next milestone or expiry."""
        if row.outbox:
            return row.replace(wake_at=now)
        watch = self._watch_of(row)
        if watch is None or row.not_after is None:
            return row.replace(wake_at=None)
        return row.replace(wake_at=watch.next_at(self.policy.milestones, row.not_after))

    def _watch_of(self, row: Row) -> Watch | None:
        """What was seen of the record's current certificate; None when none is watched
        (no certificate, or revoked or cancelled). A record of before events starts
        watching from the certificate's start."""
        if row.serial_number is None or row.not_after is None or row.state in _UNWATCHED:
            return None
        if row.watch is not None and row.watch.serial_number == row.serial_number:
            return row.watch
        received = row.not_before or self.now()
        return Watch(serial_number=row.serial_number, received_at=received)

    def _event(self, row: Row, kind: EventKind, **fields: Any) -> Row:
        """``row`` with an event in its outbox (about its current certificate unless
        ``fields`` say otherwise); nothing when no one listens."""
        if self.on_event is None:
            return row
        fields.setdefault("serial_number", row.serial_number)
        fields.setdefault("not_after", row.not_after)
        not_after = fields["not_after"]
        left = None if not_after is None else round(days_left(not_after, self.now()), 6)
        event = LifecycleEvent(kind=kind, key=row.key, days_left=left, **fields)
        return row.replace(outbox=(*row.outbox, event))

    def _observed(self, row: Row) -> None:
        if self.metrics is not None:
            self.metrics.record_changed(row.public())

    async def _fill_metrics(self) -> None:
        """Give the metrics every record, before the first pass: a worker writes only
        the records it works on, and a valid certificate's expiry must be seen all the
        same (none when the fleet is over the metrics' cap: only the counts are kept)."""
        counts = await self.store.count()
        self.metrics.record_counts(counts)
        if sum(counts.values()) <= self.metrics.max_keyed_series:
            for row in await self.store.list():
                self._observed(row)
        self._metrics_filled = True

    async def _watched(self, row: Row, now: datetime) -> Row:
        """Record the milestones and the expiry the current certificate reached (each
        once), and tell them; first tell what a crash left untold."""
        if row.outbox:
            row = await self._save(row, row, "", done=False)
        watch = self._watch_of(row)
        if watch is None:
            return row
        assert row.not_after is not None
        reached, expired = watch.reached(self.policy.milestones, row.not_after, now)
        if not reached and not expired:
            return row
        new = row.replace(watch=watch.seen(reached, expired))
        for days in reached:
            new = self._event(new, "milestone", milestone=days)
        words = ", ".join(f"{days} days left" for days in reached)
        if expired:
            new = self._event(new, "expired")
            words = ", ".join(filter(None, [words, "expired"]))
            if row.state in (S.VALID, S.FAILED):
                new = new.replace(state=S.EXPIRED)
        return await self._save(row, new, f"certificate {row.serial_number}: {words}", done=False)

    async def _drive(self, row: Row) -> tuple[Row, str, str | None]:
        """Steps until the record waits for something; its last state, words, error."""
        fresh = False  # True right after this worker recorded an attempt
        row = await self._watched(row, self.now())
        due = row.next_action_at
        if due is None or due > self.now():  # woken for a milestone or an event only
            row = await self._save(row, row, "", done=True)
            return row, f"{row.state}: certificate watched", None
        description = ""
        while True:
            now = self.now()
            try:
                with step_span(
                    self.client, _step_name(row, fresh), key=row.key, state_from=row.state.value
                ) as step:  # a span under OpenTelemetry; the key on the step's log records
                    new, description, more = await self._step(row, now, fresh)
                    step.attributes["state_to"] = new.state.value
            except (_Stop, StoreError, anyio.get_cancelled_exc_class()):
                raise  # not the record's failure: whoever claims it next redoes the step
            except Exception as exc:
                new = self._failed(row, exc, now)
                description = f"failed: {new.last_error}"
                more = False
            fresh = new.state is S.SUBMITTING and new.attempt is not None and row.attempt is None
            row = await self._save(row, new, description, done=not more)
            if not more:
                failed = row.state in (S.FAILED, S.EXPIRED)
                return row, description, row.last_error if failed else None

    async def _step(self, row: Row, now: datetime, fresh: bool) -> tuple[Row, str, bool]:
        """One step of ``row``: the row after it, what happened, and whether to go on."""
        state = row.state
        if state in FINAL_STATES:
            return row.replace(next_action_at=None), f"nothing to do ({state})", False
        if state is S.REVOKING:
            return await self._revoke_step(row, now)
        if state in (S.FAILED, S.EXPIRED):
            return row.replace(state=_phase(row)), "trying again", True
        if state in (S.PENDING, S.VALID):
            return self._plan(row, now)
        if state is S.SUBMITTING:
            assert row.attempt is not None
            if fresh:
                return await self._submit(row, now)
            return await self._reconcile(row, now)
        if state is S.PROCESSING:
            return await self._check(row, now)
        if state is S.DOWNLOADING:
            return await self._download(row)
        if state is S.DELIVERING:
            return await self._deliver(row, now)
        return row.replace(next_action_at=None), f"waits for retry() ({state})", False

    def _plan(self, row: Row, now: datetime) -> tuple[Row, str, bool]:
        """Keep a valid certificate until its renewal time, or record a new attempt."""
        due = row.renewal_at or row.next_action_at  # a record of schema 1 has no renewal_at
        if row.state is S.VALID and due is not None and due > now:
            return row.replace(next_action_at=due), f"valid; renews at {due.isoformat()}", False
        attempt = new_attempt(row.spec, now)
        secrets = Secrets(
            pkcs12_password=attempt.pkcs12_password or None,
            private_key_pem=attempt.private_key_pem,
        )
        new = row.replace(
            state=S.SUBMITTING,
            attempt=attempt,
            attempt_serial=None,
            secrets=secrets,
            delivered=(),
            next_action_at=now,
        )
        return new, f"attempt {attempt.batch_name} recorded", True

    def _subject(self, row: Row) -> Subject:
        return Subject(
            name=f"record {row.key!r}",
            clear_hint=f"run 'sectigo fleet retry {row.key}' (fleet.retry) to send a new one",
        )

    async def _submit(self, row: Row, now: datetime) -> tuple[Row, str, bool]:
        attempt = row.attempt
        assert attempt is not None
        # The create is the one write no fence guards: just before it, renew the lease
        # (which fails once another worker claimed the record). A successor can then
        # claim it only after a whole lease, and resends only once ``settle`` has passed
        # since the attempt and a listing proves it absent.
        held = await self.store.heartbeat([row], self.worker_id, self.lease)
        if row.key not in held:
            raise _Stop
        try:
            batch = await submit(self.client, attempt, self._subject(row))
        except AmbiguousRequestError as exc:
            later = now + min(self.settle, self.poll_interval)
            return (
                self._noted(row, exc).replace(next_action_at=later),
                "sent; outcome unknown",
                False,
            )
        except (anyio.get_cancelled_exc_class(), _Stop):
            raise
        except Exception as exc:  # refused: no batch was made
            failed = self._failed(row, exc, now, close=True)
            return failed, f"create refused: {failed.last_error}", False
        new = row.replace(state=S.PROCESSING, attempt=_with_batch(attempt, batch.batch_id))
        return new, f"batch {batch.batch_id} created", True

    async def _reconcile(self, row: Row, now: datetime) -> tuple[Row, str, bool]:
        """Find the recorded attempt's batch by name; send it again only once ``settle``
        has passed and a full listing proves it absent."""
        attempt = row.attempt
        assert attempt is not None
        try:
            found = await find_own(self.client, attempt, self._subject(row))
        except AmbiguousRequestError as exc:
            return self._unconfirmed(row, exc), "a batch of its name is not its own", False
        if found is not None:
            new = row.replace(state=S.PROCESSING, attempt=_with_batch(attempt, found.batch_id))
            return new, f"batch {found.batch_id} found by name", True
        settled = settled_at(attempt, self.settle)
        if now < settled:
            return row.replace(next_action_at=settled), "batch not listed yet", False
        if not absence_is_proof(attempt):
            problem = AmbiguousRequestError(
                f"the CSR upload of {attempt.batch_name!r} is not listed by name; it may "
                "exist under another name. Check the batches, then retry the record",
                operation="upload",
                batch_name=attempt.batch_name,
                attempted_at=attempt.attempted_at,
            )
            return self._unconfirmed(row, problem), "upload not confirmed", False
        new = row.replace(attempt=_evolve(attempt, attempted_at=now))
        await self._save(row, new, "", done=False)  # the new time is recorded first
        return await self._submit(new, now)

    async def _check(self, row: Row, now: datetime) -> tuple[Row, str, bool]:
        attempt = row.attempt
        assert attempt is not None and attempt.batch_id is not None
        try:
            batch = await self.client.batches.check(attempt.batch_id)
        except BatchRejectedError as exc:
            rejected = _closed(self._noted(row, exc))
            rejected = self._event(rejected, "failed", error=rejected.last_error)
            return (
                rejected.replace(state=S.REJECTED, next_action_at=None),
                (f"batch {attempt.batch_id} rejected"),
                False,
            )
        except BatchFailedError as exc:
            failed = self._failed(row, exc, now, close=True)
            return failed, f"batch {attempt.batch_id} failed", False
        if batch is None:
            waited = (now - attempt.attempted_at).total_seconds()
            delay = min(max(waited / 4, 1.0), self.poll_interval.total_seconds())
            later = now + timedelta(seconds=delay)
            return row.replace(next_action_at=later), f"batch {attempt.batch_id} processing", False
        return row.replace(state=S.DOWNLOADING), f"batch {attempt.batch_id} ready", True

    async def _download(self, row: Row) -> tuple[Row, str, bool]:
        attempt = row.attempt
        assert attempt is not None and attempt.batch_id is not None
        with tempfile.TemporaryDirectory(prefix="sectigo-fleet-") as folder:
            archive = Path(folder) / f"batch-{attempt.batch_id}.zip"
            try:
                _, bundle = await fetch(self.client, attempt, archive, self._subject(row))
            except AmbiguousRequestError as exc:
                return self._unconfirmed(row, exc), "the batch is not the attempt's", False
        secrets = Secrets(bundle_pem=_bundle_pem(bundle))
        if row.state is not S.REVOKING:
            kind: EventKind = "renewed" if row.serial_number else "issued"
            serial, end = bundle.serial_number, bundle.not_after
            row = self._event(row, kind, serial_number=serial, not_after=end)
        new = row.replace(
            state=S.REVOKING if row.state is S.REVOKING else S.DELIVERING,
            attempt_serial=bundle.serial_number,
            secrets=secrets,
            next_action_at=self.now(),
        )
        return new, f"certificate {bundle.serial_number} downloaded", True

    async def _deliver(self, row: Row, now: datetime) -> tuple[Row, str, bool]:
        """Hand the certificate to each sink that does not have it yet."""
        attempt = row.attempt
        assert row.secrets is not None and row.secrets.bundle_pem is not None
        assert attempt is not None and row.attempt_serial is not None
        from ..certs import load_pem_bundle

        bundle = load_pem_bundle(row.secrets.bundle_pem, source=f"record {row.key!r}")
        delivery = Delivery(
            key=row.key,
            serial_number=row.attempt_serial,
            bundle=bundle,
            delivery_id=_delivery_id(row.key, row.attempt_serial),
        )
        waiting = [name for name in self.sinks if name not in row.delivered]
        for name in waiting:
            deliver = self.sinks[name]
            try:
                await deliver(delivery)
            except (anyio.get_cancelled_exc_class(), _Stop):
                raise
            except Exception as exc:
                named = isinstance(exc, DeliveryError)  # its message names the sink
                failed = self._noted(row, exc, "" if named else f"sink {name}: ")
                failed = self._event(failed, "failed", error=failed.last_error)
                if self.metrics is not None:
                    self.metrics.delivery_failed(name)
                later = now + _backoff(failed.failures)
                return failed.replace(next_action_at=later), f"sink {name} failed", False
            delivered = row.replace(delivered=(*row.delivered, name))
            if name != waiting[-1]:  # the last acknowledgement is written with VALID
                row = await self._save(row, delivered, "", done=False)
        leaf = leaf_of(bundle.certificate)
        superseded = row.superseded
        if row.serial_number and row.not_after and row.serial_number != leaf.serial:
            superseded = (*superseded, (row.serial_number, row.not_after))
        valid = row.replace(
            state=S.VALID,
            superseded=superseded,
            serial_number=leaf.serial,
            not_after=leaf.not_after,
            batch_id=attempt.batch_id,
            failures=0,
            last_error=None,
            attempt=None,
            attempt_serial=None,
            secrets=None,  # every sink has the key: it leaves the store
            delivered=(),
        )
        renewal = self.policy.renewal_time(leaf.not_before, leaf.not_after, row.key)
        watch = Watch(serial_number=leaf.serial, received_at=now)
        valid = valid.replace(not_before=leaf.not_before, renewal_at=renewal, watch=watch)
        valid = self._event(valid, "delivered")
        due = renewal
        if not leaf.is_for(row.spec) or row.spec != attempt.spec:
            due = now  # the spec changed while the attempt was in flight
        return valid.replace(next_action_at=due), f"certificate {leaf.serial} delivered", False

    async def _revoke_step(self, row: Row, now: datetime) -> tuple[Row, str, bool]:
        """Settle an attempt in flight (its certificate is revoked too), then revoke."""
        attempt = row.attempt
        if attempt is not None and row.attempt_serial is None:
            phase = _phase(row)
            if phase is S.SUBMITTING:
                found = await find_own(self.client, attempt, self._subject(row))
                later = settled_at(attempt, self.settle)
                if found is None and now < later:
                    return row.replace(next_action_at=later), "waiting for the attempt", False
                if found is None:
                    return row.replace(attempt=None, secrets=None), "the attempt never took", True
                attempt = _with_batch(attempt, found.batch_id)
                return row.replace(attempt=attempt), f"batch {found.batch_id} found", True
            try:
                ready = await self.client.batches.check(attempt.batch_id)  # type: ignore[arg-type]
            except (BatchRejectedError, BatchFailedError):
                return row.replace(attempt=None, secrets=None), "the attempt failed", True
            if ready is None:
                later = now + timedelta(seconds=min(30.0, self.poll_interval.total_seconds()))
                return row.replace(next_action_at=later), "waiting for the attempt", False
            return await self._download(row)
        if row.attempt_serial is not None:  # the attempt is settled: its certificate is owed
            owed = (*row.revoke_owed, row.attempt_serial)
            settled = row.replace(revoke_owed=owed, attempt=None, attempt_serial=None, secrets=None)
            return settled, "the attempt's certificate is owed", True
        reason = row.revoke_reason or "unspecified"
        if row.revoke_owed:  # one at a time, each recorded: a crash resumes after it
            serial, *rest = row.revoke_owed
            if not await self.client.certificates.is_revoked(serial):
                await revoke_serials(self.client, row.spec.authority_id, (serial,), reason)
            told = self._event(row, "revoked", serial_number=serial, not_after=_end_of(row, serial))
            return told.replace(revoke_owed=tuple(rest)), f"revoked {serial} ({reason})", True
        revoked = row.replace(
            state=S.REVOKED,
            attempt=None,
            attempt_serial=None,
            secrets=None,
            next_action_at=None,
        )
        return revoked, f"revoked ({reason})", False

    # -- failures -------------------------------------------------------------------------

    def _noted(self, row: Row, exc: BaseException, prefix: str = "") -> Row:
        return row.replace(failures=row.failures + 1, last_error=prefix + _describe(exc, row))

    def _failed(self, row: Row, exc: BaseException, now: datetime, *, close: bool = False) -> Row:
        """FAILED, retried with backoff from where the attempt stands (or, ``close``d, with
        a new attempt: no batch was made, or it will never be ready)."""
        failed = self._noted(row, exc)  # redacted with the attempt's password
        if close:
            failed = _closed(failed)
        logger.warning("%s: %s", row.key, failed.last_error)
        failed = self._event(failed, "failed", error=failed.last_error)
        state = S.FAILED
        if row.state is S.REVOKING:  # a revocation stays owed
            state = S.REVOKING
        elif row.not_after is not None and row.not_after <= now and row.serial_number:
            state = S.EXPIRED
        delay = self.policy.retry_delay(
            failed.failures, not_before=row.not_before, not_after=row.not_after, now=now
        )
        return failed.replace(state=state, next_action_at=now + delay)

    def _unconfirmed(self, row: Row, exc: BaseException) -> Row:
        """Waits for a person: its batch can be neither taken nor ruled out."""
        logger.warning("%s: %s", row.key, _describe(exc, row))
        noted = self._noted(row, exc)
        noted = self._event(noted, "failed", error=noted.last_error)
        return noted.replace(state=S.UNCONFIRMED, next_action_at=None)


#: states in which the current certificate's milestones and expiry are not watched
_UNWATCHED = frozenset({S.REVOKING, S.REVOKED, S.CANCELLED})
#: the operation (span) of a step by the state it starts from; any other step plans
_STEP_NAMES = {
    S.PROCESSING: "fleet.check",
    S.DOWNLOADING: "fleet.download",
    S.DELIVERING: "fleet.deliver",
    S.REVOKING: "fleet.revoke",
}


def _step_name(row: Row, fresh: bool) -> str:
    """``fleet.submit`` (or ``fleet.reconcile`` for an attempt recorded before),
    ``fleet.check``, ``fleet.download``, ``fleet.deliver``, ``fleet.revoke`` or
    ``fleet.plan``."""
    if row.state is S.SUBMITTING:
        return "fleet.submit" if fresh else "fleet.reconcile"
    return _STEP_NAMES.get(row.state, "fleet.plan")


def _end_of(row: Row, serial: str) -> datetime | None:
    """The expiry of one of the record's certificates, when known."""
    if serial == row.serial_number:
        return row.not_after
    return dict(row.superseded).get(serial)


def _closed(row: Row) -> Row:
    """``row`` without its attempt: the next one starts anew."""
    return row.replace(attempt=None, attempt_serial=None, secrets=None)


def _phase(row: Row) -> RecordState:
    """Where a record whose last step failed goes on from: its attempt tells."""
    attempt = row.attempt
    if attempt is None:
        return S.PENDING
    if attempt.batch_id is None:
        return S.SUBMITTING
    if row.attempt_serial is None:
        return S.PROCESSING
    return S.DELIVERING


def _backoff(failures: int) -> timedelta:
    """A sink's retry: 1 minute after the first failure, doubling, at most 1 hour (a
    receiver that is down is back sooner than a CA that refuses)."""
    return min(RETRY_FIRST * (1 << min(max(failures - 1, 0), 16)), RETRY_MAX)


def _describe(exc: BaseException, row: Row | None = None) -> str:
    text = redact(f"{type(exc).__name__}: {exc}")
    password = row.secrets.pkcs12_password if row and row.secrets else None
    if password:
        text = text.replace(password, "***")
    return text[:_MAX_ERROR]


def _with_batch(attempt: PendingAttempt, batch_id: int) -> PendingAttempt:
    return _evolve(attempt, batch_id=batch_id)


def _bundle_pem(bundle: CertificateBundle) -> bytes:
    return bundle.fullchain_pem + bundle.private_key_pem()


def _delivery_id(key: str, serial: str) -> str:
    return hashlib.sha256(f"{key}\0{serial}".encode()).hexdigest()[:32]


def _named_sinks(sinks: Iterable[Sink]) -> dict[str, Callable[[Delivery], Awaitable[None]]]:
    """Each sink by its name (recorded per record: stable, unique), as an async call."""
    named: dict[str, Callable[[Delivery], Awaitable[None]]] = {}
    for sink in sinks:
        deliver = getattr(sink, "deliver", None)
        if deliver is not None and callable(deliver):
            name = getattr(sink, "name", None) or type(sink).__qualname__
        elif callable(sink):
            deliver = sink
            name = getattr(sink, "name", None) or getattr(sink, "__qualname__", repr(sink))
        else:
            raise InvalidInputError(
                f"a sink must be callable or have an async deliver(); got {type(sink).__name__}"
            )
        if name in named:
            raise InvalidInputError(f"two sinks are named {name!r}; give each a distinct name")
        named[name] = _awaiting(deliver)
    return named


def _awaiting(call: Callable[[Delivery], Any]) -> Callable[[Delivery], Awaitable[None]]:
    async def deliver(delivery: Delivery) -> None:
        outcome = call(delivery)
        if inspect.isawaitable(outcome):
            await outcome

    return deliver
