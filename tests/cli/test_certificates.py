"""The certificate commands: find and revoke (every RFC 5280 reason), in JSON and in
table mode.
"""

from __future__ import annotations

import pytest

from tests.cli.helpers import API_DATE, CLI


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
