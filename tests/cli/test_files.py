"""The offline commands: csr (a key 0600 and a CSR, never overwritten without --force) and
inspect (ZIP, PKCS#12, PEM, DER and PKCS#7 files; passwords; --expires-within).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sectigo_iot.certs import open_batch_zip
from tests.cli.helpers import CLI, error_line, mode

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
