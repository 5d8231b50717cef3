"""CSR uploads: find the CSRs in PEM text or a ZIP, and check them like Sectigo does."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ._ca import PublicKey, is_dns_name
from ._limits import MAX_BODY_BYTES

__all__ = ["CheckedCSR", "UploadError", "check_csr", "extract_csrs"]

#: most CSRs accepted in one upload
MAX_CSRS = 1000
_MAX_ENTRY_SIZE = 1024 * 1024
_PEM_CSR = re.compile(
    rb"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----.+?-----END (?:NEW )?CERTIFICATE REQUEST-----",
    re.DOTALL,
)
_CURVES = (ec.SECP256R1, ec.SECP384R1)


class UploadError(ValueError):
    """The upload holds no CSR at all, or an unreadable archive (answered with 400)."""


@dataclass(frozen=True)
class CheckedCSR:
    """One uploaded CSR; ``problem`` is the reject reason, empty when the CSR is fine."""

    common_name: str
    dns_names: tuple[str, ...]
    public_key: PublicKey | None
    subject: x509.Name | None
    problem: str = ""


def _zip_members(data: bytes) -> Iterable[bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir() and info.filename.lower().endswith((".csr", ".pem"))
            ]
            if len(members) > MAX_CSRS:
                raise UploadError(f"Too many files in the archive (at most {MAX_CSRS})")
            # unpacked, the archive is held to the bound of a request body
            if sum(info.file_size for info in members) > MAX_BODY_BYTES:
                raise UploadError(f"The archive unpacks to more than {MAX_BODY_BYTES} bytes")
            for info in members:
                if info.file_size > _MAX_ENTRY_SIZE:
                    raise UploadError(f"Archive entry {info.filename!r} is too large")
                yield archive.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise UploadError("The uploaded ZIP archive cannot be read") from exc


def extract_csrs(files: Iterable[bytes]) -> list[bytes]:
    """The PEM CSR blocks in the uploaded files (PEM text, or ZIPs of ``.csr``/``.pem``)."""
    blocks: list[bytes] = []
    for data in files:
        texts = _zip_members(data) if data.startswith(b"PK\x03\x04") else [data]
        for text in texts:
            blocks.extend(_PEM_CSR.findall(text))
    if not blocks:
        raise UploadError("No certificate signing request found in the uploaded files")
    if len(blocks) > MAX_CSRS:
        raise UploadError(f"Too many certificate signing requests (at most {MAX_CSRS})")
    return blocks


def _key_problem(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "" if key.key_size >= 2048 else "Key algorithm error: RSA key shorter than 2048"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "" if isinstance(key.curve, _CURVES) else "Key algorithm error: unsupported curve"
    return "Key algorithm error: unsupported key type"


def check_csr(block: bytes) -> CheckedCSR:
    """Parse and check one PEM CSR: signature, key type, SAN dNSName values."""
    try:
        csr = x509.load_pem_x509_csr(block)
    except ValueError:
        return CheckedCSR("", (), None, None, "CSR error: the request cannot be parsed")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    except ValueError:
        return CheckedCSR(common_name, (), None, None, "CSR error: bad extensions")
    key = csr.public_key()
    problem = ""
    if not csr.is_signature_valid:
        problem = "CSR error: the signature does not match the public key"
    elif _key_problem(key):
        problem = _key_problem(key)
    elif not dns_names:
        problem = "Cert subject name error: SubjectAlternativeName dNSName value is missing"
    else:
        bad = [name for name in dns_names if not is_dns_name(name)]
        if bad:
            problem = f"Cert subject name error: dNSName value {bad[0]!r} is not a valid DNS name"
    if problem or not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return CheckedCSR(common_name or "", dns_names, None, None, problem)
    return CheckedCSR(common_name or dns_names[0], dns_names, key, csr.subject)
