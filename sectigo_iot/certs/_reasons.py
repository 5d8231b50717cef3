"""RFC 5280 certificate revocation reasons."""

from __future__ import annotations

import enum
import re

from ..errors import InvalidInputError

__all__ = ["RevocationReason"]


class RevocationReason(enum.IntEnum):
    """An RFC 5280 CRLReason code, as sent in Sectigo's ``reasonCode``.

    Code 7 is not used by RFC 5280 and has no member.
    """

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    CA_COMPROMISE = 2
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION_OF_OPERATION = 5
    CERTIFICATE_HOLD = 6
    REMOVE_FROM_CRL = 8
    PRIVILEGE_WITHDRAWN = 9
    AA_COMPROMISE = 10

    @property
    def display(self) -> str:
        """The display name, e.g. ``"cessation of operation"``."""
        return self.name.lower().replace("_", " ")

    @classmethod
    def parse(cls, value: str | int | RevocationReason) -> RevocationReason:
        """Turn a reason name or code into a :class:`RevocationReason`.

        Names are matched ignoring case, whitespace, underscores and hyphens
        (``"Cessation Of Operation"``, ``"cessationOfOperation"`` and
        ``"CESSATION_OF_OPERATION"`` all give code 5); an empty string gives
        ``UNSPECIFIED``. An int or a string of digits is taken as the code.

        Raises:
            InvalidInputError: unknown name, code 7, a code outside 0-10, or a bool.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InvalidInputError(
                f"a revocation reason must be a name or an int code, not "
                f"{type(value).__name__}; use one of: {_valid_names()}"
            )
        if isinstance(value, int):
            return cls._from_code(value)
        compact = "".join(value.split())
        if not compact:
            return cls.UNSPECIFIED
        if _CODE.fullmatch(compact):
            # Bound the length before int(): huge digit strings are slow or refused.
            code = int(compact) if len(compact) <= 4 else -1
            return cls._from_code(code, text=value.strip())
        member = _BY_KEY.get(compact.replace("_", "").replace("-", "").lower())
        if member is None:
            raise InvalidInputError(
                f'unknown revocation reason "{_cut(value.strip())}"; use one of: {_valid_names()}'
            )
        return member

    @classmethod
    def _from_code(cls, code: int, *, text: str = "") -> RevocationReason:
        try:
            return cls(code)
        except ValueError:
            shown = f'"{_cut(text)}"' if text else str(code)
            why = "is not used by RFC 5280" if code == 7 else "is not a valid RFC 5280 code"
            raise InvalidInputError(
                f"revocation reason code {shown} {why}; use 0-6 or 8-10 ({_valid_names()})"
            ) from None


_CODE = re.compile(r"[+-]?[0-9]+")
_BY_KEY = {reason.name.replace("_", "").lower(): reason for reason in RevocationReason}


def _valid_names() -> str:
    return ", ".join(reason.display for reason in RevocationReason)


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
