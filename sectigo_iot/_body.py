"""Reading response bodies: content decoding in bounded steps, with a cap on decoded bytes.

httpx would inflate a gzip body chunk by chunk, but one 64 KiB chunk of a crafted body can
inflate to 64 MiB before anyone counts it. Here the raw bytes are read and inflated at
most ``STEP`` bytes at a time, so a decompression bomb is refused after ``limit`` bytes
with no more than one step held in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

import httpx

from .errors import InvalidResponseError

__all__ = ["ACCEPT_ENCODING", "read_body"]

#: the encodings we can inflate with a bound; sent as Accept-Encoding on every request
ACCEPT_ENCODING = "gzip, deflate"
STEP = 64 * 1024  # bytes inflated at a time


class _Inflater:
    """Inflates gzip or deflate data, ``STEP`` output bytes at a time."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        # gzip has a header; "deflate" is zlib-wrapped by the standard, raw in practice too
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else 0)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The inflated bytes of ``data``, in pieces of at most ``STEP`` bytes."""
        while True:
            piece = self._inflate(data)
            if piece:
                yield piece
            data = self._inflater.unconsumed_tail
            if not data and len(piece) < STEP:  # nothing left in or pending inside zlib
                return

    def check_complete(self) -> None:
        """Raise zlib.error when the compressed stream stopped before its end."""
        if not self._inflater.eof:
            raise zlib.error("the compressed body ended early")

    def _inflate(self, data: bytes) -> bytes:
        try:
            return self._inflater.decompress(data, STEP)
        except zlib.error:
            if self._encoding != "deflate" or self._started:
                raise
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as IIS sends
            return self._inflater.decompress(data, STEP)
        finally:
            self._started = True


def _inflater_for(headers: httpx.Headers, path: str) -> _Inflater | None:
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if encoding == "deflate" else "gzip")
    raise InvalidResponseError(
        f"the server used content encoding {encoding!r}, which was not asked for "
        f"(Accept-Encoding: {ACCEPT_ENCODING})",
        path=path,
    )


def _too_large(limit: int, path: str) -> InvalidResponseError:
    return InvalidResponseError(
        f"the response body exceeds the {limit}-byte limit (counted after decompression)",
        path=path,
    )


async def read_body(
    response: httpx.Response, path: str, *, limit: int, write: Callable[[bytes], object]
) -> int:
    """Pass the decoded body of ``response`` to ``write`` and return its size.

    Raises InvalidResponseError once more than ``limit`` decoded bytes arrive, or when
    the encoding is unknown or corrupt. Transport errors (a body cut or stalled) are
    httpx's own; the session maps them.
    """
    try:  # a transport that answers with a body already read (and decoded by httpx)
        content = response.content
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > limit:
            raise _too_large(limit, path)
        write(content)
        return len(content)
    inflater = _inflater_for(response.headers, path)
    declared = response.headers.get("content-length", "")
    if inflater is None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, path)
    size = 0
    try:
        async for raw in response.aiter_raw():
            for piece in inflater.feed(raw) if inflater is not None else (raw,):
                size += len(piece)
                if size > limit:
                    raise _too_large(limit, path)
                write(piece)
        if inflater is not None:
            inflater.check_complete()
    except zlib.error as exc:
        raise InvalidResponseError(
            f"the response body is not valid {response.headers.get('content-encoding')} "
            f"data ({exc})",
            path=path,
        ) from None
    return size
