"""Finding certificates: the forms a common name is searched in, the answers of several
searches merged, and the plain answer structured fast."""

from __future__ import annotations

from collections.abc import Sequence

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
    what the converter makes of it, several times faster for thousands of items.

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
    from ..models import parse_date

    made: list[CertificateItem] = []
    for item in items or ():
        if type(item) is not dict:
            return None
        get = item.get
        device_id, common_name = get("deviceId"), get("commonName")
        serial_number, status, date = get("serialNumber"), get("status"), get("creationDate")
        if not (
            type(device_id) in _TEXT_TYPES
            and type(common_name) in _TEXT_TYPES
            and type(serial_number) in _TEXT_TYPES
            and type(status) in _TEXT_TYPES
        ):
            return None
        if date is None:
            parsed = None
        elif type(date) is not str or not date:  # the converter keeps an empty date's text
            return None
        else:
            try:
                parsed = parse_date(date)
            except ValueError:  # a format the converter reads as None, keeping the text
                return None
        made.append(
            CertificateItem(
                device_id=device_id or "",
                common_name=common_name or "",
                serial_number=serial_number or "",
                creation_date=parsed,
                status=status or "",
            )
        )
    return made, total or 0
