"""Issue 21, items 13 and 14 (what a newcomer hit): a busy port is one line, `serve
--verbose` logs each request (never a secret), --json/--table after the command,
revoke asks on a terminal, `python -m sectigo_iot`, shell completion."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import CLI, create_args
from tests.support import skip_outside_ci

PYTHON_M = [sys.executable, "-m", "sectigo_iot"]


def _run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        list(args), capture_output=True, text=True, timeout=60, check=False, **kwargs
    )


# -- item 13: a busy port; serve --verbose ---------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port somebody else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [[sys.executable, "-m", "sectigo_iot.emulator"], [*PYTHON_M, "serve"]],
    ids=["python -m sectigo_iot.emulator", "sectigo serve"],
)
def test_a_busy_port_is_one_error_line(busy_port: int, command: list[str]) -> None:
    done = _run(*command, "--port", str(busy_port))
    assert done.returncode == 1
    assert done.stderr == f"error: cannot listen on 127.0.0.1:{busy_port}: Address already in use\n"


def _start_serve(tmp_path: Path, *global_flags: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*PYTHON_M, *global_flags, "serve", "--port", "0", "--db", str(tmp_path / "s.sqlite3")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert process.stdout is not None
    url = ""
    while not url:
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else ""
        if line.strip().startswith("SECTIGO_ENDPOINT="):
            url = line.strip().split("=", 1)[1]
    return process, url


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return err


@pytest.mark.parametrize("verbose", [True, False], ids=["verbose", "quiet"])
def test_serve_verbose_logs_each_request_and_never_a_secret(
    cli: CLI, tmp_path: Path, verbose: bool
) -> None:
    process, url = _start_serve(tmp_path, *(["--verbose"] if verbose else []))
    try:
        env = {
            "SECTIGO_ENDPOINT": url,
            "SECTIGO_USERNAME": "tester",
            "SECTIGO_PASSWORD": "supersecretsquirrel",
        }
        created = cli(*create_args("-b", "batch name in the body"), env=env)
        assert created.exit_code == 0, created.stderr
        assert cli("licenses", env=env).exit_code == 0
    finally:
        log = _stop(process)
    lines = log.splitlines()
    expected = [
        "INFO sectigo_iot.emulator.requests: POST /auth/pwd 200",
        "INFO sectigo_iot.emulator.requests: PUT /api/v1/batches/createSingleCertBatch 200",
        "INFO sectigo_iot.emulator.requests: GET /api/v1/devices 200",
    ]
    if verbose:
        for line in expected:
            assert line in lines, log
    else:
        assert not any("sectigo_iot.emulator.requests" in line for line in lines), log
    for secret in ("supersecretsquirrel", "s3cretpass", "batch name in the body", "Bearer", "eyJ"):
        assert secret not in log


# -- item 14: --json/--table after the command --------------------------------------------


def test_json_and_table_are_accepted_after_the_command(cli: CLI) -> None:
    as_json = cli.emu("authorities", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)[0]["id"] == 1
    as_table = cli.emu("authorities", "--table")
    assert as_table.stdout.startswith("Authorities")
    # after the command wins over before it
    assert json.loads(cli.emu("--table", "licenses", "--json").stdout) == {
        "ordered": 10,
        "issued": 0,
    }
    assert cli.emu("--json", "licenses", "--table").stdout.startswith("Licenses")
    # sub-commands and the text outputs too
    login = cli.emu("auth", "login", "--json")
    assert json.loads(login.stdout)["username"] == "tester"
    batch_id = cli.create()
    status = cli.emu("batches", "-i", str(batch_id), "--status", "--json")
    assert json.loads(status.stdout) == {"batchId": batch_id, "status": "READY_FOR_DOWNLOAD"}


# -- item 14: revoke asks on a terminal -----------------------------------------------------


def _revoke_on_a_terminal(cli: CLI, serial: str, answer: str | None, *more: str) -> tuple[int, str]:
    """``sectigo --emulator revoke`` with a pseudo-terminal as stdin; returns the status
    and what it wrote on stderr. ``answer`` is typed once the question shows."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*PYTHON_M, "--emulator", "revoke", "-p", "42", "-s", serial, *more],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cli.tmp,
    )
    os.close(terminal)
    try:
        assert process.stderr is not None
        asked = ""
        if answer is not None:
            while "[y/N]" not in asked:
                ready, _, _ = select.select([process.stderr], [], [], 30)
                assert ready, asked
                asked += os.read(process.stderr.fileno(), 4096).decode()
            os.write(controller, answer.encode() + b"\n")
        _, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, asked + err


def _status_of(cli: CLI, serial: str) -> str:
    return str(cli.json("find", "-s", serial)["items"][0]["status"])


def test_revoke_asks_on_a_terminal_and_a_no_sends_nothing(cli: CLI) -> None:
    cli.create()
    serial = cli.serial_of("example.com")
    code, err = _revoke_on_a_terminal(cli, serial, "n")
    assert code == 1
    assert f"Revoke certificate {serial} (unspecified) under profile 42?" in err
    assert "error: not revoked: not confirmed (nothing was sent)" in err
    assert _status_of(cli, serial) != "REVOKED"
    code, err = _revoke_on_a_terminal(cli, serial, "y")
    assert code == 0, err
    assert _status_of(cli, serial) == "REVOKED"


def test_revoke_yes_skips_the_question_on_a_terminal(cli: CLI) -> None:
    cli.create()
    serial = cli.serial_of("example.com")
    code, err = _revoke_on_a_terminal(cli, serial, None, "--yes")
    assert code == 0, err
    assert "[y/N]" not in err
    assert _status_of(cli, serial) == "REVOKED"


def test_revoke_never_asks_when_stdin_is_not_a_terminal(cli: CLI) -> None:
    cli.create()
    serial = cli.serial_of("example.com")
    done = _run(
        *PYTHON_M, "--emulator", "revoke", "-p", "42", "-s", serial, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 0, done.stderr
    assert "[y/N]" not in done.stderr
    assert _status_of(cli, serial) == "REVOKED"


# -- item 14: python -m sectigo_iot; shell completion ---------------------------------------


def test_python_m_sectigo_iot_runs_the_cli(cli: CLI) -> None:
    from sectigo_iot import __version__

    assert _run(*PYTHON_M, "--version").stdout == f"sectigo version {__version__}\n"
    done = _run(*PYTHON_M, "--emulator", "licenses", cwd=cli.tmp)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ordered": 10, "issued": 0}


def test_python_m_sectigo_iot_without_the_cli_extra_says_what_to_install() -> None:
    code = (
        "import runpy, sys\n"
        "sys.modules['typer'] = None  # as if the cli extra were not installed\n"
        "sys.argv = ['sectigo', '--version']\n"
        "runpy.run_module('sectigo_iot', run_name='__main__')\n"
    )
    done = _run(sys.executable, "-c", code)
    assert done.returncode == 1
    assert done.stderr == 'error: the sectigo command needs typer: pip install "sectigo-iot[cli]"\n'


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_each_shell(cli: CLI, shell: str) -> None:
    result = cli("completion", shell)
    assert result.exit_code == 0
    assert "_SECTIGO_COMPLETE=complete_" + shell in result.stdout
    assert len(result.stdout.splitlines()) >= 1


def test_completion_refuses_an_unknown_shell(cli: CLI) -> None:
    result = cli("completion", "tcsh")
    assert result.exit_code == 2
    assert "unknown shell 'tcsh': give bash, zsh or fish" in result.stderr


def _complete(shell: str, **env: str) -> str:
    """What ``sectigo`` answers to a completion request, the way the script asks."""
    answer = _run(
        *PYTHON_M,
        env={**os.environ, "_SECTIGO_COMPLETE": f"complete_{shell}", **env},
    )
    assert answer.returncode == 0, answer.stderr
    return answer.stdout


def test_completion_answers_each_shell(tmp_path: Path) -> None:
    assert "create" in _complete("zsh", _TYPER_COMPLETE_ARGS="sectigo cre")
    fish = _complete(
        "fish", _TYPER_COMPLETE_ARGS="sectigo dow", _TYPER_COMPLETE_FISH_ACTION="get-args"
    )
    assert fish.startswith("download")
    revoke = _complete("zsh", _TYPER_COMPLETE_ARGS="sectigo revoke --y")
    assert "--yes" in revoke


def test_bash_completion_script_completes_commands_and_flags(tmp_path: Path) -> None:
    """The script, sourced in a real bash, completes a command and a command's flags."""
    if shutil.which("bash") is None:
        skip_outside_ci("needs bash")
    script = tmp_path / "sectigo.bash"
    script.write_text(_run(*PYTHON_M, "completion", "bash").stdout)
    shim = tmp_path / "sectigo"  # the script calls `sectigo`: this one, of this checkout
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m sectigo_iot "$@"\n')
    shim.chmod(0o755)
    probe = (
        f"source {script}\n"
        "COMP_WORDS=(sectigo cre); COMP_CWORD=1; _sectigo_completion sectigo\n"
        'echo "1:${COMPREPLY[*]}"\n'
        "COMP_WORDS=(sectigo find --); COMP_CWORD=2; _sectigo_completion sectigo\n"
        'echo "2:${COMPREPLY[*]}"\n'
    )
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = _run("bash", "-c", probe, env=env)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "1:create"
    assert set(second[2:].split()) >= {"--common-name", "--serial-number", "--json", "--table"}


# -- item 13: find -n with a Unicode name (the SDK normalizes it as create does) -------------


@pytest.mark.parametrize("query", ["bücher.example", "BÜCHER.example", "xn--bcher-kva.example"])
def test_find_by_a_unicode_name_finds_what_create_issued(cli: CLI, query: str) -> None:
    cli.ok(*create_args(domain="bücher.example"))
    found = cli.json("find", "-n", query)
    assert [item["commonName"] for item in found["items"]] == ["xn--bcher-kva.example"]
    table = cli.emu("--table", "find", "-n", query)
    assert "xn--bcher-kva.example" in table.stdout
