"""Benchmark of the sectigo-iot SDK against raw httpx doing the same HTTP work.

    python bench/run.py            # full run (a few minutes)
    python bench/run.py --quick    # under a minute
    python bench/run.py --json     # one JSON object on stdout (progress on stderr)

The emulator runs under uvicorn on loopback in a separate process (``bench/_server.py``),
so its CPU does not share this process's GIL. Every ratio is SDK time / raw httpx time
for the same requests in the same run, measured in interleaved rounds; the median
round is reported. A ratio of 1.05 means the SDK took 5 % longer end to end.

The exit status is 0 when every measurement ran, whether or not it met its target; it
is 1 when a measurement itself failed. Importable: ``run(scale=TINY)`` runs one tiny
round of everything (the test suite does that).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx

import sectigo_iot
from sectigo_iot import SectigoClient

__all__ = [
    "FULL",
    "KEYS",
    "QUICK",
    "TARGETS",
    "TINY",
    "Report",
    "Scale",
    "ServerInfo",
    "bench_server",
    "main",
    "measure_bomb_rss",
    "measure_call_overhead",
    "measure_concurrent",
    "measure_download",
    "measure_download_rss",
    "measure_emulator_rps",
    "measure_hostile_inputs",
    "measure_issue",
    "measure_startup",
    "run",
]

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
OCTET_STREAM = "application/octet-stream"
USER_AGENT = f"sectigo-iot/{sectigo_iot.__version__}"
CLIENT_TIMEOUT = 120.0  # both sides: generous, a slow CI box must not time out
MEASUREMENT_TIMEOUT = 600.0
SERVER_START_TIMEOUT = 60.0
PKCS12_PASSWORD = "bench-pkcs12-password"
AUTHORITY_ID = 1

T = TypeVar("T")

#: every metric, in report order
KEYS = (
    "call_overhead_ratio",
    "concurrent_ratio",
    "concurrent_refreshes",
    "download_ratio",
    "download_peak_rss_mb",
    "bomb_peak_rss_mb",
    "hostile_input_worst_s",
    "import_ratio",
    "cli_start_s",
    "cli_start_ratio",
    "emulator_rps",
    "issue_100_s",
)

#: metric -> (comparison, bound); metrics without a target are reported for information
TARGETS: dict[str, tuple[str, float]] = {
    "call_overhead_ratio": ("<=", 1.10),
    "concurrent_ratio": ("<=", 1.15),
    "concurrent_refreshes": ("==", 1),
    "download_ratio": ("<=", 1.10),
    "download_peak_rss_mb": ("<", 32),
    "bomb_peak_rss_mb": ("<", 32),
    "hostile_input_worst_s": ("<", 1.0),
    "import_ratio": ("<=", 1.30),
    "cli_start_ratio": ("<=", 1.8),
}

_UNITS = {
    "cli_start_s": " s",
    "issue_100_s": " s",
    "download_peak_rss_mb": " MB",
    "bomb_peak_rss_mb": " MB",
    "hostile_input_worst_s": " s",
    "emulator_rps": " req/s",
}


@dataclass(frozen=True)
class Scale:
    """How much work each measurement does."""

    rounds: int  # interleaved SDK/raw rounds of sequential calls (median round reported)
    calls: int  # sequential calls per side per round
    concurrent: int  # concurrent calls in one burst
    burst_rounds: int  # interleaved SDK/raw burst pairs (median pair reported)
    download_mb: int  # size of the served archive, MiB
    download_rounds: int  # interleaved SDK/raw download pairs (median pair reported)
    import_runs: int  # fresh-process runs of each start-up command
    rps_clients: int  # concurrent raw clients for emulator_rps, in total
    rps_processes: int  # load-generator processes sharing those clients
    rps_seconds: float  # measuring window for emulator_rps
    certificates: int  # certificates issued for issue_100_s (scaled to 100)
    issue_concurrency: int = 8  # batches created and awaited at once
    details: bool = True  # extra context for the notes (startup breakdown, raw download RSS)


FULL = Scale(
    rounds=7,
    calls=300,
    concurrent=500,
    burst_rounds=9,
    download_mb=64,
    download_rounds=15,
    import_runs=20,
    rps_clients=50,
    rps_processes=2,
    rps_seconds=5.0,
    certificates=100,
)
QUICK = Scale(
    rounds=3,
    calls=100,
    concurrent=500,
    burst_rounds=5,
    download_mb=50,
    download_rounds=7,
    import_runs=5,
    rps_clients=50,
    rps_processes=2,
    rps_seconds=1.5,
    certificates=100,
)
#: one tiny round of everything, for the test suite
TINY = Scale(
    rounds=1,
    calls=5,
    concurrent=20,
    burst_rounds=1,
    download_mb=1,
    download_rounds=1,
    import_runs=2,
    rps_clients=4,
    rps_processes=1,
    rps_seconds=0.3,
    certificates=3,
    issue_concurrency=3,
    details=False,
)


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- the server process ----------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """What ``bench/_server.py`` reports once it is listening."""

    url: str
    batch_id: int
    archive_bytes: int
    username: str
    password: str
    access_ttl: int
    refresh_ttl: int
    key_type: str
    pid: int


@contextmanager
def bench_server(archive_bytes: int, *, key_type: str | None = None) -> Iterator[ServerInfo]:
    """Run ``bench/_server.py`` in a child process for the duration of the block."""
    command = [
        sys.executable,
        str(HERE / "_server.py"),
        "--archive-bytes",
        str(archive_bytes),
        "--watch-stdin",
    ]
    if key_type:
        command += ["--key-type", key_type]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdin is not None
        try:
            line = _read_line(process, SERVER_START_TIMEOUT)
            if not line:
                errors.seek(0)
                detail = errors.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"the benchmark server did not start:\n{detail}")
            yield ServerInfo(**json.loads(line))
        finally:
            process.stdin.close()
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The next stdout line of ``process`` ('' when it exits or the time runs out)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return ""


# -- clients ---------------------------------------------------------------------------


class MovableClock:
    """Wall-clock time plus an offset the benchmark moves (injected into the SDK)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def sdk_client(info: ServerInfo, clock: Callable[[], float] = time.time) -> SectigoClient:
    """An SDK client of the bench server (memory token store, default pool limits)."""
    return SectigoClient(
        info.username,
        info.password,
        base_url=info.url,
        token_store="memory",
        timeout=CLIENT_TIMEOUT,
        clock=clock,
    )


@asynccontextmanager
async def raw_client(
    info: ServerInfo, limits: httpx.Limits | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client, logged in, sending the SDK's default headers on every GET."""
    async with httpx.AsyncClient(
        base_url=info.url,
        timeout=CLIENT_TIMEOUT,
        limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={
            "User-Agent": USER_AGENT,
            "Content-Type": JSON_CONTENT_TYPE,
            "Accept": JSON_CONTENT_TYPE,
        },
        follow_redirects=False,
    ) as http:
        reply = await http.post(
            "/auth/pwd", json={"username": info.username, "password": info.password}
        )
        reply.raise_for_status()
        http.headers["Authorization"] = f"Bearer {json.loads(reply.content)['accessToken']}"
        yield http


async def raw_get_json(http: httpx.AsyncClient, path: str) -> Any:
    """What a user does with raw httpx: GET, check the status, decode the JSON."""
    response = await http.get(path)
    response.raise_for_status()
    return json.loads(response.content)


def _ratio(sdk: float, raw: float) -> float:
    return sdk / raw if raw > 0 else math.inf


# -- call overhead ---------------------------------------------------------------------


async def measure_call_overhead(info: ServerInfo, scale: Scale) -> float:
    """Sequential ``authorities.list()`` / ``batches.get()`` vs raw GETs + json.loads.

    Calls are interleaved one by one (SDK, raw, raw, SDK, ...) so that drift in machine
    load hits both sides alike; each round's ratio is SDK total / raw total.
    """
    batch_path = f"/api/v1/batches/{info.batch_id}"
    authorities_path = "/api/v1/authorities/allowed"
    async with sdk_client(info) as client, raw_client(info) as http:
        await client.authenticate()

        async def sdk_call(i: int) -> None:
            if i % 2:
                await client.batches.get(info.batch_id)
            else:
                await client.authorities.list()

        async def raw_call(i: int) -> None:
            await raw_get_json(http, batch_path if i % 2 else authorities_path)

        for i in range(min(20, scale.calls)):  # warm up both connections and code paths
            await sdk_call(i)
            await raw_call(i)
        ratios = []
        clock = time.perf_counter
        for _ in range(scale.rounds):
            sdk_time = raw_time = 0.0
            for i in range(scale.calls):
                first, second = (sdk_call, raw_call) if i % 4 in (0, 3) else (raw_call, sdk_call)
                start = clock()
                await first(i)
                middle = clock()
                await second(i)
                end = clock()
                if first is sdk_call:
                    sdk_time += middle - start
                    raw_time += end - middle
                else:
                    raw_time += middle - start
                    sdk_time += end - middle
            ratios.append(_ratio(sdk_time, raw_time))
    return statistics.median(ratios)


# -- concurrent calls with a token refresh ---------------------------------------------


async def _burst(call: Callable[[], Awaitable[Any]], count: int) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(call() for _ in range(count)))
    return time.perf_counter() - start


async def measure_concurrent(info: ServerInfo, scale: Scale) -> tuple[float, int]:
    """``concurrent`` simultaneous ``batches.get()`` starting with an expired access token,
    vs the same number of raw GETs with a valid token. Returns (median ratio, refreshes
    per burst; the worst burst when they differ)."""
    clock = MovableClock()
    path = f"/api/v1/batches/{info.batch_id}"
    async with sdk_client(info, clock) as client, raw_client(info) as http:
        tokens = client._session.tokens
        await client.authenticate()

        def expire_access_token() -> None:
            # past the access token's expiry, well before the refresh token's
            clock.offset += info.access_ttl + 1

        async def sdk_call() -> None:
            await client.batches.get(info.batch_id)

        async def raw_call() -> None:
            await raw_get_json(http, path)

        async def sdk_burst(count: int = scale.concurrent) -> tuple[float, int]:
            expire_access_token()
            refreshes, logins = tokens.refresh_count, tokens.login_count
            elapsed = await _burst(sdk_call, count)
            if tokens.login_count != logins:
                raise RuntimeError("the SDK logged in again instead of refreshing")
            return elapsed, tokens.refresh_count - refreshes

        warm_up = min(scale.concurrent, 100)  # connections, the refresh path
        await sdk_burst(warm_up)
        await _burst(raw_call, warm_up)
        ratios, counts = [], []
        for round_ in range(scale.burst_rounds):
            if round_ % 2 == 0:
                sdk_time, refreshes = await sdk_burst()
                raw_time = await _burst(raw_call, scale.concurrent)
            else:
                raw_time = await _burst(raw_call, scale.concurrent)
                sdk_time, refreshes = await sdk_burst()
            ratios.append(_ratio(sdk_time, raw_time))
            counts.append(refreshes)
    worst = max(counts, key=lambda count: (abs(count - 1), count))
    return statistics.median(ratios), worst


# -- download --------------------------------------------------------------------------


async def measure_download(info: ServerInfo, scale: Scale, workdir: Path) -> float:
    """``batches.download()`` of the large archive vs raw httpx streaming it to a file."""
    path = f"/api/v1/batches/{info.batch_id}/download"
    download_headers = {"Content-Type": OCTET_STREAM, "Accept": OCTET_STREAM}
    sdk_dir, raw_file = workdir / "sdk", workdir / "raw.zip"
    sdk_dir.mkdir(exist_ok=True)
    async with sdk_client(info) as client, raw_client(info) as http:
        await client.authenticate()

        async def sdk_download() -> float:
            start = time.perf_counter()
            target = await client.batches.download(info.batch_id, sdk_dir)
            elapsed = time.perf_counter() - start
            _check_size(target, info.archive_bytes)
            target.unlink()
            return elapsed

        async def raw_download() -> float:
            start = time.perf_counter()
            async with http.stream("GET", path, headers=download_headers) as response:
                response.raise_for_status()
                with open(raw_file, "wb") as handle:  # noqa: ASYNC230 - as the SDK does
                    async for chunk in response.aiter_bytes():
                        handle.write(chunk)
            elapsed = time.perf_counter() - start
            _check_size(raw_file, info.archive_bytes)
            raw_file.unlink()
            return elapsed

        await sdk_download()  # warm up (page cache, connections)
        await raw_download()
        ratios = []
        for round_ in range(scale.download_rounds):
            if round_ % 2 == 0:
                sdk_time, raw_time = await sdk_download(), await raw_download()
            else:
                raw_time = await raw_download()
                sdk_time = await sdk_download()
            ratios.append(_ratio(sdk_time, raw_time))
    return statistics.median(ratios)


def _check_size(path: Path, expected: int) -> None:
    size = path.stat().st_size
    if size != expected:
        raise RuntimeError(f"downloaded {size} bytes to {path}, expected {expected}")


def measure_download_rss(info: ServerInfo, workdir: Path, *, raw: bool = False) -> float:
    """Peak RSS growth (MB) of a fresh process during one SDK download of the archive."""
    command = [
        sys.executable,
        str(HERE / "_download_probe.py"),
        info.url,
        info.username,
        info.password,
        str(info.batch_id),
        str(workdir),
    ]
    if raw:
        command.append("--raw")
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=MEASUREMENT_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the download probe failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["bytes"] != info.archive_bytes:
        raise RuntimeError(f"the probe downloaded {result['bytes']} bytes")
    return float(result["peak_growth_mb"])


def measure_bomb_rss() -> float:
    """Peak RSS growth (MB) of a fresh process while the SDK reads (and refuses) a gzip
    JSON reply inflating to 200 MiB and a gzip download inflating to 315 MiB."""
    command = [sys.executable, str(HERE / "_bomb_probe.py")]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=MEASUREMENT_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the bomb probe failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not (result.get("json_refused") and result.get("download_refused")):
        raise RuntimeError(f"a decompression bomb was not refused: {result}")
    if result["files_left"]:
        raise RuntimeError("the refused download left a file behind")
    return float(result["peak_growth_mb"])


# -- start-up time ---------------------------------------------------------------------


def cli_command() -> list[str] | None:
    """``sectigo --help`` from this interpreter's environment, if the CLI exists."""
    bindir = Path(sys.executable).parent
    for name in ("sectigo", "sectigo.exe"):
        script = bindir / name
        if script.is_file():
            return [str(script), "--help"]
    try:
        found = importlib.util.find_spec("sectigo_iot.cli") is not None
    except (ImportError, ValueError):
        found = False
    return [sys.executable, "-m", "sectigo_iot.cli", "--help"] if found else None


def _time_command(command: list[str], cwd: str, env: dict[str, str]) -> float | None:
    start = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - start
    return elapsed if done.returncode == 0 else None


#: environment variables that would distort start-up times
_STARTUP_ENV_DROPPED = frozenset(
    {
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPYCACHEPREFIX",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONDEVMODE",
        "PYTHONTRACEMALLOC",
        "PYTHONASYNCIODEBUG",
    }
)


#: httpx imports its optional command-line tool (click, rich, pygments) when those are
#: installed; sectigo_iot skips that module, so this is the httpx that the SDK loads
_HTTPX_CORE = "import sys; sys.modules['httpx._main'] = None; import httpx"


def measure_hostile_inputs(notes: dict[str, str]) -> float:
    """Seconds the toolkit takes on the worst input of tests/hostile_inputs.py (PKCS#12
    iteration bombs, unterminated PEM, thousands of same-name certificates, zip bombs...),
    timed in a fresh process by ``bench/_hostile.py``."""
    command = [sys.executable, str(HERE / "_hostile.py")]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=MEASUREMENT_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the hostile-input run failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    notes["hostile_input_worst_s"] = f"{len(result['cases'])} inputs; slowest: {result['slowest']}"
    return float(result["worst_s"])


def measure_startup(scale: Scale, notes: dict[str, str] | None = None) -> dict[str, float | None]:
    """Fresh-process wall time of ``import sectigo_iot``, ``import httpx`` and
    ``sectigo --help`` (median of alternating runs); None for a CLI that is missing or
    fails.

    Every command runs with bytecode caches, as an installed package has them: the caches
    go to a private ``PYTHONPYCACHEPREFIX`` (filled by a warm-up run of each command), so
    neither ``PYTHONDONTWRITEBYTECODE`` nor an editable install without ``__pycache__``
    turns the measurement into one of the compiler, and nothing is written to the tree.
    """
    commands: dict[str, list[str] | None] = {
        "httpx": [sys.executable, "-c", "import httpx"],
        "sdk": [sys.executable, "-c", "import sectigo_iot"],
        "cli": cli_command(),
    }
    if scale.details:
        commands["httpx_core"] = [sys.executable, "-c", _HTTPX_CORE]
        commands["python"] = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory(prefix="sectigo-bench-") as cwd:
        env = {k: v for k, v in os.environ.items() if k not in _STARTUP_ENV_DROPPED}
        env["PYTHONPYCACHEPREFIX"] = str(Path(cwd) / "pycache")
        for name, command in list(commands.items()):  # warm up: bytecode caches
            if command is not None and _time_command(command, cwd, env) is None:
                if name != "cli":
                    raise RuntimeError(f"{' '.join(command)} failed")
                _log(f"the CLI failed to start ({' '.join(command)}); reporting null")
                commands[name] = None
        names = [name for name, command in commands.items() if command is not None]
        for run_ in range(scale.import_runs):
            shift = run_ % len(names)
            for name in names[shift:] + names[:shift]:
                command = commands[name]
                assert command is not None
                elapsed = _time_command(command, cwd, env)
                if elapsed is None:
                    raise RuntimeError(f"{' '.join(command)} failed")
                times[name].append(elapsed)
    median = {name: statistics.median(values) for name, values in times.items() if values}
    cli_s = median.get("cli")
    if notes is not None and scale.details:
        ms = {name: round(1000 * value) for name, value in median.items()}
        notes["import_ratio"] = (
            f"python -c pass {ms['python']} ms; import httpx {ms['httpx']} ms "
            f"({ms['httpx_core']} ms without its optional CLI module, which sectigo_iot "
            f"skips); import sectigo_iot {ms['sdk']} ms"
        )
    return {
        "import_ratio": _ratio(median["sdk"], median["httpx"]),
        "cli_start_s": cli_s,
        "cli_start_ratio": _ratio(cli_s, median["httpx"]) if cli_s is not None else None,
    }


# -- the emulator itself ---------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def measure_emulator_rps(
    info: ServerInfo, scale: Scale, notes: dict[str, str] | None = None
) -> float:
    """Requests per second the served emulator answers for ``GET /authorities/allowed``
    with ``rps_clients`` concurrent raw httpx clients (one keep-alive connection each).

    The clients are spread over ``rps_processes`` load-generator processes
    (``bench/_load.py``): one Python process running httpx spends more CPU per request
    than the emulator does, and would measure itself rather than the server.
    """
    path = "/api/v1/authorities/allowed"
    processes = max(1, min(scale.rps_processes, scale.rps_clients))
    shares = [scale.rps_clients // processes] * processes
    for index in range(scale.rps_clients % processes):
        shares[index] += 1
    generators = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_load.py"),
                info.url,
                info.username,
                info.password,
                str(share),
                path,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]
    try:
        for generator in generators:
            if _read_line(generator, SERVER_START_TIMEOUT) != "ready":
                raise RuntimeError("a load generator did not start")
        start = time.time() + min(0.5, scale.rps_seconds)  # warm-up: every connection open
        stop = start + scale.rps_seconds
        for generator in generators:
            assert generator.stdin is not None
            generator.stdin.write(f"{start} {stop}\n")
            generator.stdin.flush()
        time.sleep(max(0.0, start - time.time()))
        server0 = _cpu_seconds(info.pid)
        time.sleep(max(0.0, stop - time.time()))
        server1 = _cpu_seconds(info.pid)
        results = []
        for generator in generators:
            out, _ = generator.communicate(timeout=MEASUREMENT_TIMEOUT)
            if generator.returncode != 0:
                raise RuntimeError("a load generator failed")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for generator in generators:
            if generator.poll() is None:
                generator.kill()
                generator.wait()
            for stream in (generator.stdin, generator.stdout):
                if stream is not None and not stream.closed:
                    stream.close()
    if any(result["errors"] for result in results):
        raise RuntimeError(f"the emulator answered errors: {results}")
    if notes is not None:
        load_cpu = sum(result["cpu_s"] for result in results) / scale.rps_seconds
        server_cpu = (
            f"server CPU {100 * (server1 - server0) / scale.rps_seconds:.0f} %, "
            if server0 is not None and server1 is not None
            else ""
        )
        notes["emulator_rps"] = (
            f"{server_cpu}load generators CPU {100 * load_cpu:.0f} % "
            f"({processes} process(es), {scale.rps_clients} clients)"
        )
    return float(sum(int(result["count"]) for result in results)) / scale.rps_seconds


async def measure_issue(info: ServerInfo, scale: Scale) -> float:
    """Seconds to issue 100 certificates: single-certificate batches created through the
    SDK and awaited until ready (``issue_concurrency`` at a time, the emulator's key
    type). With fewer than 100 certificates the time is scaled to 100."""
    async with sdk_client(info) as client:
        await client.authenticate()
        limiter = anyio.Semaphore(scale.issue_concurrency)

        async def issue(index: int) -> None:
            async with limiter:
                batch = await client.batches.create(
                    AUTHORITY_ID,
                    common_name=f"bench-{index}.example.com",
                    pkcs12_password=PKCS12_PASSWORD,
                )
                await client.batches.wait(batch.batch_id, timeout=CLIENT_TIMEOUT)

        start = time.perf_counter()
        await asyncio.gather(*(issue(index) for index in range(scale.certificates)))
        elapsed = time.perf_counter() - start
    return elapsed * 100 / scale.certificates


# -- the whole run ---------------------------------------------------------------------


@dataclass
class Report:
    """The values measured, the errors of measurements that failed, notes for people."""

    quick: bool
    scale: Scale
    values: dict[str, float | int | None] = field(default_factory=lambda: dict.fromkeys(KEYS))
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def passed(self, key: str) -> bool | None:
        """Whether the value meets its target (None: no target, or no value)."""
        value = self.values.get(key)
        if key not in TARGETS or value is None:
            return None
        op, bound = TARGETS[key]
        return {"<=": value <= bound, "<": value < bound, "==": value == bound}[op]

    def as_json(self) -> dict[str, Any]:
        """The metrics, plus ``targets`` and ``quick``."""
        data: dict[str, Any] = {key: _rounded(self.values[key]) for key in KEYS}
        data["targets"] = {key: {"op": op, "value": bound} for key, (op, bound) in TARGETS.items()}
        data["quick"] = self.quick
        return data

    def table(self) -> str:
        """metric | value | target | result, one line per metric."""
        rows = [("metric", "value", "target", "result")]
        for key in KEYS:
            value = self.values[key]
            shown = "error" if key in self.errors else "n/a" if value is None else _fmt(value)
            shown += _UNITS.get(key, "") if value is not None else ""
            target = " ".join(map(str, TARGETS[key])) if key in TARGETS else "-"
            verdict = self.passed(key)
            if key not in TARGETS:
                result = "info"
            else:
                result = "n/a" if verdict is None else "pass" if verdict else "FAIL"
            rows.append((key, shown, target, result))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * width for width in widths))
        for key, note in self.notes.items():
            lines.append(f"note: {key}: {note}")
        for key, error in self.errors.items():
            lines.append(f"error: {key}: {error}")
        return "\n".join(lines)


def _rounded(value: float | int | None) -> float | int | None:
    if isinstance(value, float):
        return round(value, 4)
    return value


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.0f}" if value >= 100 else f"{value:.3f}"


def _measure(
    report: Report, keys: tuple[str, ...], action: Callable[[], Any], *, label: str
) -> None:
    """Run one measurement and store its value(s); record the error if it fails."""
    _log(f"{label}...")
    started = time.perf_counter()
    try:
        result = action()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        for key in keys:
            report.errors[key] = f"{type(exc).__name__}: {exc}"
        return
    if isinstance(result, dict):
        report.values.update(result)
    elif isinstance(result, tuple):
        report.values.update(zip(keys, result, strict=True))
    else:
        report.values[keys[0]] = result
    _log(f"{label}: done in {time.perf_counter() - started:.1f} s")


def _async(function: Callable[..., Awaitable[T]], *args: Any) -> Callable[[], T]:
    async def bounded() -> T:
        with anyio.fail_after(MEASUREMENT_TIMEOUT):
            return await function(*args)

    return lambda: anyio.run(bounded)


def run(quick: bool = True, scale: Scale | None = None) -> Report:
    """Run every measurement and return the report (errors are recorded, not raised)."""
    scale = scale or (QUICK if quick else FULL)
    report = Report(quick=quick, scale=scale)
    keys = ("import_ratio", "cli_start_s", "cli_start_ratio")
    _measure(report, keys, lambda: measure_startup(scale, report.notes), label="start-up times")
    if report.values["cli_start_s"] is None and "cli_start_s" not in report.errors:
        report.notes["cli_start_s"] = "no sectigo CLI in this environment"
    _measure(report, ("bomb_peak_rss_mb",), measure_bomb_rss, label="decompression bombs")
    _measure(
        report,
        ("hostile_input_worst_s",),
        lambda: measure_hostile_inputs(report.notes),
        label="hostile inputs",
    )
    workdir = Path(tempfile.mkdtemp(prefix="sectigo-bench-"))
    try:
        _log("starting the emulator server")
        with bench_server(scale.download_mb * MIB) as info:
            _log(f"emulator at {info.url} (pid {info.pid})")
            _measure(
                report,
                ("call_overhead_ratio",),
                _async(measure_call_overhead, info, scale),
                label="sequential call overhead",
            )
            _measure(
                report,
                ("concurrent_ratio", "concurrent_refreshes"),
                _async(measure_concurrent, info, scale),
                label=f"{scale.concurrent} concurrent calls with a refresh",
            )
            _measure(
                report,
                ("download_ratio",),
                _async(measure_download, info, scale, workdir),
                label=f"{scale.download_mb} MiB download",
            )
            _measure(
                report,
                ("download_peak_rss_mb",),
                lambda: measure_download_rss(info, workdir),
                label="download peak memory",
            )
            if scale.details and report.values["download_peak_rss_mb"] is not None:
                try:
                    raw_mb = measure_download_rss(info, workdir, raw=True)
                except Exception as exc:  # context only: never fails the run
                    _log(f"raw httpx download memory: {type(exc).__name__}: {exc}")
                else:
                    report.notes["download_peak_rss_mb"] = (
                        f"raw httpx streaming the same archive: {raw_mb:.2f} MB "
                        f"({scale.download_mb} MiB archive)"
                    )
            _measure(
                report,
                ("emulator_rps",),
                lambda: measure_emulator_rps(info, scale, report.notes),
                label="emulator requests per second",
            )
            _measure(
                report,
                ("issue_100_s",),
                _async(measure_issue, info, scale),
                label=f"issuing {scale.certificates} certificates",
            )
            if scale.certificates != 100:
                report.notes["issue_100_s"] = f"scaled from {scale.certificates} certificates"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py", description="Benchmark sectigo-iot against raw httpx."
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        report = run(quick=args.quick)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1
    _log(f"finished in {time.perf_counter() - started:.1f} s")
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print(report.table())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
