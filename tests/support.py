"""Helpers shared by the tests: fake JWTs, a movable clock, the default base URL."""

from __future__ import annotations

import base64
import json
import shutil
from typing import Any

import pytest

BASE = "https://iot.sectigo.com"
T0 = 1_700_000_000.0


def make_jwt(**claims: Any) -> str:
    """An HS512-shaped JWT with these claims (the client never checks signatures)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS512'})}.{part(claims)}.c2lnbmF0dXJl"


def token_pair(
    now: float, access_ttl: float = 600, refresh_ttl: float = 7200, **extra: Any
) -> dict[str, str]:
    """An ``AuthenticationReply`` body issued at ``now``."""
    sub = "/account/42/user/42"
    return {
        "accessToken": make_jwt(sub=sub, iat=int(now), exp=int(now + access_ttl), **extra),
        "refreshToken": make_jwt(sub=sub, iat=int(now), exp=int(now + refresh_ttl), jti=str(now)),
    }


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


#: tests that use openssl as the independent judge
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
