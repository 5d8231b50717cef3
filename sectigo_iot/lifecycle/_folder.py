"""A certificate folder's layout: version folders, the ``live`` link, the lock.

::

    <folder>/                 0700
      journal.json            0600, the state (see _journal)
      .lock                   locked (flock) by the one process changing the folder
      versions/<SERIAL>/      0700: cert.pem, chain.pem, fullchain.pem (0644), key.pem (0600)
      live -> versions/<SERIAL>
      cert.pem -> live/cert.pem      (and chain.pem, fullchain.pem, key.pem)
      batch-<id>.zip          0600, a download in progress (removed once in place)

A version folder is complete before ``live`` points at it, and ``live`` is switched by
renaming a new symlink over it, so a reader going through ``live`` (or the top-level
links) sees the old files or the new ones, never a mix. The version before the live
one is kept, for readers that resolved ``live`` just before a switch. So the folder can
be read without the lock (``load_live``); only changes take it.

The layout is checked on resolved paths: ``versions`` and each version must be real
folders inside ``<folder>``, and ``live`` must point at one of them; anything else is
refused (LifecycleError), never followed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from attrs import frozen

from .._files import make_private_dirs, sync_folder, write_atomic
from .._logging import get_logger
from ._journal import READ_ONLY_ERRORS, VERSION_NAME, LifecycleError, read_regular, writing

if TYPE_CHECKING:
    from ..certs import CertificateBundle

__all__ = [
    "FILE_NAMES",
    "FolderLockedError",
    "LiveState",
    "LockHolder",
    "OnLockWait",
    "archive_path",
    "folder_lock",
    "load_certificate",
    "load_live",
    "publish_version",
    "remove_archives",
    "remove_leftovers",
    "switch_live",
]

logger = get_logger("sectigo_iot.lifecycle")

LIVE = "live"
VERSIONS = "versions"
LOCK_NAME = ".lock"
#: the files of a version, reachable as ``<folder>/<name>`` and ``<folder>/live/<name>``
FILE_NAMES = ("cert.pem", "chain.pem", "fullchain.pem", "key.pem")
_CERT_MODE, _KEY_MODE = 0o644, 0o600
_LOCK_POLL = 0.1  # seconds between tries of a lock held by someone else
_MAX_PEM_BYTES = 1024 * 1024
_MAX_HOLDER_BYTES = 1024
T = TypeVar("T")
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


@frozen
class LiveState:
    """What ``live`` holds: the version's name and bundle, or why it cannot be used."""

    version: str | None
    bundle: CertificateBundle | None
    problem: str  # "" when usable; "empty" when there is no live version


@frozen(kw_only=True)
class LockHolder:
    """The process holding a folder's lock, as it recorded itself in ``.lock``."""

    pid: int | None = None
    host: str = ""
    command: str = ""
    since: str = ""

    def __str__(self) -> str:
        if self.pid is None:
            return "another process (it recorded no pid)"
        details = ", ".join(part for part in (self.host, self.command, self.since) if part)
        return f"pid {self.pid}" + (f" ({details})" if details else "")


class FolderLockedError(LifecycleError):
    """Another process held the folder's lock for longer than ``lock_timeout``."""

    folder: Path
    """The folder that stayed locked."""
    holder: LockHolder
    """Who held it, as recorded in its ``.lock`` file."""

    def __init__(self, message: str, *, folder: Path, holder: LockHolder) -> None:
        self.folder = folder
        self.holder = holder
        super().__init__(message)


#: called once when a folder's lock is held by another process, before waiting
OnLockWait = Callable[[Path, LockHolder], "Awaitable[Any] | Any"]


@contextlib.asynccontextmanager
async def folder_lock(
    folder: Path,
    read: Callable[[], T],
    *,
    wait: float,
    on_wait: OnLockWait | None = None,
) -> AsyncIterator[T]:
    """Hold the folder's lock (``flock`` on ``.lock``) during the block, which gets what
    ``read()`` returns, called in a worker thread once the lock is held.

    The folder is made (0700) if missing. The lock is tried without blocking and
    retried every 0.1 s, so waiting never blocks the event loop and can be cancelled.
    When it is held, the holder (recorded in ``.lock``) is given to ``on_wait`` at once
    (logged as a warning when there is none); after ``wait`` seconds,
    FolderLockedError. The holder records its pid, host and command once it has the
    lock. The system releases it when the process dies. A read-only folder without a
    lock file is used unlocked: nobody can change it. Taking a free lock and reading
    is one trip to a worker thread.
    """

    def take() -> tuple[int | None, bool, T | None]:
        if not os.path.isdir(folder):
            make_private_dirs(folder)
        fd = _open_lock(folder / LOCK_NAME)
        if fd is None:
            return None, True, read()
        try:
            if not _try_lock(fd):
                return fd, False, None
            _record_holder(fd)
            return fd, True, read()
        except BaseException:
            os.close(fd)
            raise

    with anyio.CancelScope(shield=True):  # the descriptor must not be lost
        fd, locked, value = await anyio.to_thread.run_sync(take)
    try:
        if not locked:
            assert fd is not None
            await _wait_for_lock(folder, fd, wait=wait, on_wait=on_wait)
            value = await anyio.to_thread.run_sync(read)
        yield value  # type: ignore[misc]
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


async def _wait_for_lock(folder: Path, fd: int, *, wait: float, on_wait: OnLockWait | None) -> None:
    """Tell of the lock's holder, then poll until the lock is ours (and record us as
    its holder) or ``wait`` seconds have passed (FolderLockedError)."""
    holder = _holder(fd)
    if on_wait is None:
        logger.warning("waiting for %s: locked by %s", folder, holder)
    else:
        logger.info("waiting for %s: locked by %s", folder, holder)
        outcome = on_wait(folder, holder)
        if inspect.isawaitable(outcome):
            await outcome
    with anyio.move_on_after(wait):
        while not _try_lock(fd):  # noqa: ASYNC110 (a lock file: no event to wait on)
            await anyio.sleep(_LOCK_POLL)
    if not _try_lock(fd):  # flock again on a held lock: a no-op when it is ours
        holder = _holder(fd)
        raise FolderLockedError(
            f"{folder} is still locked by {holder} after {wait:g} s; let "
            "that process finish or stop it, or wait longer (lock_timeout, "
            "--lock-timeout)",
            folder=folder,
            holder=holder,
        )
    _record_holder(fd)


def _open_lock(path: Path) -> int | None:
    """The lock file, opened for writing (read-only in a read-only folder; None when
    it cannot be made there). LifecycleError when it is not a regular file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, 0o600)
    except OSError as exc:
        if exc.errno not in READ_ONLY_ERRORS:
            raise _unusable(path, exc) from None
        try:
            fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as again:
            raise _unusable(path, again) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LifecycleError(f"{path} is not a regular file; move it away")
    return fd


def _unusable(path: Path, exc: OSError) -> LifecycleError:
    if exc.errno == errno.ELOOP:
        return LifecycleError(f"{path} is a symbolic link, not a file; move it away")
    return LifecycleError(f"{path} cannot be opened: {exc.strerror}")


def _try_lock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _record_holder(fd: int) -> None:
    """Write who holds the lock into it (skipped when the file is read-only)."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = _holder_record().replace(b"@SINCE@", since.encode())
    with contextlib.suppress(OSError):
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))


@functools.lru_cache(maxsize=1)
def _holder_record() -> bytes:
    """This process's lock record, with ``@SINCE@`` for the time it took the lock."""
    argv = [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:2]]
    # only a command word after the program: an argument may be a secret
    command = " ".join(word for word in argv if re.fullmatch(r"[A-Za-z][\w.-]*", word))
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": "@SINCE@",
    }
    return json.dumps(record).encode()


def _holder(fd: int) -> LockHolder:
    """The holder a lock file names (an unknown one when it names none)."""
    try:
        record = json.loads(os.pread(fd, _MAX_HOLDER_BYTES, 0))
        pid = record["pid"]
        if isinstance(pid, bool) or not isinstance(pid, int):
            return LockHolder()
        fields = {name: str(record.get(name, ""))[:200] for name in ("host", "command", "since")}
        return LockHolder(pid=pid, **fields)
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        return LockHolder()


def load_live(folder: Path) -> LiveState:
    """Read the live version and check it: PEM files that parse, agree and match the key.

    Reads only; the key is checked against the certificate by comparing public keys.
    LifecycleError when the layout is not this module's (see the module docstring).
    """
    _, serialization, UnsupportedAlgorithm, CertificateBundle = _crypto()
    live = os.path.join(folder, LIVE)
    try:
        target = os.readlink(live)
    except FileNotFoundError:
        return LiveState(None, None, "empty")
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise LifecycleError(
                f"{live} is not a symlink; move it away (see the folder layout)"
            ) from None
        raise LifecycleError(f"{live} cannot be read: {exc.strerror}") from None
    parent, version = os.path.split(target)
    if parent != VERSIONS or not VERSION_NAME.fullmatch(version):
        raise LifecycleError(
            f"{live} points at {target}, outside {os.path.join(folder, VERSIONS)}; move it away"
        )
    directory = _version_folder(folder, version)
    try:
        pem = {
            name: read_regular(os.path.join(directory, name), _MAX_PEM_BYTES) for name in FILE_NAMES
        }
    except FileNotFoundError as exc:
        return LiveState(version, None, f"unreadable files ({exc.strerror}: {exc.filename})")
    if pem["fullchain.pem"] != pem["cert.pem"] + pem["chain.pem"]:
        return LiveState(version, None, "cert.pem or chain.pem disagrees with fullchain.pem")
    try:
        certificates = _certificates(pem["fullchain.pem"])
        key = serialization.load_pem_private_key(
            pem["key.pem"], None, unsafe_skip_rsa_key_validation=True
        )
        bundle = CertificateBundle(
            certificate=certificates[0],
            private_key=key,
            chain=tuple(certificates[1:]),
            source=directory,
        )
        bundle.not_after  # noqa: B018 (parsed now, so that damage shows here)
        matches = _key_matches(bundle)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return LiveState(version, None, f"unreadable files ({exc})")
    if not matches:
        return LiveState(version, None, "key.pem does not match the certificate")
    return LiveState(version, bundle, "")


def load_certificate(folder: str | os.PathLike[str]) -> CertificateBundle:
    """The certificate and key in ``folder``'s live version, read as one pair.

    ``live`` is resolved once, so a switch meanwhile cannot mix two versions.
    LifecycleError when there is none or its files are damaged.
    """
    state = load_live(Path(folder))
    if state.bundle is None:
        raise LifecycleError(f"{folder} holds no usable certificate ({state.problem})")
    return state.bundle


def publish_version(folder: Path, bundle: CertificateBundle) -> str:
    """Write ``bundle`` as a version folder, point ``live`` at it, return its name."""
    version = bundle.serial_number
    directory = Path(_version_folder(folder, version))
    with writing(folder):
        make_private_dirs(directory)
        contents = {
            "cert.pem": (bundle.certificate_pem, _CERT_MODE),
            "chain.pem": (bundle.chain_pem, _CERT_MODE),
            "fullchain.pem": (bundle.fullchain_pem, _CERT_MODE),
            "key.pem": (bundle.private_key_pem(), _KEY_MODE),
        }
        for name, (content, mode) in contents.items():
            write_atomic(directory / name, content, mode=mode, overwrite=True)
        sync_folder(directory)
    return version


def switch_live(folder: Path, version: str) -> None:
    """Point ``live`` at ``versions/<version>`` in one rename; add the top-level links."""
    live = folder / LIVE
    if os.path.lexists(live) and not live.is_symlink():
        raise LifecycleError(f"{live} is not a symlink; move it away (see the folder layout)")
    with writing(folder):
        _replace_link(folder, LIVE, f"{VERSIONS}/{version}")
        for name in FILE_NAMES:
            link = folder / name
            wanted = f"{LIVE}/{name}"
            if link.is_symlink() and os.readlink(link) == wanted:
                continue
            if os.path.lexists(link) and not link.is_symlink():
                raise LifecycleError(f"{link} is not a symlink into {LIVE}/; move it away")
            _replace_link(folder, name, wanted)
        sync_folder(folder)


def archive_path(folder: Path, batch_id: int) -> Path:
    """Where a batch's download is kept until its files are in place."""
    return folder / f"batch-{batch_id}.zip"


def remove_archives(folder: Path) -> None:
    """Remove the downloads left in ``folder`` (kept when it is read-only)."""
    for archive in folder.glob("batch-*.zip"):
        try:
            archive.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not remove %s: %s", archive, exc.strerror)


def remove_leftovers(folder: Path, keep: set[str]) -> None:
    """Remove downloads and version folders other than ``keep``."""
    remove_archives(folder)
    versions = folder / VERSIONS
    if versions.is_symlink() or not versions.is_dir():
        return
    for entry in versions.iterdir():
        if entry.name not in keep and VERSION_NAME.fullmatch(entry.name) and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _version_folder(folder: str | Path, version: str) -> str:
    """``<folder>/versions/<version>``, refused unless ``versions`` and the version are
    real folders (no symlinks), so that the path stays inside ``folder``; either may
    not exist yet."""
    versions = os.path.join(folder, VERSIONS)
    directory = os.path.join(versions, version)
    for path in (versions, directory):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break
        if not stat.S_ISDIR(mode):
            raise LifecycleError(
                f"{path} is not a folder inside {folder} (a symlink or a file); move it away"
            )
    return directory


def _replace_link(folder: Path, name: str, target: str) -> None:
    temp = folder / f".{name}.{secrets.token_hex(8)}.tmp"
    os.symlink(target, temp)
    try:
        os.replace(temp, folder / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


@functools.lru_cache(maxsize=64)
def _certificates(pem: bytes) -> tuple[Any, ...]:
    """The certificates of ``pem``, parsed once per content: folders are checked often
    and their certificates (public, immutable once parsed) rarely change."""
    x509 = _crypto()[0]
    certificates = tuple(x509.load_pem_x509_certificates(pem))
    for certificate in certificates:
        certificate.extensions  # noqa: B018 (parsed now, and kept by cryptography)
    return certificates


@functools.lru_cache(maxsize=1)
def _crypto() -> tuple[Any, Any, type[Exception], type[CertificateBundle]]:
    """What ``load_live`` uses, imported on first use (a check runs often)."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    from ..certs import CertificateBundle

    return x509, serialization, UnsupportedAlgorithm, CertificateBundle


def _key_matches(bundle: CertificateBundle) -> bool:
    """Whether the key's public half is the certificate's (keys of different types
    are never equal)."""
    assert bundle.private_key is not None
    return bool(bundle.private_key.public_key() == bundle.certificate.public_key())
