"""Certificate serial numbers as Sectigo prints them."""

from __future__ import annotations

import re

from ..errors import InvalidInputError

__all__ = ["normalize_serial"]

_HEX = re.compile(r"[0-9A-F]{1,64}")


def normalize_serial(serial_number: str) -> str:
    """Upper-case hex without separators, as Sectigo prints serials (``4a:dd`` -> ``4ADD``)."""
    if not isinstance(serial_number, str):
        raise InvalidInputError(f"serial_number must be a string, got {serial_number!r}")
    cleaned = re.sub(r"[\s:]", "", serial_number).upper()
    if cleaned.startswith("0X"):
        cleaned = cleaned[2:]
    if not _HEX.fullmatch(cleaned):
        raise InvalidInputError(
            f"serial_number must be hexadecimal (e.g. 4ADDF011CD7E6AC2), got {serial_number!r}"
        )
    return cleaned
