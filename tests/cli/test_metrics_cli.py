"""`sectigo fleet run --metrics-port/--metrics-host/--metrics-textfile`: the options checked
before anything is opened or sent, the textfile after a pass, and a real scrape of
/metrics from a real `sectigo fleet run` process against a served emulator, stopped with
SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sectigo_iot.emulator import Emulator
from tests.cli.helpers import CLI, error_line
from tests.cli.test_cli_server import SECTIGO, _clean_env
from tests.test_metrics import labels, samples

PASSWORD = "canary-CLI-pw-93b1f0"
CREATE = "PUT /api/v1/batches/createSingleCertBatch"


@pytest.fixture
def store(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SECTIGO_FLEET_STORE", "SECTIGO_FLEET_KEY", "SECTIGO_FLEET_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    path = cli.tmp / "fleet.sqlite3"
    for key in ("a", "b"):
        cli.ok("fleet", "want", key, "--cn", f"{key}.example.com", "-a", "1", "--store", str(path))
    return path


def test_run_once_writes_the_textfile_after_the_pass(cli: CLI, store: Path) -> None:
    target = cli.tmp / "node" / "sectigo.prom"
    target.parent.mkdir()
    args = ("fleet", "run", "--once", "--folder", "certs", "--store", str(store))
    cli.ok(*args, "--metrics-textfile", str(target))
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["sectigo.prom"]  # no temp left
    got = samples(target.read_text())
    listed = {r["key"]: r for r in cli.json("fleet", "list", "--store", str(store))}
    assert got["sectigo_certificate_expiration_timestamp_seconds"] == {
        labels(key=k, common_name=f"{k}.example.com"): datetime.fromisoformat(
            listed[k]["not_after"]
        ).timestamp()
        for k in "ab"
    }
    assert got["sectigo_fleet_records"][labels(state="VALID")] == 2
    sent = got["sectigo_requests_total"]
    assert sent[labels(operation="batches.create", outcome="ok")] == cli.requests[CREATE] == 2
    assert got["sectigo_authority_balance"] == {labels(authority_id="1"): 8}  # read after


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--metrics-host", "::1"), "--metrics-host needs --metrics-port"),
        (("--once", "--metrics-port", "0"), "with --once write the metrics with"),
        (("--metrics-textfile", "metrics.txt"), "must end in .prom"),
        (("--metrics-textfile", "missing/sectigo.prom"), "the folder 'missing' does not exist"),
        (("--metrics-textfile", "folder.prom"), "not a regular file"),
        (("--metrics-port", "0", "--metrics-host", " "), "--metrics-host is empty"),
    ],
)
def test_bad_metrics_options_are_refused_before_anything_is_sent(
    cli: CLI, store: Path, options: tuple[str, ...], said: str
) -> None:
    (cli.tmp / "folder.prom").mkdir()
    before = store.read_bytes()
    failed = cli.emu("fleet", "run", "--folder", "certs", "--store", str(store), *options)
    assert failed.exit_code == 2, failed.stderr
    assert said in error_line(failed)
    assert cli.requests == {} and store.read_bytes() == before


def test_a_port_in_use_is_an_error_before_anything_is_sent(cli: CLI, store: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failed = cli.emu(
            "fleet", "run", "--folder", "certs", "--store", str(store), "--metrics-port", str(port)
        )
    assert failed.exit_code == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in error_line(failed)
    assert cli.requests == {}


# -- a real `sectigo fleet run` process -----------------------------------------------------


def test_a_real_scrape_of_a_running_fleet(cli: CLI, store: Path, tmp_path: Path) -> None:
    """Records a and b wanted (by the store fixture) and c, worked on by a real process."""
    textfile = tmp_path / "sectigo.prom"
    env = _clean_env(tmp_path) | {"SECTIGO_FLEET_STORE": str(store)}
    env.pop("SECTIGO_FLEET_KEY", None)
    cli.ok("fleet", "want", "c", "--cn", "c.example.com", "-a", "1", "--store", str(store))
    with (
        Emulator(users={"tester": PASSWORD}) as emulator,
        emulator.run_in_thread() as url,
    ):
        emulator.inject("PUT", CREATE.split()[1], "error", status=400, message="refused")
        worker = subprocess.Popen(
            [*SECTIGO, "fleet", "run", "--folder", "certs", "--metrics-port", "0",
             "--metrics-textfile", str(textfile)],
            env=env | {
                "SECTIGO_ENDPOINT": url,
                "SECTIGO_USERNAME": "tester",
                "SECTIGO_PASSWORD": PASSWORD,
            },
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert worker.stderr is not None
            first = worker.stderr.readline()
            assert first.startswith("serving metrics at http://127.0.0.1:"), first
            metrics_url = first.split(" at ", 1)[1].strip()
            assert metrics_url.endswith("/metrics")
            got: dict[str, Any] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until the first pass is counted
                assert worker.poll() is None, worker.communicate()
                reply = httpx.get(metrics_url, timeout=10)
                assert reply.status_code == 200
                assert reply.headers["content-type"].startswith("text/plain")
                got = samples(reply.text)
                balance = got.get("sectigo_authority_balance", {})
                if "sectigo_fleet_records" in got and 8 in balance.values():
                    break
                time.sleep(0.1)
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert worker.returncode == 0, err
    listed = {r["key"]: r for r in cli.json("fleet", "list", "--store", str(store))}
    states = {key: record["state"] for key, record in listed.items()}
    assert sorted(states.values()) == ["FAILED", "VALID", "VALID"], states
    (failed,) = [key for key, state in states.items() if state == "FAILED"]
    valid = sorted(key for key, state in states.items() if state == "VALID")

    def named(key: str) -> frozenset[tuple[str, str]]:
        return labels(key=key, common_name=f"{key}.example.com")

    assert got["sectigo_certificate_expiration_timestamp_seconds"] == {
        named(k): datetime.fromisoformat(listed[k]["not_after"]).timestamp() for k in valid
    }
    assert got["sectigo_certificate_renewal_timestamp_seconds"] == {
        named(k): datetime.fromisoformat(listed[k]["renewal_time"]).timestamp() for k in valid
    }
    assert got["sectigo_certificate_ready_status"] == {
        **{named(k) | {("state", "VALID")}: 1 for k in valid},
        named(failed) | {("state", "FAILED")}: 0,
    }
    assert got["sectigo_fleet_records"][labels(state="VALID")] == 2
    assert got["sectigo_fleet_records"][labels(state="FAILED")] == 1
    since = got["sectigo_fleet_record_state_since_timestamp_seconds"]
    assert set(since) == {labels(key=k, state=s) for k, s in states.items()}
    sent = got["sectigo_requests_total"]
    assert sent[labels(operation="batches.create", outcome="http_4xx")] == 1
    assert sent[labels(operation="batches.create", outcome="ok")] == 2
    assert got["sectigo_token_refreshes_total"] == {labels(grant="password"): 1}
    # read after the pass that spent two licenses (the emulator's authority had 10)
    assert got["sectigo_authority_balance"] == {labels(authority_id="1"): 8}
    # the textfile of the last pass: the same families
    written = samples(textfile.read_text())
    assert written["sectigo_fleet_records"] == got["sectigo_fleet_records"]
    # the process is gone, and so is its server
    with pytest.raises(httpx.ConnectError):
        httpx.get(metrics_url, timeout=10)
    assert PASSWORD not in textfile.read_text() + out + err
