"""The auth commands: authenticate, --debug, --cache, login and logout; stored tokens reused
between runs (the embedded emulator, and one served over HTTP for the file store).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.cli.helpers import CLI, error_line, mode

# -- auth (embedded emulator: tokens in a file beside its database) -------------------------------


def test_auth_flow(cli: CLI) -> None:
    assert cli.ok("auth").stdout == "user authenticated and credentials cached\n"
    debug = cli.ok("auth", "--debug").stdout.splitlines()
    assert debug[0].startswith("credentials are valid until ")
    assert debug[1].startswith("access token: valid until ")
    assert debug[2].startswith("refresh token: refreshable until ")
    cache = cli.ok("auth", "--cache").stdout.strip()
    assert Path(cache).is_file() and mode(Path(cache)) == 0o600
    state = cli.json("--json", "auth", "--debug")
    assert state["accessValid"] is True and state["username"] == "tester"
    cli.ok("auth", "logout")
    assert not Path(cache).exists()
    assert cli.ok("auth", "--debug").stdout.startswith("credentials are expired or invalid\n")
    assert cli.ok("auth", "--cache").stdout.startswith("no credentials cache file exists")
    assert cli.ok("auth", "login").stdout.startswith("logged in as tester at emulator.local")
    assert Path(cache).is_file()


def test_stored_tokens_are_reused_between_runs(cli: CLI) -> None:
    cli.ok("auth")
    cli.ok("licenses")
    cli.ok("authorities")
    assert cli.requests["POST /auth/pwd"] == 1


# -- real HTTP: the emulator in a thread, the CLI pointed at it ----------------------------------


def test_auth_login_prompts_and_stores_tokens_in_a_file(cli: CLI, served: str) -> None:
    result = cli("-e", served, "auth", "login", input="tester\nsupersecretsquirrel\n")
    assert result.exit_code == 0, result.stderr
    assert "logged in as tester at 127.0.0.1:" in result.stdout
    assert "supersecretsquirrel" not in result.output
    cache = cli("-e", served, "-u", "tester", "auth", "--cache").stdout.strip()
    assert cache.startswith(str(cli.tmp / "cache" / "sectigo-iot" / "tokens"))
    assert mode(Path(cache)) == 0o600
    # with stored tokens, the username alone is enough
    listing = cli("-e", served, "-u", "tester", "--json", "licenses")
    assert listing.exit_code == 0, listing.stderr
    assert cli("-e", served, "-u", "tester", "auth", "logout").exit_code == 0
    again = cli("-e", served, "-u", "tester", "licenses")
    assert again.exit_code == 4
    assert "no password to log in with" in error_line(again)


def test_expiry_math() -> None:
    from sectigo_iot.cli.commands.auth import go_time

    moment = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc) + timedelta(0)
    assert go_time(moment.timestamp())[:4] == "2024"
