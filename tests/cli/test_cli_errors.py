"""Exit codes, error lines, bad input that sends nothing, and secrets kept out of output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sectigo_iot import errors
from sectigo_iot.cli import EXIT_CODES, ExitCode, app, main
from sectigo_iot.cli._errors import CLIError, exit_code_for
from tests.certs.helpers import make_csr
from tests.cli.helpers import CLI, create_args, error_line

# -- the mapping, class by class --------------------------------------------------------


def _api(cls: type[errors.APIError], status: int) -> errors.APIError:
    return cls("boom", status_code=status, method="GET", path="/api/v1/x")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (_api(errors.BadRequestError, 400), 1),
        (_api(errors.NotFoundError, 404), 1),
        (_api(errors.ConflictError, 409), 1),
        (_api(errors.RateLimitError, 429), 1),
        (_api(errors.ServerError, 500), 1),
        (errors.APIConnectionError("refused"), 1),
        (errors.APITimeoutError("slow"), 1),
        (errors.InvalidResponseError("html"), 1),
        (errors.AmbiguousRequestError("maybe", operation="create"), 1),
        (errors.InvalidArchiveError("bad zip"), 1),
        (errors.PKCS12PasswordError("wrong"), 1),
        (errors.TokenError("bad jwt"), 1),
        (errors.InvalidInputError("bad"), 2),
        (errors.InvalidCSRError("no SAN"), 2),
        (CLIError("must specify authority ID"), 2),
        (errors.WaitTimeoutError("slow", status="PROCESSING"), 3),
        (_api(errors.AuthenticationError, 401), 4),
        (_api(errors.TLSClientAuthRequiredError, 307), 4),
        (_api(errors.PermissionDeniedError, 403), 4),
        (errors.CredentialsError("none"), 4),
        (errors.BatchRejectedError("rejected", reject_reason="bad CN"), 5),
        (errors.BatchFailedError("failed"), 5),
        (errors.BatchNotReadyError("not ready"), 5),
        (CLIError("expiring", ExitCode.EXPIRING), 6),
    ],
)
def test_exit_code_of_each_error_class(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def test_exit_codes_are_documented_in_help(cli: CLI) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {' '.join(meaning.split())}" in text
    assert sorted(EXIT_CODES) == [0, 1, 2, 3, 4, 5, 6, 7, 130]


def test_main_returns_the_status(cli: CLI) -> None:
    assert main(["--version"]) == 0
    assert main(["--emulator", "batches"]) == 2


# -- each class end to end ----------------------------------------------------------------


def test_api_error_exit_1(cli: CLI) -> None:
    result = cli.emu("batches", "-i", "999")
    assert result.exit_code == 1
    assert error_line(result) == (
        "error: 404 Batch 999 not found [errorCode 2] (GET /api/v1/batches/999)"
    )
    assert result.stdout == ""


# 501 is not retried, so the test does not wait for back-off
@pytest.mark.parametrize(("status", "code"), [(501, 1), (403, 4)], ids=["server", "permission"])
def test_injected_error_exit_code(cli: CLI, status: int, code: int) -> None:
    cli.hooks.append(lambda e: e.inject("GET", "/api/v1/devices", "error", status=status))
    result = cli.emu("licenses")
    assert result.exit_code == code
    assert error_line(result).startswith(f"error: {status} ")


def test_wait_timeout_exit_3(cli: CLI) -> None:
    result = cli.emu(
        *create_args("--wait", "--timeout", "0.3", domain="slow.example.com"),
        env={"SECTIGO_EMULATOR_DELAY": "60"},
    )
    assert result.exit_code == 3
    line = error_line(result)
    assert "was not ready after 0.3 s (last status: PROCESSING)" in line
    assert "sectigo batches -i 10001 --status" in line
    assert "batch 10001: PROCESSING" in result.stderr  # the progress line


def test_bad_credentials_exit_4(cli: CLI) -> None:
    result = cli.emu("-u", "alice", "-p", "n0t-the-password", "authorities")
    assert result.exit_code == 4
    assert error_line(result).startswith("error: 401 ")
    assert "n0t-the-password" not in result.output


def test_no_username_exit_4(cli: CLI) -> None:
    result = cli("authorities")
    assert result.exit_code == 4
    assert "no username" in error_line(result)
    assert cli.opened == []


def test_rejected_batch_exit_5(cli: CLI) -> None:
    result = cli.emu("-P", "85", *create_args("-c", "USA", "--wait"))
    assert result.exit_code == 5
    assert "was rejected: Cert subject name error: countryName" in error_line(result)


def test_download_of_a_batch_not_ready_exit_5(cli: CLI) -> None:
    created = cli.emu(*create_args(), env={"SECTIGO_EMULATOR_DELAY": "60"})
    batch_id = json.loads(created.stdout)["batchId"]
    result = cli.emu("download", "-i", str(batch_id), "-o", ".")
    assert result.exit_code == 5
    assert "cannot be downloaded" in error_line(result)


def test_traceback_only_with_verbose(cli: CLI) -> None:
    quiet = cli.emu("batches", "-i", "999")
    assert "Traceback" not in quiet.stderr
    loud = cli.emu("--verbose", "batches", "-i", "999")
    assert loud.exit_code == 1
    assert "Traceback" in loud.stderr
    assert loud.stderr.rstrip().splitlines()[-1].startswith("error: 404")


# -- usage errors and bad input: exit 2, nothing sent ----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "-a", "1"], "must specify domain name of cert subject"),
        (["create", "-d", "example.com"], "must specify authority ID"),
        (["create", "-a", "1", "-d", "bad_name.example.com"], "underscore"),
        (["create", "-a", "1", "-d", "example.com", "--dns-name", "not a name"], "not a name"),
        (["create", "-a", "1", "-d", "example.com", "--pem"], "--pem needs --download"),
        (["create", "-a", "1", "-d", "example.com", "--download", "afile"], "is not a directory"),
        (["create", "-a", "abc", "-d", "example.com"], "Invalid value for '--authority'"),
        (["create", "-a", "1", "-d", "example.com", "--bogus"], "No such option: --bogus"),
        (["revoke", "-p", "42", "-r", "7", "-s", "ABCD"], "is not used by RFC 5280"),
        (["revoke", "-p", "42", "-r", "value 7 is not used", "-s", "AB"], "unknown revocation"),
        (
            ["revoke", "-p", "42", "-r", "teapot", "-s", "ABCD"],
            'unknown revocation reason "teapot"',
        ),
        (["revoke", "-r", "superseded", "-s", "ABCD"], "must specify profile id"),
        (["revoke", "-p", "42", "-r", "superseded"], "must specify serial number of certificate"),
        (["revoke", "-p", "42", "-s", "not-hex!"], "serial_number must be hexadecimal"),
        (["upload", "-p", "42", "missing.csr"], "could not read missing.csr: No such file"),
        (["upload", "-p", "42", "adir"], "could not read adir: Is a directory"),
        (["upload", "-p", "42", "afile"], "CSR"),
        (["upload", "-p", "42"], "specify the path to one CSR for upload"),
        (["upload", "-p", "42", "a.csr", "b.csr"], "specify the path to one CSR for upload"),
        (["upload", "afile"], "specify the profile ID to sign the cert under"),
        (["download", "-i", "10001", "-o", "afile"], 'path "afile" is not a directory'),
        (["download", "-i", "10001", "-o", ""], 'directory "" does not exist'),
        (["upload", "-p", "42", "--param", "novalue", "afile"], "must be KEY=VALUE"),
        (["upload", "-p", "42", "--param", "=v", "afile"], "has an empty key"),
        (["upload", "-p", "42", "--param", "k=1", "--param", "k=2", "afile"], "more than once"),
        (["download", "-o", "adir"], "must specify batch id for download"),
        (["batches"], "specify batch id to get information"),
        (["profiles", "--params"], "must specify id to get profile params"),
        (["find"], "specify a common name (-n) or a serial number (-s)"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_bad_input_exit_2_and_sends_nothing(cli: CLI, args: list[str], message: str) -> None:
    (cli.tmp / "afile").write_text("not a CSR\n")
    (cli.tmp / "adir").mkdir()
    result = cli.emu(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert message in error_line(result)
    assert result.stdout == ""
    assert not cli.requests  # nothing reached the API


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-E", "bogus", "licenses"], '"bogus" is not a valid environment'),
        (["-P", "99", "licenses"], '"99" is not a valid Sectigo profile name'),
        (["-E", "production", "-e", "http://iot.sectigo.com", "licenses"], "must use https"),
        (["-E", "production", "-e", "https://evil.example", "licenses"], "cannot connect to"),
        (["-E", "staging", "licenses"], "cannot connect to iot.sectigo.com in staging"),
        (["-E", "testing", "-e", "http://example.com", "licenses"], "localhost in testing"),
    ],
)
def test_environment_guard_exit_2(cli: CLI, args: list[str], message: str) -> None:
    result = cli("-u", "tester", "-p", "pw", *args)
    assert result.exit_code == 2
    assert message in error_line(result)


def test_bad_csr_is_refused_before_sending(cli: CLI) -> None:
    (cli.tmp / "nosan.csr").write_bytes(make_csr("no-san.example.com", dns_names=()))
    result = cli.emu("upload", "-p", "42", "nosan.csr")
    assert result.exit_code == 2
    assert error_line(result).startswith("error: CSR #1")
    assert not cli.requests


def test_download_refuses_to_replace_a_zip(cli: CLI) -> None:
    batch_id = cli.create()
    cli.ok("download", "-i", str(batch_id), "-o", ".")
    again = cli.emu("download", "-i", str(batch_id), "-o", ".")
    assert again.exit_code == 2
    assert "already exists; use --force" in error_line(again)
    cli.ok("download", "-i", str(batch_id), "-o", ".", "--force")


# -- secrets ------------------------------------------------------------------------------


def test_generated_password_printed_once_on_stderr_only(cli: CLI) -> None:
    result = cli.ok("create", "-a", "1", "-d", "example.com", "--download", "out", "--pem")
    lines = [line for line in result.stderr.splitlines() if line.startswith("pkcs12 password: ")]
    assert len(lines) == 1
    password = lines[0].removeprefix("pkcs12 password: ")
    assert len(password) == 24 and password.isalnum()
    assert password not in result.stdout
    assert result.stderr.count(password) == 1
    from sectigo_iot.certs import open_batch_zip

    data = json.loads(result.stdout)
    (bundle,) = open_batch_zip(Path(data["zip"]), password)
    assert bundle.common_name == "example.com"


def test_given_passwords_never_printed(cli: CLI) -> None:
    api_password, pkcs12_password = "Api-Pa55word-Xyz", "Pkcs12-Pa55word-Abc"
    create = (*create_args(password=pkcs12_password), "--download", "o", "--pem")
    result = cli.emu("--verbose", "-u", "tester", "-p", api_password, *create)
    assert result.exit_code == 4  # tester's password is not that one
    for secret in (api_password, pkcs12_password):
        assert secret not in result.output
    ok = cli.emu("--verbose", *create)
    assert ok.exit_code == 0, ok.stderr
    assert pkcs12_password not in ok.output
    assert "supersecretsquirrel" not in ok.output
    assert "eyJ" not in ok.output  # no JWT, not even in the debug log


def test_auth_debug_never_prints_a_token(cli: CLI) -> None:
    cli.ok("auth")
    (entry,) = (cli.db.parent / "emulator-tokens").glob("*.json")
    stored = json.loads(entry.read_text())
    for args in (["auth", "--debug"], ["--json", "auth", "--debug"], ["auth", "--cache"]):
        output = cli.ok(*args).output
        assert stored["access"] not in output and stored["refresh"] not in output
        assert "eyJ" not in output


def test_help_is_fast_to_import() -> None:
    """`sectigo --help` must not load the certificate toolkit, the emulator or rich (beyond
    what ``import httpx`` loads itself: its own command line imports rich when installed)."""
    import subprocess
    import sys

    heavy = (
        "('cryptography', 'starlette', 'uvicorn', 'rich', 'keyring',"
        " 'sectigo_iot.certs', 'sectigo_iot.emulator')"
    )
    code = (
        "import sys; import httpx; loaded = set(sys.modules);"
        "from sectigo_iot.cli import main; main(['--help']);"
        f"heavy = [m for m in {heavy} if m in sys.modules and m not in loaded];"
        "print('HEAVY', heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "HEAVY []" in done.stdout
    assert app.info.name == "sectigo"


def test_emulator_ignores_credentials_from_the_environment(cli: CLI) -> None:
    """Credentials exported for a real account are not tried on the emulator."""
    env = {"SECTIGO_USERNAME": "real-user", "SECTIGO_PASSWORD": "real-Pa55word"}
    assert cli.emu("licenses", env=env).exit_code == 0
    flagged = cli.emu("-u", "real-user", "-p", "real-Pa55word", "licenses")
    assert flagged.exit_code == 4
    assert "real-Pa55word" not in flagged.output
