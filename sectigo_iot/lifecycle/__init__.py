"""Certificates kept valid in folders: issue, keep, renew, and resume after a crash.

::

    from datetime import timedelta
    from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate, renew_due

    spec = CertificateSpec(authority_id=1, common_name="api.example.com",
                           dns_names=("www.api.example.com",))
    result = await ensure_certificate(client, spec, "certs/api.example.com",
                                      renew_before=timedelta(days=30))
    result.action   # "kept" | "issued" | "renewed" | "resumed"
    results = await renew_due(client, ["certs/api.example.com", "certs/b.example.com"])

Each folder holds a journal (``journal.json``, 0600) and versioned PEM files behind a
``live`` symlink switched in one rename; ``cert.pem``, ``chain.pem``, ``fullchain.pem``
and ``key.pem`` stay at stable paths (``<folder>/cert.pem`` -> ``live/cert.pem``).
A program that reads the files one by one can straddle a switch; one that must never
pair a new key with an old certificate resolves ``live`` once, or uses
:func:`load_certificate`. One process at a time changes a folder (``flock`` on
``<folder>/.lock``, which names its holder); another waits up to ``lock_timeout``
(FolderLockedError after). A check that keeps the folder as it is takes no lock. A
batch that ends rejected or failed closes its attempt (``Journal.last_failure``): the
next run starts a new one. POSIX only. Uses the client and ``sectigo_iot.certs``;
never the session.

``on_event=`` tells a caller what happens (``issued``, ``renewed``, ``revoked``,
``failed``, and ``milestone`` / ``expired`` as the certificate in place reaches the
policy's ``milestones`` days left or its end, once per certificate, on the client's
clock). Each event is written to the journal's outbox before the callback and cleared
after it, so a crash between tells it again at the next run::

    async def page(event: LifecycleEvent) -> None:
        if event.kind in ("milestone", "expired", "failed"):
            await pager.send(event.to_dict())  # folder, serial, days_left, error ...

    await renew_due(client, folders, on_event=page)
"""

from ._ensure import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_RENEW_BEFORE,
    PENDING_SETTLE,
    Action,
    CertificateResult,
    OnProgress,
    ensure_certificate,
    renew_due,
)
from ._events import EventKind, LifecycleEvent, OnEvent
from ._folder import FILE_NAMES, FolderLockedError, LockHolder, OnLockWait, load_certificate
from ._journal import (
    JOURNAL_NAME,
    CurrentCertificate,
    FailedAttempt,
    Journal,
    JournalError,
    LifecycleError,
    PendingAttempt,
    read_journal,
)
from ._policy import RenewalPolicy
from ._spec import CertificateSpec

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_RENEW_BEFORE",
    "FILE_NAMES",
    "JOURNAL_NAME",
    "PENDING_SETTLE",
    "Action",
    "CertificateResult",
    "CertificateSpec",
    "CurrentCertificate",
    "EventKind",
    "FailedAttempt",
    "FolderLockedError",
    "Journal",
    "JournalError",
    "LifecycleError",
    "LifecycleEvent",
    "LockHolder",
    "OnEvent",
    "OnLockWait",
    "OnProgress",
    "PendingAttempt",
    "RenewalPolicy",
    "ensure_certificate",
    "load_certificate",
    "read_journal",
    "renew_due",
]
