"""Shared helpers for the certificate-handling tests: openssl, a test PKI, CSRs, zips."""

from __future__ import annotations

import base64
import io
import random
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# The real Sectigo download of spec/emulator.md §9 (a copy lives in tests/data).
FIXTURE_ZIP = Path(__file__).parent.parent / "data" / "certificate.zip"
FIXTURE_SHA256 = "50e2ea55bbe6a1f150869955e2c7c3aa90e0b02a6192985c0077cd5eb768bdff"
FIXTURE_PASSWORD = "qDhAwnfMjgDEzzUC"


# The OpenSSL recipe of the upstream README (spec/cli.md §2.7) as a config file.
TRISA_CONF = """\
[req]
distinguished_name = dn
req_extensions = v3_req
prompt = no

[dn]
C = US
ST = California
L = Menlo Park
O = TRISA Member VASP
CN = {cn}

[v3_req]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment, nonRepudiation
extendedKeyUsage = clientAuth, serverAuth
subjectAltName = @alt_names

[alt_names]
DNS.1 = {cn}
"""


def openssl(*args: str | Path, stdin: bytes | None = None, check: bool = True) -> str:
    """Run openssl and return its stdout+stderr as text."""
    proc = subprocess.run(
        ["openssl", *map(str, args)], input=stdin, capture_output=True, check=False
    )
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed:\n{output}")
    return output


def openssl_ok(*args: str | Path) -> bool:
    """Whether an openssl command succeeds."""
    return subprocess.run(["openssl", *map(str, args)], capture_output=True).returncode == 0


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class PKI:
    """A root, an intermediate and a leaf (with its key), all EC P-256."""

    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    def write(self, folder: Path) -> dict[str, Path]:
        """Write leaf.pem, key.pem, chain.pem (intermediate+root) and root.pem."""
        paths = {
            "leaf": folder / "leaf.pem",
            "key": folder / "key.pem",
            "chain": folder / "chain.pem",
            "root": folder / "root.pem",
        }
        paths["leaf"].write_bytes(pem(self.leaf))
        paths["key"].write_bytes(key_pem(self.leaf_key))
        paths["chain"].write_bytes(pem(self.intermediate) + pem(self.root))
        paths["root"].write_bytes(pem(self.root))
        return paths


def _name(cn: str) -> x509.Name:
    """``C=US, O=Test PKI, CN=<cn>`` (``cn`` taken as it is, whatever it holds)."""
    parts = [
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.ORGANIZATION_NAME, "Test PKI"),
        (NameOID.COMMON_NAME, cn),
    ]
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    serial: int,
    days: int,
    sans: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(cn: str = "api.example.com", *, leaf_days: int = 395, serial: int = 0x0ABC) -> PKI:
    """Issue a fresh three-level PKI; the leaf has SANs ``cn`` and ``www.<cn>``."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    mid_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = _issue("Test Root CA", root_key, "Test Root CA", root_key, ca=True, serial=1, days=3650)
    mid = _issue("Test Issuing CA", mid_key, "Test Root CA", root_key, ca=True, serial=2, days=3650)
    leaf = _issue(
        cn,
        leaf_key,
        "Test Issuing CA",
        mid_key,
        ca=False,
        serial=serial,
        days=leaf_days,
        sans=(cn, f"www.{cn}"),
    )
    return PKI(root=root, intermediate=mid, leaf=leaf, leaf_key=leaf_key)


def make_csr(
    common_name: str | None = "api.example.com",
    dns_names: Sequence[str] | None = None,
    *,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
) -> bytes:
    """A PEM CSR built with cryptography (bypassing the toolkit's own generator and checks).

    Signed with SHA-256 by ``key`` (a fresh EC P-256 key unless one is given). The subject
    is ``CN=common_name``, or ``O=Example`` (no common name) when it is None; the SAN lists
    ``dns_names``, by default just the common name; ``dns_names=()`` leaves the SAN out.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    attribute = (
        x509.NameAttribute(NameOID.COMMON_NAME, common_name)
        if common_name is not None
        else x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example")
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([attribute]))
    names = list(dns_names) if dns_names is not None else [common_name] if common_name else []
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def zip_bytes(*members: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    """Build a ZIP (deflated) in memory from (name or ZipInfo, content) pairs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    """``count`` damaged copies of ``data`` (bytes changed, cut out or inserted), seeded."""
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(damaged))
            kind = rng.random()
            if kind < 0.7:
                damaged[at] = rng.randrange(256)
            elif kind < 0.85:
                del damaged[at : at + rng.randint(1, 20)]
            else:
                damaged[at:at] = rng.randbytes(rng.randint(1, 8))
        result.append(bytes(damaged))
    return result


def pem_block(der: bytes, label: str) -> bytes:
    """Wrap DER in a PEM block."""
    body = base64.encodebytes(der)
    return f"-----BEGIN {label}-----\n".encode() + body + f"-----END {label}-----\n".encode()
