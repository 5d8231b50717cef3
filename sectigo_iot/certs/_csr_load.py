"""Parsing and checking CSRs before they are uploaded to Sectigo."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable

from attrs import frozen
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import InvalidCSRError, InvalidInputError
from ._bundle import common_name_of
from ._domains import show, validate_domain
from ._keys import key_type_name

__all__ = ["MAX_CSRS", "MAX_CSR_INPUT_BYTES", "CSRInfo", "load_csrs"]

MAX_CSR_INPUT_BYTES = 1024 * 1024
MAX_CSRS = 1000
_MIN_RSA_BITS = 2048
_CURVES = {"secp256r1", "secp384r1"}
_HASHES = {"sha224", "sha256", "sha384", "sha512"}
_MAX_CN = 64

_BEGIN = re.compile(rb"-----BEGIN ([^\r\n-]*)-----")
_CSR_LABELS = {b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"}


@frozen(kw_only=True)
class CSRInfo:
    """One checked CSR.

    ``pem`` is the CSR re-encoded as a standard ``CERTIFICATE REQUEST`` PEM block;
    ``dns_names`` are the subjectAltName DNS names as written in the CSR; ``key_type`` is
    e.g. ``"rsa4096"`` or ``"ec-p256"``.
    """

    pem: bytes
    common_name: str
    dns_names: tuple[str, ...]
    key_type: str


def load_csrs(data: bytes | str | os.PathLike[str]) -> list[CSRInfo]:
    """Parse a PEM text holding one or more CSRs and check each against Sectigo's needs.

    ``data`` is the PEM as bytes; or a str, which is PEM text when its first
    non-whitespace characters are ``-----BEGIN`` and a file path otherwise; or a path.
    Blocks may be labelled ``CERTIFICATE REQUEST`` or ``NEW CERTIFICATE REQUEST``; any other
    PEM block (a private key above all) is refused. At most 1000 CSRs and 1 MiB.

    Each CSR must have a valid signature, an RSA key of at least 2048 bits or an EC key on
    P-256 or P-384, a SHA-2 signature hash (not MD5 or SHA-1), a subjectAltName with at
    least one valid DNS name (Sectigo breaks the batch otherwise), and a common name of at
    most 64 characters that is a valid DNS name (see :func:`validate_domain`) and is one of
    the subjectAltName DNS names (compared in normalized form), as a create requires.

    Raises:
        InvalidCSRError: the input cannot be read, holds no CSR, or a CSR breaks a rule;
            ``index`` (0-based) and ``common_name`` say which one.
    """
    raw = _read_input(data)
    blocks = _split_pem(raw)
    return [_check_csr(der, index) for index, der in enumerate(blocks)]


def _read_input(data: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    elif isinstance(data, str) and data.lstrip().startswith("-----BEGIN"):
        raw = data.encode("utf-8")
    elif isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_CSR_INPUT_BYTES + 1)
        except OSError as exc:
            raise InvalidCSRError(f"could not read {path}: {exc.strerror or exc}") from None
    else:
        raise InvalidCSRError(f"expected PEM bytes, PEM text or a path, not {type(data).__name__}")
    if len(raw) > MAX_CSR_INPUT_BYTES:
        raise InvalidCSRError(
            f"the CSR input is larger than {MAX_CSR_INPUT_BYTES // 1024} KiB; split it into "
            "several uploads"
        )
    return raw


def _split_pem(raw: bytes) -> list[bytes]:
    """Return the DER of every CSR block, refusing any other kind of block."""
    ders: list[bytes] = []
    for match in _BEGIN.finditer(raw):
        index = len(ders)
        label = match.group(1)
        if label not in _CSR_LABELS:
            kind = label.decode("ascii", "replace")
            hint = " Never upload a private key." if b"PRIVATE KEY" in label else ""
            raise InvalidCSRError(
                f"the input holds a {kind!r} PEM block; only CERTIFICATE REQUEST blocks may "
                f"be uploaded.{hint}"
            )
        if index >= MAX_CSRS:
            raise InvalidCSRError(f"the input holds more than {MAX_CSRS} CSRs; split it")
        end = raw.find(b"-----END " + label + b"-----", match.end())
        if end < 0:
            raise InvalidCSRError("is truncated: its END line is missing", index=index)
        body = b"".join(raw[match.end() : end].split())
        try:
            ders.append(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError):
            raise InvalidCSRError("has a damaged base64 body", index=index) from None
    if not ders:
        what = (
            "no CSR found: the input is empty" if not raw.strip() else "no CSR found in the input"
        )
        raise InvalidCSRError(
            f"{what}; expected PEM blocks starting with -----BEGIN CERTIFICATE REQUEST-----"
        )
    return ders


def _check_csr(der: bytes, index: int) -> CSRInfo:
    try:
        csr = x509.load_der_x509_csr(der)
        common_name = common_name_of(csr.subject)
    except (ValueError, TypeError, x509.InvalidVersion) as exc:  # TypeError: odd name types
        raise InvalidCSRError(
            f"does not parse as a certificate request ({exc})", index=index
        ) from None

    def fail(reason: str) -> InvalidCSRError:
        return InvalidCSRError(reason, index=index, common_name=common_name)

    key_type = _check_key(csr, fail)
    _check_signature(csr, fail)
    dns_names = _check_names(csr, common_name, fail)
    return CSRInfo(
        pem=csr.public_bytes(serialization.Encoding.PEM),
        common_name=common_name,
        dns_names=dns_names,
        key_type=key_type,
    )


#: makes the error of one CSR from a reason
_Fail = Callable[[str], InvalidCSRError]


def _check_key(csr: x509.CertificateSigningRequest, fail: _Fail) -> str:
    """The name of the CSR's key type; an error unless RSA of enough bits or EC P-256/P-384."""
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise fail("has a public key of an unknown or unsupported algorithm") from None
    key_type = key_type_name(public_key)
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < _MIN_RSA_BITS:
            raise fail(
                f"has a {public_key.key_size}-bit RSA key; use at least {_MIN_RSA_BITS} bits"
            )
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in _CURVES:
            raise fail(f"uses the EC curve {public_key.curve.name}; use P-256 or P-384")
    else:
        raise fail(f"has a {key_type} key; use RSA (2048 bits or more) or EC P-256/P-384")
    return key_type


def _check_signature(csr: x509.CertificateSigningRequest, fail: _Fail) -> None:
    """An error unless the CSR is validly signed with an accepted hash."""
    try:
        digest = csr.signature_hash_algorithm
    except UnsupportedAlgorithm:
        raise fail("is signed with an unknown algorithm; sign it with SHA-256") from None
    if digest is None or digest.name not in _HASHES:
        name = digest.name.upper() if digest is not None else "no hash"
        raise fail(f"is signed with {name}, which is not accepted; sign it with SHA-256 or better")
    if not csr.is_signature_valid:
        raise fail("has an invalid signature (the request was altered or damaged)")


def _check_names(
    csr: x509.CertificateSigningRequest, common_name: str, fail: _Fail
) -> tuple[str, ...]:
    """The CSR's subjectAltName DNS names; an error unless each is valid and the common
    name is a valid domain name among them."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    except (
        ValueError,
        TypeError,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
    ) as exc:
        raise fail(f"has malformed extensions ({exc})") from None
    if not dns_names:
        raise fail(
            "has no subjectAltName DNS name; Sectigo fails such a batch with "
            "'SubjectAlternativeName dNSName value is missing'. Add one, e.g. "
            "openssl req ... -addext 'subjectAltName=DNS:example.com'"
        )
    names: list[str] = []
    for name in dns_names:
        try:
            names.append(validate_domain(name))
        except InvalidInputError as exc:
            raise fail(f"has an invalid subjectAltName DNS name: {exc}") from None
    if not common_name:
        raise fail(
            "has no common name (CN); Sectigo needs one. Set CN to its main DNS name, "
            f"e.g. openssl req ... -subj '/CN={dns_names[0]}'"
        )
    if len(common_name) > _MAX_CN:
        raise fail(f"has a common name longer than {_MAX_CN} characters")
    try:
        cn = validate_domain(common_name)
    except InvalidInputError as exc:
        raise fail(f"has a common name that is not a valid domain name: {exc}") from None
    if cn not in names:
        raise fail(
            f"has a common name that is not among its subjectAltName DNS names "
            f"({', '.join(map(show, dns_names[:5]))}); a certificate request must list its "
            f"CN there too, e.g. openssl req ... -addext 'subjectAltName=DNS:{cn}'"
        )
    return dns_names
