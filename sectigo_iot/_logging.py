"""Logging for the package, with one filter that redacts secrets from every record."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "get_logger", "register_secret"]

REDACTED = "***"

# Patterns that look like secrets whatever their value: JWTs, bearer headers, and
# "password"/"token"-like keys followed by a value (JSON, key=value or key: value).
_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)(bearer\s+)[^\s\"',]+"),
    re.compile(
        r"(?i)((?:pkcs12_?password|password|passphrase|access_?token|refresh_?token|"
        r"authorization|secret)[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]+)"
    ),
)
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Have the filter redact this exact value wherever it appears (ignores short values)."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every known or secret-looking value replaced by ``***``."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message so that no secret reaches any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


_filter = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """A logger of the package with the redacting filter attached."""
    logger = logging.getLogger(name)
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    return logger
