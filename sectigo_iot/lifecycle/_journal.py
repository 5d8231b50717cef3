"""The journal: a folder's state file, read and written whole.

``journal.json`` (mode 0600) records the spec, the certificate in place, the pending
attempt (written before its create is sent: batch name, PKCS#12 password, attempt time,
then the batch id) and a revocation still owed. It is replaced atomically at each step.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from attrs import evolve, field, frozen

from .._files import write_atomic
from .._logging import register_secret
from ..errors import InvalidInputError, SectigoError
from ._spec import CertificateSpec

__all__ = [
    "JOURNAL_NAME",
    "VERSION_NAME",
    "CurrentCertificate",
    "Journal",
    "JournalError",
    "LifecycleError",
    "PendingAttempt",
    "read_journal",
    "write_journal",
]

JOURNAL_NAME = "journal.json"
JOURNAL_VERSION = 1
_MODE = 0o600
_MAX_BYTES = 64 * 1024
#: a version folder's name: the certificate's serial in hex (never a path)
VERSION_NAME = re.compile(r"[0-9A-F]{1,64}")


class LifecycleError(SectigoError):
    """A certificate folder cannot be used as it is (its layout was changed by hand)."""


class JournalError(LifecycleError):
    """A journal is missing, unreadable or not in the expected format."""


@frozen(kw_only=True)
class PendingAttempt:
    """An issue or renewal under way: enough to find its batch and open its archive."""

    batch_name: str
    pkcs12_password: str = field(repr=False)
    attempted_at: datetime
    spec: CertificateSpec
    batch_id: int | None = None


@frozen(kw_only=True)
class CurrentCertificate:
    """The certificate in place: its serial, expiry, batch and version folder."""

    serial: str
    not_after: datetime
    version: str
    batch_id: int | None = None


@frozen(kw_only=True)
class Journal:
    """A folder's state (see the module docstring)."""

    spec: CertificateSpec
    current: CurrentCertificate | None = None
    previous_version: str | None = None
    pending: PendingAttempt | None = None
    revoke_pending: tuple[str, ...] = ()

    def replace(self, **changes: Any) -> Journal:
        """A copy with ``changes``."""
        return evolve(self, **changes)


def read_journal(folder: str | Path) -> Journal | None:
    """The journal of ``folder``, or None when it has none. JournalError when damaged."""
    path = Path(folder) / JOURNAL_NAME
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"{path} cannot be read: {exc.strerror}") from None
    if len(data) > _MAX_BYTES:
        raise JournalError(f"{path} is larger than {_MAX_BYTES} bytes; not a journal")
    try:
        return _decode(json.loads(data))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # the message names the field, never a value (the password is in here)
        raise JournalError(
            f"{path} is damaged ({type(exc).__name__}); fix or remove it by hand. If it "
            "holds a pending attempt, check for its batch first"
        ) from None


def write_journal(folder: Path, journal: Journal) -> None:
    """Replace the journal of ``folder`` in one step (mode 0600)."""
    text = json.dumps(_encode(journal), indent=2, sort_keys=True) + "\n"
    write_atomic(folder / JOURNAL_NAME, text.encode(), mode=_MODE, overwrite=True)


def _encode(journal: Journal) -> dict[str, Any]:
    current = journal.current
    pending = journal.pending
    return {
        "version": JOURNAL_VERSION,
        "spec": journal.spec.to_dict(),
        "current": None
        if current is None
        else {
            "serial": current.serial,
            "not_after": current.not_after.isoformat(),
            "version": current.version,
            "batch_id": current.batch_id,
        },
        "previous_version": journal.previous_version,
        "pending": None
        if pending is None
        else {
            "batch_name": pending.batch_name,
            "pkcs12_password": pending.pkcs12_password,
            "attempted_at": pending.attempted_at.isoformat(),
            "spec": pending.spec.to_dict(),
            "batch_id": pending.batch_id,
        },
        "revoke_pending": list(journal.revoke_pending),
    }


def _decode(data: dict[str, Any]) -> Journal:
    if data["version"] != JOURNAL_VERSION:
        raise ValueError("unknown journal version")
    current = data.get("current")
    pending = data.get("pending")
    try:
        spec = CertificateSpec.from_dict(data["spec"])
        pending_spec = None if pending is None else CertificateSpec.from_dict(pending["spec"])
    except InvalidInputError:
        raise ValueError("invalid spec") from None
    if pending is not None:
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
            pkcs12_password=_text(pending["pkcs12_password"]),
            attempted_at=_moment(pending["attempted_at"]),
            spec=pending_spec,
            batch_id=_optional_id(pending.get("batch_id")),
        ),
        revoke_pending=tuple(_text(serial) for serial in data.get("revoke_pending", [])),
    )


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
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


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError("expected a time with a UTC offset")
    return moment
