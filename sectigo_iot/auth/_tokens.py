"""JWT claims read without verification, and the token pair the client holds."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from attrs import evolve, field, frozen

from ..errors import TokenError

__all__ = ["TokenPair", "decode_claims"]


def decode_claims(token: str) -> dict[str, Any]:
    """Decode a JWT's payload without verifying its signature.

    Raises TokenError for anything that is not a three-part JWT with a JSON object payload.
    """
    if not isinstance(token, str):
        raise TokenError("token is not a string")
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise TokenError("token is not a JWT (expected three dot-separated parts)")
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise TokenError("token payload is not base64url-encoded JSON") from exc
    if not isinstance(claims, dict):
        raise TokenError("token payload is not a JSON object")
    return claims


def _timestamp(claims: dict[str, Any], name: str, *, required: bool) -> float:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenError(f"token has no '{name}' claim; the client needs 'iat' and 'exp'")
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"token claim '{name}' is not a number")
    return float(value)


@frozen(kw_only=True)
class TokenPair:
    """An access and a refresh token with the timestamps the client needs.

    ``skew`` is the server's clock minus ours when the pair arrived, estimated from the
    access token's ``iat``; expiry is judged on the server's clock so a skewed local
    clock cannot cause a 401 loop.
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    subject: str = ""
    issued_at: float = 0.0
    expires_at: float = 0.0
    refresh_not_before: float = 0.0
    refresh_by: float = 0.0
    skew: float = 0.0

    @classmethod
    def parse(cls, access_token: str, refresh_token: str, *, now: float) -> TokenPair:
        """Read both tokens' claims (no verification). ``now`` is the local time of receipt."""
        try:
            access = decode_claims(access_token)
            issued_at = _timestamp(access, "iat", required=True)
            expires_at = _timestamp(access, "exp", required=True)
        except TokenError as exc:
            raise TokenError(f"could not parse access token: {exc}") from None
        try:
            refresh = decode_claims(refresh_token)
            refresh_iat = _timestamp(refresh, "iat", required=True)
            refresh_by = _timestamp(refresh, "exp", required=True)
            not_before = _timestamp(refresh, "nbf", required=False) or refresh_iat
        except TokenError as exc:
            raise TokenError(f"could not parse refresh token: {exc}") from None
        subject = access.get("sub")
        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            subject=subject if isinstance(subject, str) else "",
            issued_at=issued_at,
            expires_at=expires_at,
            refresh_not_before=not_before,
            refresh_by=refresh_by,
            skew=issued_at - now,
        )

    def server_now(self, now: float) -> float:
        """Our clock translated to the server's, using the skew seen at receipt."""
        return now + self.skew

    def refresh_margin(self) -> float:
        """Seconds before expiry at which the access token is renewed: min(60, ttl/4)."""
        return min(60.0, max(0.0, self.expires_at - self.issued_at) / 4)

    def access_fresh(self, now: float) -> bool:
        """The access token is usable and not inside its refresh window."""
        return self.server_now(now) < self.expires_at - self.refresh_margin()

    def access_valid(self, now: float) -> bool:
        """The access token has not expired (the window ignored)."""
        return self.server_now(now) < self.expires_at

    def refreshable(self, now: float) -> bool:
        """The refresh token may be used now: ``nbf <= now < exp`` on the server's clock."""
        server_now = self.server_now(now)
        return bool(self.refresh_token) and self.refresh_not_before <= server_now < self.refresh_by

    def expired_access(self) -> TokenPair:
        """The same pair with the access token marked expired (after a 401)."""
        return evolve(self, expires_at=0.0)

    def to_json(self, *, host: str, username: str) -> str:
        """Serialize for a token store; host and user are kept to detect foreign entries."""
        return json.dumps(
            {
                "v": 1,
                "host": host,
                "username": username,
                "access": self.access_token,
                "refresh": self.refresh_token,
                "skew": self.skew,
            }
        )

    @classmethod
    def from_json(cls, data: str, *, host: str, username: str, now: float) -> TokenPair:
        """Read a stored entry; TokenError when it is corrupt or belongs to someone else."""
        try:
            entry = json.loads(data)
        except ValueError as exc:
            raise TokenError("stored token entry is not JSON") from exc
        if not isinstance(entry, dict) or entry.get("v") != 1:
            raise TokenError("stored token entry has an unknown format")
        if entry.get("host") != host or entry.get("username") != username:
            raise TokenError("stored token entry belongs to another host or user")
        access, refresh = entry.get("access"), entry.get("refresh")
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise TokenError("stored token entry lacks its tokens")
        pair = cls.parse(access, refresh, now=now)
        skew = entry.get("skew")
        if isinstance(skew, (int, float)) and not isinstance(skew, bool):
            pair = evolve(pair, skew=float(skew))
        return pair
