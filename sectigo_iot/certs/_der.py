"""A small, bounded reader of BER/DER elements, for looking inside untrusted files.

It reads only the headers of the elements a caller walks through and skips the rest by
length, so its work is linear in the input. Nesting and the number of elements read are
capped; anything malformed raises :class:`DERError`, never an ``IndexError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "DERError", "Element", "Reader"]

MAX_DEPTH = 32  # deeper nesting than any real PKCS#12 needs
MAX_ELEMENTS = 4096  # element headers read per input

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
OID = 0x06
CONTEXT_0 = 0xA0  # [0], constructed


class DERError(ValueError):
    """The bytes are not well-formed BER/DER (or exceed the reader's bounds)."""


class Element(NamedTuple):
    """One element: its first identifier octet and where its content lies."""

    tag: int
    start: int  # first content byte
    end: int  # one past the last content byte (the end-of-contents octets excluded)
    next: int  # where the following element starts

    @property
    def constructed(self) -> bool:
        """Whether the content is made of elements."""
        return bool(self.tag & 0x20)


class Reader:
    """Reads elements of one encoded value; ``data`` is never copied."""

    def __init__(self, data: bytes, *, _counter: list[int] | None = None) -> None:
        self.data = data
        self._counter = _counter if _counter is not None else [0]  # shared with nested()
        self._indefinite_ends: dict[int, int] = {}  # content start -> end, found once

    def nested(self, data: bytes) -> Reader:
        """A reader of a value encoded inside this one; both count toward one limit."""
        return Reader(data, _counter=self._counter)

    def root(self) -> Element:
        """The outermost element (bytes after it are ignored, as OpenSSL does)."""
        return self.element(0, len(self.data), 0)

    def element(self, offset: int, limit: int, depth: int) -> Element:
        """The element starting at ``offset``, which must end by ``limit``."""
        if depth > MAX_DEPTH:
            raise DERError(f"elements are nested more than {MAX_DEPTH} levels deep")
        self._counter[0] += 1
        if self._counter[0] > MAX_ELEMENTS:
            raise DERError(f"more than {MAX_ELEMENTS} elements")
        data = self.data
        if offset >= limit:
            raise DERError("truncated: an element is missing")
        tag = data[offset]
        pos = offset + 1
        if tag & 0x1F == 0x1F:  # high tag number: up to 4 base-128 octets follow
            while True:
                if pos >= limit or pos - offset > 4:
                    raise DERError("an element tag is truncated or impossibly large")
                pos += 1
                if not data[pos - 1] & 0x80:
                    break
        if pos >= limit:
            raise DERError("truncated inside an element header")
        first = data[pos]
        pos += 1
        if first == 0x80:
            if not tag & 0x20:
                raise DERError("a primitive element has an indefinite length")
            end = self._indefinite_end(pos, limit, depth)
            return Element(tag, pos, end, end + 2)
        if first & 0x80:
            size = first & 0x7F
            if size > 4 or pos + size > limit:
                raise DERError("an element length is truncated or impossibly large")
            length = int.from_bytes(data[pos : pos + size], "big")
            pos += size
        else:
            length = first
        if pos + length > limit:
            raise DERError("truncated: an element is longer than what contains it")
        return Element(tag, pos, pos + length, pos + length)

    def _indefinite_end(self, start: int, limit: int, depth: int) -> int:
        end = self._indefinite_ends.get(start)
        if end is None:
            pos = start
            while not (pos + 1 < limit and self.data[pos] == 0 and self.data[pos + 1] == 0):
                pos = self.element(pos, limit, depth + 1).next
            end = self._indefinite_ends[start] = pos
        return end

    def children(self, parent: Element, depth: int) -> Iterator[Element]:
        """The elements inside a constructed element at nesting ``depth``."""
        if not parent.constructed:
            raise DERError("expected a constructed element")
        pos = parent.start
        while pos < parent.end:
            child = self.element(pos, parent.end, depth + 1)
            yield child
            pos = child.next

    def expect(self, element: Element, tag: int, what: str) -> Element:
        """``element`` itself, after checking its tag."""
        if element.tag != tag:
            raise DERError(f"{what}: expected tag 0x{tag:02X}, found 0x{element.tag:02X}")
        return element

    def items(self, parent: Element, depth: int, count: int, what: str) -> list[Element]:
        """The first ``count`` children of ``parent``; fewer raise :class:`DERError`."""
        found: list[Element] = []
        for child in self.children(parent, depth):
            found.append(child)
            if len(found) == count:
                return found
        raise DERError(f"{what} has fewer than {count} parts")

    def content(self, element: Element) -> bytes:
        """The raw content of a primitive element."""
        return self.data[element.start : element.end]

    def octets(self, element: Element, depth: int) -> bytes:
        """An OCTET STRING's value, joining the pieces of a constructed (BER) one."""
        if element.tag == OCTET_STRING:
            return self.content(element)
        if element.tag == OCTET_STRING | 0x20:
            return b"".join(self.octets(part, depth + 1) for part in self.children(element, depth))
        raise DERError(f"expected an OCTET STRING, found tag 0x{element.tag:02X}")

    def integer(self, element: Element) -> int:
        """A non-negative INTEGER's value."""
        value = self.content(self.expect(element, INTEGER, "INTEGER"))
        if not value or value[0] & 0x80:
            raise DERError("an INTEGER is empty or negative")
        return int.from_bytes(value[:9], "big") if len(value) <= 9 else 1 << 72

    def oid(self, element: Element) -> bytes:
        """An OBJECT IDENTIFIER's encoded content (compare with DER constants)."""
        return self.content(self.expect(element, OID, "OBJECT IDENTIFIER"))
