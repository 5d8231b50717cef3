"""A load-generator process for ``emulator_rps``: raw httpx clients hammering one GET.

Run by ``bench/run.py`` as ``python bench/_load.py URL USERNAME PASSWORD CLIENTS PATH``.
It logs in, starts ``CLIENTS`` concurrent workers, each with its own ``httpx.AsyncClient``
(one keep-alive connection), and prints ``ready``. It then reads one line ``START STOP``
(epoch seconds) from stdin, counts the responses completed in that window, and prints
one JSON line when the window is over::

    {"count": 1234, "errors": 0, "cpu_s": 1.9}

Several of these processes together keep a Python server busy where one would be
limited by its own CPU (httpx costs more per request than the emulator does).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time

import anyio
import anyio.to_thread
import httpx

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


async def generate(url: str, username: str, password: str, clients: int, path: str) -> None:
    headers = {"Content-Type": JSON_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE}
    window = [math.inf, math.inf]
    count = errors = 0
    async with contextlib.AsyncExitStack() as stack:
        # one AsyncClient (one connection) per client: a single pool with many
        # connections costs httpcore O(connections) per request, which would cap the load
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, headers=headers, timeout=120.0)
            )
            for _ in range(clients)
        ]
        login = await https[0].post("/auth/pwd", json={"username": username, "password": password})
        login.raise_for_status()
        bearer = f"Bearer {json.loads(login.content)['accessToken']}"
        for http in https:
            http.headers["Authorization"] = bearer

        async def worker(http: httpx.AsyncClient) -> None:
            nonlocal count, errors
            while time.time() < window[1]:
                response = await http.get(path)
                done = time.time()
                if response.status_code != 200:
                    errors += 1
                    continue
                json.loads(response.content)
                if window[0] <= done < window[1]:
                    count += 1

        async with anyio.create_task_group() as group:
            for http in https:
                group.start_soon(worker, http)
            print("ready", flush=True)
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line.strip():  # the parent went away: stop
                line = f"{math.inf} 0"
            start, stop = (float(part) for part in line.split())
            window[:] = [start, stop]
            await anyio.sleep(max(0.0, min(start, stop) - time.time()))
            cpu0 = time.process_time()
            await anyio.sleep(max(0.0, stop - time.time()))
            cpu1 = time.process_time()
    print(json.dumps({"count": count, "errors": errors, "cpu_s": round(cpu1 - cpu0, 3)}))


def main(argv: list[str]) -> int:
    url, username, password, clients, path = argv[:5]
    anyio.run(generate, url, username, password, int(clients), path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
