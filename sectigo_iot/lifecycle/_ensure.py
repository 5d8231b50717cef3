"""Keep a certificate valid in a folder: issue, keep, renew, or resume a crashed attempt."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from attrs import evolve, frozen

from .._checks import seconds
from .._hooks import step_span
from .._logging import get_logger
from ..errors import (
    AmbiguousRequestError,
    BatchFailedError,
    BatchRejectedError,
    InvalidInputError,
)
from ._events import EventKind, LifecycleEvent, OnEvent, Watch, days_left, notify
from ._folder import (
    LiveState,
    OnLockWait,
    archive_path,
    folder_lock,
    load_live,
    publish_version,
    remove_archives,
    remove_leftovers,
    switch_live,
)
from ._journal import (
    JOURNAL_NAME,
    CurrentCertificate,
    FailedAttempt,
    Journal,
    JournalError,
    LifecycleError,
    PendingAttempt,
    read_journal,
    read_settled_journal,
    redacted_reason,
    write_journal,
)
from ._policy import RenewalPolicy, policy_from
from ._spec import CertificateSpec
from ._steps import (
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

if TYPE_CHECKING:
    from .._client import SectigoClient
    from ..certs import CertificateBundle
    from ..models import Batch
    from ..resources import WaitProgress

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_RENEW_BEFORE",
    "PENDING_SETTLE",
    "Action",
    "CertificateResult",
    "OnProgress",
    "ensure_certificate",
    "renew_due",
]

logger = get_logger("sectigo_iot.lifecycle")

Action = Literal["kept", "issued", "renewed", "resumed", "failed"]
DEFAULT_RENEW_BEFORE = timedelta(days=30)
#: a pending create whose batch is still not listed this long after it was sent never
#: took effect, and is sent again; before that, resuming raises AmbiguousRequestError
PENDING_SETTLE = timedelta(minutes=10)
DEFAULT_CONCURRENCY = 4
#: seconds to wait for a folder locked by another process
DEFAULT_LOCK_TIMEOUT = 300.0
#: milestones recorded in the journal at once (its size is bounded)
_EVENTS_AT_ONCE = 16
T = TypeVar("T")


@frozen(kw_only=True)
class CertificateResult:
    """What happened to one folder.

    ``action`` is ``kept``, ``issued``, ``renewed``, ``resumed`` (a crashed attempt
    finished) or ``failed`` (``renew_due`` only; ``error`` holds the exception).
    ``reason`` says why: ``valid``, ``empty``, ``due``, ``names``, ``damaged``,
    ``forced``, ``pending`` or ``error``; ``detail`` says it in words. With
    ``dry_run`` nothing was sent or written: ``action`` is what would be done.
    """

    folder: Path
    action: Action
    reason: str
    detail: str = ""
    bundle: CertificateBundle | None = None
    batch: Batch | None = None
    replaced_serial: str | None = None
    revoked: bool = False
    dry_run: bool = False
    error: Exception | None = None
    #: when the policy renews the certificate in place (None without one)
    renewal_time: datetime | None = None

    @property
    def changed(self) -> bool:
        """True when a new certificate was put in place."""
        return self.action in ("issued", "renewed", "resumed") and not self.dry_run

    @classmethod
    def failure(cls, folder: Path, error: Exception, *, dry_run: bool) -> CertificateResult:
        """The result of a folder whose renewal raised ``error``."""
        detail = f"{type(error).__name__}: {error}"
        return cls(
            folder=folder,
            action="failed",
            reason="error",
            detail=detail,
            dry_run=dry_run,
            error=error,
        )


OnChange = Callable[[CertificateResult], Awaitable[Any] | Any]
#: called with the folder and each poll of a batch being waited for
OnProgress = Callable[[Path, "WaitProgress"], Any]


@frozen(kw_only=True)
class _Options:
    policy: RenewalPolicy
    revoke_replaced: bool
    force: bool
    dry_run: bool
    on_change: OnChange | None
    on_event: OnEvent | None
    wait_timeout: float
    lock_timeout: float
    on_lock_wait: OnLockWait | None
    on_progress: OnProgress | None


@frozen(kw_only=True)
class _Plan:
    action: Action
    reason: str
    detail: str
    live: LiveState
    replaced_serial: str | None


async def ensure_certificate(
    client: SectigoClient,
    spec: CertificateSpec,
    folder: str | os.PathLike[str],
    *,
    renew_before: timedelta | None = None,
    policy: RenewalPolicy | None = None,
    revoke_replaced: bool = False,
    force: bool = False,
    dry_run: bool = False,
    on_change: OnChange | None = None,
    on_event: OnEvent | None = None,
    wait_timeout: float = 900.0,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_lock_wait: OnLockWait | None = None,
    on_progress: OnProgress | None = None,
) -> CertificateResult:
    """Make ``folder`` hold a valid certificate for ``spec``; see the package docs.

    Keeps the certificate in place when it has exactly the spec's names, its key
    matches and more than ``renew_before`` is left (on the client's clock); otherwise
    issues or renews (``force`` renews anyway). A pending attempt left by a crash is
    finished first; one whose batch was rejected or failed is closed (the error is
    raised, the next call starts a new attempt). ``on_change`` (sync or async) gets the
    result after every new certificate; ``revoke_replaced`` then revokes the old one
    (reason superseded). A folder locked by another process is waited for up to
    ``lock_timeout`` seconds (then FolderLockedError); ``on_lock_wait`` (sync or async)
    is told at once who holds it. ``on_progress`` gets each poll of the batch.

    ``on_event`` (sync or async; what it raises is logged) gets a
    :class:`~sectigo_iot.lifecycle.LifecycleEvent` (``folder`` set): ``issued`` or
    ``renewed`` once the new certificate is live, ``revoked`` for each serial revoked,
    ``milestone`` when the certificate in place reaches one of the policy's
    ``milestones`` (days left; before a renewal due in the same call), ``expired``
    once it expires without a successor, and ``failed`` (then the error is raised).
    Each event is recorded in the journal before the call and cleared after it: a
    crash between the two tells it again at the next call; a milestone is recorded
    once per certificate, with or without ``on_event``.
    """
    if not isinstance(spec, CertificateSpec):
        raise InvalidInputError(f"spec must be a CertificateSpec, got {type(spec).__name__}")
    options = _options(
        policy_from(policy, renew_before),
        revoke_replaced,
        force,
        dry_run,
        on_change,
        on_event,
        wait_timeout,
        lock_timeout,
        on_lock_wait,
        on_progress,
    )
    return await _ensure(client, _absolute(folder), spec, options)


async def renew_due(
    client: SectigoClient,
    folders: Iterable[str | os.PathLike[str]],
    *,
    renew_before: timedelta | None = None,
    policy: RenewalPolicy | None = None,
    revoke_replaced: bool = False,
    force: bool = False,
    dry_run: bool = False,
    on_change: OnChange | None = None,
    on_event: OnEvent | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    wait_timeout: float = 900.0,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_lock_wait: OnLockWait | None = None,
    on_progress: OnProgress | None = None,
) -> list[CertificateResult]:
    """Run :func:`ensure_certificate` on each folder with the spec in its journal.

    Each real folder is worked on once, however many paths name it (symlinks, ``..``,
    relative or absolute): folders are compared resolved, and results carry the
    resolved path. At most ``concurrency`` folders are worked on at once. Returns one
    result per real folder, in the order first given; a folder that fails gets an
    ``action="failed"`` result carrying the error (and a ``failed`` event), and the
    others go on. ``on_event`` is told each folder's events as in
    :func:`ensure_certificate`, with the resolved path as ``folder``.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidInputError(f"concurrency must be an integer >= 1, got {concurrency!r}")
    options = _options(
        policy_from(policy, renew_before),
        revoke_replaced,
        force,
        dry_run,
        on_change,
        on_event,
        wait_timeout,
        lock_timeout,
        on_lock_wait,
        on_progress,
    )
    paths = list(dict.fromkeys(_real_path(folder) for folder in folders))
    results: list[CertificateResult | None] = [None] * len(paths)
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(index: int, folder: Path) -> None:
        async with limiter:
            try:
                results[index] = await _ensure(client, folder, None, options)
            except Exception as exc:
                logger.warning("renewal in %s failed: %s: %s", folder, type(exc).__name__, exc)
                results[index] = CertificateResult.failure(folder, exc, dry_run=dry_run)

    async with anyio.create_task_group() as group:
        for index, folder in enumerate(paths):
            group.start_soon(one, index, folder)
    return [result for result in results if result is not None]


def _options(
    policy: RenewalPolicy,
    revoke_replaced: bool,
    force: bool,
    dry_run: bool,
    on_change: OnChange | None,
    on_event: OnEvent | None,
    wait_timeout: float,
    lock_timeout: float,
    on_lock_wait: OnLockWait | None,
    on_progress: OnProgress | None,
) -> _Options:
    for name, callback in (
        ("on_change", on_change),
        ("on_event", on_event),
        ("on_lock_wait", on_lock_wait),
        ("on_progress", on_progress),
    ):
        if callback is not None and not callable(callback):
            raise InvalidInputError(f"{name} must be callable")
    return _Options(
        policy=policy,
        revoke_replaced=bool(revoke_replaced),
        force=bool(force),
        dry_run=bool(dry_run),
        on_change=on_change,
        on_event=on_event,
        wait_timeout=wait_timeout,
        lock_timeout=seconds("lock_timeout", lock_timeout, zero=True),
        on_lock_wait=on_lock_wait,
        on_progress=on_progress,
    )


def _absolute(folder: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.fspath(folder)))


def _real_path(folder: str | os.PathLike[str]) -> Path:
    """``folder`` absolute, with symlinks and ``..`` resolved (it need not exist)."""
    return Path(os.path.realpath(os.fspath(folder)))


@frozen
class _State:
    """What a folder holds, read in one go off the event loop."""

    journal: Journal | None
    live: LiveState
    archives: bool  # downloads are left in the folder


def _read_state(folder: Path) -> _State:
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return _State(None, LiveState(None, None, "empty"), archives=False)
    archives = any(name.startswith("batch-") and name.endswith(".zip") for name in names)
    return _State(read_settled_journal(folder), load_live(folder), archives)


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a worker thread: file work never blocks the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(function, *args))


async def _ensure(
    client: SectigoClient, folder: Path, spec: CertificateSpec | None, options: _Options
) -> CertificateResult:
    if options.dry_run:
        return await _dry_run(client, folder, spec, options)
    locked = False
    try:
        kept = await _kept_unlocked(client, folder, spec, options)
        if kept is not None:
            return kept
        reading = functools.partial(_read_state, folder)
        async with folder_lock(
            folder, reading, wait=options.lock_timeout, on_wait=options.on_lock_wait
        ) as state:
            locked = True
            try:
                return await _locked(client, folder, spec, state, options)
            except Exception as exc:
                await _tell_failure(client, folder, exc, options, recorded=True)
                raise
    except Exception as exc:
        if not locked:
            await _tell_failure(client, folder, exc, options, recorded=False)
        raise


async def _locked(
    client: SectigoClient,
    folder: Path,
    spec: CertificateSpec | None,
    state: _State,
    options: _Options,
) -> CertificateResult:
    """The work on a folder whose lock is held: events owed first, then the milestones
    reached, then resume, keep, issue or renew."""
    journal = state.journal
    wanted = _wanted(folder, spec, journal)
    if journal is not None:
        journal = await _deliver(folder, journal, options)
        journal = await _watch(client, folder, journal, state.live, options)
    if journal is not None and journal.pending is not None:
        return await _resume(client, folder, journal, options)
    plan = _plan(client, folder, wanted, journal, state.live, options)
    if plan.action == "kept":
        if state.archives:
            await _in_thread(remove_archives, folder)
        return await _keep(client, folder, wanted, journal, plan, options)
    return await _issue(client, folder, wanted, journal, plan, options)


async def _kept_unlocked(
    client: SectigoClient, folder: Path, spec: CertificateSpec | None, options: _Options
) -> CertificateResult | None:
    """The result of a folder kept as it is, read without the lock; None when the
    folder needs anything else (then it is read and decided again under the lock).

    A keep needs no lock: a version never changes once published, and ``live`` and the
    journal are each replaced in one rename, so an unlocked read sees a consistent
    certificate. It is taken only when nothing is to be written or sent: a journal
    that already records it (no pending attempt, no revocation owed, no milestone or
    expiry reached, no event owed to ``on_event``), no downloads left. A folder that
    cannot be read (a hostile one) goes the locked way too, which raises the same
    typed error.
    """
    try:
        state = await _in_thread(_read_state, folder)
    except (LifecycleError, OSError):
        return None
    journal = state.journal
    if journal is None or journal.pending is not None or journal.revoke_pending:
        return None
    if state.archives or (journal.outbox and options.on_event is not None):
        return None
    wanted = _wanted(folder, spec, journal)
    plan = _plan(client, folder, wanted, journal, state.live, options)
    now = _now(client)
    if plan.action != "kept" or _kept_journal(journal, wanted, state.live, now) is not journal:
        return None
    if _reached(folder, journal, state.live, options, now) is not None:
        return None
    return CertificateResult(
        folder=folder,
        action="kept",
        reason=plan.reason,
        detail=plan.detail,
        bundle=state.live.bundle,
        renewal_time=_renewal(options, folder, state.live.bundle),
    )


def _wanted(folder: Path, spec: CertificateSpec | None, journal: Journal | None) -> CertificateSpec:
    if spec is not None:
        return spec
    if journal is None:
        raise JournalError(f"{folder} has no journal, so no spec to renew with")
    return journal.spec


async def _dry_run(
    client: SectigoClient, folder: Path, spec: CertificateSpec | None, options: _Options
) -> CertificateResult:
    """What ``_ensure`` would do, read without the lock; nothing is sent or written."""
    state = await _in_thread(_read_state, folder)
    journal = state.journal
    wanted = _wanted(folder, spec, journal)
    if journal is not None and journal.pending is not None:
        return CertificateResult(
            folder=folder,
            action="resumed",
            reason="pending",
            detail=f"would finish the attempt of batch {journal.pending.batch_name}",
            dry_run=True,
        )
    plan = _plan(client, folder, wanted, journal, state.live, options)
    return CertificateResult(
        folder=folder,
        action=plan.action,
        reason=plan.reason,
        detail=plan.detail,
        bundle=plan.live.bundle,
        replaced_serial=plan.replaced_serial,
        dry_run=True,
        renewal_time=_renewal(options, folder, plan.live.bundle),
    )


def _plan(
    client: SectigoClient,
    folder: Path,
    spec: CertificateSpec,
    journal: Journal | None,
    live: LiveState,
    options: _Options,
) -> _Plan:
    """Decide between keeping, issuing and renewing, from the files in ``live``."""
    bundle = live.bundle
    leaf = leaf_of(bundle.certificate) if bundle is not None else None
    journaled = journal.current.serial if journal is not None and journal.current else None
    replaced = leaf.serial if leaf is not None else journaled

    def plan(action: Action, reason: str, detail: str) -> _Plan:
        return _Plan(
            action=action,
            reason=reason,
            detail=detail,
            live=live,
            replaced_serial=None if action in ("issued", "kept") else replaced,
        )

    if leaf is None:
        if live.problem == "empty" and journaled is None:
            return plan("issued", "empty", "the folder holds no certificate")
        if live.problem == "empty":
            return plan("renewed", "damaged", f"{folder / 'live'} is missing")
        return plan("renewed", "damaged", live.problem)
    if not leaf.is_for(spec):
        return plan(
            "renewed",
            "names",
            f"the certificate is for {', '.join(leaf.sans)}; "
            f"the spec asks for {', '.join(spec.names)}",
        )
    if _now(client) >= options.policy.renewal_time(leaf.not_before, leaf.not_after, str(folder)):
        return plan("renewed", "due", f"it expires on {leaf.expiry}; its renewal time has come")
    if options.force:
        return plan("renewed", "forced", "renewal was forced")
    return plan("kept", "valid", f"valid until {leaf.expiry}")


async def _keep(
    client: SectigoClient,
    folder: Path,
    spec: CertificateSpec,
    journal: Journal | None,
    plan: _Plan,
    options: _Options,
) -> CertificateResult:
    """Record the certificate in place (and the spec), and settle owed revocations."""
    recorded = _kept_journal(journal, spec, plan.live, _now(client))
    if recorded is not journal:
        await _in_thread(write_journal, folder, recorded)
    revoked = await _settle_revocations(client, folder, recorded, options)
    return CertificateResult(
        folder=folder,
        action="kept",
        reason=plan.reason,
        detail=plan.detail,
        bundle=plan.live.bundle,
        revoked=revoked,
        renewal_time=_renewal(options, folder, plan.live.bundle),
    )


def _kept_journal(
    journal: Journal | None, spec: CertificateSpec, live: LiveState, now: datetime
) -> Journal:
    """The journal of a folder keeping ``live``: ``journal`` itself when it already
    records the spec and the certificate, else a new one that does (a certificate it
    did not record is watched from ``now``, as if received then)."""
    bundle, version = live.bundle, live.version
    assert bundle is not None and version is not None
    leaf = leaf_of(bundle.certificate)
    recorded = journal.current if journal is not None else None
    watch = journal.watch if journal is not None else None
    if recorded is None or recorded.serial != leaf.serial:
        recorded = CurrentCertificate(serial=leaf.serial, not_after=leaf.not_after, version=version)
        watch = Watch(serial_number=leaf.serial, received_at=now)
    if journal is not None and journal.spec == spec and journal.current == recorded:
        return journal
    return (journal or Journal(spec=spec)).replace(spec=spec, current=recorded, watch=watch)


async def _issue(
    client: SectigoClient,
    folder: Path,
    spec: CertificateSpec,
    journal: Journal | None,
    plan: _Plan,
    options: _Options,
) -> CertificateResult:
    """Journal a new attempt, then create its batch and finish it."""
    await client.ensure_authenticated()  # so that nothing but the create is sent after
    pending = new_attempt(spec, _now(client))
    journal = (journal or Journal(spec=spec)).replace(spec=spec, pending=pending)
    await _in_thread(write_journal, folder, journal)
    batch = await _submit(client, folder, journal)
    journal = journal.replace(pending=evolve(pending, batch_id=batch.batch_id))
    await _in_thread(write_journal, folder, journal)
    return await _finish(client, folder, journal, plan.action, plan, options)


async def _resume(
    client: SectigoClient, folder: Path, journal: Journal, options: _Options
) -> CertificateResult:
    """Finish the attempt a crash left: find its batch (by id, else by name) and go on.

    A batch not listed yet is looked for again later (AmbiguousRequestError, journal
    kept); once ``PENDING_SETTLE`` has passed since the attempt, the create is known
    not to have taken effect and is sent again. A batch found by name is journaled
    only once its certificate proves to be for the attempt's names.
    """
    pending = journal.pending
    assert pending is not None
    if pending.batch_id is None:
        found = await find_own(client, pending, _subject(folder))
        if found is None:
            now = _now(client)
            if now < settled_at(pending, PENDING_SETTLE):
                retry_at = settled_at(pending, PENDING_SETTLE).isoformat()
                raise AmbiguousRequestError(
                    f"an earlier attempt in {folder} sent batch {pending.batch_name!r}, "
                    "which is not listed (yet); it is not sent again until "
                    f"{retry_at}. Run again then, or check the batch and edit "
                    f"{folder / JOURNAL_NAME} by hand",
                    operation="create",
                    batch_name=pending.batch_name,
                    attempted_at=pending.attempted_at,
                )
            if not absence_is_proof(pending):
                raise AmbiguousRequestError(
                    f"the CSR upload of an earlier attempt in {folder} is not listed by its "
                    f"name {pending.batch_name!r}; it may exist under another name. Check "
                    f'the batches, then remove the "pending" entry of '
                    f"{folder / JOURNAL_NAME} to send a new one",
                    operation="upload",
                    batch_name=pending.batch_name,
                    attempted_at=pending.attempted_at,
                )
            logger.info("batch %r never appeared; sending its create again", pending.batch_name)
            pending = evolve(pending, attempted_at=now)
            journal = journal.replace(pending=pending)
            await _in_thread(write_journal, folder, journal)
            found = await _submit(client, folder, journal)
            journal = journal.replace(pending=evolve(pending, batch_id=found.batch_id))
            await _in_thread(write_journal, folder, journal)
        else:
            journal = journal.replace(pending=evolve(pending, batch_id=found.batch_id))
    replaced = journal.current.serial if journal.current is not None else None
    live = LiveState(journal.current.version if journal.current else None, None, "pending")
    plan = _Plan(
        action="resumed",
        reason="pending",
        detail=f"finished the attempt of batch {pending.batch_name}",
        live=live,
        replaced_serial=replaced,
    )
    return await _finish(client, folder, journal, "resumed", plan, options)


def _subject(folder: Path) -> Subject:
    return Subject(
        name=str(folder),
        clear_hint=f'remove the "pending" entry of {folder / JOURNAL_NAME} and run again',
    )


async def _submit(client: SectigoClient, folder: Path, journal: Journal) -> Batch:
    """Send the journaled attempt; a refusal (no batch made) clears the attempt."""
    assert journal.pending is not None
    try:
        with step_span(client, "lifecycle.submit", key=str(folder)):
            return await submit(client, journal.pending, _subject(folder))
    except AmbiguousRequestError:
        raise  # the batch may exist: the attempt stays journaled
    except Exception:
        await _in_thread(write_journal, folder, journal.replace(pending=None))
        raise


async def _fetch(
    client: SectigoClient, folder: Path, pending: PendingAttempt, options: _Options
) -> tuple[Batch, CertificateBundle]:
    """The attempt's batch and certificate, downloaded into the folder (kept there until
    the files are in place, so a crash after the download does not download again)."""
    assert pending.batch_id is not None
    on_progress = None
    if options.on_progress is not None:
        on_progress = functools.partial(options.on_progress, folder)
    batch, bundle = await fetch(
        client,
        pending,
        archive_path(folder, pending.batch_id),
        _subject(folder),
        wait_timeout=options.wait_timeout,
        on_progress=on_progress,
    )
    assert batch is not None  # waited for
    return batch, bundle


async def _finish(
    client: SectigoClient,
    folder: Path,
    journal: Journal,
    action: Action,
    plan: _Plan,
    options: _Options,
) -> CertificateResult:
    """Wait, download, write the version, switch ``live``, journal, notify, revoke.

    A batch that ends rejected or failed closes the attempt in the journal (the error
    is raised; the next run starts a new attempt).
    """
    pending = journal.pending
    assert pending is not None and pending.batch_id is not None
    try:
        with step_span(client, "lifecycle.download", key=str(folder)):
            batch, bundle = await _fetch(client, folder, pending, options)
    except (BatchRejectedError, BatchFailedError) as exc:
        failure = FailedAttempt.of(pending, exc, _now(client))
        await _in_thread(write_journal, folder, journal.replace(pending=None, last_failure=failure))
        logger.warning(
            "%s: batch %d did not end ready (%s); the attempt is closed, the next run "
            "starts a new one",
            folder,
            pending.batch_id,
            failure.reason,
        )
        raise
    await _checkpoint("downloaded")
    with step_span(client, "lifecycle.deliver", key=str(folder)):
        version = await _in_thread(publish_version, folder, bundle)
        await _checkpoint("files_written")
        await _in_thread(switch_live, folder, version)
    now = _now(client)
    journal, replaced = _installed(journal, bundle, version, plan, options, now)
    kind: EventKind = "issued" if plan.replaced_serial is None else "renewed"
    installed = _event(kind, folder, now, serial=bundle.serial_number, not_after=bundle.not_after)
    journal = await _tell(folder, journal, options, installed)
    keep = {version, *filter(None, [journal.previous_version])}
    await _in_thread(remove_leftovers, folder, keep)
    logger.info("%s %s: serial %s in place", action, folder, bundle.serial_number)
    result = CertificateResult(
        folder=folder,
        action=action,
        reason=plan.reason,
        detail=plan.detail,
        bundle=bundle,
        batch=batch,
        replaced_serial=replaced,
        renewal_time=_renewal(options, folder, bundle),
    )
    if options.on_change is not None:
        outcome = options.on_change(result)
        if inspect.isawaitable(outcome):
            await outcome
    if await _settle_revocations(client, folder, journal, options):
        result = evolve(result, revoked=True)
    return result


def _installed(
    journal: Journal,
    bundle: CertificateBundle,
    version: str,
    plan: _Plan,
    options: _Options,
    now: datetime,
) -> tuple[Journal, str | None]:
    """The journal once ``version`` (the pending attempt's ``bundle``) is live, received
    ``now``, and the serial it replaced, if another (owed a revocation with
    ``revoke_replaced``)."""
    pending = journal.pending
    assert pending is not None and pending.batch_id is not None
    old = journal.current
    previous = old.version if old is not None and old.version != version else None
    replaced = plan.replaced_serial if plan.replaced_serial != bundle.serial_number else None
    owed = journal.revoke_pending
    if options.revoke_replaced and replaced is not None and replaced not in owed:
        owed = (*owed, replaced)
    installed = Journal(
        spec=pending.spec,
        current=CurrentCertificate(
            serial=bundle.serial_number,
            not_after=bundle.not_after,
            version=version,
            batch_id=pending.batch_id,
        ),
        previous_version=previous or journal.previous_version,
        revoke_pending=owed,
        watch=Watch(serial_number=bundle.serial_number, received_at=now),
        outbox=journal.outbox,
    )
    return installed, replaced


async def _settle_revocations(
    client: SectigoClient, folder: Path, journal: Journal, options: _Options
) -> bool:
    """Revoke (reason superseded) the serials the journal owes, each told as a
    ``revoked`` event; True if any was.

    A serial the server already shows as revoked (an earlier run's revocation that
    reached it before the process died or the reply was lost) counts as done.
    """
    if not journal.revoke_pending:
        return False
    for serial in journal.revoke_pending:
        await revoke_serials(client, journal.spec.authority_id, (serial,), "superseded")
        owed = tuple(other for other in journal.revoke_pending if other != serial)
        revoked = _event("revoked", folder, _now(client), serial=serial)
        journal = await _tell(folder, journal.replace(revoke_pending=owed), options, revoked)
    return True


# -- events ----------------------------------------------------------------------------


def _event(
    kind: EventKind,
    folder: Path,
    now: datetime,
    *,
    serial: str | None = None,
    not_after: datetime | None = None,
    milestone: int | None = None,
    error: str | None = None,
) -> LifecycleEvent:
    return LifecycleEvent(
        kind=kind,
        folder=folder,
        serial_number=serial,
        not_after=not_after,
        days_left=None if not_after is None else days_left(not_after, now),
        milestone=milestone,
        error=error,
    )


def _watch_of(journal: Journal, live: LiveState) -> Watch | None:
    """The watch of the journal's current certificate: the journal's, or for a journal
    written before watches, one received at the certificate's ``not_before``. None
    without a current certificate, or when another one is in place (the keep records
    that one) or none is to date it by."""
    current, bundle = journal.current, live.bundle
    if current is None or (bundle is not None and bundle.serial_number != current.serial):
        return None
    if journal.watch is not None:
        return journal.watch if journal.watch.serial_number == current.serial else None
    if bundle is None:
        return None
    return Watch(serial_number=current.serial, received_at=bundle.not_before)


def _reached(
    folder: Path, journal: Journal, live: LiveState, options: _Options, now: datetime
) -> tuple[Watch, tuple[LifecycleEvent, ...]] | None:
    """The watch of the current certificate and the events of what it reached at
    ``now`` (milestones, largest first, then the expiry); None when nothing is."""
    watch = _watch_of(journal, live)
    current = journal.current
    if watch is None or current is None:
        return None
    milestones, expired = watch.reached(options.policy.milestones, current.not_after, now)
    if not milestones and not expired:
        return None
    of_current = functools.partial(
        _event, folder=folder, now=now, serial=current.serial, not_after=current.not_after
    )
    events = [of_current("milestone", milestone=days) for days in milestones]
    if expired:
        events.append(of_current("expired"))
    return watch, tuple(events)


async def _watch(
    client: SectigoClient, folder: Path, journal: Journal, live: LiveState, options: _Options
) -> Journal:
    """Record and tell the milestones and the expiry the current certificate reached.

    They are recorded and told ``_EVENTS_AT_ONCE`` at a time, so that a journal with
    events owed stays small however many milestones a policy has. In a folder that
    cannot be written, nothing is recorded or told (a warning says so): the keep goes
    on, and a later run that can write tells them.
    """
    reached = _reached(folder, journal, live, options, _now(client))
    if reached is None:
        return journal
    watch, events = reached
    for start in range(0, len(events), _EVENTS_AT_ONCE):
        chunk = events[start : start + _EVENTS_AT_ONCE]
        watch = watch.seen(
            tuple(event.milestone for event in chunk if event.milestone is not None),
            expired=any(event.kind == "expired" for event in chunk),
        )
        try:
            recorded = await _record(folder, journal.replace(watch=watch), options, chunk)
        except LifecycleError as exc:
            logger.warning("%s: milestones reached, not recorded: %s", folder, exc)
            return journal
        journal = await _deliver(folder, recorded, options)
    return journal


async def _tell(
    folder: Path, journal: Journal, options: _Options, *events: LifecycleEvent
) -> Journal:
    """Write ``journal`` with ``events`` in its outbox, tell ``on_event``, then write it
    without them (a crash between tells them again at the next run). Without
    ``on_event`` only ``journal`` is written, its outbox as it was."""
    return await _deliver(folder, await _record(folder, journal, options, events), options)


async def _record(
    folder: Path, journal: Journal, options: _Options, events: tuple[LifecycleEvent, ...]
) -> Journal:
    """Write ``journal``, with ``events`` in its outbox when there is ``on_event``."""
    if options.on_event is not None:
        journal = journal.replace(outbox=(*journal.outbox, *events))
    await _in_thread(write_journal, folder, journal)
    return journal


async def _deliver(folder: Path, journal: Journal, options: _Options) -> Journal:
    """Tell ``on_event`` the events of the journal's outbox, then clear it (nothing
    without ``on_event``: the outbox waits for a run that has one)."""
    if options.on_event is None or not journal.outbox:
        return journal
    await notify(options.on_event, journal.outbox)
    journal = journal.replace(outbox=())
    await _in_thread(write_journal, folder, journal)
    return journal


async def _tell_failure(
    client: SectigoClient, folder: Path, error: Exception, options: _Options, *, recorded: bool
) -> None:
    """Tell ``on_event`` that the folder's work failed with ``error`` (redacted): through
    the journal when ``recorded`` (the lock is held) and it can be read and written,
    else directly. Never raises: the caller raises ``error``."""
    if options.on_event is None:
        return
    journal: Journal | None = None
    if recorded:
        with contextlib.suppress(LifecycleError, OSError):
            journal = await _in_thread(read_journal, folder)
    current = journal.current if journal is not None else None
    event = _event(
        "failed",
        folder,
        _now(client),
        serial=None if current is None else current.serial,
        not_after=None if current is None else current.not_after,
        error=redacted_reason(error, journal.pending if journal is not None else None),
    )
    if journal is not None:
        try:
            journal = await _record(folder, journal, options, (event,))
        except (LifecycleError, OSError):
            journal = None
    try:
        if journal is None:
            await notify(options.on_event, (event,))
        else:
            await _deliver(folder, journal, options)
    except (LifecycleError, OSError) as exc:
        logger.warning("%s: the failed event was told, not cleared: %s", folder, exc)


def _renewal(options: _Options, folder: Path, bundle: CertificateBundle | None) -> datetime | None:
    """When ``options``' policy renews ``bundle`` in ``folder`` (its key: the path)."""
    if bundle is None:
        return None
    leaf = leaf_of(bundle.certificate)
    return options.policy.renewal_time(leaf.not_before, leaf.not_after, str(folder))


def _now(client: SectigoClient) -> datetime:
    return datetime.fromtimestamp(client.clock(), timezone.utc)


async def _checkpoint(step: str) -> None:
    """Test hook between local steps ("downloaded", "files_written"); does nothing."""
