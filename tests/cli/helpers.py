"""Helpers for the CLI tests: an in-process runner over the embedded emulator.

Every test gets its own emulator database, token folder and working directory, and a
clean environment (no SECTIGO_* variables from the developer's shell). The runner
records every emulator the CLI opens, so a test can check that nothing was sent.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sectigo_iot.cli import _client, app
from sectigo_iot.emulator import Emulator

ENV_VARS = (
    "SECTIGO_USERNAME",
    "SECTIGO_PASSWORD",
    "SECTIGO_ENDPOINT",
    "SECTIGO_PROFILE",
    "SECTIGO_ENVIRONMENT",
    "SECTIGO_EMULATOR",
    "SECTIGO_EMULATOR_DELAY",
    "SECTIGO_PKCS12_PASSWORD",
    "NO_COLOR",
)
#: a date as the API writes it: milliseconds and a numeric offset
API_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")


class CLI:
    """Runs ``sectigo`` in process with ``--emulator`` state in ``tmp_path``."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "state" / "emulator.sqlite3"
        for name in ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SECTIGO_EMULATOR_DB", str(self.db))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        monkeypatch.setattr("sectigo_iot.auth.keyring_usable", lambda: False)
        monkeypatch.chdir(tmp_path)
        self.opened: list[Emulator] = []
        self.hooks: list[Callable[[Emulator], None]] = []
        original = self._open = _client.open_emulator

        def opening(db_path: Path | None = None, **kwargs: Any) -> Emulator:
            emulator = original(db_path, **kwargs)
            for hook in self.hooks:
                hook(emulator)
            self.opened.append(emulator)
            return emulator

        monkeypatch.setattr(_client, "open_emulator", opening)
        self.runner = CliRunner()

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """``sectigo ARGS`` (give ``--emulator`` yourself where wanted)."""
        return self.runner.invoke(app, list(args), input=input, env=env)

    def emu(self, *args: str, **kwargs: Any) -> Result:
        """``sectigo --emulator ARGS``."""
        return self(*("--emulator", *args), **kwargs)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        """``sectigo --emulator ARGS``, which must succeed."""
        result = self.emu(*args, **kwargs)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        """The JSON document printed by a successful ``sectigo --emulator ARGS``."""
        return json.loads(self.ok(*args, **kwargs).stdout)

    @property
    def requests(self) -> Counter[str]:
        """Every request the CLI sent to the embedded emulator so far."""
        total: Counter[str] = Counter()
        for emulator in self.opened:
            total.update(emulator.stats.requests)
        return total

    def state(self) -> Emulator:
        """The emulator's persisted state (close it after use)."""
        return self._open(self.db)

    def create(self, domain: str = "example.com", password: str = "s3cretpass") -> int:  # noqa: S107
        """Create a batch and return its id."""
        batch = self.json(*create_args(authority="42", domain=domain, password=password))
        return int(batch["batchId"])

    def serial_of(self, domain: str) -> str:
        """The serial number of the (first) certificate issued for ``domain``."""
        found = self.json("find", "-n", domain)
        return str(found["items"][0]["serialNumber"])


def create_args(
    *more: str,
    authority: str = "1",
    domain: str = "example.com",
    password: str = "s3cretpass",  # noqa: S107
) -> tuple[str, ...]:
    """``create -a AUTHORITY -d DOMAIN -p PASSWORD MORE...``: the batch most tests create."""
    return ("create", "-a", authority, "-d", domain, "-p", password, *more)


def documents(text: str) -> list[Any]:
    """Every JSON document in ``text`` (the original printed several, one after another)."""
    decoder = json.JSONDecoder()
    found, index = [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        found.append(value)
    return found


def error_line(result: Result) -> str:
    """The one ``error:`` line of a failed command (and check there is just one)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def make_csr(
    cli: CLI, domain: str = "device.example.com", extra: Sequence[str] = ()
) -> tuple[Path, Path]:
    """Generate a CSR (EC P-256, fast) with ``sectigo csr`` and return (csr, key)."""
    names = [arg for name in extra for arg in ("--dns-name", name)]
    data = json.loads(cli.ok("csr", "-d", domain, *names, "--key-type", "ec-p256").stdout)
    return Path(data["csr"]), Path(data["key"])


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return os.stat(path).st_mode & 0o777


def record_bodies(emulator: Emulator, method: str, path: str, into: list[bytes]) -> None:
    """Append the body of every ``method`` ``path`` request (with its content type first)."""
    inner = emulator.app

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != method or scope["path"] != path:
            await inner(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        into.append(b"Content-Type: " + headers[b"content-type"] + b"\r\n\r\n" + body)

        async def replay() -> Any:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        await inner(scope, replay, send)

    emulator.app = app


def interrupted(
    command: Sequence[str], cwd: Path, busy: Callable[[subprocess.Popen[str]], str]
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` against a slow emulator, press Ctrl-C (SIGINT) once
    ``busy(process)`` returns, and collect the output; stderr starts with what ``busy``
    read of it."""
    env = {**os.environ, "SECTIGO_EMULATOR_DELAY": "600", "NO_COLOR": "1"}
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read = busy(process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, read + err)
