"""`sectigo issue` and `sectigo renew`, end to end through the embedded emulator.

The emulator issues 365-day certificates. Its clock is not persisted, so a test moves
it for one command with a hook on the emulators the CLI opens; elsewhere
``--before 400d`` makes a fresh certificate due.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sectigo_iot.cli.commands.lifecycle import parse_duration
from tests.cli.helpers import CLI, error_line, interrupted, mode
from tests.lifecycle.helpers import held_lock

DAY = 24 * 3600
NAMES = ("-d", "api.example.com", "-d", "www.api.example.com")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CLI:
    cli = CLI(tmp_path, monkeypatch)
    monkeypatch.setenv("SECTIGO_CERTS_ROOT", str(tmp_path / "certs"))
    return cli


def issue(cli: CLI, folder: Path | str, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = cli.json("issue", "-a", "1", *NAMES, *args, str(folder))
    return data


def issued(cli: CLI) -> int:
    """Certificates the emulator issued so far (licenses spent)."""
    return int(cli.json("licenses")["issued"])


def hook_writing(log: Path) -> str:
    """A deploy hook that appends its folder and action to ``log``."""
    return f'printf "%s %s\\n" "$SECTIGO_RENEWED_DIR" "$SECTIGO_RENEWED_ACTION" >> {log}'


def test_issue_then_issue_again_keeps(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "api"
    first = issue(cli, folder, "-o", "Example Inc")
    assert first["action"] == "issued" and first["reason"] == "empty"
    assert first["ok"] and not first["dryRun"] and first["batchId"]
    assert first["folder"] == str(folder) and first["error"] is None
    assert mode(folder) == 0o700 and mode(folder / "journal.json") == 0o600
    for name in ("cert.pem", "chain.pem", "fullchain.pem", "key.pem"):
        assert (folder / name).is_file()
    journal = json.loads((folder / "journal.json").read_text())
    assert journal["spec"]["dns_names"] == ["www.api.example.com"]
    assert journal["spec"]["params"] == {"organizationName": "Example Inc"}
    found = cli.json("find", "-s", first["serialNumber"])["items"][0]
    assert found["commonName"] == "api.example.com"

    again = issue(cli, folder, "-o", "Example Inc")
    assert (again["action"], again["reason"]) == ("kept", "valid")
    assert again["serialNumber"] == first["serialNumber"] and again["batchId"] is None
    assert issued(cli) == 1


def test_issue_without_dir_writes_under_the_root_that_renew_reads(cli: CLI, tmp_path: Path) -> None:
    data = cli.json("issue", "-a", "1", "-d", "API.example.com", "--dns-name", "b.example.com")
    assert data["folder"] == str(tmp_path / "certs" / "api.example.com")
    listing = cli.json("renew")
    assert [(e["folder"], e["action"]) for e in listing] == [(data["folder"], "kept")]
    # --root overrides $SECTIGO_CERTS_ROOT
    other = cli.json("issue", "-a", "1", "-d", "c.example.com", "--root", "elsewhere")
    assert other["folder"] == str(tmp_path / "elsewhere" / "c.example.com")


def test_renew_when_due_runs_the_deploy_hook_once(cli: CLI, tmp_path: Path) -> None:
    root = tmp_path / "certs"
    first = issue(cli, root / "api")
    log = tmp_path / "hook.log"
    before = (root / "api" / "cert.pem").read_bytes()

    listing = cli.json("renew", "--before", "400d", "--deploy-hook", hook_writing(log))
    assert len(listing) == 1
    entry = listing[0]
    assert (entry["action"], entry["reason"]) == ("renewed", "due")
    assert entry["replacedSerial"] == first["serialNumber"] != entry["serialNumber"]
    assert entry["hook"] == {"exitCode": 0, "ok": True} and entry["ok"]
    assert entry["revoked"] is False
    assert log.read_text() == f"{root / 'api'} renewed\n"
    assert (root / "api" / "cert.pem").read_bytes() != before
    assert issued(cli) == 2
    # the old certificate is left alone without --revoke-replaced
    assert cli.json("find", "-s", first["serialNumber"])["items"][0]["status"] != "REVOKED"

    # valid again: kept, and the hook does not run
    kept = cli.json("renew", "--deploy-hook", hook_writing(log))
    assert [(e["action"], e["hook"]) for e in kept] == [("kept", None)]
    assert log.read_text().count("\n") == 1


def test_renew_follows_the_emulator_clock(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "certs" / "api"
    issue(cli, folder)
    assert cli.json("renew")[0]["action"] == "kept"
    cli.hooks.append(lambda emulator: emulator.clock.advance(340 * DAY))
    assert [e["action"] for e in cli.json("renew", str(folder))] == ["renewed"]


def test_hook_gets_the_folder_and_never_the_passwords(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "api"
    issue(cli, folder)
    out = tmp_path / "env.txt"
    hook = f"env > {out}; echo from the hook"
    result = cli.emu(
        "renew",
        "--force",
        "--deploy-hook",
        hook,
        str(folder),
        env={"SECTIGO_PASSWORD": "hunter2-password", "SECTIGO_PKCS12_PASSWORD": "p12-secret"},
    )
    assert result.exit_code == 0, result.stderr
    entry = json.loads(result.stdout)[0]
    assert (entry["action"], entry["reason"]) == ("renewed", "forced")
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["SECTIGO_RENEWED_DIR"] == str(folder)
    assert env["SECTIGO_RENEWED_ACTION"] == "renewed"
    assert env["SECTIGO_RENEWED_SERIAL"] == entry["serialNumber"]
    assert env["SECTIGO_REPLACED_SERIAL"] == entry["replacedSerial"]
    assert "SECTIGO_PASSWORD" not in env and "SECTIGO_PKCS12_PASSWORD" not in env
    # the hook's output goes to stderr: stdout stays one JSON document
    assert "from the hook" in result.stderr and "from the hook" not in result.stdout


def test_a_failing_hook_is_reported_but_the_renewal_stands(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "api"
    issue(cli, folder)
    result = cli.emu("renew", "--force", "--deploy-hook", "echo oops; exit 3", str(folder))
    assert result.exit_code == 1
    entry = json.loads(result.stdout)[0]
    assert entry["action"] == "renewed" and entry["hook"] == {"exitCode": 3, "ok": False}
    assert entry["ok"] is False and entry["error"] is None
    assert "the deploy hook for" in error_line(result) and "exit 3" in error_line(result)
    # in place: the next run keeps it
    assert cli.json("renew", str(folder))[0]["serialNumber"] == entry["serialNumber"]


def test_dry_run_spends_nothing(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "certs" / "api"
    first = issue(cli, folder)
    journal = (folder / "journal.json").read_bytes()
    sent_before = sum(cli.requests.values())
    log = tmp_path / "hook.log"

    listing = cli.json("renew", "--dry-run", "--before", "400d", "--deploy-hook", hook_writing(log))
    assert [(e["action"], e["reason"], e["dryRun"]) for e in listing] == [("renewed", "due", True)]
    assert listing[0]["serialNumber"] == first["serialNumber"] and listing[0]["hook"] is None
    assert sum(cli.requests.values()) == sent_before  # nothing was sent
    assert not log.exists()
    assert (folder / "journal.json").read_bytes() == journal

    fresh = tmp_path / "new"
    planned = cli.json("issue", "--dry-run", "-a", "1", "-d", "new.example.com", str(fresh))
    assert (planned["action"], planned["dryRun"]) == ("issued", True)
    assert not fresh.exists()
    assert sum(cli.requests.values()) == sent_before
    assert issued(cli) == 1


def test_a_damaged_journal_fails_its_folder_and_the_others_go_on(cli: CLI, tmp_path: Path) -> None:
    root = tmp_path / "certs"
    for name in ("a", "b", "c"):
        cli.json("issue", "-a", "1", "-d", f"{name}.example.com", str(root / name))
    (root / "b" / "journal.json").write_text("{not json")
    (root / "not-a-cert").mkdir()  # no journal: not a certificate folder, skipped
    log = tmp_path / "hook.log"

    result = cli.emu("renew", "--before", "400d", "--deploy-hook", hook_writing(log))
    assert result.exit_code == 1, result.stderr
    listing = json.loads(result.stdout)
    assert [(Path(e["folder"]).name, e["action"]) for e in listing] == [
        ("a", "renewed"),
        ("b", "failed"),
        ("c", "renewed"),
    ]
    failed = listing[1]
    assert failed["ok"] is False and failed["error"].startswith("JournalError")
    assert failed["serialNumber"] is None and failed["hook"] is None
    assert sorted(log.read_text().splitlines()) == [
        f"{root / 'a'} renewed",
        f"{root / 'c'} renewed",
    ]
    line = error_line(result)
    assert "1 of 3 folder(s)" in line and str(root / "b") in line


def test_renew_given_folders_without_journal_fails_them_untouched(cli: CLI, tmp_path: Path) -> None:
    issue(cli, tmp_path / "api")
    missing = tmp_path / "missing"
    result = cli.emu("renew", str(tmp_path / "api"), str(missing))
    assert result.exit_code == 1
    assert [e["action"] for e in json.loads(result.stdout)] == ["kept", "failed"]
    assert not missing.exists()


def test_revoke_replaced_revokes_the_old_certificate(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "api"
    first = issue(cli, folder)
    entry = cli.json("renew", "--before", "400d", "--revoke-replaced", str(folder))[0]
    assert entry["action"] == "renewed" and entry["revoked"] is True
    assert entry["replacedSerial"] == first["serialNumber"]
    assert cli.json("find", "-s", first["serialNumber"])["items"][0]["status"] == "REVOKED"
    assert cli.json("find", "-s", entry["serialNumber"])["items"][0]["status"] != "REVOKED"


def test_issue_renews_when_the_names_change(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "api"
    issue(cli, folder)
    changed = cli.json("issue", "-a", "1", "-d", "api.example.com", str(folder))
    assert (changed["action"], changed["reason"]) == ("renewed", "names")


def test_renew_with_nothing_to_do(cli: CLI, tmp_path: Path) -> None:
    result = cli.ok("renew")
    assert json.loads(result.stdout) == []
    assert "no certificate folders under" in result.stderr
    assert not cli.opened  # no emulator (no client) was even opened


def test_table_output(cli: CLI, tmp_path: Path) -> None:
    issue(cli, tmp_path / "certs" / "api")
    result = cli.ok("--table", "renew", "--dry-run", "--force", env={"COLUMNS": "200"})
    assert "dry run: nothing was sent or written" in result.stdout
    assert "renewed (forced)" in result.stdout and "renewal was forced" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["renew", "--before", "30"], "--before must be a number followed by d, h or m"),
        (["renew", "--before", "two weeks"], "got 'two weeks'"),
        (["issue", "-a", "1", "x"], "must specify domain name"),
        (["issue", "-d", "a.example.com", "x"], "must specify authority ID"),
        (["issue", "-a", "1", "-d", "not a domain", "x"], "not a domain"),
        (["renew", "--root", ""], "--root must not be empty"),
    ],
)
def test_usage_errors(cli: CLI, args: list[str], message: str) -> None:
    result = cli.emu(*args)
    assert result.exit_code == 2, result.stdout
    assert message in error_line(result)
    assert not cli.requests


def test_parse_duration() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration(" 1.5D ") == timedelta(hours=36)


def test_help_documents_scheduling_and_json(cli: CLI) -> None:
    text = cli("renew", "--help", env={"COLUMNS": "100"}).stdout
    for word in ("cron", "systemd", "OnCalendar", "SECTIGO_RENEWED_DIR", '"action"', "--dry-run"):
        assert word in text


# -- issue 21: a locked folder, Ctrl-C, a dry run that replaces nothing -------------------


def test_a_locked_folder_is_named_with_its_holder_at_once_then_given_up(
    cli: CLI, tmp_path: Path
) -> None:
    folder = tmp_path / "api"
    folder.mkdir(mode=0o700)
    with held_lock(folder) as holder:
        for command in (["issue", "-a", "1", *NAMES], ["renew"]):
            if command == ["renew"]:
                (folder / "journal.json").write_text("{}")  # found by renew: a journal
            result = cli.emu(*command, "--lock-timeout", "0.2", str(folder))
            assert result.exit_code == 1, result.stderr
            waiting = f"waiting for {folder}: locked by pid {holder.pid} ("
            assert result.stderr.startswith(waiting), result.stderr
            assert "still locked by pid" in result.stderr and "0.2 s" in result.stderr
    assert not cli.requests.get("PUT /api/v1/batches/createSingleCertBatch")
    assert "--lock-timeout" in cli("renew", "--help", env={"COLUMNS": "100"}).stdout


def test_ctrl_c_while_issue_waits_names_the_batch_and_how_to_resume(
    cli: CLI, tmp_path: Path
) -> None:
    folder = tmp_path / "api"

    def journaled(process: subprocess.Popen[str]) -> str:
        deadline = time.monotonic() + 60
        while not _batch_journaled(folder):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        return ""

    command = [sys.executable, "-m", "sectigo_iot.cli", "--emulator", "issue", "-a", "1"]
    done = interrupted([*command, *NAMES, str(folder)], tmp_path, journaled)
    batch_id = json.loads((folder / "journal.json").read_text())["pending"]["batch_id"]
    assert done.returncode == 130, done.stderr
    assert f"interrupted: for {folder}, batch {batch_id} was created" in done.stderr
    assert "Run the same 'sectigo issue' again to resume it" in done.stderr
    assert f"'sectigo download -i {batch_id}'" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def _batch_journaled(folder: Path) -> bool:
    try:
        pending = json.loads((folder / "journal.json").read_text())["pending"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(pending and pending.get("batch_id"))


def test_renew_dry_run_on_a_valid_folder_replaces_nothing(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "certs" / "api"
    first = issue(cli, folder)
    [planned] = cli.json("renew", "--dry-run")
    assert (planned["action"], planned["replacedSerial"]) == ("kept", None)
    table = cli.ok("--table", "renew", "--dry-run", env={"COLUMNS": "200"}).stdout
    assert "replace" not in table and first["serialNumber"][:10] in table
    forced = cli.ok("--table", "renew", "--dry-run", "--force", env={"COLUMNS": "200"}).stdout
    assert "would replace" in forced and "replaced" not in forced


def test_renew_given_aliases_of_one_folder_works_on_it_once(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "certs" / "api"
    issue(cli, folder)
    (tmp_path / "link").symlink_to(folder)
    aliases = [str(folder), str(tmp_path / "link"), str(folder / ".." / "api"), "certs/api"]
    listing = cli.json("renew", "--before", "400d", *aliases)
    assert [(e["folder"], e["action"]) for e in listing] == [(str(folder), "renewed")]
    assert issued(cli) == 2


def test_issue_shows_the_batch_progress_on_a_terminal_only(cli: CLI, tmp_path: Path) -> None:
    import pty

    env = {**os.environ, "SECTIGO_EMULATOR_DELAY": "2", "COLUMNS": "200"}
    command = [sys.executable, "-m", "sectigo_iot.cli", "--emulator", "issue", "-a", "1", *NAMES]
    main, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [*command, str(tmp_path / "tty")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=60,
        )
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything written was read
            while chunk := os.read(main, 65536):
                shown += chunk
    finally:
        os.close(main)
    assert done.returncode == 0, shown
    batch_id = json.loads(done.stdout)["batchId"]
    assert f"{tmp_path / 'tty'}: batch {batch_id}: PROCESSING".encode() in shown

    piped = subprocess.run(
        [*command, str(tmp_path / "pipe")], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    assert piped.returncode == 0 and b"PROCESSING" not in piped.stderr


def test_renew_names_a_journal_that_is_a_fifo(cli: CLI, tmp_path: Path) -> None:
    folder = tmp_path / "certs" / "api"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "journal.json")
    result = cli.emu("renew")  # found under the root, and refused at once
    assert result.exit_code == 1
    [entry] = json.loads(result.stdout)
    assert entry["action"] == "failed" and "is a FIFO, not a regular file" in entry["error"]
