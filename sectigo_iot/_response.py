"""Reading what the server answered: a reply's body as text, JSON or a model, Spring
pages unwrapped, Sectigo's error bodies mapped to typed errors, and server text that
holds a known secret redacted. Nothing here sends; :mod:`._session` does."""

from __future__ import annotations

import contextlib
import json
from typing import Any, get_origin

import httpx
from attrs import frozen

from . import _retry
from ._logging import may_need_redaction, redact
from .errors import APIError, InvalidResponseError, RateLimitError, error_class_for_status

__all__ = [
    "Reply",
    "decode",
    "encode",
    "error_from_reply",
    "interpret",
    "page_items",
    "raise_if_error_body",
]


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


def interpret(reply: Reply, cast_to: Any) -> Any:
    """A successful reply's body as ``cast_to`` (see :meth:`Session.call`).

    Every JSON reply is checked for Sectigo's error body, which some gateways send with
    a 200; server text that holds a known secret is redacted.
    """
    if cast_to is str:
        return redact(reply.text)
    if cast_to is None:  # no body expected: only a Sectigo error body counts
        with contextlib.suppress(InvalidResponseError):
            raise_if_error_body(reply.json(), reply)
        return None
    decoded = reply.json()
    raise_if_error_body(decoded, reply)
    if _may_hold_secrets(reply.content):
        try:
            decoded = _redact_json(decoded)
        except RecursionError:
            raise InvalidResponseError(
                "the JSON body is nested too deeply", path=reply.path
            ) from None
    if cast_to is object:
        return decoded
    if cast_to is int:
        if isinstance(decoded, bool) or not isinstance(decoded, int):
            raise InvalidResponseError(f"expected an integer, got {decoded!r}", path=reply.path)
        return decoded
    return decode(decoded, cast_to, reply.path)


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


def page_items(
    data: Any, cls: Any, page: int, path: str, *, items: str, listing: str
) -> tuple[list[Any], bool]:
    """Page ``page`` of a list (a JSON array or a Spring page object,
    ``{"content": [...]}``) as a list of ``cls``, and whether it is surely the last page.
    ``items`` and ``listing`` name the list in errors ("batches", "the batch list").

    Only an empty page, or a Spring page object saying so (``last``, or ``number`` and
    ``totalPages``), ends the list: a short page may only mean that the server cut the
    size asked for.
    """
    raw = data.get("content") if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise InvalidResponseError(f"expected a list of {items}", path=path)
    found: list[Any] = decode(raw, list[cls], path)
    last = not found
    if isinstance(data, dict):
        number, total_pages = data.get("number"), data.get("totalPages")
        if isinstance(number, int) and number != page:
            raise InvalidResponseError(
                f"asked for page {page} of {listing}, got page {number}", path=path
            )
        if data.get("last") is True or (isinstance(total_pages, int) and page >= total_pages - 1):
            last = True
    return found, last


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


def raise_if_error_body(decoded: Any, reply: Reply) -> None:
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
        except (ValueError, RecursionError):  # a hostile body: described as text below
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
