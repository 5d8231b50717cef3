"""Issue 21, items 9 and 10: nothing a server, a file or a user sends is interpreted by
the terminal, and what people copy is never split.

The hostile server is the emulator with every string of every JSON reply (and the text
status, and error bodies) carrying terminal escapes, bidi overrides, C1 controls, a
newline and Rich markup; every command that shows server data is run against it, as
tables and as JSON.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from sectigo_iot.emulator import Emulator
from tests.cli.helpers import CLI, create_args, documents, error_line
from tests.support import rewrite_bodies, rewrite_replies

#: what a hostile peer puts in every text field: OSC title + BEL, CSI clear screen, a
#: C1 CSI, bidi override / isolate / marks, CR and backspace, a newline that would fake
#: a row, Rich markup that crashed tables, an emoji code, a fingerprint-like value, and a
#: lone surrogate (a JSON escape no terminal can print)
HOSTILE = (
    " shop [/prod] [bold red]x[/] :smile: 93:AB:4C"
    " \x1b]0;pwned\x07 \x1b[2J \x9b31m \u202eevil\u202c \u2066iso\u2069 \u200f\u200e\u061c"
    " fake\nrow |x| \r\x08 \x7f \u2028 \ud800"
)
#: none of these may reach the terminal raw
RAW_CONTROLS = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\ud800-\udfff]"
)
#: the visible text that must print literally (not markup, not emoji)
LITERAL = ("shop [/prod]", "[bold red]x[/]", ":smile:", "93:AB:4C")
#: the escapes that must be shown instead
ESCAPED = (
    "\\x1b]0;pwned\\x07",
    "\\x1b[2J",
    "\\x9b31m",
    "\\u202eevil\\u202c",
    "\\u2066iso\\u2069",
    "\\ud800",
)
#: JSON also escapes C1 and bidi characters (json.dumps does C0 itself)
JSON_RAW = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\ud800-\udfff]"
)


def _poison(value: Any, keep: frozenset[str]) -> Any:
    """Every string in a JSON value with HOSTILE appended (keys in ``keep`` untouched)."""
    if isinstance(value, dict):
        return {k: v if k in keep else _poison(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [_poison(item, keep) for item in value]
    return value + HOSTILE if isinstance(value, str) else value


def hostile_server(emulator: Emulator, keep: frozenset[str] = frozenset()) -> None:
    """Every JSON or text reply of the emulator (but the login) poisoned."""

    def poison(body: bytes, kind: bytes) -> bytes:
        if kind.startswith(b"application/json"):
            return json.dumps(_poison(json.loads(body), keep)).encode()  # \ud800 escaped
        if kind.startswith(b"text/plain"):
            return (body.decode() + HOSTILE.replace("\ud800", "")).encode()
        return body

    rewrite_bodies(emulator, lambda scope: not scope["path"].startswith("/auth"), poison)


def _assert_safe(text: str) -> None:
    """No raw control or bidi character (but newlines between lines)."""
    found = RAW_CONTROLS.findall(text)
    assert not found, (found, text)
    assert "\x1b" not in text


def _assert_human(text: str) -> None:
    _assert_safe(text)
    for literal in LITERAL:
        assert literal in text, (literal, text)
    for escaped in ESCAPED:
        assert escaped in text, (escaped, text)
    # the newline inside a value is shown, so it starts no row of its own
    assert "fake\\x0arow" in text
    assert not any(line.startswith(("row", "│ row")) for line in text.splitlines())


def _assert_json(text: str) -> list[Any]:
    assert not JSON_RAW.findall(text), JSON_RAW.findall(text)
    assert "\\u202e" in text and "\\u009b" in text
    return documents(text)  # the escapes decode back to exactly what the server sent


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value."""
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


PASSWORD = "s3cretpass"


@pytest.fixture
def batch_id(cli: CLI) -> int:
    """A ready batch, created before the server turns hostile."""
    return cli.create()


VIEWS = [
    ["authorities", "-b"],
    ["profiles"],
    ["profiles", "-i", "42"],
    ["profiles", "-i", "42", "-p"],
    ["organization"],
    ["find", "-n", "example.com"],
    ["batches", "-i", "{batch}"],
    ["batches", "-i", "{batch}", "--status"],
]


def _hostile_view(cli: CLI, batch_id: int, output: str, view: list[str]) -> Result:
    """``sectigo --emulator OUTPUT VIEW`` against the hostile server: it must succeed."""
    args = [arg.format(batch=batch_id) for arg in view]
    cli.hooks.append(hostile_server)
    result = cli.emu(output, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: " ".join(v))
def test_hostile_server_text_is_shown_escaped_in_tables(
    cli: CLI, batch_id: int, view: list[str]
) -> None:
    result = _hostile_view(cli, batch_id, "--table", view)
    if "--status" in view:  # the text status is printed normalized (upper case)
        _assert_safe(result.stdout)
        assert "\\x1b]0;PWNED\\x07" in result.stdout
    else:
        _assert_human(result.stdout)
    _assert_safe(result.stderr)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: " ".join(v))
def test_hostile_server_text_is_escaped_in_json_and_decodes_back(
    cli: CLI, batch_id: int, view: list[str]
) -> None:
    documents = _assert_json(_hostile_view(cli, batch_id, "--json", view).stdout)
    if "--status" not in view:  # (the text status is normalized)
        assert any(HOSTILE in text for text in _strings(documents))  # exactly as sent


def test_hostile_error_bodies_and_reject_reasons_are_escaped(cli: CLI) -> None:
    cli.hooks.append(
        lambda e: e.inject("GET", "/api/v1/devices", "error", status=400, message=HOSTILE)
    )
    failed = cli.emu("licenses")
    assert failed.exit_code == 1
    line = error_line(failed)
    _assert_safe(failed.stderr)
    assert "shop [/prod]" in line and "\\x1b]0;pwned\\x07" in line and "fake\\x0arow" in line

    def reject(batch: dict[str, Any]) -> None:
        batch.update(status="REJECTED", active=False, rejectReason=HOSTILE)

    cli.hooks[:] = [lambda e: rewrite_replies(e, "GET", r"/api/v1/batches/\d+", reject)]
    rejected = cli.emu(*create_args("--wait"))
    assert rejected.exit_code == 5
    _assert_safe(rejected.stderr)
    assert "\\u202eevil\\u202c" in error_line(rejected)


def test_hostile_progress_lines_are_escaped(cli: CLI) -> None:
    """The wait's progress lines show the server's status text, escaped."""

    def odd_status(batch: dict[str, Any]) -> None:
        batch["status"] = (
            "READY_FOR_DOWNLOAD" if batch["status"] == "READY_FOR_DOWNLOAD" else HOSTILE
        )

    cli.hooks.append(lambda e: rewrite_replies(e, "GET", r"/api/v1/batches/\d+", odd_status))
    result = cli.emu(*create_args("--wait"), env={"SECTIGO_EMULATOR_DELAY": "0.3"})
    assert result.exit_code == 0, result.stderr
    _assert_safe(result.stderr)


def test_batch_name_with_rich_markup_prints_as_given(cli: CLI) -> None:
    """The name that crashed tables (MarkupError) prints, literally, as a user typed it."""
    name = "shop [/prod] [link=https://evil.example]click[/link] \x1b[31mred"
    created = cli.emu("--table", *create_args("-b", name))
    assert created.exit_code == 0, created.stderr
    assert "shop [/prod] [link=https://evil.example]click[/link] \\x1b[31mred" in created.stdout
    _assert_safe(created.stdout)
    batch = json.loads(cli.ok("batches", "-i", "10001").stdout)
    assert batch["batchName"] == name


def test_file_names_and_contents_are_escaped(cli: CLI) -> None:
    """inspect shows a file name and certificate text: a hostile file name prints escaped."""
    created = cli.json(*create_args("--download", "certs", "--pem"))
    hostile = cli.tmp / "certs" / "evil \x1b]0;x\x07 [red] :smile: \u202e.pem"
    (cli.tmp / created["pem"][0]["cert"]).rename(hostile)
    shown = cli.emu("--table", "inspect", str(hostile))
    assert shown.exit_code == 0, shown.stderr
    _assert_safe(shown.stdout)
    assert "evil \\x1b]0;x\\x07 [red] :smile: \\u202e.pem" in shown.stdout
    # the password prompt names the file, escaped too
    archive = cli.tmp / "certs" / "evil \x1b]0;x\x07 \u202e.zip"
    (cli.tmp / created["zip"]).rename(archive)
    prompted = cli.emu("--table", "inspect", str(archive), input=f"{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.stderr
    _assert_safe(prompted.stderr + prompted.stdout)
    assert "PKCS#12 password for evil \\x1b]0;x\\x07 \\u202e.zip" in prompted.stderr


# -- item 10: long identifiers whole at 80 columns; help fits 80 columns -------------------


def test_serials_fingerprints_and_paths_are_never_split_at_80_columns(cli: CLI) -> None:
    created = cli.json(*create_args("--download", "certs/a-rather-long-folder-name", "--pem"))
    cert = created["pem"][0]["fullchain"]
    long_name = "a-very-long-host-name-that-people-copy.subdomain.example.com"
    cli.ok(*create_args(domain=long_name))
    env = {"COLUMNS": "80"}
    found = cli.emu("--table", "find", "-n", long_name, env=env)
    serial = json.loads(cli.ok("find", "-n", long_name).stdout)["items"][0]["serialNumber"]
    inspected = cli.emu("--table", "inspect", cert, env=env)
    fingerprint = json.loads(cli.ok("inspect", cert).stdout)[0]["fingerprint_sha256"]
    assert len(fingerprint) > 80  # wider than the terminal by itself
    for shown, value in ((found, serial), (found, long_name), (inspected, fingerprint)):
        assert shown.exit_code == 0, shown.stderr
        assert any(value in line for line in shown.stdout.splitlines()), (value, shown.stdout)
    # prose may wrap, but between words only: every word of the table is whole
    authorities = cli.emu("--table", "authorities", env={"COLUMNS": "30"})
    for word in ("profileName", "ecosystem", "TRISA", "Profile"):
        assert word in authorities.stdout, authorities.stdout


@pytest.mark.parametrize("columns", [30, 60, 80, 400])
def test_table_cells_wrap_only_between_words_and_whole_columns_never(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    from sectigo_iot.cli._output import Output

    monkeypatch.setenv("COLUMNS", str(columns))
    path = "/srv/certificates of the shop/api.example.com/fullchain.pem"
    serial = "4ADDF011CD7E6AC24ADDF011CD7E6AC24ADDF011"
    prose = "a reason that is long enough to need wrapping on a narrow terminal " * 2
    Output(False).table(["folder", "serial", "detail"], [[path, serial, prose]], whole=("folder",))
    lines = capsys.readouterr().out.splitlines()
    assert any(path in line and serial in line for line in lines)
    for word in prose.split():
        assert any(f" {word} " in f" {line} " for line in lines), word
    if columns >= 400:  # room enough: one row, nothing wrapped, within the terminal
        assert len(lines) == 5 and max(map(len, lines)) <= columns


def _every_command_path() -> list[list[str]]:
    from typer.main import get_command

    from sectigo_iot.cli import app

    paths: list[list[str]] = [[]]

    def walk(command: Any, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*path, name])
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", _every_command_path(), ids=lambda p: " ".join(p) or "sectigo")
def test_help_fits_80_columns(cli: CLI, path: list[str]) -> None:
    result = cli(*path, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    wide = [line for line in result.stdout.splitlines() if len(line) > 80]
    assert not wide, wide


def test_hostile_log_records_are_escaped(tmp_path: Path) -> None:
    """--verbose logs (and tracebacks) go through the same escaping."""
    code = (
        "import logging, sys\n"
        "from sectigo_iot.cli._logs import configure_logging\n"
        "configure_logging(True)\n"
        f"logging.getLogger('sectigo_iot.x').info('got %s', {HOSTILE!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    _assert_safe(done.stderr)
    assert "\\x1b]0;pwned\\x07" in done.stderr
