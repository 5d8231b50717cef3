"""Local files: reads with a size cap, folders made private, new files written atomically."""

from __future__ import annotations

from pathlib import Path

from .._files import make_private_dirs, write_atomic
from ..errors import InvalidInputError
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
    try:
        return make_private_dirs(folder)
    except InvalidInputError:  # a file, or a dangling link, stands there
        raise CLIError(f'path "{folder}" is not a directory') from None
    except OSError as exc:
        raise CLIError(f'could not create directory "{folder}": {exc.strerror}') from None


def write_new(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically with ``mode``; never replace without
    ``overwrite``."""
    try:
        write_atomic(path, data, mode=mode, overwrite=overwrite)
    except InvalidInputError:
        raise CLIError(f"{path} already exists; use --force to replace it") from None
