"""The emulator's PKCS#12 files next to Sectigo's real one, with OpenSSL as the judge."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import RC2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from sectigo_iot.certs import load_pkcs12, open_batch_zip
from sectigo_iot.emulator import Emulator
from sectigo_iot.emulator._ca import CertificateAuthority, new_private_key
from sectigo_iot.emulator._pkcs12 import legacy_pkcs12, pkcs12_bytes, rc2_cbc_encrypt
from sectigo_iot.models import Batch
from tests.certs.helpers import FIXTURE_PASSWORD, FIXTURE_ZIP
from tests.emulator.helpers import P12_PASSWORD, authed, create, openssl, params, strict, unzip
from tests.support import needs_openssl

#: what ``openssl pkcs12 -info -legacy -noout`` reports about Sectigo's file
SECTIGO_INFO = [
    "MAC: sha1, Iteration 1",
    "MAC length: 20, salt length: 8",
    "PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC, Iteration 2048",
    "Certificate bag",
    "Certificate bag",
    "Certificate bag",
    "PKCS7 Data",
    "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048",
]
#: the unencrypted DER layout of Sectigo's file (``openssl asn1parse`` without offsets,
#: lengths and byte dumps): the PFX, its AuthenticatedSafe, then the key's SafeContents
SECTIGO_OUTLINE = """
0 SEQUENCE|1 INTEGER :03|1 SEQUENCE|2 OBJECT :pkcs7-data|2 cont [ 0 ]|3 OCTET STRING|1 SEQUENCE
|2 SEQUENCE|3 SEQUENCE|4 OBJECT :sha1|3 OCTET STRING|2 OCTET STRING
|0 SEQUENCE|1 SEQUENCE|2 OBJECT :pkcs7-encryptedData|2 cont [ 0 ]|3 SEQUENCE|4 INTEGER :00
|4 SEQUENCE|5 OBJECT :pkcs7-data|5 SEQUENCE|6 OBJECT :pbeWithSHA1And40BitRC2-CBC|6 SEQUENCE
|7 OCTET STRING|7 INTEGER :0800|5 cont [ 0 ]|1 SEQUENCE|2 OBJECT :pkcs7-data|2 cont [ 0 ]
|3 OCTET STRING
|0 SEQUENCE|1 SEQUENCE|2 OBJECT :pkcs8ShroudedKeyBag|2 cont [ 0 ]|3 SEQUENCE|4 SEQUENCE
|5 OBJECT :pbeWithSHA1And3-KeyTripleDES-CBC|5 SEQUENCE|6 OCTET STRING|6 INTEGER :0800
|4 OCTET STRING|2 SET|3 SEQUENCE|4 OBJECT :localKeyID|4 SET|5 OCTET STRING
""".replace("\n", "").split("|")
_ASN1_LINE = re.compile(r"\s*(\d+):d=(\d+)\s+hl=\s*\d+\s+l=\s*\d+\s+(?:prim|cons):\s+(.*)")


def asn1_outline(path: Path, *drill: int) -> list[tuple[int, str]]:
    """``openssl asn1parse`` of ``path`` (inside the octet strings at ``drill``): each
    element's offset and ``"<depth> <type> <value>"`` without byte dumps."""
    strparse = [arg for offset in drill for arg in ("-strparse", str(offset))]
    parsed = openssl("asn1parse", "-inform", "DER", "-in", path, *strparse)
    assert parsed.returncode == 0, parsed.stderr
    lines = []
    for line in parsed.stdout.splitlines():
        match = _ASN1_LINE.fullmatch(line)
        assert match, line
        offset, depth, rest = match.groups()
        rest = re.sub(r"\s+(:|\[HEX DUMP\]:.*$)", lambda m: " :" if m[1] == ":" else "", rest)
        lines.append((int(offset), f"{depth} {rest.strip()}"))
    return lines


def full_outline(path: Path) -> list[str]:
    """The outline of the PFX, its AuthenticatedSafe and its unencrypted SafeContents."""
    pfx = asn1_outline(path)
    auth_safe_at = next(offset for offset, text in pfx if text.endswith("OCTET STRING"))
    auth_safe = asn1_outline(path, auth_safe_at)
    key_bags_at = [offset for offset, text in auth_safe if text.endswith("OCTET STRING")][-1]
    key_bags = asn1_outline(path, auth_safe_at, key_bags_at)
    return [text for _, text in pfx + auth_safe + key_bags]


async def emulator_p12(**options: str) -> bytes:
    """The ``.p12`` of a freshly downloaded single-certificate batch."""
    with Emulator(key_type="rsa2048", **options) as emulator:
        async with authed(emulator) as http:
            batch = strict(await create(http, profile_params=params("p12.example.com")), Batch)
            download = await http.get(f"/api/v1/batches/{batch.batch_id}/download")
    return unzip(download.content)["p12.example.com.p12"]


@needs_openssl
@pytest.mark.parametrize("source", ["sectigo", "emulator"])
async def test_same_pkcs12_layout_as_sectigo(tmp_path: Path, source: str) -> None:
    """Sectigo's real file and the emulator's pass the very same checks."""
    if source == "sectigo":
        with zipfile.ZipFile(FIXTURE_ZIP) as archive:
            data = archive.read("api.bob.vaspbot.net.p12")
        password = FIXTURE_PASSWORD
    else:
        data, password = await emulator_p12(), P12_PASSWORD
    path = tmp_path / "file.p12"
    path.write_bytes(data)
    passin = f"pass:{password}"

    info = openssl("pkcs12", "-info", "-legacy", "-noout", "-in", path, "-passin", passin)
    assert info.returncode == 0, info.stderr
    assert (info.stdout + info.stderr).splitlines() == SECTIGO_INFO
    assert full_outline(path) == SECTIGO_OUTLINE

    # OpenSSL 3's default provider has no RC2: without -legacy the file does not open
    for args in (["-info", "-noout"], ["-nodes"]):
        plain = openssl("pkcs12", *args, "-in", path, "-passin", passin)
        assert plain.returncode != 0
        assert "RC2-40-CBC" in plain.stderr and "unsupported" in plain.stderr

    opened = openssl("pkcs12", "-legacy", "-in", path, "-nodes", "-passin", passin)
    assert opened.returncode == 0, opened.stderr
    leaf, intermediate, root = x509.load_pem_x509_certificates(opened.stdout.encode())
    assert leaf.issuer == intermediate.subject and intermediate.issuer == root.subject
    assert root.issuer == root.subject
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    # the leaf and the key share localKeyID = SHA-1 of the leaf; the CA bags have none
    key_id = hashlib.sha1(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    found = re.findall(r"localKeyID: ([0-9A-F ]+)", opened.stdout)
    assert [value.replace(" ", "").lower() for value in found] == [key_id, key_id]
    assert opened.stdout.count("Bag Attributes: <Empty Attributes>") == 2
    key = serialization.load_pem_private_key(opened.stdout.encode(), password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == (
        leaf.public_key().public_bytes(serialization.Encoding.DER, spki)
    )

    # the toolkit reads both, leaf first
    bundle = load_pkcs12(data, password)
    assert bundle.certificate == leaf and list(bundle.chain) == [intermediate, root]


@pytest.mark.parametrize("pkcs12_format", ["legacy", "modern"])
async def test_toolkit_opens_the_emulator_archive(tmp_path: Path, pkcs12_format: str) -> None:
    with Emulator(key_type="ec-p256", pkcs12_format=pkcs12_format) as emulator:
        async with authed(emulator) as http:
            batch = strict(await create(http, "kit.example.com", "www.kit.example.com"), Batch)
            download = await http.get(f"/api/v1/batches/{batch.batch_id}/download")
        archive = tmp_path / "batch.zip"
        archive.write_bytes(download.content)
        [bundle] = open_batch_zip(archive, P12_PASSWORD)
        assert bundle.common_name == "kit.example.com"
        assert set(bundle.sans) == {"kit.example.com", "www.kit.example.com"}
        assert list(bundle.chain) == [emulator.ca_certificate, emulator.root_certificate]
        assert bundle.private_key is not None


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="pkcs12_format"):
        Emulator(pkcs12_format="aes")
    ca = CertificateAuthority.generate()
    with pytest.raises(ValueError, match="unknown PKCS#12 format 'aes'"):
        pkcs12_bytes(new_private_key("ec-p256"), [ca.certificate], "pw", "aes")


@needs_openssl
@pytest.mark.parametrize("password", ["Ünïcödé-pässwörd-€", "x"])
def test_openssl_opens_any_password(tmp_path: Path, password: str) -> None:
    """The PKCS#12 key derivation takes the password as a NUL-ended BMPString."""
    ca = CertificateAuthority.generate()
    path = tmp_path / "file.p12"
    path.write_bytes(legacy_pkcs12(new_private_key("ec-p256"), ca.certificates, password))
    opened = openssl("pkcs12", "-legacy", "-in", path, "-nodes", "-passin", f"pass:{password}")
    assert opened.returncode == 0, opened.stderr
    assert x509.load_pem_x509_certificates(opened.stdout.encode()) == [ca.certificate]
    assert load_pkcs12(path.read_bytes(), password).certificate == ca.certificate


def test_salts_are_fresh_for_every_file() -> None:
    ca = CertificateAuthority.generate()
    key = new_private_key("ec-p256")
    assert legacy_pkcs12(key, ca.certificates, "pw") != legacy_pkcs12(key, ca.certificates, "pw")


# RFC 2268 section 5: key, effective key bits, plaintext, ciphertext
RC2_VECTORS = [
    ("0000000000000000", 63, "0000000000000000", "ebb773f993278eff"),
    ("ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"),
    ("3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"),
    ("88", 64, "0000000000000000", "61a8a244adacccf0"),
    ("88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"),
    ("88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"),
    ("88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"),
    (
        "88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e",
        129,
        "0000000000000000",
        "5b78d3a43dfff1f1",
    ),
]


@pytest.mark.parametrize(("key", "bits", "plain", "cipher"), RC2_VECTORS)
def test_rc2_matches_rfc_2268(key: str, bits: int, plain: str, cipher: str) -> None:
    zero_iv = bytes(8)  # one CBC block with a zero IV is the bare block cipher
    encrypted = rc2_cbc_encrypt(bytes.fromhex(key), bits, zero_iv, bytes.fromhex(plain))
    assert encrypted.hex() == cipher


def test_rc2_cbc_matches_openssl_rc2_128() -> None:
    """cryptography (OpenSSL) has RC2 with 128-bit keys: CBC chaining must agree."""
    key, iv, data = os.urandom(16), os.urandom(8), os.urandom(8 * 100)
    encryptor = Cipher(RC2(key), modes.CBC(iv)).encryptor()
    assert rc2_cbc_encrypt(key, 128, iv, data) == encryptor.update(data) + encryptor.finalize()
