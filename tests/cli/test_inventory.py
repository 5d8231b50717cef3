"""`sectigo certs list`: the certificates of folders and of a fleet store, end to end
through the embedded emulator, its clock frozen (each command's emulator starts at
``T0``; a hook moves it to the day the test acts on), so that the JSON is compared
with a stored snapshot: ``tests/cli/snapshots/certs_list.json`` (serials, the test's
folder and the folders' path-keyed renewal times replaced by placeholders). After a
deliberate change of the JSON, rewrite it with ``SECTIGO_UPDATE_SNAPSHOTS=1``."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sectigo_iot.emulator._clock import Clock
from sectigo_iot.lifecycle import RenewalPolicy, load_certificate
from tests.cli.helpers import CLI, error_line

DAY = 24 * 3600
#: the frozen emulator clock's start: 2030-01-01T00:00:00Z
T0 = 1_893_456_000.0
SNAPSHOT = Path(__file__).parent / "snapshots" / "certs_list.json"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CLI:
    for name in ("SECTIGO_FLEET_STORE", "SECTIGO_FLEET_KEY", "SECTIGO_FLEET_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sectigo_iot.emulator._emulator.Clock", lambda: Clock(start=T0))
    return CLI(tmp_path, monkeypatch)


def on_day(cli: CLI, day: float) -> None:
    """The commands from now on run on the emulator's clock at ``T0`` + ``day`` days."""
    cli.hooks[:] = [lambda emulator: emulator.clock.advance(day * DAY)]


class World:
    """At day 370: folders issued on days 0, 10 and 250 (renewed on 300); fleet records
    issued on day 0 (``old``, then cancelled; ``renewed``, renewed for a new name on day
    300) and on day 300 (``valid``; ``revoked``, then revoked)."""

    def __init__(self, cli: CLI) -> None:
        self.cli = cli
        self.root = cli.tmp / "certs"
        self.store = cli.tmp / "fleet.sqlite3"
        on_day(cli, 0)
        self.issue("expired")
        self.fleet("want", "old", "--cn", "old.example.com", "-a", "1")
        self.fleet("want", "renewed", "--cn", "renewed.example.com", "-a", "1")
        self.fleet("run", "--once", "--folder", str(cli.tmp / "delivered"))
        self.fleet("cancel", "old")  # never renewed: it expires on day 365
        on_day(cli, 10)
        self.issue("due")  # 5 days left on day 370: due, as 'sectigo renew' (30d) sees it
        on_day(cli, 250)
        self.issue("renewed")
        on_day(cli, 300)
        cli.json("renew", "--force", str(self.root / "renewed"))
        for key in ("valid", "revoked"):
            self.fleet("want", key, "--cn", f"{key}.example.com", "-a", "1")
        renamed = ("--cn", "renewed.example.com", "--dns", "www.renewed.example.com", "-a", "1")
        self.fleet("want", "renewed", *renamed)
        self.fleet("run", "--once", "--folder", str(cli.tmp / "delivered"))
        self.fleet("revoke", "revoked", "--reason", "superseded")
        self.fleet("run", "--once", "--folder", str(cli.tmp / "delivered"))
        on_day(cli, 370)

    def issue(self, name: str) -> None:
        self.cli.json("issue", "-a", "1", "-d", f"{name}.example.com", str(self.root / name))

    def fleet(self, *args: str) -> Any:
        return self.cli.json("fleet", *args, "--store", str(self.store))

    def folders(self, *names: str) -> list[str]:
        return [str(self.root / name) for name in names]

    def listing(self, *args: str) -> Any:
        return self.cli.json("certs", "list", *args)


@pytest.fixture
def world(cli: CLI) -> World:
    return World(cli)


def _pinned(document: Any, tmp: Path) -> Any:
    """The document with what differs between runs replaced: serials (numbered in the
    order they appear), the test's folder, and the renewal times keyed by its paths."""
    serials: dict[str, str] = {}

    def serial(match: re.Match[str]) -> str:
        return serials.setdefault(match.group(), f"<serial {len(serials) + 1}>")

    text = re.sub(r"\b[0-9A-F]{16,}\b", serial, json.dumps(document).replace(str(tmp), "<tmp>"))
    pinned = json.loads(text)
    for entry in pinned["certificates"]:
        if entry["folder"] is not None and entry["renewal_time"] is not None:
            entry["renewal_time"] = "<by the folder's path>"
    return pinned


def test_the_json_of_folders_and_a_fleet_matches_the_snapshot(world: World, cli: CLI) -> None:
    sent = sum(cli.requests.values())
    folders = world.folders("expired", "due", "renewed", "missing")
    document = world.listing(*folders, "--fleet", str(world.store))
    assert sum(cli.requests.values()) == sent  # read locally: nothing sent

    # the folders' renewal times, keyed by their paths, are those of 'sectigo renew'
    # (--before 30d by default)
    renews = {e["folder"]: e["renewalTime"] for e in cli.json("renew", "--dry-run", *folders[:3])}
    for entry in document["certificates"]:
        if entry["folder"] and entry["renewal_time"]:
            bundle = load_certificate(entry["folder"])
            policy = RenewalPolicy(renew_before=timedelta(days=30))
            wanted = policy.renewal_time(bundle.not_before, bundle.not_after, entry["folder"])
            assert datetime.fromisoformat(entry["renewal_time"]) == wanted
            assert datetime.fromisoformat(renews[entry["folder"]]) == wanted

    pinned = _pinned(document, cli.tmp)
    if os.environ.get("SECTIGO_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(pinned, indent=2) + "\n")
    assert pinned == json.loads(SNAPSHOT.read_text())
    statuses = [(e["key"] or Path(e["folder"]).name, e["status"]) for e in pinned["certificates"]]
    assert statuses == [
        ("expired", "expired"),
        ("due", "due"),
        ("renewed", "valid"),
        ("renewed", "superseded"),
        ("missing", "problem"),
        ("old", "expired"),
        ("renewed", "valid"),
        ("renewed", "superseded"),
        ("revoked", "revoked"),
        ("valid", "valid"),
    ]


def test_the_table_names_each_certificate_and_counts_them(world: World, cli: CLI) -> None:
    result = cli.ok("--table", "certs", "list", *world.folders("due", "renewed"))
    out = result.stdout
    assert "4 certificate(s): 1 valid, 1 due, 1 superseded" not in out  # three, not four
    assert "3 certificate(s): 1 valid, 1 due, 1 superseded" in out
    for word in ("due.example.com", "renewed.example.com", "superseded", "renews"):
        assert word in out
    assert str(world.root / "due") in out


def test_a_hostile_folder_name_is_shown_escaped(cli: CLI, tmp_path: Path) -> None:
    hostile = tmp_path / "bad \x1b]0;pwned\x07 \u202eevil"
    result = cli.ok("--table", "certs", "list", str(hostile))
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b]0;pwned\\x07" in result.stdout and "\\u202eevil" in result.stdout
    assert "\x1b" not in result.stderr


def test_the_exit_status_is_0_unless_fail_if_due(world: World, cli: CLI) -> None:
    every = [*world.folders("expired", "due", "renewed"), "--fleet", str(world.store)]
    assert cli.emu("certs", "list", *every).exit_code == 0

    expired = cli.emu("certs", "list", *every, "--fail-if-due")
    assert expired.exit_code == 2
    assert json.loads(expired.stdout)["version"] == 1  # the listing is printed first
    line = error_line(expired)
    assert "2 expired" in line and str(world.root / "expired") in line and "old" in line

    due = cli.emu("certs", "list", *world.folders("due", "renewed"), "--fail-if-due")
    assert due.exit_code == 1
    assert error_line(due).startswith("error: 1 due for renewal: " + str(world.root / "due"))

    valid = cli.emu("certs", "list", *world.folders("renewed"), "--fail-if-due")
    assert (valid.exit_code, valid.stderr) == (0, "")
    # a revoked record and superseded certificates never fail a listing
    revoked = cli.emu("certs", "list", "--fleet", str(world.store), "--fail-if-due")
    assert revoked.exit_code == 2 and "1 expired: old" in error_line(revoked)


def test_a_folder_that_cannot_be_read_is_a_problem_row_a_warning_and_with_fail_if_due_2(
    world: World, cli: CLI
) -> None:
    damaged = world.root / "damaged"
    damaged.mkdir()
    (damaged / "journal.json").write_text("{not json")
    folders = [*world.folders("renewed"), str(damaged), str(world.cli.tmp)]
    listed = cli.emu("certs", "list", *folders)
    assert listed.exit_code == 0
    entries = json.loads(listed.stdout)["certificates"]
    assert [e["status"] for e in entries] == ["valid", "superseded", "problem", "problem"]
    assert "damaged" in entries[2]["problem"]
    assert "not a certificate folder" in entries[3]["problem"]
    assert "2 folder(s) hold no usable certificate" in listed.stderr

    failing = cli.emu("certs", "list", *folders, "--fail-if-due")
    assert failing.exit_code == 2 and "2 unreadable" in error_line(failing)


def test_expiring_keeps_the_certificates_in_use_with_that_little_left(
    world: World, cli: CLI
) -> None:
    every = [*world.folders("expired", "due", "renewed", "missing"), "--fleet", str(world.store)]
    kept = world.listing(*every, "--expiring", "100d")["certificates"]
    # due: 5 days left; the expired ones; the problem; never a superseded or revoked one
    assert [(e["key"] or Path(e["folder"]).name, e["status"]) for e in kept] == [
        ("expired", "expired"),
        ("due", "due"),
        ("missing", "problem"),
        ("old", "expired"),
    ]
    assert all(e["days_left"] is None or e["days_left"] <= 100 for e in kept)
    assert [e["status"] for e in world.listing(*every, "--expiring", "3d")["certificates"]] == [
        "expired",
        "problem",
        "expired",
    ]


def test_before_sets_when_a_folder_is_due_as_for_sectigo_renew(world: World, cli: CLI) -> None:
    due = world.folders("due")
    assert [e["status"] for e in world.listing(*due)["certificates"]] == ["due"]
    (entry,) = world.listing(*due, "--before", "1d")["certificates"]
    assert entry["status"] == "valid" and 4.9 < entry["days_left"] < 5.1
    (early,) = world.listing(*due, "--before", "200d")["certificates"]
    assert early["status"] == "due"
    assert datetime.fromisoformat(early["renewal_time"]) < datetime.fromisoformat(
        entry["renewal_time"]
    )
    bad = cli.emu("certs", "list", *due, "--before", "a while")
    assert bad.exit_code == 2 and "--before must be a number" in error_line(bad)


def test_the_fleet_store_comes_from_the_environment_as_for_sectigo_fleet(
    world: World, cli: CLI
) -> None:
    document = cli.json("certs", "list", env={"SECTIGO_FLEET_STORE": str(world.store)})
    assert [e["key"] for e in document["certificates"]] == [
        "old",
        "renewed",
        "renewed",
        "revoked",
        "valid",
    ]


def test_a_store_with_another_key_fails_with_a_clear_error_and_no_secret(
    world: World, cli: CLI
) -> None:
    key = "another-secret-that-is-long-enough-1234567890"
    result = cli.emu("certs", "list", "--fleet", str(world.store), env={"SECTIGO_FLEET_KEY": key})
    assert result.exit_code == 1 and result.stdout == ""
    line = error_line(result)
    assert str(world.store) in line and key not in result.stderr
    # with --fail-if-due, a store that cannot be read is as bad as an expired certificate
    strict = ("certs", "list", "--fleet", str(world.store), "--fail-if-due")
    failing = cli.emu(*strict, env={"SECTIGO_FLEET_KEY": key})
    assert failing.exit_code == 2 and error_line(failing) == line


def test_bad_input_is_a_usage_error_before_anything_is_read(cli: CLI, tmp_path: Path) -> None:
    nothing = cli.emu("certs", "list")
    assert nothing.exit_code == 2 and "nothing to list" in error_line(nothing)
    bad = cli.emu("certs", "list", str(tmp_path), "--expiring", "soon")
    assert bad.exit_code == 2 and "--expiring must be a number" in error_line(bad)
    empty = cli.emu("certs", "list", "--fleet", " ")
    assert empty.exit_code == 2 and "no fleet store: give --fleet" in error_line(empty)
    missing = cli.emu("certs", "list", "--fleet", str(tmp_path / "typo.sqlite3"))
    assert missing.exit_code == 1 and "no fleet store at" in error_line(missing)
    typo = ("certs", "list", "--fleet", str(tmp_path / "typo.sqlite3"), "--fail-if-due")
    assert cli.emu(*typo).exit_code == 2
    assert not (tmp_path / "typo.sqlite3").exists()
    assert not (tmp_path / "typo.sqlite3.key").exists()


def test_without_the_emulator_now_is_this_machines_clock(cli: CLI, tmp_path: Path) -> None:
    cli.json("issue", "-a", "1", "-d", "api.example.com", str(tmp_path / "api"))  # in 2030
    result = cli("--json", "certs", "list", str(tmp_path / "api"))
    assert result.exit_code == 0, result.stderr
    (entry,) = json.loads(result.stdout)["certificates"]
    not_after = datetime.fromisoformat(entry["not_after"])
    assert entry["status"] == "valid"
    expected = (not_after - datetime.now().astimezone()) / timedelta(days=1)
    assert abs(entry["days_left"] - expected) < 0.1 and entry["days_left"] > 365
