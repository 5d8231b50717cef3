"""The retry policy: which failures are retried, how long to wait, in one place.

Only requests that cannot spend a license are retried: GETs, and any request whose
connection failed before it was sent. A create, upload or revoke that may have reached
the server is never re-sent blindly (see ``resources/batches.py`` for reconciliation).
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

import httpx

DEFAULT_MAX_RETRIES = 2
INITIAL_BACKOFF = 0.5  # seconds, doubled per retry
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is surfaced as RateLimitError
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Statuses after which a non-idempotent request may or may not have been carried out.
# (501 and 4xx are definite refusals.)
AMBIGUOUS_STATUSES = frozenset({500, 502, 503, 504})

# Failures that happen before the request leaves the client: always safe to retry.
CONNECT_PHASE_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


def backoff_delay(retries_done: int) -> float:
    """Exponential backoff with jitter: 0.5 s doubling, capped at 8 s, times U(0.75, 1)."""
    return float(min(MAX_BACKOFF, INITIAL_BACKOFF * 2**retries_done) * random.uniform(0.75, 1.0))


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, or ``Retry-After`` as
    seconds or an HTTP date. None when absent or unreadable."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def may_retry(method: str, *, request_sent: bool = True, status: int | None = None) -> bool:
    """Whether a failure of this request is safe to retry (ignoring the retry budget):
    a connection failure (``status`` None) or a retryable status."""
    if status is None:
        return not request_sent or method in IDEMPOTENT_METHODS
    return method in IDEMPOTENT_METHODS and status in RETRYABLE_STATUSES


def outcome_unknown(exc: Exception) -> bool:
    """Whether a failed license-spending request may still have been carried out."""
    from .errors import APIConnectionError, InvalidResponseError, ServerError

    if isinstance(exc, APIConnectionError):
        return exc.request_sent
    if isinstance(exc, InvalidResponseError):  # a 2xx whose body is unreadable
        return True
    return isinstance(exc, ServerError) and exc.status_code in AMBIGUOUS_STATUSES
