"""HS512 JSON Web Tokens, signed and verified with the standard library only."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from typing import Any

from attrs import define, field

__all__ = ["ACCESS_SCOPE", "REFRESH_SCOPE", "TokenError", "TokenIssuer"]

#: scope of an access token (the only kind accepted as a bearer token)
ACCESS_SCOPE = "ROLE_USER"
#: scope of a refresh token (the only kind accepted by ``/auth/refresh``)
REFRESH_SCOPE = "ROLE_REFRESH_TOKEN"

_HEADER = {"alg": "HS512", "typ": "JWT"}
_SUBJECT_PREFIX = "/account/42/user/"


class TokenError(Exception):
    """A token is malformed, forged, expired or of the wrong kind."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("bad base64") from exc


def _json_segment(value: dict[str, Any]) -> str:
    return _b64encode(json.dumps(value, separators=(",", ":")).encode())


@define(eq=False)
class TokenIssuer:
    """Signs access/refresh token pairs and verifies them against one HMAC secret."""

    _secret: bytes = field(repr=False)
    _clock: Callable[[], float] = field(kw_only=True)
    issuer: str = field(kw_only=True)
    access_ttl: int = field(kw_only=True)
    refresh_ttl: int = field(kw_only=True)

    def __repr__(self) -> str:
        return f"<TokenIssuer iss={self.issuer!r}>"

    def _sign(self, claims: dict[str, Any]) -> str:
        signing_input = f"{_json_segment(_HEADER)}.{_json_segment(claims)}"
        signature = hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha512)
        return f"{signing_input}.{_b64encode(signature.digest())}"

    def issue_pair(self, username: str) -> tuple[str, str]:
        """A fresh ``(access_token, refresh_token)`` for ``username``."""
        now = int(self._clock())
        common = {"sub": _SUBJECT_PREFIX + username, "iss": self.issuer, "iat": now}
        access = self._sign(
            {
                **common,
                "scopes": [ACCESS_SCOPE],
                "first-login": False,
                "jti": str(uuid.uuid4()),
                "exp": now + self.access_ttl,
            }
        )
        refresh = self._sign(
            {
                **common,
                "scopes": [REFRESH_SCOPE],
                "jti": str(uuid.uuid4()),
                "exp": now + self.refresh_ttl,
            }
        )
        return access, refresh

    def verify(self, token: str, scope: str) -> str:
        """Check signature, issuer, expiry and scope; return the username."""
        parts = token.split(".")
        if not token.isascii() or len(parts) != 3:
            raise TokenError("not a JWT")
        header_b64, claims_b64, signature_b64 = parts
        try:
            header = json.loads(_b64decode(header_b64))
        except ValueError as exc:
            raise TokenError("bad header") from exc
        if not isinstance(header, dict) or header.get("alg") != "HS512":
            raise TokenError("unsupported algorithm")
        expected = hmac.new(
            self._secret, f"{header_b64}.{claims_b64}".encode("ascii"), hashlib.sha512
        ).digest()
        if not hmac.compare_digest(expected, _b64decode(signature_b64)):
            raise TokenError("bad signature")
        try:
            claims = json.loads(_b64decode(claims_b64))
        except ValueError as exc:
            raise TokenError("bad claims") from exc
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            raise TokenError("wrong issuer")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= self._clock():
            raise TokenError("expired")
        scopes = claims.get("scopes")
        if not isinstance(scopes, list) or scope not in scopes:
            raise TokenError("wrong token kind")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.startswith(_SUBJECT_PREFIX):
            raise TokenError("bad subject")
        return subject[len(_SUBJECT_PREFIX) :]
