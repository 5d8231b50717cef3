"""The journal: a folder's state file, read and written whole.

``journal.json`` (mode 0600) records the spec, the certificate in place, the pending
attempt (written before its create is sent: batch name, PKCS#12 password, attempt time,
then the batch id), the last attempt that failed (its batch was rejected or failed: no
password, the reason redacted), a revocation still owed, the :class:`Watch` of the
certificate in place (when it was received, the milestones fired) and the ``outbox``:
events recorded but not yet told to ``on_event``. It is replaced atomically at each
step. A journal written before the watch and the outbox existed reads as having none.

The folder's files are read with :func:`read_regular`: a bounded read of a regular file
that never follows a final symlink and never blocks on a FIFO or a device.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from attrs import evolve, field, frozen

from .._files import write_atomic
from .._logging import redact, register_secret
from ..errors import InvalidInputError, SectigoError
from ._events import LifecycleEvent, Watch
from ._spec import CertificateSpec

__all__ = [
    "JOURNAL_NAME",
    "READ_ONLY_ERRORS",
    "VERSION_NAME",
    "CurrentCertificate",
    "FailedAttempt",
    "Journal",
    "JournalError",
    "LifecycleError",
    "PendingAttempt",
    "read_journal",
    "read_regular",
    "read_settled_journal",
    "redacted_reason",
    "write_journal",
    "writing",
]

JOURNAL_NAME = "journal.json"
JOURNAL_VERSION = 1
_MODE = 0o600
_MAX_BYTES = 64 * 1024
#: what a write in a read-only folder (or without the permission) fails with
READ_ONLY_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS)
_MAX_REASON = 500  # characters of a failure reason kept in the journal
#: a version folder's name: the certificate's serial in hex (never a path)
VERSION_NAME = re.compile(r"[0-9A-F]{1,64}")


class LifecycleError(SectigoError):
    """A certificate folder cannot be used as it is (its layout was changed by hand)."""


class JournalError(LifecycleError):
    """A journal is missing, unreadable or not in the expected format."""


@frozen(kw_only=True)
class PendingAttempt:
    """An issue or renewal under way: enough to find its batch and open its archive.

    In CSR mode (``spec.key_type``) the attempt holds its own ``private_key_pem`` and
    an empty ``pkcs12_password``.
    """

    batch_name: str
    pkcs12_password: str = field(repr=False)
    attempted_at: datetime
    spec: CertificateSpec
    batch_id: int | None = None
    private_key_pem: bytes | None = field(default=None, repr=False)


@frozen(kw_only=True)
class CurrentCertificate:
    """The certificate in place: its serial, expiry, batch and version folder."""

    serial: str
    not_after: datetime
    version: str
    batch_id: int | None = None


@frozen(kw_only=True)
class FailedAttempt:
    """The last attempt whose batch ended rejected or failed: closed, never resumed."""

    batch_id: int | None
    batch_name: str
    reason: str
    failed_at: datetime

    @classmethod
    def of(cls, pending: PendingAttempt, error: Exception, failed_at: datetime) -> FailedAttempt:
        """The record of ``pending`` ended by ``error``, its reason redacted and bounded."""
        return cls(
            batch_id=pending.batch_id,
            batch_name=pending.batch_name,
            reason=redacted_reason(error, pending),
            failed_at=failed_at,
        )


def redacted_reason(error: BaseException, pending: PendingAttempt | None) -> str:
    """``error`` as text that can be kept and shown: redacted, without the PKCS#12
    password of ``pending``, bounded."""
    reason = redact(f"{type(error).__name__}: {error}")
    if pending is not None and pending.pkcs12_password:
        reason = reason.replace(pending.pkcs12_password, "***")
    return reason[:_MAX_REASON]


@frozen(kw_only=True)
class Journal:
    """A folder's state (see the module docstring)."""

    spec: CertificateSpec
    current: CurrentCertificate | None = None
    previous_version: str | None = None
    pending: PendingAttempt | None = None
    revoke_pending: tuple[str, ...] = ()
    last_failure: FailedAttempt | None = None
    #: what has been seen of ``current`` (None in a journal written before watches)
    watch: Watch | None = None
    #: events recorded, not yet told to ``on_event``
    outbox: tuple[LifecycleEvent, ...] = ()

    def replace(self, **changes: Any) -> Journal:
        """A copy with ``changes``."""
        return evolve(self, **changes)


def read_regular(
    path: str | Path, limit: int, error: type[LifecycleError] = LifecycleError
) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``), read without
    following a final symlink and without blocking on a FIFO or a device.

    FileNotFoundError when it is missing; ``error`` when it is anything but a regular
    file of at most ``limit`` bytes, or cannot be read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{path} is a symbolic link, not a file; move it away") from None
        raise error(f"{path} cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path} is {_kind(info.st_mode)}, not a regular file; move it away")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit, info.st_size) + 1 - size)
            chunks.append(chunk)
            size += len(chunk)
            if not chunk or size >= info.st_size:
                break
    except OSError as exc:
        raise error(f"{path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise error(f"{path} is larger than {limit} bytes; not a file of this folder")
    return b"".join(chunks)


def read_journal(folder: str | Path) -> Journal | None:
    """The journal of ``folder``, or None when it has none. JournalError when damaged."""
    path = os.path.join(folder, JOURNAL_NAME)
    try:
        data = read_regular(path, _MAX_BYTES, JournalError)
    except FileNotFoundError:
        return None
    return _parse(path, data)


def read_settled_journal(folder: str | Path) -> Journal | None:
    """:func:`read_journal` for checks that run often: a journal without a pending
    attempt (so without a secret) is decoded once per content, and that same object is
    returned each time (never give it away: ``spec.params`` is a dict)."""
    path = os.path.join(folder, JOURNAL_NAME)
    try:
        data = read_regular(path, _MAX_BYTES, JournalError)
    except FileNotFoundError:
        return None
    try:
        return _settled(path, data)
    except _HoldsSecret:
        return _parse(path, data)


class _HoldsSecret(Exception):
    """A journal with a pending attempt: never remembered (raised, so not cached)."""


@functools.lru_cache(maxsize=64)
def _settled(path: str, data: bytes) -> Journal:
    journal = _parse(path, data)
    if journal.pending is not None:
        raise _HoldsSecret
    return journal


def _parse(path: str, data: bytes) -> Journal:
    try:
        return _decode(json.loads(data))
    except RecursionError:
        raise JournalError(f"{path} is nested too deeply; not a journal") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # the message names the field, never a value (the password is in here)
        raise JournalError(
            f"{path} is damaged ({type(exc).__name__}); fix or remove it by hand. If it "
            "holds a pending attempt, check for its batch first"
        ) from None


def write_journal(folder: Path, journal: Journal) -> None:
    """Replace the journal of ``folder`` in one step (mode 0600)."""
    text = json.dumps(_encode(journal), indent=2, sort_keys=True) + "\n"
    with writing(folder):
        write_atomic(folder / JOURNAL_NAME, text.encode(), mode=_MODE, overwrite=True)


@contextlib.contextmanager
def writing(folder: Path) -> Iterator[None]:
    """Turn a write refused by the system (read-only folder, no permission) into a
    LifecycleError that says so."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in READ_ONLY_ERRORS:
            raise
        raise LifecycleError(
            f"cannot write in {folder} ({exc.strerror}: {exc.filename}); the folder must "
            "be writable to issue or renew its certificate"
        ) from None


def _encode(journal: Journal) -> dict[str, Any]:
    current, pending, failure = journal.current, journal.pending, journal.last_failure
    watch = journal.watch
    return {
        "version": JOURNAL_VERSION,
        "spec": journal.spec.to_dict(),
        "current": None
        if current is None
        else {
            "serial": current.serial,
            "not_after": current.not_after.isoformat(),
            "version": current.version,
            "batch_id": _optional_id(current.batch_id),
        },
        "previous_version": journal.previous_version,
        "pending": None
        if pending is None
        else {
            "batch_name": pending.batch_name,
            "pkcs12_password": pending.pkcs12_password,
            "attempted_at": pending.attempted_at.isoformat(),
            "spec": pending.spec.to_dict(),
            "batch_id": _optional_id(pending.batch_id),
            "private_key": None
            if pending.private_key_pem is None
            else pending.private_key_pem.decode("ascii"),
        },
        "revoke_pending": list(journal.revoke_pending),
        "last_failure": None
        if failure is None
        else {
            "batch_id": _optional_id(failure.batch_id),
            "batch_name": failure.batch_name,
            "reason": failure.reason,
            "failed_at": failure.failed_at.isoformat(),
        },
        "watch": None if watch is None else watch.to_dict(),
        "outbox": [event.to_dict() for event in journal.outbox],
    }


def _decode(data: dict[str, Any]) -> Journal:
    if data["version"] != JOURNAL_VERSION:
        raise ValueError("unknown journal version")
    current = data.get("current")
    pending = data.get("pending")
    failure = data.get("last_failure")
    watch = data.get("watch")
    try:
        spec = CertificateSpec.from_dict(data["spec"])
        pending_spec = None if pending is None else CertificateSpec.from_dict(pending["spec"])
    except InvalidInputError:
        raise ValueError("invalid spec") from None
    if pending is not None and pending["pkcs12_password"]:
        register_secret(_text(pending["pkcs12_password"]))
    return Journal(
        spec=spec,
        current=None
        if current is None
        else CurrentCertificate(
            serial=_text(current["serial"]),
            not_after=_moment(current["not_after"]),
            version=_version(current["version"]),
            batch_id=_optional_id(current.get("batch_id")),
        ),
        previous_version=None
        if data.get("previous_version") is None
        else _version(data["previous_version"]),
        pending=None
        if pending is None or pending_spec is None
        else PendingAttempt(
            batch_name=_text(pending["batch_name"]),
            # CSR mode: our own key, no PKCS#12 password
            pkcs12_password=_text(pending["pkcs12_password"])
            if pending.get("private_key") is None
            else _string(pending["pkcs12_password"]),
            attempted_at=_moment(pending["attempted_at"]),
            spec=pending_spec,
            batch_id=_optional_id(pending.get("batch_id")),
            private_key_pem=None
            if pending.get("private_key") is None
            else _text(pending["private_key"]).encode("ascii"),
        ),
        revoke_pending=tuple(_text(serial) for serial in data.get("revoke_pending", [])),
        last_failure=None
        if failure is None
        else FailedAttempt(
            batch_id=_optional_id(failure.get("batch_id")),
            batch_name=_text(failure["batch_name"]),
            reason=_text(failure["reason"]),
            failed_at=_moment(failure["failed_at"]),
        ),
        watch=None
        if watch is None
        else Watch(
            serial_number=_text(watch["serial_number"]),
            received_at=_moment(watch["received_at"]),
            fired=tuple(_days(days) for days in watch["fired"]),
            expired=_flag(watch["expired"]),
        ),
        outbox=tuple(_event(event) for event in data.get("outbox", [])),
    )


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
        stat.S_ISDIR: "a directory",
    }
    return next((name for test, name in kinds.items() if test(mode)), "a special file")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _version(value: Any) -> str:
    if not VERSION_NAME.fullmatch(_text(value)):
        raise ValueError("a version name is not a serial number")
    return str(value)


def _optional_id(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TypeError("expected a positive batch id")
    return value


def _days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError("expected whole days >= 0")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _event(data: Any) -> LifecycleEvent:
    if not isinstance(data, dict):
        raise TypeError("expected an event")
    try:
        event = LifecycleEvent.from_dict(data)
    except InvalidInputError:
        raise ValueError("unknown event kind") from None
    if event.not_after is not None and event.not_after.tzinfo is None:
        raise ValueError("expected a time with a UTC offset")
    return event


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError("expected a time with a UTC offset")
    return moment
