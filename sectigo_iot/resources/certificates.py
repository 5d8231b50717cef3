"""``client.certificates``: find certificates and revoke them."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from typing import TYPE_CHECKING, Any

from .._checks import domain_names, positive_id
from .._html import shown_fields, table_html
from .._logging import get_logger
from .._retry import outcome_unknown
from .._session import decode
from ..errors import (
    AmbiguousRequestError,
    APIConnectionError,
    InvalidInputError,
    InvalidResponseError,
    ServerError,
)
from ..models import (
    CertificateItem,
    FindCertificateRequest,
    FindCertificateResponse,
    RevokeCertificateRequest,
)
from ._base import Resource

if TYPE_CHECKING:
    from ..certs import RevocationReason

__all__ = ["Certificates", "FoundCertificates"]

logger = get_logger("sectigo_iot.certificates")


def _name_forms(common_name: str) -> list[str | None]:
    """The name as given, then as ``create`` sends it (see ``domain_names``) when it
    is a domain name written otherwise; ``[None]`` for no name."""
    if not common_name:
        return [None]
    try:
        normalized = domain_names(common_name, ())[0]
    except InvalidInputError:  # not a domain name: searched only as given
        return [common_name]
    return list(dict.fromkeys([common_name, normalized]))


def _plain_items(data: object) -> tuple[list[CertificateItem], int] | None:
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
    from ..models import parse_date, parse_dates
    from ..models._models import from_columns

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
_TEXT_TYPES = frozenset({str, type(None)})


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


def _serial(serial_number: str) -> str:
    from ..certs import normalize_serial  # the offline toolkit loads on first use

    return normalize_serial(serial_number)


class FoundCertificates(list[CertificateItem]):
    """The certificates a search found: a list, plus the server's ``total_count``
    (which may exceed the items returned)."""

    def __init__(self, items: Iterable[CertificateItem] = (), *, total_count: int = 0) -> None:
        super().__init__(items)
        self.total_count = total_count

    def __repr__(self) -> str:
        return f"FoundCertificates({list.__repr__(self)}, total_count={self.total_count})"

    def _repr_html_(self) -> str:
        rows = [[value for _, value in shown_fields(item)] for item in self]
        header = [name for name, _ in shown_fields(CertificateItem())]
        footer = f"{len(self)} of {self.total_count} certificate(s)"
        return table_html("FoundCertificates", header, rows, footer=footer)


class Certificates(Resource):
    """Certificate search and revocation."""

    async def find(
        self, common_name: str | None = None, serial_number: str | None = None
    ) -> FoundCertificates:
        """``POST /api/v1/certificates/find`` by common name and/or serial number.

        A common name that is a domain name is also searched in the form ``create``
        sends (``"bücher.example"`` -> ``"xn--bcher-kva.example"``, lower case), when
        that differs from the name given: a second request, the results merged.
        """
        if not common_name and not serial_number:
            raise InvalidInputError("give a common_name or a serial_number to search for")
        if common_name is not None and not isinstance(common_name, str):
            raise InvalidInputError(f"common_name must be a string, got {common_name!r}")
        serial = _serial(serial_number) if serial_number else None
        parts = [await self._find(name, serial) for name in _name_forms(common_name or "")]
        if len(parts) == 1:
            items, total = parts[0]
            return FoundCertificates(items, total_count=max(total, len(items)))
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
        return FoundCertificates(merged.values(), total_count=max(total, len(merged)))

    async def _find(
        self, common_name: str | None, serial: str | None
    ) -> tuple[list[CertificateItem], int]:
        """One search: the items found and the server's total count."""
        path = "/api/v1/certificates/find"
        request = FindCertificateRequest(common_name=common_name or None, serial_number=serial)
        data = await self._session.call("POST", path, json_body=request, cast_to=object)
        fast = _plain_items(data)
        if fast is not None:
            return fast
        found: FindCertificateResponse = decode(data, FindCertificateResponse, path)
        return found.items or [], found.total_count

    async def revoke(
        self,
        profile_id: int,
        serial_number: str,
        reason: str | int | RevocationReason = "unspecified",
    ) -> None:
        """``POST /api/v1/certificates/{profileId}/revoke`` with an RFC 5280 reason.

        ``reason`` is a name (case and spaces ignored), a code or a RevocationReason.
        When the outcome is unknown (the connection broke after sending, or a 5xx), the
        certificate's status is checked instead of sending the request again.
        """
        from ..certs import RevocationReason

        code = RevocationReason.parse(reason)
        serial = _serial(serial_number)
        path = f"/api/v1/certificates/{positive_id('profile_id', profile_id)}/revoke"
        request = RevokeCertificateRequest(reason_code=int(code), serial_number=serial)
        try:
            await self._session.call("POST", path, json_body=request)
        except (APIConnectionError, ServerError, InvalidResponseError) as exc:
            if not outcome_unknown(exc):
                raise
            if not await self._is_revoked(serial):
                raise AmbiguousRequestError(
                    f"revocation of {serial} may not have reached Sectigo ({exc}); "
                    "the certificate is not shown as revoked yet: check with "
                    "certificates.find(serial_number=...) before trying again",
                    operation="revoke",
                ) from exc
            logger.info("revocation of %s confirmed after an ambiguous failure", serial)

    async def _is_revoked(self, serial: str) -> bool:
        try:
            items = await self.find(serial_number=serial)
        except Exception:  # the check itself failing leaves the outcome unknown
            return False
        return any(
            i.serial_number.upper() == serial and i.status.upper() == "REVOKED" for i in items
        )
