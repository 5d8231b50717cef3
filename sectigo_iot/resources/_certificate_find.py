"""Finding certificates: the forms a common name is searched in, the answers of several
searches merged, and the plain answer structured fast."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

from .._checks import domain_names
from ..errors import InvalidInputError
from ..models import CertificateItem

__all__ = ["merge_found", "name_forms", "plain_items"]

_TEXT_TYPES = frozenset({str, type(None)})


def name_forms(common_name: str) -> list[str | None]:
    """The name as given, then as ``create`` sends it (see ``domain_names``) when it
    is a domain name written otherwise; ``[None]`` for no name."""
    if not common_name:
        return [None]
    try:
        normalized = domain_names(common_name, ())[0]
    except InvalidInputError:  # not a domain name: searched only as given
        return [common_name]
    return list(dict.fromkeys([common_name, normalized]))


def merge_found(
    parts: Sequence[tuple[list[CertificateItem], int]],
) -> tuple[list[CertificateItem], int]:
    """The items of several searches, each certificate once, and their total count."""
    if len(parts) == 1:
        items, total = parts[0]
        return items, max(total, len(items))
    merged: dict[str, CertificateItem] = {}
    total = 0
    for items, part_total in parts:
        total += max(part_total, len(items))
        for item in items:
            key = item.serial_number.upper() or f"#{len(merged)}"  # no serial: never merged
            if key in merged:  # found by both searches (its serial number matched)
                total -= 1
            else:
                merged[key] = item
    return list(merged.values()), max(total, len(merged))


def plain_items(data: object) -> tuple[list[CertificateItem], int] | None:
    """A find answer of the plain shape the service sends, structured directly: exactly
    what the converter makes of it, several times faster for thousands of items (each
    field read, checked and set in C-level passes over all items: see ``from_columns``).

    The shape: ``totalCount`` an integer, ``items`` a list of objects whose
    ``deviceId``, ``commonName``, ``serialNumber`` and ``status`` are strings (or
    null) and whose ``creationDate`` is null or a date ``parse_date`` reads. None for
    anything else: the converter then decides, and says what is wrong.
    """
    if type(data) is not dict:
        return None
    total, items = data.get("totalCount", 0), data.get("items")
    if (total is not None and type(total) is not int) or not (items is None or type(items) is list):
        return None
    items = items or []
    if not set(map(type, items)) <= {dict}:
        return None
    columns: dict[str, list[Any]] = {}
    for name, key in _TEXT_FIELDS:
        column = _text_column(items, key)
        if column is None:
            return None
        columns[name] = column
    from ..models import from_columns, parse_date, parse_dates

    dates = _column(items, "creationDate")
    kinds = set(map(type, dates))
    try:
        if kinds == {str} and all(dates):  # the usual answer: a date on every item
            columns["creation_date"] = parse_dates(dates)
        elif kinds <= _TEXT_TYPES and "" not in dates:  # the converter keeps an empty date
            columns["creation_date"] = [None if d is None else parse_date(d) for d in dates]
        else:
            return None
    except ValueError:  # a format the converter reads as None, keeping the text
        return None
    return from_columns(CertificateItem, len(items), **columns), total or 0


_TEXT_FIELDS = (
    ("device_id", "deviceId"),
    ("common_name", "commonName"),
    ("serial_number", "serialNumber"),
    ("status", "status"),
)


def _column(items: list[dict[str, Any]], key: str) -> list[Any]:
    """The value of ``key`` in each item (None where it is missing)."""
    return list(map(dict.get, items, repeat(key)))


def _text_column(items: list[dict[str, Any]], key: str) -> list[str] | None:
    """The text of ``key`` in each item, null or missing as ``""``; None when one is
    not text."""
    values = _column(items, key)
    kinds = set(map(type, values))
    if kinds <= {str}:
        return values
    if kinds <= _TEXT_TYPES:
        return ["" if value is None else value for value in values]
    return None
