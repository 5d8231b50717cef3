"""What the emulator accepts from a request: body size and JSON nesting, both bounded.

A body over :data:`MAX_BODY_BYTES` is a 413, never read whole: a declared
``Content-Length`` over the cap is refused before any byte is read, and a body without
one (chunked) is counted as it streams and refused once the count passes the cap.
JSON nested deeper than :data:`MAX_JSON_DEPTH` is a 400, checked before decoding (the
decoder recurses and would fail with ``RecursionError``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from ._middleware import HttpMiddleware
from ._responses import ApiError, error_response

__all__ = ["MAX_BODY_BYTES", "MAX_JSON_DEPTH", "BodyLimit", "decode_json"]

#: the largest request body the emulator reads (8 MiB); a larger one is answered 413
MAX_BODY_BYTES = 8 * 1024 * 1024
#: the deepest JSON nesting the emulator decodes; a deeper body is answered 400
MAX_JSON_DEPTH = 32

_TOO_LARGE = f"Request body larger than {MAX_BODY_BYTES} bytes"
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS_ONLY = bytes(range(256)).translate(None, b"[]{}")  # every byte but brackets
_SQUARE = bytes.maketrans(b"{}", b"[]")


def _too_deep(data: bytes) -> bool:
    """Whether the brackets outside strings nest deeper than :data:`MAX_JSON_DEPTH`.

    Each pass removes the innermost pairs, one level; what is left after the bound, or
    what a pass cannot shorten, is deeper or unbalanced (the decoder refuses the latter
    anyway). A body with few opening brackets is shallow: nothing to scan.
    """
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return False
    brackets = _STRING.sub(b"", data).translate(_SQUARE, _BRACKETS_ONLY)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return True
        brackets = shorter
    return bool(brackets)


def decode_json(data: bytes | str, what: str) -> Any:
    """``data`` decoded, or a 400 naming ``what`` (malformed, or nested too deep)."""
    raw = data.encode() if isinstance(data, str) else data
    if _too_deep(raw):
        raise ApiError(400, f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, f"{what} is not valid JSON") from None


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class BodyLimit(HttpMiddleware):
    """ASGI middleware: request bodies over :data:`MAX_BODY_BYTES` get 413.

    A too large declared length is answered at once. Otherwise ``receive`` counts the
    body as the app reads it and raises a 413 :class:`ApiError` (the app's error
    handler writes the Sectigo error body) as soon as the count passes the cap, so at
    most the cap plus one chunk is ever held. The server discards the unread rest.
    """

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request, its body counted."""
        declared = _declared_length(scope)
        if declared is not None and not 0 <= declared <= MAX_BODY_BYTES:
            status, message = (400, "Invalid Content-Length") if declared < 0 else (413, _TOO_LARGE)
            response = error_response(status, message, now=self.clock())
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise ApiError(413, _TOO_LARGE)
            return message

        await self.app(scope, counting_receive, send)
