"""Beyond the original: the whole flow (--wait/--download/--pem), csr, inspect, auth,
tables, demo, and the CLI over real HTTP against an emulator in a thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sectigo_iot.certs import load_pem_bundle, open_batch_zip
from sectigo_iot.emulator import Emulator
from tests.cli.helpers import CLI, create_args, error_line, make_csr, mode

# -- create / upload with --wait, --download, --pem ----------------------------------------


def test_create_wait_download_pem(cli: CLI) -> None:
    result = cli.ok(*create_args("--dns-name", "www.example.com", "--download", "certs", "--pem"))
    data = json.loads(result.stdout)
    batch_id = data["batch"]["batchId"]
    assert data["batch"]["status"] == "READY_FOR_DOWNLOAD"
    assert data["zip"] == f"certs/{batch_id}.zip"
    (files,) = data["pem"]
    folder = cli.tmp / "certs" / str(batch_id)
    assert files == {
        role: f"certs/{batch_id}/{role}.pem" for role in ("cert", "chain", "fullchain", "key")
    }
    assert mode(folder / "key.pem") == 0o600
    assert mode(folder / "cert.pem") == 0o644
    bundle = load_pem_bundle(
        (folder / "fullchain.pem").read_bytes() + (folder / "key.pem").read_bytes()
    )
    assert bundle.sans == ("example.com", "www.example.com")
    assert bundle.private_key is not None
    assert f"batch {batch_id}: READY_FOR_DOWNLOAD" in result.stderr


def test_create_wait_only_prints_the_ready_batch(cli: CLI) -> None:
    batch = cli.json("create", "-a", "1", "-d", "example.com", "-p", "s3cretpass", "--wait")
    assert batch["status"] == "READY_FOR_DOWNLOAD"
    assert "zip" not in batch


def test_wait_polls_until_ready(cli: CLI) -> None:
    env = {"SECTIGO_EMULATOR_DELAY": "1"}
    result = cli.ok("create", "-a", "1", "-d", "example.com", "-p", "s3cretpass", "--wait", env=env)
    assert json.loads(result.stdout)["status"] == "READY_FOR_DOWNLOAD"
    progress = [line for line in result.stderr.splitlines() if line.startswith("batch ")]
    assert progress[0].startswith("batch 10001: PROCESSING (active 1")
    assert progress[-1].startswith("batch 10001: READY_FOR_DOWNLOAD (active 0, success 1")


def test_upload_wait_download_writes_certificates_only(cli: CLI) -> None:
    csr, key = make_csr(cli, "device.example.com", ["alt.example.com"])
    data = json.loads(cli.ok("upload", "-p", "42", str(csr), "--download", "out").stdout)
    batch_id = data["batch"]["batchId"]
    (files,) = data["pem"]
    assert set(files) == {"cert", "chain", "fullchain"}  # the key never left this machine
    cert = load_pem_bundle((cli.tmp / files["fullchain"]).read_bytes() + key.read_bytes())
    assert cert.private_key is not None  # the certificate matches our key
    assert cert.sans == ("device.example.com", "alt.example.com")
    assert (cli.tmp / "out" / f"{batch_id}.zip").is_file()


def test_upload_no_pem(cli: CLI) -> None:
    csr, _ = make_csr(cli)
    data = json.loads(cli.ok("upload", "-p", "42", str(csr), "--download", "o", "--no-pem").stdout)
    assert "pem" not in data
    assert not (cli.tmp / "o" / str(data["batch"]["batchId"])).exists()


def test_upload_of_several_csrs_writes_one_folder_each(cli: CLI) -> None:
    first, _ = make_csr(cli, "a.example.com")
    second, _ = make_csr(cli, "b.example.com")
    (cli.tmp / "both.csr").write_bytes(first.read_bytes() + second.read_bytes())
    data = json.loads(cli.ok("upload", "-p", "42", "both.csr", "--download", "o").stdout)
    batch_id = data["batch"]["batchId"]
    assert data["batch"]["size"] == 2
    for name in ("a.example.com", "b.example.com"):
        assert (cli.tmp / "o" / str(batch_id) / name / "cert.pem").is_file()


def test_batches_wait(cli: CLI) -> None:
    batch_id = cli.create()
    assert cli.json("batches", "-i", str(batch_id), "--wait")["status"] == "READY_FOR_DOWNLOAD"


# -- csr ------------------------------------------------------------------------------------


def test_csr_writes_key_0600_and_never_overwrites(cli: CLI) -> None:
    data = cli.json(
        "csr",
        "-d",
        "Example.ORG",
        "--dns-name",
        "www.example.org",
        "--key-type",
        "ec-p256",
        "-o",
        "ACME",
        "-l",
        "Paris",
        "-s",
        "Ile-de-France",
        "-c",
        "FR",
    )
    assert data == {
        "common_name": "example.org",
        "dns_names": ["example.org", "www.example.org"],
        "key_type": "ec-p256",
        "csr": "example.org.csr",
        "key": "example.org.key",
    }
    assert mode(cli.tmp / "example.org.key") == 0o600
    key_before = (cli.tmp / "example.org.key").read_bytes()
    again = cli.emu("csr", "-d", "example.org", "--key-type", "ec-p256")
    assert again.exit_code == 2
    assert "example.org.csr already exists; use --force" in error_line(again)
    assert (cli.tmp / "example.org.key").read_bytes() == key_before
    from cryptography import x509

    request = x509.load_pem_x509_csr((cli.tmp / "example.org.csr").read_bytes())
    assert request.subject.rfc4514_string() == "CN=example.org,O=ACME,L=Paris,ST=Ile-de-France,C=FR"
    cli.ok("csr", "-d", "example.org", "--key-type", "ec-p256", "--force")
    assert (cli.tmp / "example.org.key").read_bytes() != key_before
    request = x509.load_pem_x509_csr((cli.tmp / "example.org.csr").read_bytes())
    assert "O=TRISA Member VASP" in request.subject.rfc4514_string()  # the defaults


def test_csr_out_folder_and_warnings(cli: CLI) -> None:
    (cli.tmp / "keys").mkdir()
    result = cli.ok(
        "csr", "-d", "example.com", "--key-type", "ec-p256", "-s", "CA", "--out", "keys"
    )
    assert (cli.tmp / "keys" / "example.com.csr").is_file()
    assert "warning: state 'CA' looks abbreviated" in result.stderr
    bad = cli.emu("csr", "-d", "example.com", "--key-type", "dsa")
    assert bad.exit_code == 2
    assert "unknown key type 'dsa'" in error_line(bad)
    missing = cli.emu("csr", "-d", "example.com", "--out", "nowhere")
    assert missing.exit_code == 2


# -- inspect ----------------------------------------------------------------------------------


@pytest.fixture
def archive(cli: CLI) -> Path:
    data = cli.json(
        "create", "-a", "1", "-d", "example.com", "-p", "s3cretpass", "--download", "certs", "--pem"
    )
    return cli.tmp / data["zip"]


def test_inspect_zip(cli: CLI, archive: Path) -> None:
    (info,) = cli.json("inspect", str(archive), "--password", "s3cretpass")
    (bundle,) = open_batch_zip(archive, "s3cretpass")
    assert info == bundle.to_dict()
    assert info["common_name"] == "example.com"
    assert info["has_private_key"] is True


def test_inspect_prompts_for_the_password(cli: CLI, archive: Path) -> None:
    result = cli.ok("inspect", str(archive), input="s3cretpass\n")
    assert "s3cretpass" not in result.stderr
    assert '"serial_number"' in result.stdout


def test_inspect_password_from_environment(cli: CLI, archive: Path) -> None:
    result = cli.ok("inspect", str(archive), env={"SECTIGO_PKCS12_PASSWORD": "s3cretpass"})
    assert json.loads(result.stdout)[0]["sans"] == ["example.com"]


def test_inspect_wrong_password(cli: CLI, archive: Path) -> None:
    result = cli.emu("inspect", str(archive), "-p", "wrong-password")
    assert result.exit_code == 1
    assert "wrong PKCS#12 password" in error_line(result)
    assert "wrong-password" not in result.output


def test_inspect_p12_and_pem(cli: CLI, archive: Path) -> None:
    import zipfile

    with zipfile.ZipFile(archive) as opened:
        (name,) = opened.namelist()
        (cli.tmp / "example.p12").write_bytes(opened.read(name))
    (p12,) = cli.json("inspect", "example.p12", "-p", "s3cretpass")
    pem_folder = archive.with_suffix("")
    (pem,) = cli.json("inspect", str(pem_folder / "fullchain.pem"))
    assert pem["serial_number"] == p12["serial_number"]
    assert pem["has_private_key"] is False
    assert len(pem["chain"]) == len(p12["chain"]) == 2  # intermediate and root


def test_inspect_der(cli: CLI, archive: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = (archive.with_suffix("") / "cert.pem").read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    (cli.tmp / "cert.der").write_bytes(der)
    (info,) = cli.json("inspect", "cert.der")
    assert info["common_name"] == "example.com"


@pytest.mark.parametrize("encoding", ["DER", "PEM"])
def test_inspect_p7b(cli: CLI, archive: Path, encoding: str) -> None:
    """A PKCS#7 certificate list reads as in a batch ZIP: the leaf and its chain."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    fullchain = (archive.with_suffix("") / "fullchain.pem").read_bytes()
    certs = x509.load_pem_x509_certificates(fullchain)
    data = pkcs7.serialize_certificates(certs, getattr(Encoding, encoding))
    (cli.tmp / "chain.p7b").write_bytes(data)
    (info,) = cli.json("inspect", "chain.p7b")
    (pem,) = cli.json("inspect", str(archive.with_suffix("") / "fullchain.pem"))
    assert info["common_name"] == "example.com"
    assert info["serial_number"] == pem["serial_number"]
    assert info["chain"] == pem["chain"]


def test_inspect_expires_within(cli: CLI, archive: Path) -> None:
    cert = str(archive.with_suffix("") / "cert.pem")
    cli.ok("inspect", cert, "--expires-within", "30")
    soon = cli.emu("inspect", cert, "--expires-within", "400")
    assert soon.exit_code == 6
    assert "1 certificate(s) expire within 400 days: example.com" in error_line(soon)
    assert json.loads(soon.stdout)[0]["common_name"] == "example.com"  # still printed


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"\x00garbage"), "is not a certificate file"),
        (
            lambda p: p.write_text(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            ),
            "does not parse",
        ),
    ],
)
def test_inspect_bad_files_exit_2(cli: CLI, setup: object, message: str) -> None:
    target = cli.tmp / "thing.crt"
    setup(target)  # type: ignore[operator]
    result = cli.emu("inspect", "thing.crt")
    assert result.exit_code == 2
    assert message in error_line(result)


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


# -- output modes ---------------------------------------------------------------------------------


def test_tables_with_table_flag(cli: CLI) -> None:
    batch_id = cli.create()
    for args, expected in [
        (["authorities", "-b"], "TRISA Profile"),
        (["licenses"], "ordered"),
        (["profiles"], "Sectigo"),
        (["profiles", "-i", "42"], "keyAlgorithmInfo"),
        (["profiles", "-i", "42", "-p"], "pkcs12Password"),
        (["organization"], "Sectigo IoT Emulator"),
        (["batches", "-i", str(batch_id)], "READY_FOR_DOWNLOAD"),
        (["batches", "-i", str(batch_id), "-I"], "success"),
        (["find", "-n", "example.com"], "example.com"),
    ]:
        result = cli.ok("--table", *args)
        assert expected in result.stdout, args
        assert not result.stdout.lstrip().startswith(("{", "[")), args


def test_json_flag_for_text_outputs(cli: CLI) -> None:
    batch_id = cli.create()
    assert cli.json("--json", "batches", "-i", str(batch_id), "-s") == {
        "batchId": batch_id,
        "status": "READY_FOR_DOWNLOAD",
    }
    assert cli.json("--json", "download", "-i", str(batch_id), "-o", ".") == {
        "batchId": batch_id,
        "path": f"{batch_id}.zip",
    }


def test_revoke_in_table_mode_confirms(cli: CLI) -> None:
    cli.create()
    serial = cli.serial_of("example.com")
    out = cli.ok("--table", "revoke", "-p", "42", "-r", "superseded", "-s", serial).stdout
    assert out == f"revoked certificate {serial} (superseded) under profile 42\n"


def test_version_and_no_arguments(cli: CLI) -> None:
    from sectigo_iot import __version__

    assert cli("--version").stdout == f"sectigo version {__version__}\n"
    bare = cli()
    assert bare.exit_code == 2
    assert "Usage: sectigo" in bare.stdout


def test_demo(cli: CLI) -> None:
    result = cli("demo")
    assert result.exit_code == 0, result.stderr
    for step in (
        "1. authorities",
        "2. create",
        "3. wait",
        "4. download",
        "5. PEM",
        "6. inspect",
        "7. find",
        "8. revoke",
    ):
        assert step in result.stdout
    assert "is now REVOKED" in result.stdout
    assert result.stderr.count("pkcs12 password: ") == 1


def test_demo_json_and_dir(cli: CLI) -> None:
    summary = cli.json("--json", "demo", "--dir", "kept")
    assert summary["revoked"][0]["status"] == "REVOKED"
    assert Path(summary["pem"]["key"]).is_file()


# -- real HTTP: the emulator in a thread, the CLI pointed at it ----------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with Emulator() as emulator, emulator.run_in_thread() as url:
        yield url


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


def test_testing_environment_fills_in_the_mock_credentials(cli: CLI, served: str) -> None:
    result = cli("-E", "testing", "-e", served, "licenses")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"ordered": 10, "issued": 0}


def test_environment_variables(cli: CLI, served: str) -> None:
    env = {
        "SECTIGO_ENDPOINT": served,
        "SECTIGO_USERNAME": "tester",
        "SECTIGO_PASSWORD": "supersecretsquirrel",
    }
    assert cli("authorities", env=env).exit_code == 0
    refused = cli("-E", "production", "authorities", env=env)
    assert refused.exit_code == 2


def test_connection_refused_exit_1(cli: CLI) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("-u", "tester", "-p", "pw", "-e", f"http://127.0.0.1:{port}", "licenses")
    assert result.exit_code == 1
    assert error_line(result).startswith("error: ")


def test_expiry_math() -> None:
    from sectigo_iot.cli.commands.auth import go_time

    moment = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc) + timedelta(0)
    assert go_time(moment.timestamp())[:4] == "2024"
