"""Issue 21, items 11 to 13 (the batch commands): once a license is spent the CLI never
drops the batch. A target already on disk is kept and the new files go beside it (exit
7); a Ctrl-C during any wait says the batch id and the command that finishes the work
(exit 130); a generated password is printed only for a batch that exists; errors name
flags, never Python arguments.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sectigo_iot.certs import open_batch_zip
from sectigo_iot.cli import EXIT_CODES, ExitCode
from sectigo_iot.cli._errors import in_flags
from tests.cli.helpers import CLI, create_args, error_line, interrupted, make_csr

SECTIGO = [sys.executable, "-m", "sectigo_iot"]
PASSWORD = "s3cretpass"
#: what a CLI error must never say: Python arguments and calls
PYTHON_NAMES = re.compile(r"\w+=True|\w+\(\)|pkcs12_password|\w+_id\b|batches\.\w+")


# -- item 11: a target already there is kept; the batch is saved beside it -----------------


def _taken_targets(cli: CLI) -> tuple[Path, Path]:
    """``certs/10001.zip`` and ``certs/10001/cert.pem`` from an earlier emulator (its
    ids start again at 10001 with a fresh database): the newcomer's collision."""
    old_zip = cli.tmp / "certs" / "10001.zip"
    old_pem = cli.tmp / "certs" / "10001" / "cert.pem"
    old_pem.parent.mkdir(parents=True)
    old_zip.write_bytes(b"the zip of an earlier batch")
    old_pem.write_bytes(b"the certificate of an earlier batch")
    return old_zip, old_pem


def test_create_download_pem_keeps_what_is_there_and_saves_beside_it(cli: CLI) -> None:
    old_zip, old_pem = _taken_targets(cli)
    result = cli.emu(*create_args("--download", "certs", "--pem"))
    assert result.exit_code == ExitCode.KEPT_ASIDE == 7, result.stderr
    assert "nothing was sent" not in result.output
    # the earlier files are untouched
    assert old_zip.read_bytes() == b"the zip of an earlier batch"
    assert old_pem.read_bytes() == b"the certificate of an earlier batch"
    # what the license bought is complete, beside them, and the result says where
    data = json.loads(result.stdout)
    assert data["batch"]["batchId"] == 10001
    assert data["zip"] == "certs/10001-2.zip"
    assert data["pem"][0]["key"] == "certs/10001-2/key.pem"
    assert data["aside"] == [
        {"taken": "certs/10001.zip", "written": "certs/10001-2.zip"},
        {"taken": "certs/10001", "written": "certs/10001-2"},
    ]
    (bundle,) = open_batch_zip(cli.tmp / "certs" / "10001-2.zip", PASSWORD)
    assert (cli.tmp / "certs/10001-2/cert.pem").read_bytes() == bundle.certificate_pem
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: certs/10001.zip was already there and is kept; "
        "the new files went to certs/10001-2.zip",
        "warning: certs/10001 was already there and is kept; the new files went to certs/10001-2",
    ]
    assert cli.requests["PUT /api/v1/batches/createSingleCertBatch"] == 1


def test_upload_download_keeps_an_earlier_zip_too(cli: CLI) -> None:
    csr, _ = make_csr(cli)
    (cli.tmp / "certs").mkdir()
    (cli.tmp / "certs" / "10001.zip").write_bytes(b"earlier")
    result = cli.emu("--table", "upload", "-p", "42", str(csr), "--download", "certs")
    assert result.exit_code == 7, result.stderr
    assert "downloaded batch 10001 to certs/10001-2.zip" in result.stdout
    assert (cli.tmp / "certs" / "10001.zip").read_bytes() == b"earlier"


def test_a_file_appearing_during_the_wait_is_kept_too(cli: CLI) -> None:
    """The race: nothing is there at the create, the file appears while it waits."""
    target = cli.tmp / "certs" / "10001.zip"

    def appear(emulator: Any) -> None:
        inner = emulator.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].endswith("/10001"):
                target.write_bytes(b"someone else's")
            await inner(scope, receive, send)

        emulator.app = app

    cli.hooks.append(appear)
    result = cli.emu(*create_args("--download", "certs"))
    assert result.exit_code == 7, result.stderr
    assert target.read_bytes() == b"someone else's"
    assert json.loads(result.stdout)["zip"] == "certs/10001-2.zip"


def test_kept_aside_status_is_documented(cli: CLI) -> None:
    text = " ".join(cli("--help").stdout.split())
    assert "7 create/upload --download: the batch was made, but a file was already there" in text
    assert "130 interrupted (Ctrl-C)" in text
    assert ExitCode.KEPT_ASIDE in EXIT_CODES and ExitCode.KEPT_ASIDE != ExitCode.USAGE
    page = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    rows = {line.split("|")[1].strip() for line in page.splitlines() if line.startswith("| ")}
    assert {str(code) for code in EXIT_CODES} <= rows


def test_download_refuses_an_existing_pem_folder_before_sending(cli: CLI) -> None:
    batch_id = cli.create()
    (cli.tmp / "certs" / str(batch_id)).mkdir(parents=True)
    (cli.tmp / "certs" / str(batch_id) / "cert.pem").write_text("an earlier certificate")
    sent = sum(cli.requests.values())
    result = cli.emu("download", "-i", str(batch_id), "-o", "certs", "--pem", "-p", PASSWORD)
    assert result.exit_code == 2
    assert f"certs/{batch_id} already exists; use --force to replace it" in error_line(result)
    assert sum(cli.requests.values()) == sent


def test_download_wait_pem_finishes_a_create(cli: CLI) -> None:
    """The command a Ctrl-C or a failure names does the whole rest of the job."""
    batch_id = cli.create()
    data = cli.json(
        "download", "-i", str(batch_id), "-o", "out", "--wait", "--pem", "-p", PASSWORD, "--json"
    )
    assert data["path"] == f"out/{batch_id}.zip"
    key = Path(data["pem"][0]["key"])
    assert (cli.tmp / key).stat().st_mode & 0o777 == 0o600


# -- item 11: errors name flags ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "flag"),
    [
        (create_args(password="short"), {}, "--password/-p"),
        (("create", "-a", "1", "-d", "example.com"), {"SECTIGO_PKCS12_PASSWORD": "short"}, "-p"),
    ],
)
def test_password_errors_name_the_flag_and_send_nothing(
    cli: CLI, args: tuple[str, ...], env: dict[str, str], flag: str
) -> None:
    result = cli.emu(*args, env=env)
    assert result.exit_code == 2
    line = error_line(result)
    assert flag in line and "at least 8 characters" in line
    assert not PYTHON_NAMES.search(line), line
    assert "pkcs12 password:" not in result.stderr
    assert not cli.requests


def test_download_of_a_batch_not_ready_names_the_command_not_the_method(cli: CLI) -> None:
    created = cli.emu(*create_args(), env={"SECTIGO_EMULATOR_DELAY": "60"})
    batch_id = json.loads(created.stdout)["batchId"]
    line = error_line(cli.emu("download", "-i", str(batch_id), "-o", "."))
    assert "sectigo batches -i ID --wait" in line
    assert not PYTHON_NAMES.search(line), line


def test_sdk_messages_are_told_in_flags(tmp_path: Path) -> None:
    """The SDK's own messages (raised for real) come out naming flags."""
    import anyio

    from sectigo_iot._files import write_atomic
    from sectigo_iot.emulator import Emulator
    from sectigo_iot.errors import InvalidInputError

    messages = []
    existing = tmp_path / "taken.zip"
    existing.write_bytes(b"x")
    with pytest.raises(InvalidInputError) as caught:
        write_atomic(existing, b"y", mode=0o600, overwrite=False)
    messages.append(str(caught.value))

    async def create_with(password: str) -> str:
        emulator = Emulator()
        try:
            async with emulator.client() as client:
                with pytest.raises(InvalidInputError) as caught:
                    await client.batches.create(
                        1, common_name="a.example", pkcs12_password=password
                    )
                return str(caught.value)
        finally:
            emulator.close()

    messages += [anyio.run(create_with, "short"), anyio.run(create_with, "")]
    for message in messages:
        assert PYTHON_NAMES.search(message), message  # the SDK names Python arguments...
        told = in_flags(message)
        assert not PYTHON_NAMES.search(told), told  # ...the CLI names flags


# -- item 13: the generated password belongs to a batch that exists ------------------------


def test_generated_password_is_not_printed_when_the_create_fails(cli: CLI) -> None:
    path = "/api/v1/batches/createSingleCertBatch"
    cli.hooks.append(lambda e: e.inject("PUT", path, "error", status=400, message="no licenses"))
    result = cli.emu("create", "-a", "1", "-d", "example.com")
    assert result.exit_code == 1
    assert "pkcs12 password" not in result.output


def test_generated_password_is_printed_once_after_the_create(cli: CLI) -> None:
    result = cli.emu("create", "-a", "1", "-d", "example.com", "--download", "d", "--pem")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    (shown,) = [line for line in lines if line.startswith("pkcs12 password: ")]
    password = shown.split(": ", 1)[1]
    assert open_batch_zip(cli.tmp / "d" / "10001.zip", password)
    assert lines.index(shown) < next(i for i, line in enumerate(lines) if "batch 10001" in line)


# -- item 12: Ctrl-C during a wait says how to resume --------------------------------------


def _interrupt_while_waiting(cli: CLI, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``sectigo --emulator ARGS`` as a process, send SIGINT once it waits."""
    return interrupted([*SECTIGO, "--emulator", *args], cli.tmp, _until_waiting)


def _until_waiting(process: subprocess.Popen[str]) -> str:
    """Read stderr up to the first progress line (it is waiting now): the lines read."""
    assert process.stderr is not None
    seen = []
    while True:
        line = process.stderr.readline()
        seen.append(line)
        if not line or ": PROCESSING" in line:
            return "".join(seen)


@pytest.mark.parametrize(
    ("command", "resume"),
    [
        (
            create_args("--download", "my certs", "--pem"),
            "sectigo download -i 10001 -o 'my certs' --wait --pem -p PASSWORD",
        ),
        (create_args("--wait"), "sectigo batches -i 10001 --wait"),
        (("batches", "-i", "10001", "--wait"), "sectigo batches -i 10001 --wait"),
        (
            ("download", "-i", "10001", "-o", "out", "--wait"),
            "sectigo download -i 10001 -o out --wait",
        ),
    ],
    ids=["create --download --pem", "create --wait", "batches --wait", "download --wait"],
)
def test_ctrl_c_during_a_wait_names_the_batch_and_the_command_that_resumes(
    cli: CLI, command: tuple[str, ...], resume: str
) -> None:
    if command[0] != "create":  # a batch that is still processing
        created = cli.emu(*create_args(), env={"SECTIGO_EMULATOR_DELAY": "600"})
        assert created.exit_code == 0, created.stderr
    done = _interrupt_while_waiting(cli, *command)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last == f"error: interrupted: batch 10001 exists; finish with `{resume}`"


def test_the_resume_command_finishes_an_interrupted_create(cli: CLI) -> None:
    done = _interrupt_while_waiting(cli, *create_args("--download", "certs", "--pem"))
    assert done.returncode == 130
    cli.hooks.append(lambda emulator: emulator.clock.advance(601))  # it is ready now
    finish = cli.emu("download", "-i", "10001", "-o", "certs", "--wait", "--pem", "-p", PASSWORD)
    assert finish.exit_code == 0, finish.stderr
    (bundle,) = open_batch_zip(cli.tmp / "certs" / "10001.zip", PASSWORD)
    assert (cli.tmp / "certs/10001/cert.pem").read_bytes() == bundle.certificate_pem
    assert (cli.tmp / "certs/10001/key.pem").is_file()


def test_a_failure_after_the_create_names_the_batch_and_how_to_fetch_it(cli: CLI) -> None:
    """A download cut off after the create: the batch exists, the error says so."""
    cli.hooks.append(lambda e: e.inject("GET", "/api/v1/batches/*/download", "error", times=9))
    result = cli.emu(*create_args("--download", "certs"))
    assert result.exit_code == 1
    line = error_line(result)
    assert line.endswith(
        "batch 10001 exists; finish with `sectigo download -i 10001 -o certs --wait`"
    )


def test_no_resume_hint_for_a_rejected_batch(cli: CLI) -> None:
    result = cli.emu("-P", "85", *create_args("-c", "USA", "--download", "certs"))
    assert result.exit_code == 5
    assert "finish with" not in error_line(result)


def test_generated_password_is_printed_when_the_create_may_have_happened(cli: CLI) -> None:
    """An ambiguous create (reply lost, lookup failed) may have made the batch: its
    files will need the password, so it is printed, saying so."""
    path = "/api/v1/batches/createSingleCertBatch"
    cli.hooks.append(lambda e: e.inject("PUT", path, "error", status=503))
    cli.hooks.append(lambda e: e.inject("GET", "/api/v1/batches", "error", status=400, times=9))
    result = cli.emu("create", "-a", "1", "-d", "example.com")
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    (shown,) = [line for line in lines if line.startswith("pkcs12 password")]
    assert shown.startswith("pkcs12 password (of the batch this create may have made): ")
    line = error_line(result)
    assert "new certs for example.com (" in line  # the name to look for
    assert not PYTHON_NAMES.search(line), line


def test_pem_without_the_password_keeps_the_zip_and_says_how_to_finish(cli: CLI) -> None:
    batch_id = cli.create()
    result = cli.emu("download", "-i", str(batch_id), "-o", "out", "--pem")
    assert result.exit_code == 1, result.stderr
    assert "is password-protected" in result.stderr
    line = error_line(result)
    command = f"sectigo download -i {batch_id} -o out --wait --pem -p PASSWORD --force"
    assert line.endswith(
        f"batch {batch_id} exists, its ZIP is out/{batch_id}.zip; finish with `{command}`"
    )
    finish = cli.emu(*command.split()[1:-3], "-p", PASSWORD, "--force")
    assert finish.exit_code == 0, finish.stderr
    assert (cli.tmp / "out" / str(batch_id) / "key.pem").is_file()


def test_a_wait_timeout_after_the_create_says_how_to_finish(cli: CLI) -> None:
    result = cli.emu(
        *create_args("--download", "certs", "--timeout", "0.2"),
        env={"SECTIGO_EMULATOR_DELAY": "600"},
    )
    assert result.exit_code == 3
    assert error_line(result).endswith(
        "batch 10001 exists; finish with `sectigo download -i 10001 -o certs --wait`"
    )
