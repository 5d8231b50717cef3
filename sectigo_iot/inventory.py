"""Every certificate you keep, in certificate folders and in a fleet store, and how it
stands: one list, as a table in a notebook or versioned JSON.

::

    from sectigo_iot.inventory import inventory

    listing = await inventory(["certs/api", "certs/mqtt"], store="fleet.sqlite3")
    for entry in listing:
        print(entry.folder or entry.key, entry.serial_number, entry.status, entry.days_left)
    listing.to_json()  # {"version": 1, "certificates": [...]}

A folder is read without its lock (its journal and its live certificate, as
:func:`sectigo_iot.lifecycle.load_certificate` reads them, so never half-switched); a
folder that cannot be read is an entry of status ``problem`` saying why, and the others
are still listed. A fleet store that cannot be opened (missing, damaged, another key)
is a :class:`~sectigo_iot.fleet.StoreError`: nothing of it can be trusted.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, overload

from attrs import frozen

from .errors import InvalidInputError
from .lifecycle import (
    JOURNAL_NAME,
    Journal,
    LifecycleError,
    RenewalPolicy,
    load_certificate,
    read_journal,
)

if TYPE_CHECKING:
    from .fleet import Store

__all__ = ["JSON_VERSION", "STATUSES", "Inventory", "InventoryEntry", "Status", "inventory"]

#: the version of :meth:`Inventory.to_json`'s document
JSON_VERSION = 1
Status = Literal["valid", "due", "expired", "revoked", "superseded", "problem"]
#: every status, in the order a summary counts them
STATUSES: tuple[Status, ...] = ("valid", "due", "expired", "revoked", "superseded", "problem")
#: a certificate file read for a superseded version is at most this large
_MAX_PEM_BYTES = 1024 * 1024
_DAY = 86400.0


@frozen(kw_only=True)
class InventoryEntry:
    """One certificate, or one folder that could not be read (status ``problem``).

    ``key`` is the fleet record's key (None for a folder); ``folder`` the folder's
    absolute path, symlinks resolved (None for a fleet record). ``status``:

    * ``valid``: in use, its renewal time not reached;
    * ``due``: in use, its renewal time passed (the next run renews it);
    * ``expired``: in use, past ``not_after``;
    * ``revoked``: the current certificate of a fleet record that was revoked;
    * ``superseded``: a certificate the folder or the record had before its current one;
    * ``problem``: the folder holds no usable certificate; ``problem`` says why.

    ``days_left`` is a float number of days (negative once expired); ``renewal_time``
    is when the policy renews it (the record's stored time for a fleet record; None
    for a superseded certificate or a problem).
    """

    status: Status
    key: str | None = None
    folder: str | None = None
    common_name: str | None = None
    serial_number: str | None = None
    not_after: datetime | None = None
    days_left: float | None = None
    renewal_time: datetime | None = None
    problem: str | None = None

    @property
    def in_use(self) -> bool:
        """Whether this is a certificate served now (valid, due or expired)."""
        return self.status in ("valid", "due", "expired")

    def to_json(self) -> dict[str, Any]:
        """The entry as :meth:`Inventory.to_json` lists it (these fields, in this order)."""
        return {
            "key": self.key,
            "folder": self.folder,
            "common_name": self.common_name,
            "serial_number": self.serial_number,
            "not_after": _iso(self.not_after),
            "days_left": None if self.days_left is None else round(self.days_left, 3),
            "renewal_time": _iso(self.renewal_time),
            "status": self.status,
            "problem": self.problem,
        }


@frozen
class Inventory:
    """The entries listed at ``now``: the folders in the order given (each one's
    current certificate, then the one it superseded), then the fleet's records by key
    (each one's current certificate, then those it superseded, oldest first)."""

    entries: tuple[InventoryEntry, ...]
    now: datetime

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[InventoryEntry]:
        return iter(self.entries)

    @overload
    def __getitem__(self, index: int) -> InventoryEntry: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[InventoryEntry, ...]: ...

    def __getitem__(self, index: int | slice) -> InventoryEntry | tuple[InventoryEntry, ...]:
        return self.entries[index]

    def expiring(self, days: float) -> Inventory:
        """The certificates in use with ``days`` days or fewer left (and the problems)."""
        return Inventory(
            tuple(
                entry
                for entry in self.entries
                if entry.status == "problem"
                or (entry.in_use and entry.days_left is not None and entry.days_left <= days)
            ),
            self.now,
        )

    def count(self, status: object) -> int:
        """How many entries have ``status``."""
        return sum(1 for entry in self.entries if entry.status == status)

    def to_json(self) -> dict[str, Any]:
        """``{"version": 1, "certificates": [...]}`` (see :meth:`InventoryEntry.to_json`)."""
        return {
            "version": JSON_VERSION,
            "certificates": [entry.to_json() for entry in self.entries],
        }

    def _repr_html_(self) -> str:
        from ._html import table_html

        header = ("key or folder", "common name", "serial", "not after", "days left")
        rows = [
            (
                entry.key or entry.folder or "",
                entry.common_name or "",
                entry.serial_number or "",
                _iso(entry.not_after) or "",
                "" if entry.days_left is None else f"{entry.days_left:.1f}",
                _iso(entry.renewal_time) or "",
                entry.status if entry.problem is None else f"problem: {entry.problem}",
            )
            for entry in self.entries
        ]
        counts = ", ".join(f"{self.count(s)} {s}" for s in STATUSES if self.count(s))
        return table_html(
            f"Inventory at {self.now.isoformat()}",
            (*header, "renewal time", "status"),
            rows,
            footer=counts or "no certificate",
        )


async def inventory(
    folders: Iterable[str | os.PathLike[str]] = (),
    *,
    store: str | os.PathLike[str] | Store | None = None,
    policy: RenewalPolicy | None = None,
    now: datetime | None = None,
) -> Inventory:
    """Every certificate in ``folders`` and in the fleet ``store``, as it stands at
    ``now`` (default: this machine's clock).

    ``folders`` are certificate folders (as ``ensure_certificate`` keeps them), each
    read once, without its lock, in one worker thread; a path naming a folder already
    listed is listed once. ``store`` is a fleet store's location (an SQLite file, which
    must exist, or a ``postgresql://`` URL; its key as ``open_store`` finds it), opened
    and closed here, or a :class:`~sectigo_iot.fleet.Store` (opened here, left open for
    its owner to close). ``policy`` decides the folders' renewal times (default: the
    default :class:`~sectigo_iot.lifecycle.RenewalPolicy`); a record's is the one the
    fleet stored. StoreError when the store cannot be read; InvalidInputError for
    arguments of the wrong kind.
    """
    import anyio.to_thread

    if now is None:
        now = datetime.now(timezone.utc)
    elif not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidInputError(f"now must be an aware datetime, got {now!r}")
    if policy is None:
        policy = RenewalPolicy()
    elif not isinstance(policy, RenewalPolicy):
        raise InvalidInputError(f"policy must be a RenewalPolicy, got {type(policy).__name__}")
    if isinstance(folders, (str, bytes, os.PathLike)):
        raise InvalidInputError("folders must be a list of folders, not one path")
    paths = list(dict.fromkeys(_resolved(folder) for folder in folders))
    read = functools.partial(_read_folders, paths, policy, now)
    entries = await anyio.to_thread.run_sync(read)
    if store is not None:
        entries += await _read_store(store, now)
    return Inventory(tuple(entries), now)


def _resolved(folder: str | os.PathLike[str]) -> str:
    """A folder's key: its absolute path with symlinks resolved, as ``renew_due``'s."""
    if not isinstance(folder, (str, os.PathLike)):
        raise InvalidInputError(f"a folder is a path, not {type(folder).__name__}")
    text = os.fspath(folder)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"a folder is a non-empty path, got {folder!r}")
    return os.path.realpath(text)


# -- folders --------------------------------------------------------------------------


def _read_folders(paths: list[str], policy: RenewalPolicy, now: datetime) -> list[InventoryEntry]:
    entries: list[InventoryEntry] = []
    for path in paths:
        entries.extend(_read_folder(path, policy, now))
    return entries


def _read_folder(folder: str, policy: RenewalPolicy, now: datetime) -> list[InventoryEntry]:
    """The folder's live certificate and the one it superseded, or one problem entry."""
    journal: Journal | None = None
    try:
        journal = read_journal(folder)
        bundle = load_certificate(folder)
    except LifecycleError as exc:
        problem = _not_a_folder(folder) or str(exc)
        if journal is None and problem.startswith(f"{folder} holds no usable certificate"):
            problem = f"{folder} is not a certificate folder: no {JOURNAL_NAME}, no certificate"
        name = journal.spec.common_name if journal is not None else None
        return [InventoryEntry(status="problem", folder=folder, common_name=name, problem=problem)]
    not_before, not_after = bundle.not_before, bundle.not_after
    renewal = policy.renewal_time(not_before, not_after, folder)
    current = InventoryEntry(
        status=_status(now, not_after, renewal),
        folder=folder,
        common_name=bundle.common_name or (journal.spec.common_name if journal else None),
        serial_number=bundle.serial_number,
        not_after=not_after,
        days_left=_days_left(not_after, now),
        renewal_time=renewal,
    )
    previous = journal.previous_version if journal is not None else None
    if previous is None or previous == bundle.serial_number:
        return [current]
    before = _version_expiry(folder, previous)
    superseded = InventoryEntry(
        status="superseded",
        folder=folder,
        common_name=current.common_name,
        serial_number=previous,
        not_after=before,
        days_left=None if before is None else _days_left(before, now),
    )
    return [current, superseded]


@functools.cache
def _x509() -> Any:
    """cryptography's x509, imported on first use."""
    from cryptography import x509

    return x509


def _not_a_folder(folder: str) -> str | None:
    """Why ``folder`` is not a folder that can be listed, or None when it is one."""
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        return f"{folder} does not exist"
    except OSError as exc:
        loop = " (a loop of symbolic links)" if exc.errno == errno.ELOOP else ""
        return f"{folder} cannot be read: {exc.strerror}{loop}"
    return None if stat.S_ISDIR(info.st_mode) else f"{folder} is not a folder"


def _version_expiry(folder: str, version: str) -> datetime | None:
    """``not_after`` of the certificate in the folder's version ``version`` (a serial in
    hex, checked by the journal), or None when it is gone or cannot be read: a bounded
    read of a regular file, never of a final symlink, a FIFO or a device."""
    path = os.path.join(folder, "versions", version, "cert.pem")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_PEM_BYTES:
            return None
        data = os.read(fd, _MAX_PEM_BYTES)
        expiry: datetime = _x509().load_pem_x509_certificate(data).not_valid_after_utc
        return expiry
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


# -- a fleet store --------------------------------------------------------------------


async def _read_store(store: str | os.PathLike[str] | Store, now: datetime) -> list[InventoryEntry]:
    """The records of ``store`` (opened and closed here when it is a location)."""
    import anyio.to_thread

    from .fleet import RecordState

    if not isinstance(store, (str, os.PathLike)):
        await store.open()
        rows = await store.list()
    else:
        opened = await anyio.to_thread.run_sync(_store_at, os.fspath(store))
        try:
            await opened.open()
            rows = await opened.list()
        finally:
            await opened.close()
    entries = []
    for row in rows:
        name = row.spec.common_name
        if row.serial_number is not None and row.not_after is not None:
            revoked = row.state is RecordState.REVOKED
            entries.append(
                InventoryEntry(
                    status="revoked" if revoked else _status(now, row.not_after, row.renewal_at),
                    key=row.key,
                    common_name=name,
                    serial_number=row.serial_number,
                    not_after=row.not_after,
                    days_left=_days_left(row.not_after, now),
                    renewal_time=row.renewal_at,
                )
            )
        entries.extend(
            InventoryEntry(
                status="superseded",
                key=row.key,
                common_name=name,
                serial_number=serial,
                not_after=end,
                days_left=_days_left(end, now),
            )
            for serial, end in row.superseded
        )
    return entries


def _store_at(location: str) -> Store:
    """The store at ``location``; never an empty one made (with its key) where a path
    that names no file points."""
    from .fleet import StoreError, open_store

    if "://" not in location and not os.path.isfile(location):
        raise StoreError(
            f"no fleet store at {os.path.abspath(location)}: give the path of an existing "
            "SQLite store or a postgresql:// URL"
        )
    return open_store(location)


# -- helpers --------------------------------------------------------------------------


def _status(now: datetime, not_after: datetime, renewal: datetime | None) -> Status:
    if now >= not_after:
        return "expired"
    if renewal is not None and now >= renewal:
        return "due"
    return "valid"


def _days_left(not_after: datetime, now: datetime) -> float:
    return (not_after - now).total_seconds() / _DAY


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()
