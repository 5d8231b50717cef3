"""``open_store``: a store from a path or a URL, as the CLI and services are configured."""

from __future__ import annotations

import os
import re

from ..errors import InvalidInputError
from ._store import Store

__all__ = ["open_store"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def open_store(location: str | os.PathLike[str], *, secret_key: str | bytes | None = None) -> Store:
    """A ``PostgresStore`` for a ``postgresql://`` (or ``postgres://``) URL, an
    ``SQLiteStore`` for a file path; any other URL scheme is an InvalidInputError."""
    if not isinstance(location, (str, os.PathLike)):
        raise InvalidInputError(
            f"a fleet store is a path or a postgresql:// URL, not {type(location).__name__}"
        )
    text = os.fspath(location)
    scheme = _SCHEME.match(text)
    if scheme is None:
        if not text.strip():
            raise InvalidInputError("the fleet store location is empty")
        from ._sqlite import SQLiteStore

        return SQLiteStore(text, secret_key=secret_key)
    if scheme.group(1).lower() in ("postgresql", "postgres"):
        from ._postgres import PostgresStore

        return PostgresStore(text, secret_key=secret_key)
    raise InvalidInputError(
        f"unknown fleet store scheme {scheme.group(1)!r}: give a file path (SQLite) or a "
        "postgresql://user@host/database URL"
    )
