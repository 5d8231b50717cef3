"""open_batch_zip and load_pkcs12: real and openssl-made PKCS#12 files, hostile archives."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sectigo_iot.certs import CertificateBundle, load_pkcs12, open_batch_zip
from sectigo_iot.certs._pkcs12_kdf import kdf_work
from sectigo_iot.errors import InvalidArchiveError, PKCS12PasswordError, SectigoError
from tests.certs.helpers import (
    FIXTURE_PASSWORD,
    FIXTURE_SHA256,
    FIXTURE_ZIP,
    PKI,
    mutations,
    openssl,
    pem,
    zip_bytes,
)
from tests.support import needs_openssl

pytestmark = needs_openssl

PASSWORD = "Zq7pX2mK9vR4tL8wN3cB6yD1"

# openssl pkcs12 -export options and the algorithm `openssl pkcs12 -info` then reports.
P12_VARIANTS = {
    "rc2-legacy": (["-legacy"], "pbeWithSHA1And40BitRC2-CBC"),
    "3des": (
        ["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES"],
        "pbeWithSHA1And3-KeyTripleDES",
    ),
    "aes256": ([], "AES-256-CBC"),
}  # fmt: skip


@pytest.fixture(scope="module")
def p12_files(pki: PKI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The same key and chain exported by openssl with each encryption."""
    folder = tmp_path_factory.mktemp("p12")
    paths = pki.write(folder)
    files = {}
    for variant, (options, algorithm) in P12_VARIANTS.items():
        out = folder / f"{variant}.p12"
        openssl(
            "pkcs12", "-export", *options, "-in", paths["leaf"], "-inkey", paths["key"],
            "-certfile", paths["chain"], "-passout", f"pass:{PASSWORD}", "-out", out,
        )  # fmt: skip
        info = openssl(
            "pkcs12", "-info", "-noout", "-legacy", "-in", out, "-passin", f"pass:{PASSWORD}"
        )
        assert algorithm in info, info  # the file really uses the encryption under test
        files[variant] = out.read_bytes()
    return files


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in an empty cwd with an empty temp dir; afterwards both must still be empty."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield cwd
    assert list(cwd.iterdir()) == []
    assert list(tmp.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "tmp"]


def _check_bundle(bundle: CertificateBundle, pki: PKI) -> None:
    assert bundle.certificate == pki.leaf
    assert bundle.chain == (pki.intermediate, pki.root)
    assert bundle.private_key is not None
    assert bundle.private_key.public_key() == pki.leaf_key.public_key()
    assert bundle.common_name == "api.example.com"


# -- PKCS#12 -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(P12_VARIANTS))
def test_load_pkcs12_variants(variant: str, p12_files: dict[str, bytes], pki: PKI) -> None:
    bundle = load_pkcs12(p12_files[variant], PASSWORD, source=f"{variant}.p12")
    _check_bundle(bundle, pki)
    assert bundle.source == f"{variant}.p12"
    assert load_pkcs12(p12_files[variant], PASSWORD.encode()).certificate == pki.leaf


@pytest.mark.parametrize("variant", list(P12_VARIANTS))
def test_open_batch_zip_variants(variant: str, p12_files: dict[str, bytes], pki: PKI) -> None:
    data = zip_bytes(("api.example.com.p12", p12_files[variant]))
    [bundle] = open_batch_zip(data, PASSWORD)
    _check_bundle(bundle, pki)
    assert bundle.source == "api.example.com.p12"


@pytest.mark.parametrize("variant", list(P12_VARIANTS))
def test_wrong_password(variant: str, p12_files: dict[str, bytes]) -> None:
    with pytest.raises(PKCS12PasswordError, match="wrong PKCS#12 password") as info:
        load_pkcs12(p12_files[variant], "not-the-password")
    assert PASSWORD not in str(info.value)
    with pytest.raises(PKCS12PasswordError, match="password-protected"):
        load_pkcs12(p12_files[variant], None)


def _iterations_seen_by_openssl(path: Path) -> list[int]:
    info = openssl(
        "pkcs12", "-info", "-noout", "-legacy", "-in", path, "-passin", f"pass:{PASSWORD}"
    )
    return sorted(int(count) for count in re.findall(r"Iteration (\d+)", info))


@pytest.mark.parametrize("variant", list(P12_VARIANTS))
def test_iteration_counts_agree_with_openssl(
    variant: str, p12_files: dict[str, bytes], tmp_path: Path
) -> None:
    path = tmp_path / "v.p12"
    path.write_bytes(p12_files[variant])
    counts = sorted(count for _, count in kdf_work(p12_files[variant]))
    assert counts == _iterations_seen_by_openssl(path)
    assert len(counts) == 3  # the MAC, the certificates and the key


def _indefinite(der: bytes) -> bytes:
    """Re-encode the PFX's outer layers as BER: indefinite lengths, a chunked OCTET STRING.

    The MAC covers the value of the authSafe OCTET STRING, not its encoding, so the file
    stays valid.
    """

    def read(data: bytes, at: int) -> tuple[int, bytes, int]:
        tag, first = data[at], data[at + 1]
        at += 2
        if first & 0x80:
            size = first & 0x7F
            first = int.from_bytes(data[at : at + size], "big")
            at += size
        return tag, data[at : at + first], at + first

    def convert(data: bytes, depth: int) -> bytes:
        out, at = b"", 0
        while at < len(data):
            tag, content, at = read(data, at)
            if tag == 0x04 and depth == 2:  # the authSafe: four primitive pieces
                piece = -(-len(content) // 4)
                chunks = [content[i : i + piece] for i in range(0, len(content), piece)]
                out += b"\x24\x80" + b"".join(_der_octets(c) for c in chunks) + b"\x00\x00"
            elif tag & 0x20 and depth < 3:
                out += bytes([tag, 0x80]) + convert(content, depth + 1) + b"\x00\x00"
            else:
                out += data[at - len(content) - _header_size(len(content)) : at]
        return out

    return convert(der, 0)


def _header_size(length: int) -> int:
    return 2 if length < 0x80 else 2 + (length.bit_length() + 7) // 8


def _der_octets(value: bytes) -> bytes:
    size = len(value)
    length = bytes([size]) if size < 0x80 else bytes([0x82]) + size.to_bytes(2, "big")
    return b"\x04" + length + value


@pytest.mark.filterwarnings("ignore:PKCS#12 bundle could not be parsed as DER")
@pytest.mark.parametrize("variant", list(P12_VARIANTS))
def test_ber_encoded_pkcs12_opens(
    variant: str, p12_files: dict[str, bytes], pki: PKI, tmp_path: Path
) -> None:
    ber = _indefinite(p12_files[variant])
    assert b"\x30\x80" in ber and b"\x24\x80" in ber and ber != p12_files[variant]
    path = tmp_path / "ber.p12"
    path.write_bytes(ber)
    assert len(_iterations_seen_by_openssl(path)) == 3  # openssl reads it: valid BER
    assert kdf_work(ber) == kdf_work(p12_files[variant])
    _check_bundle(load_pkcs12(ber, PASSWORD), pki)


def test_damaged_pkcs12_raises_only_sectigo_errors(p12_files: dict[str, bytes]) -> None:
    samples = mutations(p12_files["aes256"], 200, seed=5) + mutations(
        p12_files["3des"], 200, seed=6
    )
    opened = 0
    for data in samples:
        with contextlib.suppress(SectigoError):
            load_pkcs12(data, PASSWORD)
            opened += 1
    assert opened < len(samples) * 0.5


def test_not_pkcs12_data() -> None:
    with pytest.raises(InvalidArchiveError, match=r"x\.p12 is not a valid PKCS#12 file"):
        open_batch_zip(zip_bytes(("x.p12", b"definitely not DER")), PASSWORD)


# -- the real Sectigo download -------------------------------------------------------------


@pytest.mark.parametrize("as_type", ["str", "path", "bytes"])
def test_real_sectigo_archive(as_type: str) -> None:
    source: dict[str, str | Path | bytes] = {
        "str": str(FIXTURE_ZIP),
        "path": FIXTURE_ZIP,
        "bytes": FIXTURE_ZIP.read_bytes(),
    }
    [bundle] = open_batch_zip(source[as_type], FIXTURE_PASSWORD)
    assert bundle.source == "api.bob.vaspbot.net.p12"
    assert bundle.common_name == "api.bob.vaspbot.net"
    assert bundle.serial_number == "4ADDF011CD7E6AC22CAFC9C6E7AF8974"
    assert bundle.sans == ("api.bob.vaspbot.net",)
    assert [c.subject.rfc4514_string().split(",")[0] for c in bundle.chain] == [
        "CN=CipherTrace Issuing CA",
        "CN=CipherTrace Root CA",
    ]
    assert isinstance(bundle.private_key, rsa.RSAPrivateKey)
    assert bundle.private_key.key_size == 4096
    assert bundle.key_type == "rsa4096"
    assert bundle.not_after.isoformat() == "2022-01-22T02:57:57+00:00"
    assert bundle.expires_within(0)  # long expired


def test_fixture_is_the_documented_file() -> None:
    assert hashlib.sha256(FIXTURE_ZIP.read_bytes()).hexdigest() == FIXTURE_SHA256


def test_real_archive_matches_openssl(tmp_path: Path) -> None:
    with zipfile.ZipFile(FIXTURE_ZIP) as archive:
        (tmp_path / "f.p12").write_bytes(archive.read("api.bob.vaspbot.net.p12"))
    text = openssl(
        "pkcs12", "-legacy", "-in", tmp_path / "f.p12", "-passin", f"pass:{FIXTURE_PASSWORD}",
        "-nokeys", "-clcerts",
    )  # fmt: skip
    leaf = x509.load_pem_x509_certificate(text[text.index("-----BEGIN") :].encode())
    [bundle] = open_batch_zip(FIXTURE_ZIP, FIXTURE_PASSWORD)
    assert bundle.certificate == leaf


def test_real_archive_wrong_password() -> None:
    with pytest.raises(PKCS12PasswordError, match="wrong PKCS#12 password") as info:
        open_batch_zip(FIXTURE_ZIP, "qDhAwnfMjgDEzzUc")
    assert "api.bob.vaspbot.net.p12" in str(info.value)


def test_rc2_without_the_legacy_provider_is_explained() -> None:
    code = (
        "import sys\n"
        "from sectigo_iot.certs import open_batch_zip\n"
        "from sectigo_iot.errors import UnsupportedPKCS12Error\n"
        "try:\n"
        f"    open_batch_zip({str(FIXTURE_ZIP)!r}, {FIXTURE_PASSWORD!r})\n"
        "except UnsupportedPKCS12Error as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    sys.exit('opened without the legacy provider')\n"
    )
    env = {**os.environ, "CRYPTOGRAPHY_OPENSSL_NO_LEGACY": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "CRYPTOGRAPHY_OPENSSL_NO_LEGACY" in proc.stdout
    assert "legacy provider" in proc.stdout


# -- PEM, DER and PKCS#7 members ----------------------------------------------------------


# openssl writes the PKCS#7 certificate SET unsorted (BER); cryptography warns and reads it.
@pytest.mark.filterwarnings("ignore:PKCS#7 certificates could not be parsed as DER")
def test_pem_der_and_p7b_members(pki: PKI, tmp_path: Path) -> None:
    chain_path = tmp_path / "chain.pem"
    chain_path.write_bytes(pem(pki.leaf) + pem(pki.intermediate) + pem(pki.root))
    p7b = tmp_path / "chain.p7b"
    openssl("crl2pkcs7", "-nocrl", "-certfile", chain_path, "-outform", "DER", "-out", p7b)
    data = zip_bytes(
        ("certs/shuffled.pem", pem(pki.root) + pem(pki.leaf) + pem(pki.intermediate)),
        ("leaf.der", pki.leaf.public_bytes(serialization.Encoding.DER)),
        ("leaf.cer", pki.leaf.public_bytes(serialization.Encoding.DER)),
        ("chain.p7b", p7b.read_bytes()),
        ("README.txt", b"ignored"),
        ("certs/", b""),
    )
    bundles = open_batch_zip(data)
    assert [b.source for b in bundles] == [
        "certs/shuffled.pem",
        "leaf.der",
        "leaf.cer",
        "chain.p7b",
    ]
    assert all(b.certificate == pki.leaf and b.private_key is None for b in bundles)
    assert bundles[0].chain == (pki.intermediate, pki.root)
    assert bundles[3].chain == (pki.intermediate, pki.root)


def test_bad_pem_member_is_named() -> None:
    with pytest.raises(InvalidArchiveError, match=r"leaf\.pem: no PEM certificate"):
        open_batch_zip(zip_bytes(("leaf.pem", b"no pem here")))


def test_archive_without_certificates() -> None:
    with pytest.raises(InvalidArchiveError, match="holds no certificate"):
        open_batch_zip(zip_bytes(("notes.txt", b"hello"), ("batch.csv", b"a,b")))


# -- hostile or broken archives ------------------------------------------------------------


def _patched(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) == 2  # local header + central directory
    return data.replace(old, new)


def _symlink_zip() -> bytes:
    info = zipfile.ZipInfo("link.pem")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_bytes((info, b"/etc/passwd"))


def _encrypted_zip(pki: PKI) -> bytes:
    data = bytearray(zip_bytes(("leaf.pem", pem(pki.leaf))))
    central = data.rindex(b"PK\x01\x02")
    data[central + 8] |= 0x01  # general purpose flag bit 0: encrypted
    local = data.index(b"PK\x03\x04")
    data[local + 6] |= 0x01
    return bytes(data)


def _bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb.pem", "w") as member,
    ):
        chunk = bytes(1024 * 1024)
        for _ in range(size // len(chunk)):
            member.write(chunk)
    return buffer.getvalue()


def _lying_bomb() -> bytes:
    """A 5 MB member whose headers claim 1000 bytes."""
    data = bytearray(_bomb(5 * 1024 * 1024))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        data[at + offset : at + offset + 4] = (1000).to_bytes(4, "little")
    return bytes(data)


def _too_much_in_total() -> bytes:
    # 17 members of 1,000,000 bytes: each under the 1 MiB member limit and compressing only
    # about 60 times (a random 16 KiB block repeated), but 17 MB together.
    block = os.urandom(16 * 1024)
    content = (block * 62)[:1_000_000]
    return zip_bytes(*((f"m{i}.pem", content) for i in range(17)))


def _duplicate_zip(pki: PKI) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        return zip_bytes(("leaf.pem", pem(pki.leaf)), ("leaf.pem", pem(pki.root)))


def _corrupt_stored(pki: PKI) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("leaf.pem", pem(pki.leaf))
    data = buffer.getvalue()
    return data.replace(b"-----BEGIN CERTIFICATE-----", b"-----BEGIN CERTIFICATE=----", 1)


# case -> (build the archive from the test PKI, the error message expected)
HOSTILE: dict[str, tuple[Callable[[PKI], bytes], str]] = {
    "zip slip": (lambda pki: zip_bytes(("../evil.pem", pem(pki.leaf))), r"'\.\.' component"),
    "nested zip slip": (lambda pki: zip_bytes(("a/../../evil.pem", pem(pki.leaf))), r"'\.\.'"),
    "absolute path": (
        lambda pki: zip_bytes(("/tmp/sectigo-iot-evil.pem", pem(pki.leaf))),
        "absolute path",
    ),
    "drive letter": (lambda pki: zip_bytes(("C:/evil.pem", pem(pki.leaf))), "absolute path"),
    "backslash": (lambda pki: zip_bytes(("..\\evil.pem", pem(pki.leaf))), "backslash"),
    "NUL": (
        lambda pki: _patched(zip_bytes(("evilXpem.pem", pem(pki.leaf))), b"evilXpem", b"evil\0pem"),
        "NUL",
    ),
    "symlink": (lambda pki: _symlink_zip(), "symbolic link"),
    "duplicate": (_duplicate_zip, "appears twice"),
    "encrypted": (_encrypted_zip, "encrypted"),
    "too many members": (
        lambda pki: zip_bytes(*((f"c{i}.pem", pem(pki.leaf)) for i in range(101))),
        "101 members; at most 100",
    ),
    "zip bomb": (lambda pki: _bomb(50 * 1024 * 1024), "larger than 1 MiB"),
    "lying zip bomb": (lambda pki: _lying_bomb(), "corrupt"),
    "too much in total": (lambda pki: _too_much_in_total(), "add up to more than 16 MiB"),
    "not a zip": (lambda pki: b"this is not a zip file at all", "not a ZIP archive"),
    "empty": (lambda pki: b"", "not a ZIP archive"),
    "truncated": (lambda pki: FIXTURE_ZIP.read_bytes()[:4000], "not a ZIP archive"),
    "corrupt member": (_corrupt_stored, "corrupt"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archives_are_rejected(case: str, pki: PKI, isolated: Path) -> None:
    build, message = HOSTILE[case]
    data = build(pki)
    with pytest.raises(InvalidArchiveError, match=message):
        open_batch_zip(data, PASSWORD)
    path = isolated / ".." / "archive.zip"
    path.write_bytes(data)
    with pytest.raises(InvalidArchiveError, match=message):
        open_batch_zip(path, PASSWORD)
    path.unlink()
    assert not (isolated.parent.parent / "evil.pem").exists()
    assert not Path("/tmp/sectigo-iot-evil.pem").exists()


def test_oversized_archive_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sectigo_iot.certs._archive as archive_module

    monkeypatch.setattr(archive_module, "MAX_ARCHIVE_BYTES", 1000)
    with pytest.raises(InvalidArchiveError, match="larger than"):
        open_batch_zip(FIXTURE_ZIP.read_bytes(), FIXTURE_PASSWORD)
    with pytest.raises(InvalidArchiveError, match="larger than"):
        open_batch_zip(FIXTURE_ZIP, FIXTURE_PASSWORD)


def test_missing_archive_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArchiveError, match="cannot read"):
        open_batch_zip(tmp_path / "missing.zip")


def test_damaged_archives_raise_only_sectigo_errors(pki: PKI) -> None:
    pem_zip = zip_bytes(("a.pem", pem(pki.leaf) + pem(pki.root)), ("b.der", pem(pki.leaf)))
    samples = mutations(FIXTURE_ZIP.read_bytes(), 300, seed=1) + mutations(pem_zip, 300, seed=2)
    opened = 0
    for data in samples:
        with contextlib.suppress(SectigoError):
            open_batch_zip(data, FIXTURE_PASSWORD)
            opened += 1
    assert opened < len(samples)  # the damage was noticed most of the time
