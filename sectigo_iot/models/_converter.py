"""The one cattrs converter: camelCase JSON <-> snake_case attrs models, and dates."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._models import FindCertificateRequest

__all__ = ["converter", "format_date", "make_converter", "parse_date", "strict_converter"]

_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


_FAST_ISO = sys.version_info >= (3, 11)


def to_camel(name: str) -> str:
    """``profile_id`` -> ``profileId``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_date(text: str) -> datetime | None:
    """Parse Sectigo's ``2020-12-10T16:35:32.805+0000``, RFC 3339 (nanoseconds, ``Z``)."""
    if not text:
        return None
    if _FAST_ISO and len(text) >= 20 and text[10] == "T":
        try:  # Python 3.11+ reads all three formats itself, much faster than the regex
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    match = _DATE.match(text.strip())
    if match is None:
        raise ValueError(f"not a date: {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
    )


def format_date(value: datetime) -> str:
    """Format a date the way real Sectigo does: ``2020-12-10T16:35:32.805+0000``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    offset = value.strftime("%z") or "+0000"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}{offset}"
    )


def _structure_date(value: Any, _: type) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    return parse_date(value)


def make_converter(*, strict: bool = False) -> cattrs.Converter:
    """Build a converter. ``strict`` rejects unknown response fields (used by tests)."""
    conv = cattrs.Converter()
    conv.register_structure_hook(datetime, _structure_date)
    conv.register_unstructure_hook(datetime, format_date)

    def structure_factory(cls: type) -> Any:
        renames: dict[str, Any] = {
            a.name: override(rename=to_camel(a.name)) for a in attrs.fields(cls)
        }
        return make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=strict, **renames)

    def unstructure_factory(cls: type) -> Any:
        omit = cls is FindCertificateRequest
        renames: dict[str, Any] = {
            a.name: override(rename=to_camel(a.name), omit_if_default=omit)
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **renames)

    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return conv


#: the converter the client and the emulator use (unknown fields are ignored)
converter = make_converter()
#: a converter that rejects unknown fields, for tests that pin the wire format
strict_converter = make_converter(strict=True)
