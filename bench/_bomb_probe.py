"""Peak memory of the SDK while it reads decompression bombs, in a fresh process.

Run by ``bench/run.py`` as ``python bench/_bomb_probe.py``. A transport in this process
plays a hostile server: it answers a login, then a batch detail that is a gzip body
inflating to ``JSON_BOMB_BYTES`` of JSON, then a download that is a gzip body inflating
to ``ZIP_BOMB_BYTES``. Both bodies are compressed before the high-water mark is reset,
so only the client's work is measured. Prints one JSON line::

    {"peak_growth_mb": ..., "json_refused": true, "download_refused": true, ...}
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from _download_probe import memory_kb, reset_high_water_mark

# the gzip bombs, fake JWTs and network-like bodies of the tests (tests/support.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import Wire, gzip_bomb, make_jwt

from sectigo_iot import InvalidResponseError, SectigoClient

JSON_BOMB_BYTES = 200 * 1024 * 1024  # the review's JSON bomb: 0.2 MB on the wire
ZIP_BOMB_BYTES = 315 * 1024 * 1024  # the review's download bomb: 0.3 MB on the wire
READY = {"batchId": 5, "batchName": "bomb", "status": "READY_FOR_DOWNLOAD"}


class BombServer(httpx.AsyncBaseTransport):
    """Answers the login honestly and everything else with a gzip bomb."""

    def __init__(self) -> None:
        self.detail_bomb = gzip_bomb(json.dumps(READY).encode(), JSON_BOMB_BYTES, b" ")
        self.zip_bomb = gzip_bomb(b"PK\x03\x04", ZIP_BOMB_BYTES, b"\0")
        self.json_bomb_detail = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/pwd":
            now = int(time.time())
            token = make_jwt(sub="/account/1/user/1", iat=now, exp=now + 3600)
            return httpx.Response(200, json={"accessToken": token, "refreshToken": token})
        if request.url.path.endswith("/download"):
            body = self.zip_bomb
        elif self.json_bomb_detail:
            body = self.detail_bomb
        else:
            body = json.dumps(READY).encode()
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return httpx.Response(200, headers=headers, stream=Wire(body))


async def probe(server: BombServer, dest: Path) -> dict[str, object]:
    result: dict[str, object] = {"wire_bytes": len(server.detail_bomb) + len(server.zip_bomb)}
    async with SectigoClient(
        "bench",
        "bench-password",
        base_url="https://bomb.invalid",
        token_store="memory",
        transport=server,
        max_retries=0,
    ) as client:
        await client.authenticate()
        before, _ = memory_kb()
        reset_high_water_mark()
        try:
            await client.batches.get(5)
        except InvalidResponseError:
            result["json_refused"] = True
        server.json_bomb_detail = False
        try:
            await client.batches.download(5, dest)
        except InvalidResponseError:
            result["download_refused"] = True
    _, hwm = memory_kb()
    result["peak_growth_mb"] = round(max(0, hwm - before) / 1024, 2)
    return result


def main() -> int:
    server = BombServer()  # compressed before measuring: the server's work is not ours
    with tempfile.TemporaryDirectory() as folder:
        result = anyio.run(probe, server, Path(folder))
        result["files_left"] = len(list(Path(folder).iterdir()))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
