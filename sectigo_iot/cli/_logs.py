"""The SDK's log records on stderr: warnings always, everything with ``--verbose``
(each line escaped as everything the CLI prints), as text or as one JSON object a line
(``--log-format json``). Every line is redacted as the SDK's records are, then again
with the CLI's own secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone

from ._output import note_lines
from ._secrets import scrub_text

__all__ = ["JSONFormatter", "configure_logging"]

#: the SDK's extra fields of a record (see ``sectigo_iot._logging.OperationFields``)
CONTEXT_FIELDS = ("operation", "batch_id", "key")


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time of the record."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            note_lines(scrub_text(self.format(record)))
        except Exception:  # logging must never break the command
            self.handleError(record)


def configure_logging(verbose: bool, *, json_lines: bool = False) -> Callable[[], None]:
    """SDK warnings as ``warning: ...`` lines on stderr; everything with ``--verbose``;
    with ``json_lines`` each record as one JSON object a line instead.

    Returns a function that undoes it (the CLI also runs in-process, under tests).
    """
    logger = logging.getLogger("sectigo_iot")
    previous_level = logger.level
    handler = _StderrHandler()
    if json_lines:
        handler.setFormatter(JSONFormatter())
    elif verbose:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_LowerFormatter("%(levelname)s: %(message)s"))
    if verbose:
        logger.setLevel(logging.DEBUG)
    else:
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


class JSONFormatter(logging.Formatter):
    """One JSON object a record: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, and ``operation``, ``batch_id``, ``key`` when the record has them
    (``exception`` with a traceback). The texts are scrubbed before they are escaped
    as JSON, where a secret's escaped form would no longer match."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, timezone.utc)
        line: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub_text(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(line, default=str)  # text scrubbed before JSON escapes it
