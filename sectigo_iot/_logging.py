"""Logging for the package, with one filter that redacts secrets from every record.

Every record of a package logger also carries the operation running when it was made
(``record.operation``, and ``record.batch_id`` and ``record.key`` when known; absent
otherwise), read from :data:`operation_var`, which ``_hooks`` sets.

Each client owns a :class:`SecretRegistry` of the secrets it has seen (its password, its
tokens, its PKCS#12 passwords). The registries of live clients are tracked weakly: the
filter and :func:`redact` hide the secrets of every live client and forget those of a
client once it is cleared or garbage-collected.
"""

from __future__ import annotations

import contextvars
import logging
import re
import string
import threading
import weakref
from typing import Any

from .errors import InvalidInputError

__all__ = [
    "MAX_SECRETS",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "OperationFields",
    "RedactingFilter",
    "SecretRegistry",
    "get_logger",
    "may_need_redaction",
    "operation_var",
    "redact",
    "register_secret",
]

REDACTED = "***"
#: secrets shorter than this would garble logs (they occur inside ordinary words)
MIN_SECRET_LENGTH = 8
#: a registry keeps the most recent this many secrets (plus the login password)
MAX_SECRETS = 64

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

#: every text a pattern of _PATTERNS matches holds one of these, once lower-cased
#: (ASCII): keep them in step with the patterns
_PATTERN_MARKERS = ("eyj", "bearer", "password", "passphrase", "token", "authorization", "secret")
#: each marker and the letters it is made of
_MARKERS = tuple((marker.encode(), frozenset(marker.encode())) for marker in _PATTERN_MARKERS)
_MARKER_LETTERS = frozenset(b"".join(marker for marker, _ in _MARKERS))
#: ASCII letters lower-cased, and every byte that is no marker's letter in either case
#: deleted: a marker in a text is still in what this leaves of it (a fraction of a body)
_LOWER = bytes.maketrans(string.ascii_uppercase.encode(), string.ascii_lowercase.encode())
_NOT_MARKER_LETTERS = bytes(set(range(256)) - _MARKER_LETTERS - set(bytes(_MARKER_LETTERS).upper()))

#: the innermost SDK operation running in this context (a ``_hooks.Operation``), or None
operation_var: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "sectigo_iot_operation", default=None
)

_live: weakref.WeakSet[SecretRegistry] = weakref.WeakSet()
_live_lock = threading.Lock()


class SecretRegistry:
    """The secrets of one client, redacted from every log record while it lives.

    Holds the most recent ``limit`` secrets and the login password; redaction is one
    pass of one regular expression, rebuilt at the first redaction after a change.
    """

    def __init__(self, limit: int = MAX_SECRETS) -> None:
        self.limit = limit
        self._recent: dict[str, None] = {}  # insertion order = age, oldest first
        self._password = ""
        self._pattern: re.Pattern[str] | None = None
        self._stale = False
        self._lock = threading.Lock()
        with _live_lock:
            _live.add(self)

    def add(self, secret: str) -> None:
        """Redact ``secret`` wherever it appears; the oldest secret beyond ``limit`` is
        forgotten. InvalidInputError when it is shorter than MIN_SECRET_LENGTH."""
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            raise InvalidInputError(
                f"a secret must have at least {MIN_SECRET_LENGTH} characters to be "
                "redacted safely from logs"
            )
        with self._lock:
            if secret in self._recent:  # now the most recent; the set is unchanged
                self._recent[secret] = self._recent.pop(secret)
                return
            self._recent[secret] = None
            while len(self._recent) > self.limit:
                del self._recent[next(iter(self._recent))]
            self._stale = True

    def set_password(self, password: str) -> None:
        """The login password, kept for the registry's life (replacing an earlier one).

        One shorter than MIN_SECRET_LENGTH is redacted only where it stands as a whole
        word, so that it cannot garble the words that contain it.
        """
        with self._lock:
            self._password = password
            self._stale = True

    def clear(self) -> None:
        """Forget every secret (the client is closed)."""
        with self._lock:
            self._recent.clear()
            self._password = ""
            self._stale = True

    def redact(self, text: str) -> str:
        """``text`` with this registry's secrets replaced by ``***``."""
        if self._stale:
            with self._lock:
                self._pattern, self._stale = self._compile(), False
        pattern = self._pattern
        return pattern.sub(REDACTED, text) if pattern is not None else text

    def occurs_in(self, text: str | bytes) -> bool:
        """Whether one of this registry's secrets occurs in ``text`` (or, UTF-8 encoded,
        in these bytes)."""
        with self._lock:
            secrets = [secret for secret in (*self._recent, self._password) if secret]
        if isinstance(text, bytes):
            return any(secret.encode() in text for secret in secrets)
        return any(secret in text for secret in secrets)

    def __len__(self) -> int:
        return len(self._recent) + bool(self._password)

    def __contains__(self, secret: object) -> bool:
        return secret in self._recent or (bool(secret) and secret == self._password)

    def __repr__(self) -> str:
        return f"SecretRegistry(secrets={len(self)}, limit={self.limit})"

    def _compile(self) -> re.Pattern[str] | None:
        secrets = list(self._recent)
        if len(self._password) >= MIN_SECRET_LENGTH:
            secrets.append(self._password)
        alternatives = [re.escape(s) for s in sorted(secrets, key=len, reverse=True)]
        if 0 < len(self._password) < MIN_SECRET_LENGTH:
            alternatives.append(rf"(?<!\w){re.escape(self._password)}(?!\w)")
        return re.compile("|".join(alternatives)) if alternatives else None


#: secrets that belong to no client (see :func:`register_secret`)
_process_secrets = SecretRegistry()


def register_secret(value: str) -> None:
    """Redact ``value`` for the rest of the process, in a bounded registry shared by
    code that has no client; clients use their own :class:`SecretRegistry`."""
    _process_secrets.add(value)


def redact(text: str) -> str:
    """``text`` with the secrets of every live registry, and every secret-looking
    value, replaced by ``***``."""
    with _live_lock:
        registries = list(_live)
    for registry in registries:
        text = registry.redact(text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, text)
    return text


def may_need_redaction(text: str | bytes) -> bool:
    """False only when :func:`redact` leaves ``text`` (or the text these bytes encode),
    and every part of it, unchanged: it is ASCII and holds no live secret and no marker
    of a secret-looking pattern. A fast test for large bodies: one pass that keeps the
    letters markers are made of, then a search for each marker whose letters all occur
    there, and one for each live secret."""
    if not text.isascii():  # case-insensitive matching beyond ASCII: left to redact
        return True
    letters = (text if isinstance(text, bytes) else text.encode()).translate(
        _LOWER, _NOT_MARKER_LETTERS
    )
    absent = {letter for letter in _MARKER_LETTERS if letter not in letters}
    if any(marker in letters for marker, made_of in _MARKERS if not made_of & absent):
        return True
    with _live_lock:
        registries = list(_live)
    return any(registry.occurs_in(text) for registry in registries)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message so that no secret reaches any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class OperationFields(logging.Filter):
    """Adds the running operation to each record as ``operation``, ``batch_id`` and
    ``key`` (those unknown left absent; a value given in ``extra`` is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        operation = operation_var.get()
        if operation is None:
            return True
        fields = record.__dict__
        fields.setdefault("operation", operation.name)
        if operation.batch_id is not None:
            fields.setdefault("batch_id", operation.batch_id)
        if operation.key is not None:
            fields.setdefault("key", operation.key)
        return True


_filters = (RedactingFilter(), OperationFields())


def get_logger(name: str) -> logging.Logger:
    """A logger of the package with the redacting and operation filters attached."""
    logger = logging.getLogger(name)
    for attached in _filters:
        if attached not in logger.filters:
            logger.addFilter(attached)
    return logger
