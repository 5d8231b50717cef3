"""Helpers shared by the tests: fake JWTs, a movable clock, the default base URL, hostile
bodies (gzip bombs), an emulator whose replies are rewritten, and loading a script by
path. ``bench/_bomb_probe.py`` uses it too."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from sectigo_iot.emulator import Emulator

BASE = "https://iot.sectigo.com"
T0 = 1_700_000_000.0

#: the one authority a default emulator offers, as ``GET /api/v1/authorities/allowed`` sends it
EMULATOR_AUTHORITY = {
    "id": 1,
    "ecosystemId": 100,
    "signerCertificateId": 0,
    "ecosystemName": "TRISA",
    "balance": 10,
    "enabled": True,
    "profileId": 42,
    "profileName": "TRISA Profile",
}


def skip_outside_ci(reason: str) -> None:
    """Skip for ``reason`` on a machine that lacks what the test needs; in CI (``CI``
    set), where it is always there, fail instead, so the test can never vanish."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, which CI must provide")
    pytest.skip(reason)


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


def load_module(name: str, path: Path) -> ModuleType:
    """Import the script at ``path`` as module ``name`` (registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def gzip_bomb(prefix: bytes, total: int, filler: bytes) -> bytes:
    """``prefix`` padded with ``filler`` to ``total`` bytes, gzip-compressed in pieces."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [packer.compress(prefix)]
    block = filler * (1024 * 1024)
    for _ in range((total - len(prefix)) // len(block)):
        out.append(packer.compress(block))
    out.append(packer.flush())
    return b"".join(out)


class Wire(httpx.AsyncByteStream):
    """A body as it comes off the network: raw bytes, read (and decoded) only on demand."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 16384):
            yield self.body[start : start + 16384]


def rewrite_bodies(
    emulator: Emulator,
    applies: Callable[[dict[str, Any]], bool],
    rewrite: Callable[[bytes, bytes], bytes],
) -> None:
    """Make the emulator's replies to the HTTP requests ``applies`` accepts (it gets the
    ASGI scope) go through ``rewrite`` (body and content type in, new body out)."""
    inner = emulator.app

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not applies(scope):
            await inner(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await inner(scope, receive, capture)
        kind = dict(start["headers"]).get(b"content-type", b"")
        data = rewrite(b"".join(chunks), kind)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    emulator.app = app


def rewrite_replies(
    emulator: Emulator, method: str, path: str, change: Callable[[Any], None]
) -> None:
    """Make the emulator's JSON replies to ``method`` ``path`` (a regex) go through
    ``change`` (it edits the decoded object in place): a server that answers otherwise."""

    def applies(scope: dict[str, Any]) -> bool:
        return scope["method"] == method and re.fullmatch(path, scope["path"]) is not None

    def rewrite(body: bytes, kind: bytes) -> bytes:
        decoded = json.loads(body)
        change(decoded)
        return json.dumps(decoded).encode()

    rewrite_bodies(emulator, applies, rewrite)
