"""A certificate folder's layout: version folders, the ``live`` link, the lock.

::

    <folder>/                 0700
      journal.json            0600, the state (see _journal)
      .lock                   locked (flock) by the one process working on the folder
      versions/<SERIAL>/      0700: cert.pem, chain.pem, fullchain.pem (0644), key.pem (0600)
      live -> versions/<SERIAL>
      cert.pem -> live/cert.pem      (and chain.pem, fullchain.pem, key.pem)
      batch-<id>.zip          0600, a download in progress (removed once in place)

A version folder is complete before ``live`` points at it, and ``live`` is switched by
renaming a new symlink over it, so a reader going through ``live`` (or the top-level
links) sees the old files or the new ones, never a mix. The version before the live
one is kept, for readers that resolved ``live`` just before a switch.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from attrs import frozen

from .._files import make_private_dirs, sync_folder, write_atomic
from ._journal import VERSION_NAME, LifecycleError

if TYPE_CHECKING:
    from ..certs import CertificateBundle

__all__ = [
    "FILE_NAMES",
    "LiveState",
    "archive_path",
    "folder_lock",
    "load_certificate",
    "load_live",
    "publish_version",
    "remove_leftovers",
    "switch_live",
]

LIVE = "live"
VERSIONS = "versions"
LOCK_NAME = ".lock"
#: the files of a version, reachable as ``<folder>/<name>`` and ``<folder>/live/<name>``
FILE_NAMES = ("cert.pem", "chain.pem", "fullchain.pem", "key.pem")
_CERT_MODE, _KEY_MODE = 0o644, 0o600
_LOCK_POLL = 0.1  # seconds between tries of a lock held by someone else
_MAX_PEM_BYTES = 1024 * 1024


@frozen
class LiveState:
    """What ``live`` holds: the version's name and bundle, or why it cannot be used."""

    version: str | None
    bundle: CertificateBundle | None
    problem: str  # "" when usable; "empty" when there is no live version


@contextlib.asynccontextmanager
async def folder_lock(folder: Path) -> AsyncIterator[None]:
    """Hold the folder's lock (``flock`` on ``.lock``) during the block.

    The lock is tried without blocking and retried every 0.1 s, so waiting never
    blocks the event loop and can be cancelled. The system releases it when the
    process dies.
    """
    import fcntl

    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(folder / LOCK_NAME, flags, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await anyio.sleep(_LOCK_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock


def load_live(folder: Path) -> LiveState:
    """Read the live version and check it: PEM files that parse, agree and match the key."""
    from ..certs import load_pem_bundle
    from ..errors import InvalidInputError

    live = folder / LIVE
    if not os.path.lexists(live):
        return LiveState(None, None, "empty")
    if not live.is_symlink():
        raise LifecycleError(f"{live} is not a symlink; move it away (see the folder layout)")
    target = Path(os.readlink(live))
    if target.parent != Path(VERSIONS) or not VERSION_NAME.fullmatch(target.name):
        return LiveState(None, None, f"{live} points outside {VERSIONS}/")
    version = target.name
    directory = folder / VERSIONS / version
    try:
        pem = {name: _read(directory / name) for name in FILE_NAMES}
        bundle = load_pem_bundle(pem["fullchain.pem"] + pem["key.pem"], source=str(directory))
        leaf = load_pem_bundle(pem["cert.pem"], source=str(directory / "cert.pem"))
    except (OSError, InvalidInputError) as exc:
        return LiveState(version, None, f"unreadable files ({exc})")
    if bundle.private_key is None or not _key_matches(bundle):
        return LiveState(version, None, "key.pem does not match the certificate")
    if leaf.certificate != bundle.certificate or pem["chain.pem"] != bundle.chain_pem:
        return LiveState(version, None, "cert.pem or chain.pem disagrees with fullchain.pem")
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
    directory = make_private_dirs(folder / VERSIONS / version)
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


def remove_leftovers(folder: Path, keep: set[str]) -> None:
    """Remove downloads and version folders other than ``keep``."""
    for archive in folder.glob("batch-*.zip"):
        with contextlib.suppress(FileNotFoundError):
            archive.unlink()
    versions = folder / VERSIONS
    if not versions.is_dir():
        return
    for entry in versions.iterdir():
        if entry.name not in keep and VERSION_NAME.fullmatch(entry.name) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def _replace_link(folder: Path, name: str, target: str) -> None:
    temp = folder / f".{name}.{secrets.token_hex(8)}.tmp"
    os.symlink(target, temp)
    try:
        os.replace(temp, folder / name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def _read(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(_MAX_PEM_BYTES + 1)
    if len(data) > _MAX_PEM_BYTES:
        raise OSError(f"{path} is larger than {_MAX_PEM_BYTES} bytes")
    return data


def _key_matches(bundle: CertificateBundle) -> bool:
    from cryptography.hazmat.primitives import serialization

    assert bundle.private_key is not None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(
        bundle.private_key.public_key().public_bytes(*spki)
        == bundle.certificate.public_key().public_bytes(*spki)
    )
