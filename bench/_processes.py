"""The benchmark's child processes: the emulator server, probes, load generators."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HERE",
    "MEASUREMENT_TIMEOUT",
    "ServerInfo",
    "bench_server",
    "child_server",
    "cpu_seconds",
    "last_json_line",
    "load_generators",
    "read_line",
    "run_probe",
]

HERE = Path(__file__).resolve().parent
MEASUREMENT_TIMEOUT = 600.0
SERVER_START_TIMEOUT = 60.0


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


def _script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE / name), *args]


def _stop(process: subprocess.Popen[str], *, terminate: bool) -> None:
    """End ``process`` (SIGTERM first when ``terminate``, else SIGKILL); close its pipes."""
    if process.poll() is None:
        if terminate:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        else:
            process.kill()
        process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None and not stream.closed:
            stream.close()


@contextmanager
def bench_server(
    archive_bytes: int,
    *,
    key_type: str | None = None,
    processing_delay: float = 0.0,
    latency: float = 0.0,
) -> Iterator[ServerInfo]:
    """Run ``bench/_server.py`` in a child process for the duration of the block."""
    command = _script("_server.py", "--archive-bytes", str(archive_bytes), "--watch-stdin")
    if key_type:
        command += ["--key-type", key_type]
    if processing_delay:
        command += ["--processing-delay", str(processing_delay)]
    if latency:
        command += ["--latency", str(latency)]
    with child_server(command, "the benchmark server") as info:
        yield ServerInfo(**info)


@contextmanager
def child_server(command: Sequence[str], what: str) -> Iterator[Any]:
    """Run ``command``, a server that prints one JSON line once listening and exits
    when its stdin closes, in a child process for the block; yields that line decoded.
    RuntimeError (naming ``what``, with its stderr) when it does not start."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.PIPE, text=True
        )
        assert process.stdin is not None
        try:
            line = read_line(process, SERVER_START_TIMEOUT)
            if not line:
                errors.seek(0)
                detail = errors.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{what} did not start:\n{detail}")
            yield json.loads(line)
        finally:
            process.stdin.close()  # the server exits when its stdin closes
            _stop(process, terminate=True)


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
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


def last_json_line(output: str) -> Any:
    """The last line of a probe's stdout, decoded (probes print one JSON line last)."""
    return json.loads(output.strip().splitlines()[-1])


def run_probe(name: str, *args: str) -> Any:
    """Run ``bench/<name>`` in a fresh interpreter to the end; its JSON result."""
    done = subprocess.run(
        _script(name, *args),
        capture_output=True,
        text=True,
        timeout=MEASUREMENT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench/{name} failed:\n{done.stderr[-2000:]}")
    return last_json_line(done.stdout)


@contextmanager
def load_generators(
    info: ServerInfo, shares: Sequence[int], path: str
) -> Iterator[list[subprocess.Popen[str]]]:
    """``bench/_load.py`` processes (one per share of clients), each ready for a window."""
    with ExitStack() as stack:
        generators = []
        for share in shares:
            generator = subprocess.Popen(
                _script("_load.py", info.url, info.username, info.password, str(share), path),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            stack.callback(_stop, generator, terminate=False)
            generators.append(generator)
        for generator in generators:
            if read_line(generator, SERVER_START_TIMEOUT) != "ready":
                raise RuntimeError("a load generator did not start")
        yield generators


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
