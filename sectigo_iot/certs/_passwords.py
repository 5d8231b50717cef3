"""Random PKCS#12 passwords."""

from __future__ import annotations

import secrets
import string

from ..errors import InvalidInputError

__all__ = ["PASSWORD_ALPHABET", "generate_password"]

PASSWORD_ALPHABET = string.ascii_letters + string.digits
_MIN_LENGTH = 16


def generate_password(length: int = 24) -> str:
    """Return a random password of ASCII letters and digits drawn with :mod:`secrets`.

    The default of 24 characters gives about 143 bits. ``length`` must be at least 16.
    """
    if isinstance(length, bool) or not isinstance(length, int):
        raise InvalidInputError(f"password length must be an int, not {type(length).__name__}")
    if length < _MIN_LENGTH:
        raise InvalidInputError(
            f"password length {length} is too short; use at least {_MIN_LENGTH} characters"
        )
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
