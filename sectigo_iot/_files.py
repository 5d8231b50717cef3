"""Every file the package writes goes through here: private folders, temporary files
written and synced beside their target, then published in one step.

A reader never sees half a file; a file is never replaced unless asked; a symlink is
never written through; modes are set explicitly, whatever the umask.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .errors import InvalidInputError

__all__ = [
    "PRIVATE_DIR_MODE",
    "check_target",
    "make_private_dirs",
    "publish",
    "sync_folder",
    "write_atomic",
    "write_temp",
]

PRIVATE_DIR_MODE = 0o700
_OPEN_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def make_private_dirs(directory: str | os.PathLike[str]) -> Path:
    """``directory``, created with mode 0700 at every level that did not exist.

    InvalidInputError when it exists but is not a folder, or is a dangling symlink.
    """
    path = Path(directory)
    if path.exists():
        if not path.is_dir():
            raise InvalidInputError(f"{path} exists and is not a directory")
        return path
    if path.is_symlink():
        raise InvalidInputError(f"{path} is a dangling symlink; remove it or pick another")
    missing = [path, *(p for p in path.parents if not p.exists())]
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by someone else
            level.mkdir(mode=PRIVATE_DIR_MODE)
            level.chmod(PRIVATE_DIR_MODE)  # mkdir's mode is reduced by the umask
    return path


def check_target(target: Path, *, overwrite: bool) -> None:
    """Refuse a target that is a symlink or not a regular file, or exists without
    ``overwrite``."""
    try:
        info = target.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise InvalidInputError(f"{target} is a symlink; refusing to write through it")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(f"{target} exists and is not a regular file")
    if not overwrite:
        raise InvalidInputError(
            f"{target} already exists; nothing was written. Pass overwrite=True to replace it"
        )


def write_temp(directory: Path, name: str, content: bytes, mode: int) -> Path:
    """A new hidden file beside ``name`` in ``directory``, holding ``content``, synced."""
    temp = directory / f".{name}.{os.urandom(8).hex()}.tmp"
    fd = os.open(temp, _OPEN_FLAGS, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)  # the open() mode is reduced by the umask
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return temp


def publish(temp: str | os.PathLike[str], target: Path, *, overwrite: bool) -> None:
    """Give the finished file ``temp`` the name ``target`` in one step.

    Without ``overwrite`` an existing target is never replaced, even one that appears
    meanwhile (a hard link fails if the name exists); on file systems without hard
    links the check and the rename are two steps.
    """
    if overwrite:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)
    except FileExistsError:
        raise InvalidInputError(
            f"{target} appeared while writing; pass overwrite=True to replace it"
        ) from None
    except OSError:  # no hard links here (FAT, some network shares)
        if os.path.lexists(target):
            raise InvalidInputError(
                f"{target} already exists; pass overwrite=True to replace it"
            ) from None
        os.replace(temp, target)
        return
    os.unlink(temp)


def sync_folder(directory: Path) -> None:
    """Make the names just published in ``directory`` durable (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(target: Path, content: bytes, *, mode: int, overwrite: bool) -> None:
    """Write ``content`` to ``target`` (mode ``mode``) so that no reader sees half of it."""
    check_target(target, overwrite=overwrite)
    temp = write_temp(target.parent, target.name, content, mode)
    try:
        publish(temp, target, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    sync_folder(target.parent)
