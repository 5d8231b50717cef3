"""Downloading a batch to a file: where the archive goes, and writing it so that the
file appears only when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

from .._files import make_private_dirs, publish, sync_folder
from ..errors import InvalidInputError

__all__ = ["ZIP_MAGIC", "download_target", "write_whole"]

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive


def download_target(dest: Path, batch_id: int, *, overwrite: bool) -> Path:
    """Where the archive goes: ``dest`` when it ends in ``.zip`` and is no folder, else
    ``<batchId>.zip`` in the folder ``dest`` (made by ``download`` when missing)."""
    if dest.suffix.lower() == ".zip" and not dest.is_dir():
        target = dest
    elif dest.exists() and not dest.is_dir():
        raise InvalidInputError(f"{dest} is a file; give a folder or a path ending in .zip")
    else:
        target = dest / f"{batch_id}.zip"
    for folder in (target.parent, *target.parent.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise InvalidInputError(f"{folder} is not a folder; give another destination")
            break
    if target.is_symlink() or (target.exists() and not overwrite):
        raise InvalidInputError(f"{target} already exists; pass overwrite=True to replace it")
    return target


async def write_whole(
    target: Path, fill: Callable[[BinaryIO], Awaitable[Any]], *, overwrite: bool
) -> None:
    """Write ``target`` through ``fill`` into a private temporary file beside it, then
    publish it: a ``fill`` that fails (or is cancelled) leaves no file behind."""
    make_private_dirs(target.parent)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w+b") as handle:
            await fill(handle)
            os.fsync(handle.fileno())
        publish(tmp_name, target, overwrite=overwrite)
        sync_folder(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
