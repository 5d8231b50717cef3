"""The bad-input catalogue: each case fails with a clear typed error before anything is
sent or written, and no file or license is spent."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sectigo_iot import (
    InvalidArchiveError,
    InvalidCSRError,
    InvalidInputError,
    InvalidResponseError,
    PKCS12PasswordError,
    SectigoClient,
)
from sectigo_iot.certs import generate_csr, open_batch_zip, write_pem
from sectigo_iot.emulator import Emulator
from tests.certs.helpers import make_csr

P12 = "catalogue-P12-pw"
FIXTURE = Path(__file__).parent.parent / "data" / "certificate.zip"
Call = Callable[[SectigoClient, Path], Awaitable[Any]]


def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def create(common_name: Any = "ok.example.com", **kwargs: Any) -> Call:
    kwargs.setdefault("pkcs12_password", P12)
    return lambda c, _: c.batches.create(
        kwargs.pop("authority_id", 1), common_name=common_name, **kwargs
    )


def upload(data: Any) -> Call:
    async def call(c: SectigoClient, tmp: Path) -> Any:
        value = data(tmp) if callable(data) else data
        return await c.batches.upload_csrs(42, value)

    return call


def sha1_csr(tmp: Path) -> bytes:
    """cryptography refuses to sign with SHA-1, so openssl makes this one."""
    import subprocess

    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp / "k.pem"),
            "-out",
            str(tmp / "sha1.csr"),
            "-sha1",
            "-subj",
            "/CN=bad.example.com",
            "-addext",
            "subjectAltName=DNS:bad.example.com",
        ],
        check=True,
        capture_output=True,
    )
    data = (tmp / "sha1.csr").read_bytes()
    for name in ("k.pem", "sha1.csr"):
        (tmp / name).unlink()
    return data


def bad_signature_csr() -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = bytearray(
        x509.load_pem_x509_csr(make_csr("bad.example.com")).public_bytes(serialization.Encoding.DER)
    )
    der[-5] ^= 0xFF
    import base64

    body = base64.encodebytes(bytes(der))
    return b"-----BEGIN CERTIFICATE REQUEST-----\n" + body + b"-----END CERTIFICATE REQUEST-----\n"


CLIENT_CASES: list[tuple[str, Call, type[Exception], str]] = [
    ("empty domain", create(""), InvalidInputError, "empty"),
    ("blank domain", create("   "), InvalidInputError, "empty"),
    ("too long domain", create(".".join(["a" * 60] * 5)), InvalidInputError, "limit is 253"),
    ("label over 63", create("x" * 64 + ".example.com"), InvalidInputError, "at most 63"),
    ("underscore label", create("bad_label.example.com"), InvalidInputError, "underscore"),
    ("space in domain", create("has space.example.com"), InvalidInputError, "whitespace"),
    ("leading hyphen", create("-lead.example.com"), InvalidInputError, "hyphen"),
    ("wildcard over a TLD", create("*.com"), InvalidInputError, "whole top-level domain"),
    ("homograph", create("\u0430pple.com"), InvalidInputError, "mixes scripts"),
    ("zero-width space", create("exa\u200bmple.com"), InvalidInputError, "invisible"),
    ("IP address", create("10.0.0.1"), InvalidInputError, "IP address"),
    ("single label", create("localhost"), InvalidInputError, "single label"),
    (
        "bad extra DNS name",
        create(dns_names=["ok2.example.com", "bad name"]),
        InvalidInputError,
        "whitespace",
    ),
    ("dns_names as a string", create(dns_names="www.example.com"), InvalidInputError, "sequence"),
    ("empty pkcs12 password", create(pkcs12_password=""), InvalidInputError, "pkcs12_password"),
    (
        "non-string param",
        create(params={"organizationName": 5}),
        InvalidInputError,
        "must be a string",
    ),
    (
        "reserved param",
        create(params={"commonName": "x.example.com"}),
        InvalidInputError,
        "must not set",
    ),
    ("authority id 0", create(authority_id=0), InvalidInputError, "authority_id"),
    ("negative authority id", create(authority_id=-4), InvalidInputError, "authority_id"),
    ("string batch id", lambda c, _: c.batches.get("17"), InvalidInputError, "batch_id"),
    ("float batch id", lambda c, _: c.batches.status(1.5), InvalidInputError, "batch_id"),
    ("bool batch id", lambda c, _: c.batches.processing_info(True), InvalidInputError, "batch_id"),
    ("negative profile id", lambda c, _: c.profiles.get(-3), InvalidInputError, "profile_id"),
    ("empty CSR file", upload(lambda tmp: tmp / "empty.csr"), InvalidCSRError, "no CSR|empty"),
    ("garbage CSR", upload(b"this is not a certificate request"), InvalidCSRError, "no CSR"),
    (
        "CSR without SAN",
        upload(lambda _: make_csr("bad.example.com", ())),
        InvalidCSRError,
        "dNSName",
    ),
    (
        "1024-bit RSA CSR",
        upload(lambda _: make_csr("bad.example.com", key=rsa_key(1024))),
        InvalidCSRError,
        "1024",
    ),
    ("SHA-1 CSR", upload(sha1_csr), InvalidCSRError, "SHA-?1|sha1"),
    ("bad CSR signature", upload(lambda _: bad_signature_csr()), InvalidCSRError, "signature"),
    ("missing CSR file", upload(lambda tmp: tmp / "nope.csr"), InvalidInputError, "nope.csr"),
    (
        "revocation code 7",
        lambda c, _: c.certificates.revoke(42, "ABCD", 7),
        InvalidInputError,
        "7",
    ),
    (
        "reason 'value 7 is not used'",
        lambda c, _: c.certificates.revoke(42, "ABCD", "value 7 is not used"),
        InvalidInputError,
        "unspecified",
    ),
    (
        "unknown reason",
        lambda c, _: c.certificates.revoke(42, "ABCD", "bored"),
        InvalidInputError,
        "key compromise",
    ),
    ("reason code 11", lambda c, _: c.certificates.revoke(42, "ABCD", 11), InvalidInputError, "11"),
    (
        "non-hex serial",
        lambda c, _: c.certificates.revoke(42, "XYZ-1", "superseded"),
        InvalidInputError,
        "hexadecimal",
    ),
    ("find with nothing", lambda c, _: c.certificates.find(), InvalidInputError, "common_name"),
    (
        "download into a file",
        lambda c, tmp: c.batches.download(5, tmp / "x.txt"),
        InvalidInputError,
        "is a file",
    ),
    (
        "download into a folder under a file",
        lambda c, tmp: c.batches.download(5, tmp / "x.txt" / "sub"),
        InvalidInputError,
        "is not a folder",
    ),
    (
        "download over an existing file",
        lambda c, tmp: c.batches.download(5, tmp / "5.zip"),
        InvalidInputError,
        "already exists",
    ),
    (
        "wait with a zero timeout",
        lambda c, _: c.batches.wait(5, timeout=0),
        InvalidInputError,
        "timeout",
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "error", "message"), CLIENT_CASES, ids=[c[0] for c in CLIENT_CASES]
)
async def test_client_rejects_before_sending(
    sectigo_emulator: Emulator,
    tmp_path: Path,
    name: str,
    call: Call,
    error: type[Exception],
    message: str,
) -> None:
    for name, data in (("empty.csr", b""), ("x.txt", b"a file"), ("5.zip", b"old archive")):
        (tmp_path / name).write_bytes(data)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    async with sectigo_emulator.client() as client:
        with pytest.raises(error, match=message):
            await call(client, tmp_path)
    assert sum(sectigo_emulator.stats.requests.values()) == 0, "something was sent"
    assert sectigo_emulator.licenses_used == 0
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before, "a file was written or changed"


OFFLINE_CASES: list[tuple[str, Callable[[Path], Any], type[Exception], str]] = [
    (
        "bad country code",
        lambda _: generate_csr("a.example.com", country="USA", key_type="ec-p256"),
        InvalidInputError,
        "two-letter",
    ),
    (
        "unknown key type",
        lambda _: generate_csr("a.example.com", key_type="dsa1024"),
        InvalidInputError,
        "ec-p256",
    ),
    (
        "wrong PKCS#12 password",
        lambda _: open_batch_zip(FIXTURE, "not-the-password"),
        PKCS12PasswordError,
        "password",
    ),
    (
        "truncated archive",
        lambda _: open_batch_zip(FIXTURE.read_bytes()[:3000], "x"),
        InvalidArchiveError,
        "truncated",
    ),
    (
        "zip slip",
        lambda _: open_batch_zip(_zip(("../evil.pem", b"x"))),
        InvalidArchiveError,
        r"\.\.",
    ),
    (
        "absolute member",
        lambda _: open_batch_zip(_zip(("/etc/evil.pem", b"x"))),
        InvalidArchiveError,
        "absolute",
    ),
    (
        "not a zip",
        lambda _: open_batch_zip(b"<html>error</html>"),
        InvalidArchiveError,
        "not a ZIP",
    ),
    (
        "write_pem into a file",
        lambda tmp: write_pem(_bundle(), tmp / "f"),
        InvalidInputError,
        "not a directory",
    ),
]


def _zip(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _bundle() -> Any:
    [bundle] = open_batch_zip(FIXTURE, "qDhAwnfMjgDEzzUC")
    return bundle


@pytest.mark.parametrize(
    ("name", "call", "error", "message"), OFFLINE_CASES, ids=[c[0] for c in OFFLINE_CASES]
)
def test_toolkit_rejects_before_writing(
    tmp_path: Path, name: str, call: Callable[[Path], Any], error: type[Exception], message: str
) -> None:
    (tmp_path / "f").write_bytes(b"a file")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=message):
        call(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


SERVER_REPLIES: list[tuple[str, dict[str, Any]]] = [
    ("HTML page", {"html": "<html><body>Service Unavailable</body></html>"}),
    ("invalid JSON", {"text": '{"batchId": 1,'}),
    ("empty body", {"content": b""}),
    ("non-UTF-8 body", {"content": b"\xff\xfe\x00\x01"}),
    ("huge body", {"content": b"[" + b" " * (10 * 1024 * 1024) + b"]"}),
]


@pytest.mark.parametrize(("name", "reply"), SERVER_REPLIES, ids=[r[0] for r in SERVER_REPLIES])
async def test_bad_server_replies(
    client: SectigoClient, httpx_mock: Any, login: Any, name: str, reply: dict[str, Any]
) -> None:
    login()
    httpx_mock.add_response(url="https://iot.sectigo.com/api/v1/batches/5", **reply)
    with pytest.raises(InvalidResponseError):
        await client.batches.get(5)


async def test_download_of_an_error_page_writes_nothing(
    client: SectigoClient, httpx_mock: Any, login: Any, tmp_path: Path
) -> None:
    login()
    httpx_mock.add_response(
        url="https://iot.sectigo.com/api/v1/batches/5",
        json={"batchId": 5, "status": "READY_FOR_DOWNLOAD"},
    )
    httpx_mock.add_response(
        url="https://iot.sectigo.com/api/v1/batches/5/download", html="<html>Error</html>"
    )
    with pytest.raises(InvalidResponseError, match="HTML page"):
        await client.batches.download(5, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_catalogue_size() -> None:
    total = len(CLIENT_CASES) + len(OFFLINE_CASES) + len(SERVER_REPLIES) + 1
    assert total >= 40
