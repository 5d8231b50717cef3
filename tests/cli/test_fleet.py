"""`sectigo fleet`: records wanted, worked on by `run`, listed, shown, retried, cancelled
and revoked, through the embedded emulator (in process) and, for SIGTERM, a real
`sectigo fleet run` process against a served emulator."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sectigo_iot.certs import load_pem_bundle
from sectigo_iot.emulator import Emulator
from sectigo_iot.fleet import SCHEMA_VERSION
from sectigo_iot.models import Authority
from tests.cli.helpers import CLI, error_line, record_bodies
from tests.cli.test_cli_server import SECTIGO, _clean_env

CREATE = "PUT /api/v1/batches/createSingleCertBatch"
UPLOAD = "POST /api/v1/batches/upload"
#: the fields of `list --json`, in their order
FIELDS = [
    "key",
    "state",
    "common_name",
    "serial_number",
    "not_after",
    "days_left",
    "renewal_time",
    "batch_id",
    "next_action_at",
    "failures",
    "last_error",
]
HOSTILE = "bad \x1b]0;pwned\x07 \u202eevil\r\nnext"


class Fleet:
    """`sectigo fleet ...` on one SQLite store in the test's folder."""

    def __init__(self, cli: CLI) -> None:
        self.cli = cli
        self.store = cli.tmp / "fleet.sqlite3"
        self.certs = cli.tmp / "certs"

    def __call__(self, *args: str, **kwargs: Any) -> Any:
        """``sectigo --emulator fleet ARGS --store STORE``, which must succeed; its JSON."""
        return self.cli.json("fleet", *args, "--store", str(self.store), **kwargs)

    def fails(self, *args: str, **kwargs: Any) -> Any:
        """``sectigo --emulator fleet ARGS --store STORE``, which must fail."""
        result = self.cli.emu("fleet", *args, "--store", str(self.store), **kwargs)
        assert result.exit_code != 0, result.stdout
        return result

    def run_once(self) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self("run", "--once", "--folder", str(self.certs))
        return results

    def records(self) -> dict[str, dict[str, Any]]:
        return {record["key"]: record for record in self("list")}


@pytest.fixture
def fleet(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    for name in ("SECTIGO_FLEET_STORE", "SECTIGO_FLEET_KEY", "SECTIGO_FLEET_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    return Fleet(cli)


def _bodies(cli: CLI) -> list[bytes]:
    """The bodies of every create the CLI sends from now on."""
    bodies: list[bytes] = []
    cli.hooks.append(lambda emulator: record_bodies(emulator, "PUT", CREATE.split()[1], bodies))
    return bodies


def _days_between(later: datetime, earlier: datetime) -> float:
    return (later - earlier) / timedelta(days=1)


def test_want_run_list_issue_deliver_and_list_each_certificate(fleet: Fleet, cli: CLI) -> None:
    bodies = _bodies(cli)
    wanted = fleet("want", "vasp-1", "--cn", "a.example.com", "--dns", "www.a.example.com")
    assert list(wanted) == FIELDS
    assert (wanted["state"], wanted["serial_number"], wanted["days_left"]) == (
        "PENDING",
        None,
        None,
    )
    fleet("want", "vasp-2", "--cn", "b.example.com", "-a", "1", "--key-type", "ec-p256")
    assert cli.requests[CREATE] == 0  # want sends nothing

    results = fleet.run_once()
    assert sorted((r["key"], r["from_state"], r["to_state"]) for r in results) == [
        ("vasp-1", "PENDING", "VALID"),
        ("vasp-2", "PENDING", "VALID"),
    ]
    assert (cli.requests[CREATE], cli.requests[UPLOAD]) == (1, 1)

    listed = fleet("list")
    assert [record["key"] for record in listed] == ["vasp-1", "vasp-2"]
    started = datetime.now().astimezone()
    for record in listed:
        assert list(record) == FIELDS
        assert record["state"] == "VALID"
        assert re.fullmatch(r"[0-9A-F]+", record["serial_number"])
        not_after = datetime.fromisoformat(record["not_after"])
        assert not_after.utcoffset() == timedelta(0)
        assert isinstance(record["days_left"], float)
        assert abs(record["days_left"] - _days_between(not_after, started)) < 0.01
        assert isinstance(record["batch_id"], int)
        due = datetime.fromisoformat(record["next_action_at"])
        assert record["renewal_time"] == record["next_action_at"]
        assert (record["failures"], record["last_error"]) == (0, None)
        # delivered to the folder: the certificate listed, with its key
        folder = fleet.certs / record["key"]
        bundle = load_pem_bundle(
            (folder / "fullchain.pem").read_bytes() + (folder / "key.pem").read_bytes()
        )
        lifetime = bundle.not_after - bundle.not_before  # renewed at 2/3 of it, +- 5 %
        assert abs(due - (bundle.not_before + lifetime * 2 / 3)) <= lifetime * 0.05
        assert bundle.serial_number == record["serial_number"]
        assert bundle.not_after == not_after
        assert (folder / "key.pem").stat().st_mode & 0o777 == 0o600
    assert load_pem_bundle((fleet.certs / "vasp-1" / "cert.pem").read_bytes()).sans == (
        "a.example.com",
        "www.a.example.com",
    )
    # no secret in any output: the PKCS#12 password sent with the create is nowhere
    (body,) = bodies
    password = json.loads(body.split(b"\r\n\r\n", 1)[1])["profileParams"]["pkcs12Password"]
    printed = [
        cli.emu("fleet", *args, "--store", str(fleet.store))
        for args in (
            ("list",),
            ("--table", "list"),
            ("show", "vasp-1"),
            ("--table", "show", "vasp-1"),
        )
    ]
    assert all(password not in result.stdout + result.stderr for result in printed)

    # the same again: nothing due, nothing sent, nothing changed
    history = fleet("show", "vasp-1")["history"]
    fleet("want", "vasp-1", "--cn", "a.example.com", "--dns", "www.a.example.com")
    assert fleet.run_once() == []
    store, certs = str(fleet.store), str(fleet.certs)
    idle = cli.ok("--table", "fleet", "run", "--once", "--folder", certs, "--store", store)
    assert idle.stdout == "no record was due\n"
    assert (cli.requests[CREATE], cli.requests[UPLOAD]) == (1, 1)
    assert fleet("show", "vasp-1")["history"] == history
    assert fleet("list") == [
        {**record, "days_left": fresh["days_left"]}
        for record, fresh in zip(listed, fleet("list"), strict=True)
    ]


def test_list_filters_by_state_and_says_which_states_exist(fleet: Fleet) -> None:
    fleet("want", "one", "--cn", "one.example.com", "-a", "1")
    fleet("want", "two", "--cn", "two.example.com", "-a", "1")
    fleet("cancel", "two")
    assert [r["key"] for r in fleet("list", "--state", "pending")] == ["one"]
    assert [r["key"] for r in fleet("list", "--state", "CANCELLED")] == ["two"]
    assert fleet("list", "--state", "VALID") == []
    refused = fleet.fails("list", "--state", "DONE")
    assert refused.exit_code == 2
    assert "unknown state 'DONE'" in error_line(refused) and "REJECTED" in refused.stderr


def test_show_prints_the_spec_and_every_change_of_state(fleet: Fleet, cli: CLI) -> None:
    fleet("want", "m", "--cn", "m.example.com", "--dns", "n.example.com")
    fleet.run_once()
    shown = fleet("show", "m")
    assert list(shown)[: len(FIELDS)] == FIELDS
    assert shown["spec"] == {
        "authority_id": 1,
        "common_name": "m.example.com",
        "dns_names": ["n.example.com"],
        "params": {},
    }
    steps = [(h["from_state"], h["to_state"]) for h in shown["history"]]
    assert steps == [
        (None, "PENDING"),
        ("PENDING", "SUBMITTING"),
        ("SUBMITTING", "PROCESSING"),
        ("PROCESSING", "DOWNLOADING"),
        ("DOWNLOADING", "DELIVERING"),
        ("DELIVERING", "VALID"),
    ]
    assert all(h["worker"] and datetime.fromisoformat(h["at"]) for h in shown["history"])
    table = cli.ok("--table", "fleet", "show", "m", "--store", str(fleet.store)).stdout
    assert "m.example.com n.example.com" in table
    assert shown["serial_number"] in table and "DOWNLOADING" in table


def test_retry_cancel_and_revoke(fleet: Fleet, cli: CLI) -> None:
    for key in ("a", "b"):
        fleet("want", key, "--cn", f"{key}.example.com", "-a", "1")
    fleet.run_once()
    first = fleet.records()

    revoking = fleet("revoke", "a", "--reason", "cessation of operation", "--yes")
    assert revoking["state"] == "REVOKING"
    assert fleet("revoke", "a", "--yes")["state"] == "REVOKING"  # a second call: no-op
    cancelled = fleet("cancel", "b")
    assert (cancelled["state"], cancelled["next_action_at"]) == ("CANCELLED", None)

    assert [(r["key"], r["to_state"]) for r in fleet.run_once()] == [("a", "REVOKED")]
    with cli.state() as state:
        revoked = [(r.serial_number, r.reason_code) for r in state.revocations()]
    assert revoked == [(first["a"]["serial_number"], 5)]  # 5: cessation of operation
    assert fleet.run_once() == []
    assert cli.requests[CREATE] == 2

    retried = fleet("retry", "b")
    assert retried["state"] == "PENDING"
    store, certs = str(fleet.store), str(fleet.certs)
    table = cli.ok(
        "--table",
        "fleet",
        "run",
        "--once",
        "--folder",
        certs,
        "--store",
        store,
        env={"COLUMNS": "200"},
    )
    assert re.search(r"│ b +│ PENDING +│ VALID +│ certificate [0-9A-F]+ delivered", table.stdout)
    assert cli.requests[CREATE] == 3
    now = fleet.records()
    assert now["b"]["serial_number"] != first["b"]["serial_number"]
    assert now["a"]["state"] == "REVOKED"


def test_revoke_asks_on_a_terminal_and_a_no_changes_nothing(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet("want", "a", "--cn", "a.example.com", "-a", "1")
    monkeypatch.setattr("sectigo_iot.cli.commands.fleet.isatty", lambda stream: True)
    declined = fleet.fails("revoke", "a", input="n\n")
    assert declined.exit_code == 1
    assert "Revoke the certificate of a (serial none yet, unspecified)?" in declined.stderr
    assert declined.stderr.endswith("error: not revoked: not confirmed (nothing was changed)\n")
    assert fleet.records()["a"]["state"] == "PENDING"
    accepted = fleet.cli.emu("fleet", "revoke", "a", "--store", str(fleet.store), input="yes\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert fleet.records()["a"]["state"] == "REVOKING"


@pytest.mark.parametrize("command", [["show"], ["retry"], ["cancel"], ["revoke", "--yes"]])
def test_an_unknown_key_fails_like_a_missing_resource(fleet: Fleet, command: list[str]) -> None:
    fleet("want", "known", "--cn", "k.example.com", "-a", "1")
    failed = fleet.fails(command[0], "unknown", *command[1:])
    assert failed.exit_code == 1
    assert f"no fleet record 'unknown' in {fleet.store}" in error_line(failed)
    assert list(fleet.records()) == ["known"]


def test_bad_keys_and_bad_requests_are_usage_errors_before_anything_is_written(
    fleet: Fleet, cli: CLI
) -> None:
    for args, said in [
        (("want", "a\x1bb", "--cn", "a.example.com", "-a", "1"), "control character"),
        (("want", "x" * 201, "--cn", "a.example.com", "-a", "1"), "1 to 200 characters"),
        (("want", "k", "--cn", "bad_name.example.com"), "underscore"),
        (("want", "k", "-a", "1"), "--cn"),
        (("want", "k", "--cn", "a.example.com", "--key-type", "dsa"), "dsa"),
        (("show", " padded"), "surrounding spaces"),
    ]:
        failed = fleet.fails(*args)
        assert failed.exit_code == 2, (args, failed.stderr)
        assert said in error_line(failed), args
    assert cli.requests == {}  # not even the authority list was asked for
    assert fleet("list") == []


def test_the_only_enabled_authority_is_the_default_else_authority_is_asked_for(
    fleet: Fleet, cli: CLI
) -> None:
    two = [
        Authority(id=7, profile_id=70, profile_name="Seven", balance=5, enabled=True),
        Authority(id=8, profile_id=80, profile_name="Eight", balance=5, enabled=True),
        Authority(id=9, profile_id=90, profile_name="Off", balance=5, enabled=False),
    ]
    cli.db.parent.mkdir()
    Emulator(db_path=cli.db, authorities=two).close()
    failed = fleet.fails("want", "k", "--cn", "k.example.com")
    assert failed.exit_code == 2
    assert "3 enabled authorities (1, 7, 8): choose one with --authority" in error_line(failed)
    assert fleet("list") == []
    fleet("want", "k", "--cn", "k.example.com", "--authority", "8")
    assert fleet("show", "k")["spec"]["authority_id"] == 8


def test_a_failure_is_kept_escaped_in_tables_and_exact_in_json(fleet: Fleet, cli: CLI) -> None:
    cli.hooks.append(
        lambda emulator: emulator.inject(
            "PUT", CREATE.split()[1], "error", status=400, message=HOSTILE
        )
    )
    fleet("want", "k", "--cn", "k.example.com", "-a", "1")
    (result,) = fleet.run_once()
    assert (result["to_state"], result["error"]) == ("FAILED", fleet.records()["k"]["last_error"])
    record = fleet.records()["k"]
    assert (record["state"], record["failures"]) == ("FAILED", 1), repr(record["last_error"])
    assert HOSTILE in record["last_error"], repr(record["last_error"])
    table = cli.ok(
        "--table", "fleet", "list", "--store", str(fleet.store), env={"COLUMNS": "400"}
    ).stdout
    assert "\x1b" not in table and "\u202e" not in table and "\x07" not in table
    assert "\\x1b]0;pwned\\x07" in table and "\\u202eevil\\x0d\\x0anext" in table
    raw = cli.emu("fleet", "list", "--store", str(fleet.store)).stdout
    assert "\\u202e" in raw and "\u202e" not in raw
    # retried with backoff: not due again at once
    assert fleet.run_once() == []
    assert datetime.fromisoformat(record["next_action_at"]) > datetime.now().astimezone()


def test_run_needs_a_folder_and_sends_nothing_without_one(fleet: Fleet, cli: CLI) -> None:
    fleet("want", "k", "--cn", "k.example.com", "-a", "1")
    failed = fleet.fails("run", "--once")
    assert failed.exit_code == 2
    assert "--folder DIR" in error_line(failed) and "SECTIGO_FLEET_FOLDER" in failed.stderr
    assert cli.requests == {}


def test_the_store_comes_from_the_option_or_the_environment_and_must_be_given(
    fleet: Fleet, cli: CLI
) -> None:
    missing = cli.emu("fleet", "list")
    assert missing.exit_code == 2
    line = error_line(missing)
    assert "--store" in line and "SECTIGO_FLEET_STORE" in line
    blank = cli.emu("fleet", "list", env={"SECTIGO_FLEET_STORE": " "})
    assert blank.exit_code == 2 and "SECTIGO_FLEET_STORE" in error_line(blank)

    env = {"SECTIGO_FLEET_STORE": str(fleet.store)}
    cli.ok("fleet", "want", "k", "--cn", "k.example.com", "-a", "1", env=env)
    assert [r["key"] for r in cli.json("fleet", "list", env=env)] == ["k"]
    assert (fleet.store.parent / "fleet.sqlite3.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("url", ["mysql://db.example/fleet", "sqlite://fleet.db", "https://x/y"])
def test_a_store_url_of_another_scheme_is_refused(fleet: Fleet, cli: CLI, url: str) -> None:
    failed = cli.emu("fleet", "list", "--store", url)
    assert failed.exit_code == 2
    assert "unknown fleet store scheme" in error_line(failed)
    assert "postgresql://" in failed.stderr
    assert list(cli.tmp.glob("*.sqlite3")) == []


def test_a_store_sealed_with_another_key_is_refused(fleet: Fleet, cli: CLI) -> None:
    env = {"SECTIGO_FLEET_KEY": "k" * 44}
    fleet("want", "k", "--cn", "k.example.com", "-a", "1", env=env)
    wrong = fleet.fails("list", env={"SECTIGO_FLEET_KEY": "w" * 44})
    assert wrong.exit_code == 1
    assert "sealed with another key" in error_line(wrong)
    assert "w" * 44 not in wrong.stderr and "k" * 44 not in wrong.stderr
    short = fleet.fails("list", env={"SECTIGO_FLEET_KEY": "short"})
    assert short.exit_code == 2 and "at least 32 characters" in error_line(short)


def test_commands_that_use_no_api_need_no_credentials(fleet: Fleet, cli: CLI) -> None:
    store = str(fleet.store)
    for args in (
        ("migrate",),
        ("want", "k", "--cn", "k.example.com", "-a", "1"),
        ("list",),
        ("show", "k"),
        ("cancel", "k"),
        ("retry", "k"),
        ("revoke", "k", "--yes"),
    ):
        result = cli("--json", "fleet", *args, "--store", store)
        assert result.exit_code == 0, (args, result.stderr)
    assert cli.opened == []  # no emulator, no server: the store alone
    run = cli("fleet", "run", "--once", "--folder", "certs", "--store", store)
    assert run.exit_code == 4 and "no username" in error_line(run)


def test_migrate_makes_the_tables_and_prints_the_schema_version(fleet: Fleet) -> None:
    assert fleet("migrate") == {"store": str(fleet.store), "schema_version": SCHEMA_VERSION}
    with sqlite3.connect(fleet.store) as database:
        assert database.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert fleet("migrate") == {"store": str(fleet.store), "schema_version": SCHEMA_VERSION}


# -- a real `sectigo fleet run` process ---------------------------------------------------


def test_sigterm_finishes_the_steps_in_flight_releases_the_leases_and_exits_0(
    tmp_path: Path,
) -> None:
    store = tmp_path / "fleet.sqlite3"
    env = _clean_env(tmp_path) | {"SECTIGO_FLEET_STORE": str(store)}
    env.pop("SECTIGO_FLEET_KEY", None)

    def sectigo(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SECTIGO, *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            **options,
        )

    for key in ("a", "b", "c"):
        sectigo("fleet", "want", key, "--cn", f"{key}.example.com", "-a", "1")
    with Emulator(processing_delay=600) as emulator, emulator.run_in_thread() as url:
        # each create takes 2 s: SIGTERM comes while all three are in flight
        emulator.inject("PUT", CREATE.split()[1], "delay", times=3, seconds=2)
        worker = subprocess.Popen(
            [*SECTIGO, "fleet", "run", "--folder", "certs", "--concurrency", "3"],
            env=env
            | {
                "SECTIGO_ENDPOINT": url,
                "SECTIGO_USERNAME": "tester",
                "SECTIGO_PASSWORD": "supersecretsquirrel",
            },
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while emulator.stats.requests[CREATE] < 3 and time.monotonic() < deadline:
                assert worker.poll() is None, worker.communicate()
                time.sleep(0.05)
            with sqlite3.connect(store) as database:
                held = database.execute(
                    "SELECT COUNT(*) FROM records WHERE lease_owner IS NOT NULL"
                ).fetchone()
            assert held == (3,)  # claimed and working
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
        assert worker.returncode == 0, err
        assert "SIGTERM: finishing the steps in flight" in err
        assert emulator.stats.requests[CREATE] == 3
    with sqlite3.connect(store) as database:
        rows = database.execute(
            "SELECT key, state, lease_owner, lease_expires FROM records"
        ).fetchall()
    # each create got its answer and was recorded; no lease is left held
    assert sorted(rows) == [(key, "PROCESSING", None, None) for key in ("a", "b", "c")]
    assert sorted(json.loads(line)["key"] for line in out.splitlines()) == ["a", "b", "c"]
    shown = json.loads(sectigo("fleet", "show", "a").stdout)
    assert shown["state"] == "PROCESSING" and shown["batch_id"] is not None
