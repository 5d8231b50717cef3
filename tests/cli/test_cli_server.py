"""The installed `sectigo` command, as a process, against `sectigo serve` on a free port.

Credentials and endpoint come from the environment, as scripts for the original tool
set them; the token store is a private file store in a temporary cache folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import create_args

# the console script of the installed package (python -m sectigo_iot.cli as a fallback)
_SCRIPT = Path(sys.executable).parent / "sectigo"
SECTIGO = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "sectigo_iot.cli"]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTIGO_")}
    env.update(
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        NO_COLOR="1",
    )
    return env


def _stop(process: subprocess.Popen[str]) -> None:
    """Stop ``sectigo serve`` with SIGINT (killed after 10 s) and close its pipes."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`sectigo serve --port 0 --db FILE`, stopped with SIGINT at the end."""
    process = subprocess.Popen(
        [*SECTIGO, "serve", "--port", "0", "--db", str(tmp_path / "served.sqlite3")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(tmp_path),
    )
    try:
        url, deadline = "", time.monotonic() + 30
        assert process.stdout is not None
        while not url and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if line.strip().startswith("SECTIGO_ENDPOINT="):
                url = line.strip().split("=", 1)[1]
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        yield url
    finally:
        _stop(process)


def test_commands_over_http(server: str, tmp_path: Path) -> None:
    env = _clean_env(tmp_path) | {
        "SECTIGO_ENDPOINT": server,
        "SECTIGO_USERNAME": "tester",
        "SECTIGO_PASSWORD": "supersecretsquirrel",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SECTIGO, *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    created = run(
        *create_args("-b", "example.com certs", "--download", "certs", "--pem", authority="42")
    )
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    batch_id = data["batch"]["batchId"]
    assert (tmp_path / "certs" / str(batch_id) / "key.pem").is_file()
    assert "s3cretpass" not in created.stdout + created.stderr

    # the tokens of the first run were stored in the file store, and are reused
    cache = run("auth", "--cache")
    token_file = Path(cache.stdout.strip())
    assert token_file.is_file()
    assert token_file.is_relative_to(tmp_path / "cache")
    assert token_file.stat().st_mode & 0o777 == 0o600
    debug = run("auth", "--debug")
    assert debug.stdout.startswith("credentials are valid until ")
    stored = json.loads(token_file.read_text())
    assert stored["access"] not in debug.stdout + debug.stderr

    found = json.loads(run("find", "-n", "example.com").stdout)
    serial = found["items"][0]["serialNumber"]
    revoked = run("revoke", "-p", "42", "-r", "cessation of operation", "-s", serial)
    assert (revoked.returncode, revoked.stdout) == (0, "")
    wrong = subprocess.run(
        [*SECTIGO, "-u", "nobody", "-p", "wrong-password", "licenses"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 4
    assert wrong.stderr.startswith("error: 401")
    assert "wrong-password" not in wrong.stderr


def test_serve_with_the_original_addr_flag_and_sias_variables(tmp_path: Path) -> None:
    """`sectigo serve -a 127.0.0.1:0` with the upstream container's SIAS_* login and CA."""
    from sectigo_iot.emulator import CertificateAuthority

    ca = CertificateAuthority.generate()
    (tmp_path / "ca.pem").write_bytes(ca.certificate_pem + ca.private_key_pem())
    password = "Cathy-Secret-Squirrel-7"
    env = _clean_env(tmp_path) | {
        "SIAS_AUTH_USERNAME": "cathyadmin",
        "SIAS_AUTH_PASSWORD": password,
        "SIAS_CA_PATH": str(tmp_path / "ca.pem"),
        "SIAS_LOG_LEVEL": "error",
    }
    process = subprocess.Popen(
        [*SECTIGO, "serve", "-a", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(5)]
        url = next(line.split("=", 1)[1].strip() for line in banner if "ENDPOINT=" in line)
        assert url.startswith("http://127.0.0.1:")
        assert password not in "".join(banner)
        assert "SECTIGO_PASSWORD=<$SIAS_AUTH_PASSWORD>" in "".join(banner)
        client_env = _clean_env(tmp_path) | {
            "SECTIGO_ENDPOINT": url,
            "SECTIGO_USERNAME": "cathyadmin",
            "SECTIGO_PASSWORD": password,
        }
        licenses = subprocess.run(
            [*SECTIGO, "licenses"],
            env=client_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert licenses.returncode == 0, licenses.stderr
        assert json.loads(licenses.stdout) == {"ordered": 10, "issued": 0}
        import httpx

        assert httpx.get(f"{url}/emulator/ca.pem", timeout=10).content == ca.certificate_pem
    finally:
        _stop(process)
