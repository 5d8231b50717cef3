"""Helpers the lifecycle tests share: reading what a managed folder's links point at,
a server that answers differently, another process holding a folder's lock."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sectigo_iot.certs import CertificateBundle, load_pem_bundle
from sectigo_iot.emulator import Emulator


def key_matches(bundle: CertificateBundle) -> bool:
    """Whether the bundle's private key is the certificate's."""
    assert bundle.private_key is not None
    der = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key = bundle.private_key.public_key().public_bytes(*der)
    return key == bundle.certificate.public_key().public_bytes(*der)


def live_pair(folder: Path, via: str = "live/") -> tuple[str, bool]:
    """The serial at the stable paths, and whether the key there matches it."""
    bundle = load_pem_bundle(
        (folder / f"{via}cert.pem").read_bytes() + (folder / f"{via}key.pem").read_bytes()
    )
    return bundle.serial_number, key_matches(bundle)


def rewrite_replies(
    emulator: Emulator, method: str, path: str, change: Callable[[Any], None]
) -> None:
    """Make the emulator's JSON replies to ``method`` ``path`` (a regex) go through
    ``change`` (it edits the decoded object in place): a server that answers otherwise."""
    inner = emulator.app

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == method
            and re.fullmatch(path, scope["path"])
        ):
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
        body = json.loads(b"".join(chunks))
        change(body)
        data = json.dumps(body).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    emulator.app = app


HOLDER = """
import sys, anyio
from pathlib import Path
from sectigo_iot.lifecycle._folder import folder_lock

async def main(folder):
    async with folder_lock(Path(folder), lambda: None, wait=5):
        print("locked", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)  # held until stdin closes

anyio.run(main, sys.argv[1])
"""


@contextlib.contextmanager
def held_lock(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``folder``'s lock during the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
