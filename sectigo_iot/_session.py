"""The one place that sends HTTP: base URL, headers, bearer token, timeouts, retries,
size caps and logging. Resources build requests and call :class:`Session`; what a reply
means (its body as a model, an error body as a typed error) is read by ``_response``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, BinaryIO, TypeVar, overload
from urllib.parse import urlsplit

import httpx

from . import _retry
from ._body import ACCEPT_ENCODING, read_body
from ._hooks import (
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    current_operation,
    ids_of,
    redact_url,
    url_template,
)
from ._logging import SecretRegistry, get_logger
from ._net import environment_proxy, is_loopback
from ._response import (
    Reply,
    decode,
    encode,
    error_from_reply,
    interpret,
    page_items,
    raise_if_error_body,
)
from ._settings import ClientSettings
from ._version import __version__
from .auth import TokenManager
from .errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidInputError,
    InvalidResponseError,
    TLSClientAuthRequiredError,
)

__all__ = [
    "JSON_CONTENT_TYPE",
    "USER_AGENT",
    "Session",
    "default_sleep",
    "network_options",
    "origin_of",
]

logger = get_logger("sectigo_iot.http")
T = TypeVar("T")

#: the content type Sectigo uses, spelled exactly as the spec gives it
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
OCTET_STREAM = "application/octet-stream"
USER_AGENT = f"sectigo-iot/{__version__}"
MAX_BODY_BYTES = 10 * 1024 * 1024  # a JSON reply larger than this is refused
_JSON_HEADERS = {"Content-Type": JSON_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE}
_DOWNLOAD_HEADERS = {"Content-Type": OCTET_STREAM, "Accept": OCTET_STREAM}


async def default_sleep(seconds: float) -> None:
    """``anyio.sleep``; anyio is imported on first use, not with the package."""
    import anyio

    await anyio.sleep(seconds)


def origin_of(base_url: str, *, allow_insecure_http: bool = False) -> str:
    """Scheme, host and port of ``base_url``; like the Go client, any path is dropped.

    Plain ``http://`` is refused for any host but a loopback one (the password would
    travel in clear) unless ``allow_insecure_http`` is set.
    """
    if not isinstance(base_url, str) or any(ch in base_url for ch in "\r\n\t\x00 "):
        raise InvalidInputError(
            f"base_url must be an http(s) URL without spaces or control characters, "
            f"got {base_url!r}"
        )
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"base_url {base_url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"base_url must be an http(s) URL such as https://iot.sectigo.com, got {base_url!r}"
        )
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise InvalidInputError(
            f"base_url {base_url!r} is plain http to a host that is not this machine: the "
            "password would travel in clear; use https, or pass allow_insecure_http=True"
        )
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


class Session:
    """Sends every request of one client over one ``httpx.AsyncClient``.

    The layers, outermost first: :meth:`call` (decode the reply), :meth:`_send`
    (bearer token, one forced refresh after a 401), :meth:`_send_with_retries` (the
    retry policy of ``_retry``), :meth:`_attempt` (one exchange: every byte read, every
    httpx error mapped to a typed error).
    """

    def __init__(self, settings: ClientSettings) -> None:
        max_retries, limits = settings.max_retries, settings.limits
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidInputError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if limits is not None and not isinstance(limits, httpx.Limits):
            raise InvalidInputError(f"limits must be an httpx.Limits, got {limits!r}")
        self.base_url = origin_of(
            settings.base_url, allow_insecure_http=settings.allow_insecure_http
        )
        self.host = urlsplit(self.base_url).netloc
        self.max_retries = max_retries
        #: who is told of each operation, send, retry and token refresh (``_hooks``)
        self.observers = settings.observers
        self.sleep = settings.sleep
        self.clock = settings.clock
        options = network_options(self.base_url, settings.transport, trust_env=settings.trust_env)
        if limits is not None:  # else httpx's: 100 connections, 20 kept alive
            options["limits"] = limits
        timeout = settings.timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            transport=settings.transport,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, **_JSON_HEADERS},
            follow_redirects=False,
            **options,
        )
        #: the secrets of this client (password, tokens, PKCS#12 passwords) to redact
        self.secrets = SecretRegistry()
        self.tokens = TokenManager(
            host=self.host,
            username=settings.username,
            password=settings.password,
            store=settings.token_store,
            send=self._post_auth,
            clock=settings.clock,
            secrets=self.secrets,
            observers=self.observers,
        )

    @property
    def plain_http(self) -> httpx.AsyncClient:
        """The connection pool (this client's transport) for a request that carries no
        credential, such as a CRL's: the bearer token is added per request by
        :meth:`_send` only, never to the pool."""
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool and forget this client's secrets."""
        await self._http.aclose()
        self.secrets.clear()

    async def server_now(self) -> datetime:
        """The server's time, estimated from fresh tokens (logging in first if needed)."""
        await self.tokens.access_token()
        return datetime.fromtimestamp(self.tokens.server_now(), timezone.utc)

    @overload
    async def call(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[T],
        json_body: Any = None,
        files: list[tuple[str, Any]] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> T: ...

    @overload
    async def call(
        self,
        method: str,
        path: str,
        *,
        cast_to: None = None,
        json_body: Any = None,
        files: list[tuple[str, Any]] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None: ...

    async def call(
        self,
        method: str,
        path: str,
        *,
        cast_to: Any = None,
        json_body: Any = None,
        files: list[tuple[str, Any]] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call, and its reply decoded as ``cast_to``.

        ``cast_to`` is a model (or ``list[Model]``), ``int`` (a bare JSON number),
        ``object`` (the JSON as it came), ``str`` (a text body) or None (the body is
        only checked). ``json_body`` is a request model or JSON-ready data. The reply is
        read by ``_response.interpret`` (error bodies sent with a 200, redaction).
        """
        content = None if json_body is None else self.json_bytes(json_body)
        headers = {}
        if files is not None:  # the client's JSON Content-Type must not label the form
            headers["Content-Type"] = f"multipart/form-data; boundary={os.urandom(16).hex()}"
        reply = await self._send(
            method, path, content=content, files=files, data=data, headers=headers
        )
        return interpret(reply, cast_to)

    async def call_page(
        self, path: str, cls: type[T], *, page: int, size: int, items: str, listing: str
    ) -> tuple[list[T], bool]:
        """``GET path?page=&size=``: one page of a list as ``cls`` items, and whether it is
        surely the last one (see ``_response.page_items``; ``items`` and ``listing`` name
        the list in errors)."""
        data = await self.call("GET", f"{path}?page={page}&size={size}", cast_to=object)
        return page_items(data, cls, page, path, items=items, listing=listing)

    @staticmethod
    def json_bytes(body: Any) -> bytes:
        """A request model (or JSON-ready data) as the JSON sent for it."""
        payload = body if isinstance(body, (dict, list)) else encode(body)
        return json.dumps(payload, separators=(",", ":")).encode()

    @staticmethod
    def decode(data: Any, cls: type[T], path: str) -> T:
        """JSON already read (``cast_to=object``) as ``cls``; InvalidResponseError when
        its shape is wrong."""
        decoded: T = decode(data, cls, path)
        return decoded

    async def download(
        self, path: str, handle: BinaryIO, *, limit: int, magic: tuple[bytes, ...], kind: str
    ) -> int:
        """GET a binary body into ``handle`` (rewound for each try); return its size.

        InvalidResponseError when the body is empty, does not start with one of the
        ``magic`` signatures (it is not ``kind``), or exceeds ``limit`` bytes once decoded.
        """
        size = max(map(len, magic))

        def check_start(start: bytes, *, complete: bool = False) -> None:
            if len(start) < size and not complete:
                return
            if not start.startswith(magic):
                shown = "an HTML page" if start.lstrip()[:1] == b"<" else f"not {kind}"
                raise InvalidResponseError(f"the download is {shown}", path=path)

        async def into_file(response: httpx.Response) -> bytes:
            handle.seek(0)
            handle.truncate()
            first = bytearray()

            def write(piece: bytes) -> None:
                if len(first) < size:
                    first.extend(piece[:size])
                    check_start(bytes(first))
                handle.write(piece)

            if not await read_body(response, path, limit=limit, write=write):
                raise InvalidResponseError("the download is empty", path=path)
            check_start(bytes(first), complete=True)
            return b""

        await self._send("GET", path, headers=_DOWNLOAD_HEADERS, read_success=into_file)
        handle.flush()
        return handle.tell()

    async def _post_auth(self, path: str, body: bytes) -> Any:
        """POST to an auth endpoint (no bearer, never retried); JSON reply on 200."""
        reply = await self._attempt(
            "POST", path, None, {"content": body}, _read_capped, attempt=1, max_attempts=1
        )
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
        decoded = reply.json()
        raise_if_error_body(decoded, reply)
        return decoded

    async def _send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        read_success: _Reader | None = None,
        **content: Any,
    ) -> Reply:
        """The authentication layer: a bearer token; after a 401 one forced refresh
        (counted in the attempts, after those of the first token)."""
        sent = 0
        for forced_refresh in (False, True):
            token = await self.tokens.access_token()
            request_headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
            reply, sent = await self._send_with_retries(
                method, path, request_headers, content, read_success or _read_capped, sent
            )
            if reply.status_code != 401 or forced_refresh:
                break
            self.tokens.invalidate(token)
        if not 200 <= reply.status_code < 300:
            raise error_from_reply(reply)
        return reply

    async def _send_with_retries(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        content: dict[str, Any],
        read_success: _Reader,
        sent: int,
    ) -> tuple[Reply, int]:
        """The retry layer: GETs and unsent requests again, as ``_retry`` allows. ``sent``
        is the number of sends made before (a resend after a 401); returns the reply and
        the sends made in all."""
        retries = 0
        max_attempts = self.max_retries + 1
        while True:
            sent += 1
            try:
                reply = await self._attempt(
                    method,
                    path,
                    headers,
                    content,
                    read_success,
                    attempt=sent,
                    max_attempts=max_attempts,
                )
            except APIConnectionError as exc:
                if retries >= self.max_retries or not _retry.may_retry(
                    method, request_sent=exc.request_sent
                ):
                    raise
                cause = "timeout" if isinstance(exc, APITimeoutError) else "connection_error"
                await self._pause(retries, None, method, path, cause, sent, None)
                retries += 1
                continue
            status = reply.status_code
            if retries < self.max_retries and _retry.may_retry(method, status=status):
                wait = _retry.retry_after_seconds(reply.headers)
                if wait is None or wait <= _retry.MAX_RETRY_AFTER:
                    await self._pause(retries, wait, method, path, f"http_{status}", sent, status)
                    retries += 1
                    continue
            return reply, sent

    async def _attempt(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None,
        content: dict[str, Any],
        read_success: _Reader,
        *,
        attempt: int,
        max_attempts: int,
    ) -> Reply:
        """One exchange, read to the end. Every httpx error becomes APIConnectionError
        or APITimeoutError, whether it happens before, while or after sending. The
        observers hear of it before the send and once it is over, however it ends."""
        request = self._http.build_request(method, path, headers=headers, **content)
        observers = self.observers
        if observers:
            sending = self._request_event(method, path, attempt, max_attempts)
            await observers.request(sending)
            started = time.perf_counter()
        response: httpx.Response | None = None
        try:
            try:
                response = await self._http.send(request, stream=True)
                logger.debug(
                    "%s %s -> %d (attempt %d)", method, path, response.status_code, attempt
                )
                try:
                    ok = 200 <= response.status_code < 300
                    body = await (read_success if ok else _read_capped)(response)
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                raise _transport_error(exc, method, path, answered=response is not None) from None
        except BaseException as exc:
            if observers:
                status = None if response is None else response.status_code
                ended = _response_event(sending, status, started, type(exc).__name__)
                if isinstance(exc, Exception):
                    await observers.response(ended)
                else:  # cancelled: nothing may be awaited now
                    observers.emit_now("response", ended)
            raise
        if observers:
            error_type = str(response.status_code) if response.status_code >= 400 else None
            await observers.response(
                _response_event(sending, response.status_code, started, error_type)
            )
        return Reply(response.status_code, response.headers, body, method, path)

    def _request_event(
        self, method: str, path: str, attempt: int, max_attempts: int
    ) -> RequestEvent:
        operation = current_operation()
        template = url_template(path)
        batch_id, authority_id = ids_of(path)
        if operation is not None:
            batch_id = operation.batch_id if batch_id is None else batch_id
            authority_id = operation.authority_id if authority_id is None else authority_id
        return RequestEvent(
            operation=operation.name if operation is not None else _unnamed(method, template),
            method=method,
            url=redact_url(self.base_url + path),
            url_template=template,
            attempt=attempt,
            max_attempts=max_attempts,
            resend_count=attempt - 1,
            batch_id=batch_id,
            authority_id=authority_id,
        )

    async def _pause(
        self,
        retries: int,
        wait: float | None,
        method: str,
        path: str,
        cause: str,
        attempt: int,
        status: int | None,
    ) -> None:
        """Before sending again: the retry logged and observed, then the pause."""
        delay = _retry.backoff_delay(retries) if wait is None else wait
        operation = current_operation()
        max_attempts = self.max_retries + 1
        logger.info(
            "%s: %s %s attempt %d of %d failed (%s); retrying in %.2f s",
            operation.name if operation is not None else _unnamed(method, url_template(path)),
            method,
            path,
            attempt,
            max_attempts,
            cause,
            delay,
        )
        if self.observers:
            sent = self._request_event(method, path, attempt, max_attempts)
            await self.observers.retry(
                RetryEvent(**_fields(sent), cause=cause, delay=delay, status_code=status)
            )
        await self.sleep(delay)

    def __repr__(self) -> str:
        return f"Session(base_url={self.base_url!r})"


_Reader = Callable[[httpx.Response], Awaitable[bytes]]


def _unnamed(method: str, template: str) -> str:
    """What a send made outside any operation is called (a direct session call)."""
    return f"{method} {template}"


def _fields(event: RequestEvent) -> dict[str, Any]:
    """The fields of a request event, for the response or retry event of its send."""
    return {name: getattr(event, name) for name in _REQUEST_FIELDS}


_REQUEST_FIELDS = tuple(attribute.name for attribute in RequestEvent.__attrs_attrs__)


def _response_event(
    sent: RequestEvent, status: int | None, started: float, error_type: str | None
) -> ResponseEvent:
    return ResponseEvent(
        **_fields(sent),
        status_code=status,
        duration=time.perf_counter() - started,
        error_type=error_type,
    )


def network_options(
    base_url: str, transport: httpx.AsyncBaseTransport | None, *, trust_env: bool
) -> dict[str, Any]:
    """httpx options for the environment: its proxy (see ``environment_proxy``) and,
    over https, its CA bundle (``SSL_CERT_FILE``, ``SSL_CERT_DIR``). httpx's own
    reading of the environment is off: it would proxy a loopback host too, and fail
    with a bare ImportError or ValueError on a proxy it cannot use."""
    options: dict[str, Any] = {"trust_env": False}
    if transport is not None or not trust_env:  # a given transport is never proxied
        return options
    options["proxy"] = environment_proxy(base_url)
    if base_url.startswith("https:") and {"SSL_CERT_FILE", "SSL_CERT_DIR"} & os.environ.keys():
        options["verify"] = httpx.create_ssl_context(trust_env=True)
    return options


async def _read_capped(response: httpx.Response) -> bytes:
    """A whole (non-download) body, refused past MAX_BODY_BYTES once decoded."""
    chunks: list[bytes] = []
    await read_body(response, response.request.url.path, limit=MAX_BODY_BYTES, write=chunks.append)
    return b"".join(chunks)


def _transport_error(
    exc: httpx.TransportError, method: str, path: str, *, answered: bool
) -> APIConnectionError:
    """The typed error of a transport failure. Once an answer began (the body was cut
    or stalled), the request was certainly sent."""
    sent = answered or not isinstance(exc, _retry.CONNECT_PHASE_ERRORS)
    when = " while reading the response body" if answered else ""
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.replace("Timeout", " timeout").lower().strip()
        return APITimeoutError(
            f"request timed out ({kind}){when}", method=method, path=path, request_sent=sent
        )
    return APIConnectionError(
        f"connection failed{when}: {type(exc).__name__}",
        method=method,
        path=path,
        request_sent=sent,
    )
