"""The persistent embedded emulator of ``--emulator`` mode: where it lives, how it opens."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import make_private_dirs
from ._errors import CLIError

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = ["emulator_db_path", "emulator_token_dir", "open_emulator"]

#: environment variables of ``--emulator`` mode
ENV_EMULATOR_DB = "SECTIGO_EMULATOR_DB"
ENV_EMULATOR_DELAY = "SECTIGO_EMULATOR_DELAY"


def emulator_db_path() -> Path:
    """Where ``--emulator`` keeps its state (``$SECTIGO_EMULATOR_DB`` overrides it)."""
    override = os.environ.get(ENV_EMULATOR_DB)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("sectigo-iot", appauthor=False)) / "emulator.sqlite3"


def emulator_token_dir(db_path: Path) -> Path:
    """Tokens of ``--emulator`` mode live beside its database, not with real ones."""
    return db_path.parent / f"{db_path.stem}-tokens"


def open_emulator(
    db_path: Path | None = None, *, processing_delay: float | None = None
) -> Emulator:
    """The persistent emulator of ``--emulator`` mode (a private file, a 0700 folder)."""
    from ..emulator import Emulator

    path = db_path if db_path is not None else emulator_db_path()
    make_private_dirs(path.parent)
    delay = _emulator_delay() if processing_delay is None else processing_delay
    return Emulator(db_path=path, processing_delay=delay)


def _emulator_delay() -> float:
    raw = os.environ.get(ENV_EMULATOR_DELAY, "").strip()
    if not raw:
        return 0.0
    try:
        delay = float(raw)
    except ValueError:
        raise CLIError(f"{ENV_EMULATOR_DELAY} must be a number of seconds, got {raw!r}") from None
    if delay < 0:
        raise CLIError(f"{ENV_EMULATOR_DELAY} must not be negative")
    return delay
