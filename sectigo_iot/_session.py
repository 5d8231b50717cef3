"""The one place that sends HTTP: base URL, headers, bearer token, timeouts, retries,
error mapping and logging. Resources build requests and call :class:`Session`."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, BinaryIO, TypeVar, get_origin, overload
from urllib.parse import urlsplit

import httpx
from attrs import frozen

from . import _retry
from ._body import ACCEPT_ENCODING, read_body
from ._logging import SecretRegistry, get_logger, may_need_redaction, redact
from ._net import environment_proxy, is_loopback
from ._version import __version__
from .auth import TokenManager, TokenStore
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    InvalidInputError,
    InvalidResponseError,
    RateLimitError,
    TLSClientAuthRequiredError,
    error_class_for_status,
)

__all__ = ["JSON_CONTENT_TYPE", "Reply", "Session", "decode", "encode", "origin_of"]

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


@frozen(eq=False, repr=False)  # internal: neither is used, and each costs import time
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
        except RecursionError:
            raise InvalidResponseError(
                "the JSON body is nested too deeply", path=self.path
            ) from None
        except ValueError:  # UnicodeDecodeError included
            pass
        if not self.content.strip():
            problem = "expected JSON but the response body is empty"
        elif _media_type(self.headers) == "text/html" or self.content.lstrip()[:1] == b"<":
            problem = "expected JSON but the server answered with an HTML page"
        else:
            problem = "the response body is not valid JSON"
        raise InvalidResponseError(problem, path=self.path)


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


def decode(data: Any, cls: Any, path: str) -> Any:
    """Structure JSON into a model; InvalidResponseError when its shape is wrong."""
    expected = list if get_origin(cls) is list else dict
    if not isinstance(data, expected):
        raise InvalidResponseError(
            f"unexpected response shape for {getattr(cls, '__name__', cls)}: "
            f"expected a JSON {'array' if expected is list else 'object'}",
            path=path,
        )
    from .models import converter  # cattrs loads on first use, not at import

    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs raises several exception types
        raise InvalidResponseError(
            f"unexpected response shape for {getattr(cls, '__name__', cls)}: {exc}", path=path
        ) from None


def encode(model: Any) -> Any:
    """A request model as JSON-ready data (camelCase keys)."""
    from .models import converter

    return converter.unstructure(model)


class Session:
    """Sends every request of one client over one ``httpx.AsyncClient``.

    The layers, outermost first: :meth:`call` (decode the reply), :meth:`_send`
    (bearer token, one forced refresh after a 401), :meth:`_send_with_retries` (the
    retry policy of ``_retry``), :meth:`_attempt` (one exchange: every byte read, every
    httpx error mapped to a typed error).
    """

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
        sleep: Callable[[float], Awaitable[Any]] = default_sleep,
        allow_insecure_http: bool = False,
        trust_env: bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidInputError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if limits is not None and not isinstance(limits, httpx.Limits):
            raise InvalidInputError(f"limits must be an httpx.Limits, got {limits!r}")
        self.base_url = origin_of(base_url, allow_insecure_http=allow_insecure_http)
        self.host = urlsplit(self.base_url).netloc
        self.max_retries = max_retries
        self.sleep = sleep
        options = _network_options(self.base_url, transport, trust_env=trust_env)
        if limits is not None:  # else httpx's: 100 connections, 20 kept alive
            options["limits"] = limits
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, **_JSON_HEADERS},
            follow_redirects=False,
            **options,
        )
        #: the secrets of this client (password, tokens, PKCS#12 passwords) to redact
        self.secrets = SecretRegistry()
        self.tokens = TokenManager(
            host=self.host,
            username=username,
            password=password,
            store=token_store,
            send=self._post_auth,
            clock=clock,
            secrets=self.secrets,
        )

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
        only checked). ``json_body`` is a request model or JSON-ready data. Every JSON
        reply is checked for Sectigo's error body, which some gateways send with a 200;
        server text that holds a known secret is redacted.
        """
        content = None
        if json_body is not None:
            payload = json_body if isinstance(json_body, (dict, list)) else encode(json_body)
            content = json.dumps(payload, separators=(",", ":")).encode()
        headers = {}
        if files is not None:  # the client's JSON Content-Type must not label the form
            headers["Content-Type"] = f"multipart/form-data; boundary={os.urandom(16).hex()}"
        reply = await self._send(
            method, path, content=content, files=files, data=data, headers=headers
        )
        if cast_to is str:
            return redact(reply.text)
        if cast_to is None:  # no body expected: only a Sectigo error body counts
            with contextlib.suppress(InvalidResponseError):
                _raise_if_error_body(reply.json(), reply)
            return None
        decoded = reply.json()
        _raise_if_error_body(decoded, reply)
        if _may_hold_secrets(reply.content):
            try:
                decoded = _redact_json(decoded)
            except RecursionError:
                raise InvalidResponseError(
                    "the JSON body is nested too deeply", path=path
                ) from None
        if cast_to is object:
            return decoded
        if cast_to is int:
            if isinstance(decoded, bool) or not isinstance(decoded, int):
                raise InvalidResponseError(f"expected an integer, got {decoded!r}", path=path)
            return decoded
        return decode(decoded, cast_to, path)

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
            "POST", path, None, {"content": body}, _read_capped, attempt_number=1
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
        _raise_if_error_body(decoded, reply)
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
        """The authentication layer: a bearer token; after a 401 one forced refresh."""
        for forced_refresh in (False, True):
            token = await self.tokens.access_token()
            request_headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
            reply = await self._send_with_retries(
                method, path, request_headers, content, read_success or _read_capped
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
    ) -> Reply:
        """The retry layer: GETs and unsent requests again, as ``_retry`` allows."""
        retries = 0
        while True:
            try:
                reply = await self._attempt(
                    method, path, headers, content, read_success, attempt_number=retries + 1
                )
            except APIConnectionError as exc:
                if retries >= self.max_retries or not _retry.may_retry(
                    method, request_sent=exc.request_sent
                ):
                    raise
                await self._pause(retries, None, method, path, str(exc))
                retries += 1
                continue
            if retries < self.max_retries and _retry.may_retry(method, status=reply.status_code):
                wait = _retry.retry_after_seconds(reply.headers)
                if wait is None or wait <= _retry.MAX_RETRY_AFTER:
                    await self._pause(retries, wait, method, path, str(reply.status_code))
                    retries += 1
                    continue
            return reply

    async def _attempt(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None,
        content: dict[str, Any],
        read_success: _Reader,
        *,
        attempt_number: int,
    ) -> Reply:
        """One exchange, read to the end. Every httpx error becomes APIConnectionError
        or APITimeoutError, whether it happens before, while or after sending."""
        request = self._http.build_request(method, path, headers=headers, **content)
        response: httpx.Response | None = None
        try:
            response = await self._http.send(request, stream=True)
            logger.debug(
                "%s %s -> %d (attempt %d)", method, path, response.status_code, attempt_number
            )
            try:
                ok = 200 <= response.status_code < 300
                body = await (read_success if ok else _read_capped)(response)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise _transport_error(exc, method, path, answered=response is not None) from None
        return Reply(response.status_code, response.headers, body, method, path)

    async def _pause(
        self, retries: int, wait: float | None, method: str, path: str, cause: str
    ) -> None:
        delay = _retry.backoff_delay(retries) if wait is None else wait
        logger.info("%s %s failed (%s); retrying in %.2f s", method, path, cause, delay)
        await self.sleep(delay)

    def __repr__(self) -> str:
        return f"Session(base_url={self.base_url!r})"


_Reader = Callable[[httpx.Response], Awaitable[bytes]]


def _network_options(
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


def _may_hold_secrets(body: bytes) -> bool:
    """Whether a value of this JSON body may need redaction. In an ASCII body without
    a backslash (no escapes) every string value appears as it is, so a body that
    :func:`may_need_redaction` clears has no value that redaction would change."""
    return b"\\" in body or may_need_redaction(body)  # the bytes: no decoded copy


def _redact_json(value: Any) -> Any:
    """``value`` with every string passed through :func:`redact` (server text that
    echoes a password must not reach a model, an error or a log)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redact_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_json(item) for key, item in value.items()}
    return value


def _media_type(headers: httpx.Headers) -> str:
    return str(headers.get("content-type", "")).split(";", 1)[0].strip().lower()


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


def error_from_reply(reply: Reply) -> APIError:
    """Turn a non-2xx reply into the typed error of its status."""
    message, error_code, timestamp = _describe_error_body(reply)
    cls = error_class_for_status(reply.status_code)
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
