"""Read-only views of the emulator's state for tests, and its request counters."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

from attrs import frozen
from cryptography import x509

__all__ = ["EmulatorBatch", "EmulatorCertificate", "EmulatorStats", "Revocation"]


@frozen(kw_only=True)
class EmulatorBatch:
    """A batch as the emulator stores it (``kind`` is ``"single"`` or ``"csr"``).

    ``reject_reason`` is why a ``REJECTED`` batch was rejected, or the ``<reason>`` of a
    ``NOT_ACCEPTABLE`` one's text status ``Not Acceptable. Status: <reason>``.
    """

    batch_id: int
    username: str
    name: str
    kind: str
    status: str
    reject_reason: str
    authority_id: int
    profile_id: int
    size: int
    created: datetime
    serial_numbers: tuple[str, ...]


@frozen(kw_only=True)
class EmulatorCertificate:
    """A certificate the emulator issued (or will issue when its batch is ready)."""

    serial_number: str
    batch_id: int
    username: str
    common_name: str
    device_id: str
    status: str
    created: datetime
    certificate: x509.Certificate


@frozen(kw_only=True)
class Revocation:
    """A revoked certificate: who revoked what, when, why, under which profile."""

    serial_number: str
    username: str
    common_name: str
    reason_code: int
    revoked_at: datetime
    profile_id: int


class EmulatorStats:
    """Counters a test can assert on: logins, refreshes and requests per route."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.logins = 0
        self.failed_logins = 0
        self.refreshes = 0
        self.logins_by_user: Counter[str] = Counter()
        self.refreshes_by_user: Counter[str] = Counter()
        #: requests seen, keyed ``"METHOD /path"``, faulted ones included
        self.requests: Counter[str] = Counter()

    def __repr__(self) -> str:
        return (
            f"<EmulatorStats logins={self.logins} refreshes={self.refreshes} "
            f"failed_logins={self.failed_logins} requests={sum(self.requests.values())}>"
        )

    def record_login(self, username: str) -> None:
        """Count a successful login."""
        with self._lock:
            self.logins += 1
            self.logins_by_user[username] += 1

    def record_failed_login(self) -> None:
        """Count a rejected login."""
        with self._lock:
            self.failed_logins += 1

    def record_refresh(self, username: str) -> None:
        """Count a successful refresh."""
        with self._lock:
            self.refreshes += 1
            self.refreshes_by_user[username] += 1

    def record_request(self, method: str, path: str) -> None:
        """Count a request."""
        with self._lock:
            self.requests[f"{method} {path}"] += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON (served at ``GET /emulator/stats``; no usernames)."""
        with self._lock:
            return {
                "logins": self.logins,
                "failedLogins": self.failed_logins,
                "refreshes": self.refreshes,
                "requests": sum(self.requests.values()),
                "requestsByRoute": dict(self.requests),
            }

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self.logins = self.failed_logins = self.refreshes = 0
            self.logins_by_user.clear()
            self.refreshes_by_user.clear()
            self.requests.clear()
