"""The SDK's log records on stderr: warnings always, everything with ``--verbose``
(each line escaped as everything the CLI prints)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ._output import note_lines
from ._secrets import scrub_text

__all__ = ["configure_logging"]


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of the record."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            note_lines(scrub_text(self.format(record)))
        except Exception:  # logging must never break the command
            self.handleError(record)


def configure_logging(verbose: bool) -> Callable[[], None]:
    """SDK warnings as ``warning: ...`` lines on stderr; everything with ``--verbose``.

    Returns a function that undoes it (the CLI also runs in-process, under tests).
    """
    logger = logging.getLogger("sectigo_iot")
    previous_level = logger.level
    handler = _StderrHandler()
    if verbose:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.setLevel(logging.DEBUG)
    else:
        handler.setFormatter(_LowerFormatter("%(levelname)s: %(message)s"))
        handler.setLevel(logging.WARNING)
    logger.addHandler(handler)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    return restore


class _LowerFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        level = record.levelname
        return level.lower() + text[len(level) :] if text.startswith(level) else text
