"""The one place that sends HTTP: base URL, headers, bearer token, timeouts, retries,
error mapping and logging. Resources build requests and call :class:`Session`."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
from attrs import frozen

from . import _retry
from ._logging import get_logger, redact
from ._version import __version__
from .auth import TokenManager, TokenStore
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvalidInputError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TLSClientAuthRequiredError,
)

__all__ = ["JSON_CONTENT_TYPE", "Reply", "Session", "origin_of"]

logger = get_logger("sectigo_iot.http")

#: the content type Sectigo uses, spelled exactly as the spec gives it
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
OCTET_STREAM = "application/octet-stream"
USER_AGENT = f"sectigo-iot/{__version__}"
MAX_BODY_BYTES = 10 * 1024 * 1024  # a JSON reply larger than this is refused
_JSON_HEADERS = {"Content-Type": JSON_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE}
_DOWNLOAD_HEADERS = {"Content-Type": OCTET_STREAM, "Accept": OCTET_STREAM}
_ERROR_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


@frozen
class Reply:
    """A fully read response: status, headers and body (capped in size)."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    method: str
    path: str

    @property
    def text(self) -> str:
        """The body as text; InvalidResponseError when it is not UTF-8."""
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidResponseError(
                "the response body is not UTF-8 text", path=self.path
            ) from None

    def json(self) -> Any:
        """The body as JSON; InvalidResponseError when it is not JSON."""
        try:
            return json.loads(self.content)
        except ValueError:  # UnicodeDecodeError included
            pass
        if not self.content.strip():
            problem = "expected JSON but the response body is empty"
        elif _media_type(self.headers) == "text/html" or self.content.lstrip()[:1] == b"<":
            problem = "expected JSON but the server answered with an HTML page"
        else:
            problem = "the response body is not valid JSON"
        raise InvalidResponseError(problem, path=self.path)


def origin_of(base_url: str) -> str:
    """Scheme, host and port of ``base_url``; like the Go client, any path is dropped."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"base_url must be an http(s) URL such as https://iot.sectigo.com, got {base_url!r}"
        )
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class Session:
    """Sends every request of one client over one ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        token_store: TokenStore,
        timeout: float | httpx.Timeout,
        max_retries: int,
        transport: httpx.AsyncBaseTransport | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidInputError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        self.base_url = origin_of(base_url)
        self.host = urlsplit(self.base_url).netloc
        self.max_retries = max_retries
        self._sleep: Callable[[float], Any] = anyio.sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": USER_AGENT, **_JSON_HEADERS},
            follow_redirects=False,
        )
        self.tokens = TokenManager(
            host=self.host,
            username=username,
            password=password,
            store=token_store,
            send=self._post_auth,
            clock=clock,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        files: list[tuple[str, Any]] | None = None,
        data: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> Reply:
        """Send a request (``json_body`` is serialized as JSON) and return its reply.

        Raises the typed error of the status for anything but 2xx.
        """
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
        headers = None
        if files is not None:  # the client's JSON Content-Type must not label the form
            headers = {"Content-Type": f"multipart/form-data; boundary={secrets.token_hex(16)}"}
        response = await self._send(
            method,
            path,
            content=content,
            files=files,
            data=data,
            headers=headers,
            authenticated=authenticated,
        )
        try:
            body = await _read(response, path)
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, body, method, path)

    async def json(self, method: str, path: str, *, body: Any = None) -> Any:
        """Send ``body`` as JSON (None: no body) and return the decoded JSON reply."""
        reply = await self.request(method, path, json_body=body)
        decoded = reply.json()
        _raise_if_error_body(decoded, reply)
        return decoded

    @asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[httpx.Response]:
        """GET a binary body as a stream (errors are raised before yielding)."""
        response = await self._send("GET", path, headers=_DOWNLOAD_HEADERS)
        try:
            yield response
        finally:
            await response.aclose()

    async def _post_auth(self, path: str, body: bytes) -> Any:
        """POST to an auth endpoint (no bearer, never retried); JSON reply on 200."""
        try:
            response = await self._http.send(
                self._http.build_request("POST", path, content=body), stream=True
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, "POST", path) from None
        try:
            reply = Reply(
                response.status_code, response.headers, await _read(response, path), "POST", path
            )
        finally:
            await response.aclose()
        logger.debug("POST %s -> %d", path, reply.status_code)
        if 300 <= reply.status_code < 400:
            raise TLSClientAuthRequiredError(
                "the account requires TLS client-certificate authentication, which this "
                "client does not support; ask Sectigo for a password-based API account",
                status_code=reply.status_code,
                method="POST",
                path=path,
            )
        if reply.status_code != 200:
            raise error_from_reply(reply)
        return reply.json()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        files: list[tuple[str, Any]] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """Run the retry and re-authentication loop; return the open 2xx response."""
        retries = 0
        reauthenticated = False
        while True:
            token = ""
            request_headers = dict(headers) if headers else {}
            if authenticated:
                token = await self.tokens.access_token()
                request_headers["Authorization"] = f"Bearer {token}"
            request = self._http.build_request(
                method, path, content=content, files=files, data=data, headers=request_headers
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                if retries < self.max_retries and _retry.may_retry(method, exc=exc):
                    await self._pause(retries, None, method, path, type(exc).__name__)
                    retries += 1
                    continue
                raise _transport_error(exc, method, path) from None
            status = response.status_code
            logger.debug("%s %s -> %d (attempt %d)", method, path, status, retries + 1)
            if 200 <= status < 300:
                return response
            try:
                reply = Reply(status, response.headers, await _read(response, path), method, path)
            finally:
                await response.aclose()
            if status == 401 and authenticated and not reauthenticated:
                self.tokens.invalidate(token)
                reauthenticated = True
                continue
            error = error_from_reply(reply)
            if retries < self.max_retries and _retry.may_retry(method, status=status):
                wait = _retry.retry_after_seconds(reply.headers)
                if wait is None or wait <= _retry.MAX_RETRY_AFTER:
                    await self._pause(retries, wait, method, path, str(status))
                    retries += 1
                    continue
            raise error

    async def _pause(
        self, retries: int, wait: float | None, method: str, path: str, cause: str
    ) -> None:
        delay = _retry.backoff_delay(retries) if wait is None else wait
        logger.info("%s %s failed (%s); retrying in %.2f s", method, path, cause, delay)
        await self._sleep(delay)

    def __repr__(self) -> str:
        return f"Session(base_url={self.base_url!r})"


async def _read(response: httpx.Response, path: str) -> bytes:
    """Read a whole (non-download) body, refusing anything over MAX_BODY_BYTES."""
    length = response.headers.get("content-length")
    if length is not None and length.isdigit():
        if int(length) > MAX_BODY_BYTES:
            raise InvalidResponseError(
                f"response of {int(length)} bytes exceeds the {MAX_BODY_BYTES}-byte limit",
                path=path,
            )
        return await response.aread()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidResponseError(
                f"response exceeds the {MAX_BODY_BYTES}-byte limit", path=path
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(headers: httpx.Headers) -> str:
    return str(headers.get("content-type", "")).split(";", 1)[0].strip().lower()


def _transport_error(exc: httpx.TransportError, method: str, path: str) -> APIConnectionError:
    sent = not isinstance(exc, _retry.CONNECT_PHASE_ERRORS)
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.replace("Timeout", " timeout").lower().strip()
        return APITimeoutError(
            f"request timed out ({kind})", method=method, path=path, request_sent=sent
        )
    return APIConnectionError(
        f"connection failed: {type(exc).__name__}", method=method, path=path, request_sent=sent
    )


def error_from_reply(reply: Reply) -> APIError:
    """Turn a non-2xx reply into the typed error of its status."""
    message, error_code, timestamp = _describe_error_body(reply)
    cls = _ERROR_CLASSES.get(reply.status_code)
    if cls is None:
        cls = ServerError if reply.status_code >= 500 else APIError
    kwargs: dict[str, Any] = {
        "status_code": reply.status_code,
        "error_code": error_code,
        "timestamp": timestamp,
        "method": reply.method,
        "path": reply.path,
    }
    if cls is RateLimitError:
        kwargs["retry_after"] = _retry.retry_after_seconds(reply.headers)
    return cls(message, **kwargs)


def _describe_error_body(reply: Reply) -> tuple[str, int | None, int | None]:
    """(message, errorCode, timestamp) from a JSON, text, HTML or empty error body."""
    fallback = str(httpx.codes.get_reason_phrase(reply.status_code)) or "error"
    raw = reply.content.strip()
    if not raw:
        return fallback, None, None
    media = _media_type(reply.headers)
    text = raw.decode("utf-8", errors="replace")
    if media == "text/html" or raw[:1] == b"<":
        return f"{fallback} (the server answered with an HTML page)", None, None
    if "json" in media or raw[:1] in (b"{", b'"'):
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            message = decoded.get("message") or decoded.get("error") or decoded.get("detail")
            code, stamp = decoded.get("errorCode"), decoded.get("timestamp")
            return (
                redact(str(message)) if message else fallback,
                code if isinstance(code, int) and not isinstance(code, bool) else None,
                stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None,
            )
        if isinstance(decoded, str) and decoded:
            return redact(decoded[:500]), None, None
    return redact(text[:500]), None, None


def _raise_if_error_body(decoded: Any, reply: Reply) -> None:
    """Some gateways answer 200 with Sectigo's error body: treat that as the error."""
    if (
        isinstance(decoded, dict)
        and {"status", "message"}
        <= decoded.keys()
        <= {"status", "message", "errorCode", "timestamp", "error", "path"}
        and isinstance(decoded["status"], int)
        and decoded["status"] >= 400
    ):
        raise error_from_reply(
            Reply(decoded["status"], reply.headers, reply.content, reply.method, reply.path)
        )
