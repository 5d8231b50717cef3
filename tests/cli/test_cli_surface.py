"""Issues #10 and #11: download folders, .env, serve --addr, SIAS_*, validate, --param,
file size caps, redacted errors, unique batch names and dates as the API sent them."""

from __future__ import annotations

import email
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sectigo_iot.certs import open_batch_zip
from sectigo_iot.cli._dotenv import dotenv_applied, parse_dotenv
from tests.cli.helpers import CLI, error_line, make_csr, mode, record_bodies
from tests.support import rewrite_replies


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CLI:
    for name in [k for k in os.environ if k.startswith("SIAS_")]:
        monkeypatch.delenv(name)
    return CLI(tmp_path, monkeypatch)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would make folders world-writable, to see the CLI's own mode."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# -- #10: download creates its folder ------------------------------------------------------


@pytest.mark.usefixtures("open_umask")
def test_download_creates_the_folder_0700_at_every_level(cli: CLI) -> None:
    batch_id = cli.create()
    result = cli.ok("--json", "download", "-i", str(batch_id), "-o", "out/deep/certs/")
    archive = cli.tmp / "out" / "deep" / "certs" / f"{batch_id}.zip"
    assert json.loads(result.stdout) == {
        "batchId": batch_id,
        "path": str(archive.relative_to(cli.tmp)),
    }
    for level in ("out", "out/deep", "out/deep/certs"):
        assert mode(cli.tmp / level) == 0o700, level
    (bundle,) = open_batch_zip(archive, "s3cretpass")
    assert bundle.common_name == "example.com"


@pytest.mark.usefixtures("open_umask")
def test_create_download_makes_0700_folders_too(cli: CLI) -> None:
    cli.ok("create", "-a", "1", "-d", "example.com", "-p", "s3cretpass", "--download", "a/b")
    assert mode(cli.tmp / "a") == mode(cli.tmp / "a" / "b") == 0o700


def test_documented_walkthrough_download_without_mkdir(cli: CLI) -> None:
    batch_id = cli.create()
    result = cli.ok("--table", "download", "-i", str(batch_id), "-o", "certs/")
    assert result.stdout.startswith(f"downloaded batch {batch_id} to certs/{batch_id}.zip\n")


# -- #11: .env ------------------------------------------------------------------------------


def test_dotenv_is_read_and_the_environment_wins(cli: CLI) -> None:
    (cli.tmp / ".env").write_text(
        "# settings for the emulator\n"
        "export SECTIGO_EMULATOR=true\n"
        "SECTIGO_PKCS12_PASSWORD='from-dotenv-Pw1'\n"
    )
    # no --emulator flag: it comes from .env
    created = cli("create", "-a", "1", "-d", "example.com", "--download", "d1")
    assert created.exit_code == 0, created.stderr
    assert "pkcs12 password:" not in created.stderr  # not generated: .env gave one
    (bundle,) = open_batch_zip(Path(json.loads(created.stdout)["zip"]), "from-dotenv-Pw1")
    assert bundle.common_name == "example.com"
    env = {"SECTIGO_PKCS12_PASSWORD": "from-env-Pw2"}
    again = cli("create", "-a", "1", "-d", "example.com", "--download", "d2", env=env)
    assert again.exit_code == 0, again.stderr
    open_batch_zip(Path(json.loads(again.stdout)["zip"]), "from-env-Pw2")
    assert "SECTIGO_PKCS12_PASSWORD" not in os.environ  # restored after the run


def test_dotenv_is_never_expanded_or_run(cli: CLI) -> None:
    literal = "$HOME`touch ran1`$(touch ran2)${USER}"
    (cli.tmp / ".env").write_text(f'SECTIGO_PKCS12_PASSWORD="{literal}"\n')
    result = cli.ok("create", "-a", "1", "-d", "example.com", "--download", "d")
    open_batch_zip(Path(json.loads(result.stdout)["zip"]), literal)
    assert not (cli.tmp / "ran1").exists() and not (cli.tmp / "ran2").exists()


def test_malformed_dotenv_lines_are_skipped_with_a_warning(cli: CLI) -> None:
    (cli.tmp / ".env").write_text(
        "SECTIGO_EMULATOR=1\nthis line has s3cret-in-it\nSECTIGO_PROFILE='17\n"
    )
    result = cli("licenses")
    assert result.exit_code == 0, result.stderr
    assert "warning: .env line 2: expected KEY=VALUE; line ignored" in result.stderr
    assert "warning: .env line 3: unterminated quoted value" in result.stderr
    assert "s3cret" not in result.output


def test_oversized_dotenv_is_ignored_after_reading_the_cap(cli: CLI) -> None:
    (cli.tmp / ".env").symlink_to("/dev/zero")  # endless: only a capped read returns
    result = cli.emu("licenses")
    assert result.exit_code == 0
    assert "warning: .env is larger than 64 KiB; ignored" in result.stderr


def test_dotenv_only_sets_sectigo_and_sias_variables(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("HTTPS_PROXY=http://evil:3128\nSIAS_MODE=debug\nSECTIGO_X=1\n")
    assert "HTTPS_PROXY" not in os.environ
    with dotenv_applied(dotenv) as added:
        assert added == {"SIAS_MODE": "debug", "SECTIGO_X": "1"}
        assert "HTTPS_PROXY" not in os.environ
    assert "SIAS_MODE" not in os.environ


def test_parse_dotenv_syntax() -> None:
    values, problems = parse_dotenv(
        "A=plain value # comment\n"
        'export B = "two\\nlines \\"q\\" \\\\ "\n'
        "C='single $X \\n'\n"
        "D=\n"
        "E=a#b\n"
        "1BAD=x\n"
        'F="x" trailing\n'
    )
    assert values == {
        "A": "plain value",
        "B": 'two\nlines "q" \\ ',
        "C": "single $X \\n",
        "D": "",
        "E": "a#b",
    }
    assert problems == [
        "line 6: expected KEY=VALUE",
        "line 7: unexpected text after the closing quote",
    ]


# -- #11: serve --addr and SIAS_* --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["-a", "127.0.0.1:9000", "--port", "9001"], {}, "--addr cannot be combined with"),
        (["--addr", "127.0.0.1:9000", "--host", "localhost"], {}, "--addr cannot be combined"),
        (["-a", ":8831"], {}, "refusing to listen on 0.0.0.0:8831"),
        ([], {"SIAS_BIND_ADDR": "0.0.0.0:8831"}, "refusing to listen on 0.0.0.0:8831"),
        (["-a", "8831"], {}, "must be HOST:PORT"),
        (["-a", "::1:8831"], {}, "put an IPv6 host in brackets"),
        (["-a", "127.0.0.1:70000"], {}, "the port must be a number from 0 to 65535"),
        ([], {"SIAS_LOG_LEVEL": "loud"}, "SIAS_LOG_LEVEL 'loud' is not one of"),
        ([], {"SIAS_AUTH_USERNAME": "cathy"}, "set both SIAS_AUTH_USERNAME and SIAS_AUTH_PASSWORD"),
        ([], {"SIAS_CA_PATH": "ca.pem.gz"}, "only plain PEM files are supported"),
        ([], {"SIAS_CA_PATH": "missing.pem"}, "could not read missing.pem"),
    ],
)
def test_serve_refuses_bad_addresses_and_config(
    cli: CLI, args: list[str], env: dict[str, str], message: str
) -> None:
    result = cli("serve", *args, env=env)
    assert result.exit_code == 2, result.output
    assert message in error_line(result)
    assert result.stdout == ""


def test_validate_prints_the_defaults(cli: CLI) -> None:
    assert cli.json("validate") == {
        "BindAddr": "127.0.0.1:8831",
        "LogLevel": 2,
        "CAPath": "",
        "Auth": {
            "Username": "tester",
            "Password": "***",
            "Issuer": "https://emulator.sectigo-iot.invalid/",
        },
    }


def _ca_pem(tmp_path: Path, *, matching: bool = True) -> Path:
    from sectigo_iot.emulator import CertificateAuthority

    ca, other = CertificateAuthority.generate(), CertificateAuthority.generate()
    key = (ca if matching else other).private_key_pem()
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.certificate_pem + key)
    return path


def test_validate_reads_sias_variables_and_masks_secrets(cli: CLI) -> None:
    ca = _ca_pem(cli.tmp)
    env = {
        "SIAS_BIND_ADDR": "[::1]:9443",
        "SIAS_LOG_LEVEL": "DEBUG",
        "SIAS_CA_PATH": str(ca),
        "SIAS_AUTH_USERNAME": "cathyadmin",
        "SIAS_AUTH_PASSWORD": "Super-Secret-Squirrel-9",
        "SIAS_AUTH_ISSUER": "https://cathy.test-net.io",
        "SIAS_AUTH_SECRET": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=",
        "SIAS_MODE": "release",
    }
    result = cli("validate", env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "BindAddr": "[::1]:9443",
        "LogLevel": 0,
        "CAPath": str(ca),
        "Auth": {
            "Username": "cathyadmin",
            "Password": "***",
            "Issuer": "https://cathy.test-net.io",
        },
    }
    for secret in (env["SIAS_AUTH_PASSWORD"], env["SIAS_AUTH_SECRET"]):
        assert secret not in result.output
    assert "warning: SIAS_AUTH_SECRET has no equivalent in this emulator; ignored" in result.stderr
    assert "warning: SIAS_MODE has no equivalent" in result.stderr


def test_validate_refuses_a_ca_whose_key_does_not_match(cli: CLI) -> None:
    ca = _ca_pem(cli.tmp, matching=False)
    result = cli("validate", env={"SIAS_CA_PATH": str(ca)})
    assert result.exit_code == 2
    assert "the private key does not match the first certificate" in error_line(result)


# -- #11: upload --param ----------------------------------------------------------------------


def test_upload_sends_profile_params(cli: CLI) -> None:
    csr, _ = make_csr(cli)
    bodies: list[bytes] = []
    cli.hooks.append(lambda e: record_bodies(e, "POST", "/api/v1/batches/upload", bodies))
    cli.ok(
        "upload", "-p", "42", "--param", "organizationName=Acme, Inc.", "--param", "x=a=b", str(csr)
    )
    (body,) = bodies
    parts = {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in email.message_from_bytes(body).get_payload()
    }
    request = json.loads(parts["csrBatchRequest"])
    assert request["profileParams"] == {"organizationName": "Acme, Inc.", "x": "a=b"}


# -- #11: files are read with the toolkit's caps ---------------------------------------------------


def test_inspect_refuses_a_file_over_the_cap(cli: CLI) -> None:
    (cli.tmp / "big.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\n" + b"A" * (1024 * 1024))
    result = cli("inspect", "big.pem")
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: big.pem is larger than 1 MiB; refusing to read this certificate file"
    )


def test_inspect_and_upload_read_no_more_than_the_cap(tmp_path: Path) -> None:
    """/dev/zero never ends: only a capped read comes back."""
    import subprocess
    import sys

    for args, message in (
        (["inspect", "/dev/zero"], "larger than 1 MiB"),
        (["--emulator", "upload", "-p", "42", "/dev/zero"], "larger than 1024 KiB"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "sectigo_iot.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
            env={**os.environ, "SECTIGO_EMULATOR_DB": str(tmp_path / "emulator.sqlite3")},
        )
        assert done.returncode == 2, done.stderr
        assert message in done.stderr


def test_inspect_leaves_a_zip_to_the_toolkit_limit(cli: CLI) -> None:
    big = cli.tmp / "huge.zip"
    with open(big, "wb") as handle:
        handle.write(b"PK\x03\x04")
        handle.truncate(17 * 1024 * 1024)  # sparse: nothing of it is read
    result = cli("inspect", "huge.zip")
    assert result.exit_code == 1
    assert "larger than 16 MiB" in error_line(result)


# -- #11: errors and tracebacks are redacted -------------------------------------------------------


def test_rejection_echoing_the_password_is_redacted_even_with_verbose(cli: CLI) -> None:
    password = "Echoed-Pkcs12-Pa55"

    def reject(batch: dict[str, Any]) -> None:
        batch.update(
            status="REJECTED", active=False, rejectReason=f"weak pkcs12Password {password}"
        )

    cli.hooks.append(lambda e: rewrite_replies(e, "GET", r"/api/v1/batches/\d+", reject))
    result = cli.emu(
        "--verbose", "create", "-a", "1", "-d", "example.com", "-p", password, "--wait"
    )
    assert result.exit_code == 5
    assert "Traceback" in result.stderr
    assert password not in result.output
    assert "weak pkcs12Password ***" in result.stderr.splitlines()[-1]


def test_a_generated_password_is_printed_once_even_when_echoed_back(cli: CLI) -> None:
    sent: list[bytes] = []

    def reject(batch: dict[str, Any]) -> None:
        params = json.loads(sent[0].partition(b"\r\n\r\n")[2])["profileParams"]
        batch.update(status="REJECTED", active=False, rejectReason=params["pkcs12Password"])

    cli.hooks.append(lambda e: rewrite_replies(e, "GET", r"/api/v1/batches/\d+", reject))
    path = "/api/v1/batches/createSingleCertBatch"
    cli.hooks.append(lambda e: record_bodies(e, "PUT", path, sent))
    result = cli.emu("--verbose", "create", "-a", "1", "-d", "example.com", "--wait")
    assert result.exit_code == 5
    password = json.loads(sent[0].partition(b"\r\n\r\n")[2])["profileParams"]["pkcs12Password"]
    assert result.output.count(password) == 1  # the "pkcs12 password:" line only
    assert f"pkcs12 password: {password}" in result.stderr


# -- #11: dates are the API's text ------------------------------------------------------------


def _raw_batch(cli: CLI, batch_id: int) -> dict[str, Any]:
    """The emulator's reply to GET /api/v1/batches/{id}, decoded but not converted."""
    with (
        cli.state() as emulator,
        httpx.Client(transport=_SyncBridge(emulator), base_url=emulator.base_url) as http,
    ):
        tokens = http.post(
            "/auth/pwd", json={"username": "tester", "password": "supersecretsquirrel"}
        ).json()
        reply = http.get(
            f"/api/v1/batches/{batch_id}",
            headers={"Authorization": f"Bearer {tokens['accessToken']}"},
        )
    data: dict[str, Any] = reply.json()
    return data


class _SyncBridge(httpx.BaseTransport):
    """The emulator's async transport, driven from synchronous test code."""

    def __init__(self, emulator: Any) -> None:
        self._transport = emulator.transport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import anyio

        async def send() -> httpx.Response:
            content = request.read()
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=content
            )
            response = await self._transport.handle_async_request(forwarded)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return anyio.run(send)


def test_batch_json_dates_are_the_emulators_text(cli: CLI) -> None:
    batch_id = cli.create()
    raw = _raw_batch(cli, batch_id)["creationDate"]
    assert cli.json("batches", "-i", str(batch_id))["creationDate"] == raw


def test_batch_json_dates_are_kept_verbatim(cli: CLI) -> None:
    """A date a datetime cannot hold (nanoseconds, 'Z') comes out as it came in."""
    text = "2024-03-01T12:00:00.123456789Z"
    batch_id = cli.create()

    def date(batch: dict[str, Any]) -> None:
        batch["creationDate"] = text

    cli.hooks.append(lambda e: rewrite_replies(e, "GET", r"/api/v1/batches/\d+", date))
    assert cli.json("batches", "-i", str(batch_id))["creationDate"] == text
