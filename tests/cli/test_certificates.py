"""The certificate commands: find and revoke (every RFC 5280 reason), in JSON and in
table mode; revoke --cn NAME --all.
"""

from __future__ import annotations

import re

import pytest

from tests.cli.helpers import API_DATE, CLI, error_line


def test_find(cli: CLI) -> None:
    cli.create("example.com")
    cli.create("other.example.com")
    found = cli.json("find", "-n", "example.com")
    assert found["totalCount"] == 1
    (item,) = found["items"]
    assert set(item) == {"deviceId", "commonName", "serialNumber", "creationDate", "status"}
    assert item["commonName"] == "example.com"
    assert API_DATE.match(item["creationDate"])
    by_serial = cli.json("find", "-s", item["serialNumber"])
    assert by_serial["items"] == [item]


def test_revoke(cli: CLI) -> None:
    """`sectigo revoke -p 42 -r "cessation of operation" -s SERIAL` prints nothing."""
    cli.create()
    serial = cli.serial_of("example.com")
    result = cli.ok("revoke", "-p", "42", "-r", "cessation of operation", "-s", serial)
    assert result.stdout == ""
    with cli.state() as state:
        (revocation,) = state.revocations()
    assert (revocation.serial_number, revocation.reason_code) == (serial, 5)
    assert cli.json("find", "-s", serial)["items"][0]["status"] == "REVOKED"


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (None, 0),
        ("Key Compromise", 1),
        ("CA COMPROMISE", 2),
        ("affiliationchanged", 3),
        ("superseded", 4),
        ("remove from crl", 8),
        ("privilege withdrawn", 9),
        ("aa compromise", 10),
    ],
)
def test_revoke_reasons(cli: CLI, reason: str | None, code: int) -> None:
    cli.create()
    serial = cli.serial_of("example.com")
    args = ["revoke", "-p", "42", "-s", serial.lower()]
    if reason is not None:
        args += ["-r", reason]
    cli.ok(*args)
    with cli.state() as state:
        assert [r.reason_code for r in state.revocations()] == [code]


def test_revoke_in_table_mode_confirms(cli: CLI) -> None:
    cli.create()
    serial = cli.serial_of("example.com")
    out = cli.ok("--table", "revoke", "-p", "42", "-r", "superseded", "-s", serial).stdout
    assert out == f"revoked certificate {serial} (superseded) under profile 42\n"


# -- revoke --cn NAME --all --------------------------------------------------------------

REVOKE = "POST /api/v1/certificates/42/revoke"


def three_of(cli: CLI, name: str = "node.example.com") -> list[str]:
    """Three certificates for ``name`` (and one for another name): their serials."""
    for _ in range(3):
        cli.create(name)
    cli.create("other.example.com")
    return [item["serialNumber"] for item in cli.json("find", "-n", name)["items"]]


def test_revoke_all_revokes_each_once(cli: CLI) -> None:
    serials = three_of(cli)
    args = ("revoke", "--cn", "node.example.com", "--all", "-r", "key compromise")
    assert cli.json(*args) == [{"serialNumber": s, "outcome": "revoked"} for s in serials]
    assert cli.requests[REVOKE] == 3
    assert cli.json(*args) == [{"serialNumber": s, "outcome": "already revoked"} for s in serials]
    assert cli.requests[REVOKE] == 3  # the second run sent none
    with cli.state() as state:
        assert sorted((r.serial_number, r.reason_code) for r in state.revocations()) == sorted(
            (s, 1) for s in serials
        )


def test_revoke_all_dry_run_in_table_mode(cli: CLI) -> None:
    serials = three_of(cli)
    out = cli.ok(
        "--table",
        "revoke",
        "--cn",
        "node.example.com",
        "--all",
        "--dry-run",
        "--keep",
        serials[1].lower(),
        env={"COLUMNS": "200"},
    ).stdout
    assert "3 certificate(s) of node.example.com" in out
    for serial, outcome in zip(serials, ["would revoke", "kept", "would revoke"], strict=True):
        assert re.search(rf"{serial} +│ {outcome} ", out), out
    assert cli.requests[REVOKE] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all"], "--all needs --cn NAME"),
        (["--cn", " ", "--all"], "--all needs --cn NAME"),
        (["--cn", "node.example.com"], "go with --all"),
        (["--cn", "node.example.com", "--dry-run"], "go with --all"),
        (["--cn", "node.example.com", "--all", "-s", "0A1B"], "not both"),
        (["--all", "-s", "0A1B"], "not both"),
        (["--cn", "node.example.com", "--all", "-r", "bored"], "bored"),
        (["--cn", "node.example.com", "--all", "--keep", "XYZ"], "hexadecimal"),
    ],
)
def test_revoke_all_usage_errors_send_nothing(cli: CLI, args: list[str], message: str) -> None:
    result = cli.emu("revoke", *args)
    assert result.exit_code == 2, result.stderr
    assert message in error_line(result)
    assert sum(cli.requests.values()) == 0


def test_revoke_all_asks_on_a_terminal(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    serials = three_of(cli)
    monkeypatch.setattr("sectigo_iot.cli.commands.certificates.isatty", lambda stream: True)
    args = ("revoke", "--cn", "node.example.com", "--all", "-r", "superseded")
    declined = cli.emu(*args, input="n\n")
    assert declined.exit_code == 1
    asked = f"Revoke 3 certificate(s) of node.example.com (superseded): {', '.join(serials)}?"
    assert asked in declined.stderr
    assert "error: not revoked: not confirmed (nothing was revoked)" in declined.stderr
    assert cli.requests[REVOKE] == 0
    assert cli.ok("revoke", "--cn", "node.example.com", "--all", "--dry-run").exit_code == 0
    accepted = cli.emu(*args, "--keep", serials[0], input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert cli.requests[REVOKE] == 2
    nothing_left = cli.emu(*args, "--keep", serials[0])  # nothing to revoke: nothing asked
    assert nothing_left.exit_code == 0 and "[y/N]" not in nothing_left.stderr
