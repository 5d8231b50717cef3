"""The one cattrs converter: camelCase JSON <-> snake_case attrs models, and dates.

The real service is a Spring application and sends ``null`` for absent values. A field
sent as ``null`` reads as absent: it takes its default (the Go zero value), or ``None``
where the model types it optional; a required field sent as ``null`` is missing. Inside
a list or a map, a ``null`` is the element type's zero value (``""``, ``0``, ``False``,
the model built from its defaults). Values of the wrong type still raise.

A parsed date remembers the API's text, and unstructuring writes that text back
unchanged. A date in a format we do not know reads as ``None``; its text is kept on the
model (``_unparsed_dates``) so that unstructuring gives it back too.

Its public names are listed once, in ``sectigo_iot.models.__all__`` (which loads this
module on first use).
"""

from __future__ import annotations

import re
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from operator import attrgetter, itemgetter
from typing import Any, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .._logging import get_logger
from ._models import FindCertificateRequest

logger = get_logger("sectigo_iot.models")

_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
_FAST_ISO = sys.version_info >= (3, 11)
#: unknown date formats already logged (by shape, digits as 9); bounded, so no log flood
_LOGGED_SHAPES: set[str] = set()
_MAX_LOGGED_SHAPES = 32


class _ApiDate(datetime):
    """A date read from the API that remembers its text (``text``).

    Arithmetic and ``replace`` give dates without ``text``, which are formatted anew.
    """

    __slots__ = ("text",)
    text: str

    def __repr__(self) -> str:
        return repr(datetime.combine(self.date(), self.timetz()))


_AT_10 = itemgetter(10)
_TZINFO = attrgetter("tzinfo")
_SET_TEXT = vars(_ApiDate)["text"].__set__  # sets the slot of each date in a C-level map


def to_camel(name: str) -> str:
    """``profile_id`` -> ``profileId``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def parse_date(text: str) -> datetime | None:
    """Parse Sectigo's ``2020-12-10T16:35:32.805+0000``, RFC 3339 (nanoseconds, ``Z``).

    The result remembers ``text``; ``None`` for empty text; ValueError for other formats.
    """
    if not text:
        return None
    if _FAST_ISO and len(text) >= 20 and text[10] == "T":
        try:  # Python 3.11+ reads all three, much faster than the pattern
            parsed = _ApiDate.fromisoformat(text)
        except ValueError:
            parsed = _match_date(text)
    else:
        parsed = _match_date(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    parsed.text = text
    return parsed


def parse_dates(texts: Sequence[str]) -> list[datetime | None]:
    """``[parse_date(text) for text in texts]``, in a few C-level passes when every text
    is in a form Python 3.11+ reads itself with an offset (thousands of dates at once)."""
    parsed: list[datetime | None] = []
    if _FAST_ISO and texts and min(map(len, texts)) >= 20 and set(map(_AT_10, texts)) == {"T"}:
        try:
            parsed = list(map(_ApiDate.fromisoformat, texts))
        except ValueError:
            parsed = []
    if not parsed or None in set(map(_TZINFO, parsed)):
        return [parse_date(text) for text in texts]
    deque(map(_SET_TEXT, parsed, texts), maxlen=0)
    return parsed


def _match_date(text: str) -> _ApiDate:
    """``text`` read by the pattern (every Python); ValueError when it does not match."""
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
    return _ApiDate(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz)


def format_date(value: datetime) -> str:
    """Format a date the way real Sectigo does: ``2020-12-10T16:35:32.805+0000``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    offset = value.strftime("%z") or "+0000"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
        f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}{offset}"
    )


def _unstructure_date(value: datetime) -> str:
    """The API's own text for a date read from it; Sectigo's format otherwise."""
    return getattr(value, "text", None) or format_date(value)


def _log_unknown_date(value: str | float) -> None:
    shape = re.sub(r"\d", "9", str(value))[:40] if isinstance(value, str) else "number"
    if shape not in _LOGGED_SHAPES and len(_LOGGED_SHAPES) < _MAX_LOGGED_SHAPES:
        _LOGGED_SHAPES.add(shape)
        logger.debug("date in an unknown format, read as None: %.80r", value)


def _structure_date(value: Any, _: type) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_date(value)
        except ValueError:
            pass
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a date, got {type(value).__name__}")
    _log_unknown_date(value)
    return None


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # deviceId has been an integer and a string upstream
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if value is None:
        return 0
    if isinstance(value, str):
        return int(value)  # numeric text ("12") is accepted, as it always was
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expected an integer, got {type(value).__name__}")


def _structure_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    raise ValueError(f"expected a boolean, got {type(value).__name__}")


def _admits_none(tp: Any) -> bool:
    return tp is Any or type(None) in get_args(tp)


def _is_list(tp: Any) -> bool:
    origin: object = get_origin(tp)
    return origin is list


def _is_date(tp: Any) -> bool:
    return tp is datetime or datetime in get_args(tp)


def make_converter(*, strict: bool = False) -> cattrs.Converter:
    """Build a converter. ``strict`` rejects unknown response fields (used by tests)."""
    conv = cattrs.Converter()
    conv.register_structure_hook(datetime, _structure_date)
    conv.register_unstructure_hook(datetime, _unstructure_date)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_factory(_is_list, lambda tp: _list_hook(tp, conv))
    conv.register_structure_hook_factory(
        attrs.has, lambda cls: _structure_hook(cls, conv, strict=strict)
    )
    conv.register_unstructure_hook_factory(attrs.has, lambda cls: _unstructure_hook(cls, conv))
    return conv


def _list_hook(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """Structures a JSON array (only) into ``tp``."""
    structure_items = list_structure_factory(tp, conv)

    def structure(data: Any, _: Any) -> Any:
        if not isinstance(data, list):  # cattrs alone would split a string into letters
            raise ValueError(f"expected a JSON array, got {type(data).__name__}")
        return structure_items(data, tp)

    return structure


def _structure_hook(
    cls: type, conv: cattrs.Converter, *, strict: bool
) -> Callable[[Any, type], Any]:
    """Structures a JSON object into model ``cls``: camelCase keys, ``null`` as absent
    where the field admits no None, the text of dates it cannot read kept."""
    fields = [a for a in attrs.fields(attrs.resolve_types(cls)) if a.init]
    renames: dict[str, Any] = {a.name: override(rename=to_camel(a.name)) for a in fields}
    generated: Callable[[Any, type], Any] = make_dict_structure_fn(
        cls, conv, _cattrs_forbid_extra_keys=strict, **renames
    )
    null_is_absent = frozenset(to_camel(a.name) for a in fields if not _admits_none(a.type))
    dates = [(a.name, to_camel(a.name)) for a in fields if _is_date(a.type)]

    def structure(data: Any, _: type) -> Any:
        if data is None:
            data = {}
        elif not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object for {cls.__name__}")
        elif any(value is None for value in data.values()):
            data = {k: v for k, v in data.items() if v is not None or k not in null_is_absent}
        model = generated(data, cls)
        unparsed = {
            name: data[key]
            for name, key in dates
            if getattr(model, name) is None and data.get(key) is not None
        }
        if unparsed:
            object.__setattr__(model, "_unparsed_dates", unparsed)
        return model

    return structure


def _unstructure_hook(cls: type, conv: cattrs.Converter) -> Callable[[Any], Any]:
    """Unstructures model ``cls`` with camelCase keys, unread dates written back as given."""
    fields = attrs.fields(attrs.resolve_types(cls))
    omit_default = cls is FindCertificateRequest
    renames: dict[str, Any] = {
        a.name: override(rename=to_camel(a.name), omit_if_default=omit_default, omit=not a.init)
        for a in fields
    }
    generated: Callable[[Any], Any] = make_dict_unstructure_fn(cls, conv, **renames)
    if not any(_is_date(a.type) for a in fields):
        return generated

    def unstructure(model: Any) -> Any:
        data = generated(model)
        for name, text in (model._unparsed_dates or {}).items():
            if getattr(model, name) is None:
                data[to_camel(name)] = text
        return data

    return unstructure


#: the converter the client and the emulator use (unknown fields are ignored)
converter = make_converter()
#: a converter that rejects unknown fields, for tests that pin the wire format
strict_converter = make_converter(strict=True)
