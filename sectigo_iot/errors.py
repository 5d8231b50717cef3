"""The exception hierarchy of sectigo-iot.

Every error the package raises derives from :class:`SectigoError`. No message ever holds
a password, a token or a PKCS#12 password.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AmbiguousRequestError",
    "AuthenticationError",
    "BadRequestError",
    "BatchError",
    "BatchFailedError",
    "BatchNotReadyError",
    "BatchRejectedError",
    "ConflictError",
    "CredentialsError",
    "InvalidArchiveError",
    "InvalidCSRError",
    "InvalidInputError",
    "InvalidResponseError",
    "NotFoundError",
    "PKCS12PasswordError",
    "PermissionDeniedError",
    "RateLimitError",
    "SectigoError",
    "ServerError",
    "TLSClientAuthRequiredError",
    "TokenError",
    "UnsupportedPKCS12Error",
    "WaitTimeoutError",
    "error_class_for_status",
]


class SectigoError(Exception):
    """Base class of every error raised by sectigo-iot."""


class InvalidInputError(SectigoError, ValueError):
    """An argument is invalid; raised before anything is sent or written."""


class CredentialsError(SectigoError):
    """No username and password to log in with."""


class InvalidCSRError(InvalidInputError):
    """A certificate signing request is unreadable or breaks Sectigo's rules."""

    index: int | None
    """The CSR's position in the upload, from 0 (``None`` for a single CSR)."""
    common_name: str
    """The CSR's common name, when it could be read (else ``""``)."""

    def __init__(self, message: str, *, index: int | None = None, common_name: str = "") -> None:
        self.index = index
        self.common_name = common_name
        if index is not None:
            where = f"CSR #{index + 1}" + (f" (CN={common_name})" if common_name else "")
            message = f"{where}: {message}"
        super().__init__(message)


class InvalidArchiveError(SectigoError):
    """A batch archive is unsafe, truncated or holds nothing usable."""


class PKCS12PasswordError(SectigoError):
    """The PKCS#12 password does not open the file."""


class UnsupportedPKCS12Error(SectigoError):
    """The crypto backend cannot read this PKCS#12 encryption (e.g. legacy RC2-40)."""


class TokenError(SectigoError):
    """A token is malformed or lacks the timestamps the client needs."""


class APIConnectionError(SectigoError):
    """The server could not be reached, or the connection broke mid-request."""

    method: str
    """The request's HTTP method (``"GET"``, ``"PUT"``...), or ``""``."""
    path: str
    """The request's path, without the query (``/api/v1/batches/24``), or ``""``."""
    request_sent: bool
    """False when the failure happened before the request left the client (so the
    server cannot have acted on it); True when it may have reached the server."""

    def __init__(
        self, message: str, *, method: str = "", path: str = "", request_sent: bool = True
    ) -> None:
        self.method = method
        self.path = path
        self.request_sent = request_sent
        super().__init__(f"{message} ({method} {path})" if path else message)


class APITimeoutError(APIConnectionError):
    """A request took longer than its timeout."""


class InvalidResponseError(SectigoError):
    """The server answered 2xx with a body that is not what the endpoint returns."""

    path: str
    """The request's path, without the query, or ``""``."""
    status_code: int
    """The HTTP status of the reply (``0`` when not known)."""

    def __init__(self, message: str, *, path: str = "", status_code: int = 0) -> None:
        self.path = path
        self.status_code = status_code
        super().__init__(f"{message} (from {path})" if path else message)


class APIError(SectigoError):
    """The server answered with an error status.

    Carries the HTTP status, Sectigo's ``errorCode``, its message, its ``timestamp``
    and the request path (never the query, the headers or the body).
    """

    message: str
    """Sectigo's error message (redacted: it never holds a secret)."""
    status_code: int
    """The HTTP status (``400``, ``401``, ``404``, ``500``...)."""
    error_code: int | None
    """Sectigo's ``errorCode`` from the error body, if it sent one."""
    timestamp: int | None
    """Sectigo's ``timestamp`` from the error body (milliseconds since the epoch), if any."""
    method: str
    """The request's HTTP method, or ``""``."""
    path: str
    """The request's path, without the query, or ``""``."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_code: int | None = None,
        timestamp: int | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.timestamp = timestamp
        self.method = method
        self.path = path
        code = f" [errorCode {error_code}]" if error_code not in (None, 0) else ""
        super().__init__(f"{status_code} {message}{code} ({method} {path})".rstrip())


class BadRequestError(APIError):
    """400: the request failed validation (e.g. a missing profile parameter)."""


class AuthenticationError(APIError):
    """401: bad credentials or a token the server does not accept."""


class TLSClientAuthRequiredError(AuthenticationError):
    """The account requires TLS client-certificate login (the server answered 307)."""


class PermissionDeniedError(APIError):
    """403: the user may not use this endpoint."""


class NotFoundError(APIError):
    """404: no such batch, profile, authority or certificate."""


class ConflictError(APIError):
    """409: the request conflicts with the resource's state."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is the server's wait, in seconds."""

    retry_after: float | None
    """How long the server asked to wait before the next request, in seconds (from
    ``Retry-After``), or ``None`` when it did not say."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(APIError):
    """5xx: the server failed."""


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_class_for_status(status_code: int) -> type[APIError]:
    """The error class of an HTTP error status: its own class, else ServerError or APIError."""
    default = ServerError if status_code >= 500 else APIError
    return _STATUS_CLASSES.get(status_code, default)


class BatchError(SectigoError):
    """A batch did not end ready for download."""

    batch: Any
    """The batch as last seen (a ``Batch``), or ``None``."""

    def __init__(self, message: str, *, batch: Any = None) -> None:
        self.batch = batch
        super().__init__(message)


class BatchRejectedError(BatchError):
    """Sectigo rejected the batch; ``reject_reason`` says why."""

    reject_reason: str
    """Sectigo's reason for the rejection (redacted), or ``""`` when it gave none."""

    def __init__(self, message: str, *, reject_reason: str = "", batch: Any = None) -> None:
        self.reject_reason = reject_reason
        super().__init__(message, batch=batch)


class BatchFailedError(BatchError):
    """The batch failed without a reject reason (FAILED, BROKEN, NOT_ACCEPTABLE...)."""


class BatchNotReadyError(BatchError):
    """The batch cannot be downloaded (yet): its status is not READY_FOR_DOWNLOAD."""


class WaitTimeoutError(BatchError):
    """``batches.wait`` gave up; ``status`` and ``batch`` hold the last state seen."""

    status: str
    """The batch's last text status (``"PROCESSING"``...), or ``""`` if none was read."""

    def __init__(self, message: str, *, status: str = "", batch: Any = None) -> None:
        self.status = status
        super().__init__(message, batch=batch)


class AmbiguousRequestError(SectigoError):
    """A license-spending request may or may not have reached the server.

    It is never re-sent blindly. ``batch_name`` (for a create) or ``common_names`` and
    ``attempted_at`` (for a CSR upload) let the caller check before trying again;
    ``candidates`` holds the batches that might be the create's, when several were found.
    """

    operation: str
    """What may have reached the server: ``"create"``, ``"upload"`` or ``"revoke"``."""
    batch_name: str | None
    """For a create: the batch name it sent, to look the batch up by
    (``batches.find_by_name``); else ``None``."""
    common_names: tuple[str, ...]
    """For a CSR upload: the common names of its CSRs (``certificates.find``)."""
    attempted_at: datetime | None
    """For a CSR upload: when it was sent (UTC); else ``None``."""
    candidates: tuple[Any, ...]
    """For a create: the batches of that name created since the attempt began, when
    there were several (so which one is this attempt's cannot be told); else empty."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        batch_name: str | None = None,
        common_names: Sequence[str] = (),
        attempted_at: datetime | None = None,
        candidates: Sequence[Any] = (),
    ) -> None:
        self.operation = operation
        self.candidates = tuple(candidates)
        self.batch_name = batch_name
        self.common_names = tuple(common_names)
        self.attempted_at = attempted_at
        super().__init__(message)
