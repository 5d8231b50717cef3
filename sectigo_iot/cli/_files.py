"""Local files: reads with a size cap, folders made private, new files written atomically."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from ._errors import CLIError

__all__ = ["prepare_folder", "read_capped", "read_head", "too_large", "write_new"]


def read_head(path: Path, count: int) -> bytes:
    """At most ``count`` bytes from the start of a file."""
    try:
        with open(path, "rb") as handle:
            return handle.read(count)
    except OSError as exc:
        raise CLIError(f"could not read {path}: {exc.strerror or exc}") from None


def read_capped(path: Path, cap: int, what: str = "file") -> bytes:
    """A file of at most ``cap`` bytes; a larger one is refused (reads cap + 1 at most)."""
    data = read_head(path, cap + 1)
    if len(data) > cap:
        raise too_large(path, cap, what)
    return data


def too_large(path: Path, cap: int, what: str) -> CLIError:
    """The error for a file over its size limit."""
    return CLIError(f"{path} is larger than {_size(cap)}; refusing to read this {what}")


def _size(count: int) -> str:
    if count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    return f"{count // 1024} KiB" if count % 1024 == 0 else f"{count} bytes"


def prepare_folder(folder: Path) -> Path:
    """Check (or create, mode 0700 at every level made) a folder that will receive
    files, before any request."""
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise CLIError(f'path "{folder}" is not a directory')
        return folder
    missing = [folder, *(p for p in folder.parents if not (p.exists() or p.is_symlink()))]
    for level in sorted(set(missing), key=lambda p: len(p.parts)):
        _make_private_dir(level)
    return folder


def _make_private_dir(level: Path) -> None:
    try:
        os.mkdir(level, 0o700)
        os.chmod(level, 0o700)  # mkdir's mode is reduced by the umask
    except FileExistsError:
        if not level.is_dir():
            raise CLIError(f'path "{level}" is not a directory') from None
    except OSError as exc:
        raise CLIError(f'could not create directory "{level}": {exc.strerror}') from None


def write_new(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically with ``mode``; never replace without
    ``overwrite``."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except FileExistsError:
                raise CLIError(f"{path} already exists; use --force to replace it") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
