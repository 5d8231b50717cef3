"""Generating a private key and a CSR that Sectigo accepts for TRISA certificates."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

from attrs import field, frozen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import InvalidInputError
from ._domains import show, validate_domain
from ._keys import (
    check_key_type,
    key_encryption,
    key_type_name,
    new_private_key,
    private_key_pem,
    signing_hash,
)

__all__ = ["AbbreviatedStateWarning", "CSRResult", "generate_csr"]

_MAX_CN = 64  # RFC 5280 ub-common-name
_MAX_ORGANIZATION = 64  # ub-organization-name
_MAX_LOCALITY_OR_STATE = 128  # ub-locality-name, ub-state-name


class AbbreviatedStateWarning(UserWarning):
    """The state looks abbreviated ("CA"); certificate profiles expect it spelled out."""


@frozen(kw_only=True)
class CSRResult:
    """A generated CSR and its private key, both PEM.

    ``key_pem`` is PKCS#8, encrypted when ``generate_csr`` was given a passphrase; it never
    appears in the repr.
    """

    csr_pem: bytes
    key_pem: bytes = field(repr=False)
    common_name: str
    dns_names: tuple[str, ...]
    key_type: str


def leaf_extensions(
    public_key: PublicKeyTypes, dns_names: Sequence[str]
) -> list[tuple[x509.ExtensionType, bool]]:
    """The extensions of a TRISA mTLS end-entity certificate, with their criticality:
    not a CA, digital signature and non-repudiation (and key encipherment for RSA),
    client and server authentication, and ``dns_names`` as the SAN."""
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,  # nonRepudiation
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    purposes = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (usage, True),
        (x509.ExtendedKeyUsage(purposes), False),
        (x509.SubjectAlternativeName([x509.DNSName(name) for name in dns_names]), False),
    ]


def generate_csr(
    common_name: str,
    dns_names: Iterable[str] = (),
    *,
    organization: str = "TRISA Member VASP",
    locality: str = "Menlo Park",
    state: str = "California",
    country: str = "US",
    key_type: str = "rsa4096",
    passphrase: str | bytes | None = None,
    allow_wildcard: bool = True,
    private_key: bytes | None = None,
) -> CSRResult:
    """Generate a private key and a CSR for ``common_name`` (and extra ``dns_names``).

    The CSR matches the OpenSSL recipe documented for TRISA: subject C/ST/L/O/CN, a
    subjectAltName with the common name first and then the other names (normalized with
    :func:`validate_domain`, duplicates dropped), ``basicConstraints CA:FALSE``, key usage
    digitalSignature, nonRepudiation and keyEncipherment (keyEncipherment only for RSA
    keys: EC keys cannot encipher), and extended key usage clientAuth and serverAuth.

    ``key_type`` is one of ``rsa2048``, ``rsa3072``, ``rsa4096`` (the default, signed with
    SHA-384 as the recipe), ``ec-p256`` (SHA-256) or ``ec-p384`` (SHA-384). Every input is
    checked before a key is generated. A wildcard (``"*.example.com"``) is accepted
    unless ``allow_wildcard=False``. With ``private_key`` (an unencrypted PEM key of one
    of those types) the CSR is for that key instead of a new one, and ``key_type`` must
    name its type.

    Raises:
        InvalidInputError: a name, the country, the subject fields or the key type is invalid.

    Warns:
        AbbreviatedStateWarning: ``state`` looks like a two-letter abbreviation.
    """
    if isinstance(dns_names, (str, bytes)):
        raise InvalidInputError(
            "dns_names must be a list or tuple of names, not a single string; "
            f"write dns_names=[{dns_names!r}]"
        )
    check_key_type(key_type)
    encryption = key_encryption(passphrase)
    cn, names = _subject_names(common_name, dns_names, allow_wildcard=allow_wildcard)
    subject = _subject(
        cn, country=country, state=state, locality=locality, organization=organization
    )
    key = new_private_key(key_type) if private_key is None else _given_key(private_key, key_type)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for extension, critical in leaf_extensions(key.public_key(), names):
        builder = builder.add_extension(extension, critical=critical)
    csr = builder.sign(key, signing_hash(key_type))
    return CSRResult(
        csr_pem=csr.public_bytes(serialization.Encoding.PEM),
        key_pem=private_key_pem(key, encryption),
        common_name=cn,
        dns_names=tuple(names),
        key_type=key_type,
    )


def _given_key(pem: bytes, key_type: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """``pem``'s key, which must be of ``key_type``."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise InvalidInputError("private_key is not an unencrypted PEM private key") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise InvalidInputError(f"private_key is a {type(key).__name__}, not an RSA or EC key")
    if key_type_name(key.public_key()) != key_type:
        raise InvalidInputError(
            f"private_key is a {key_type_name(key.public_key())} key, not {key_type}"
        )
    return key


def _subject_names(
    common_name: str, dns_names: Iterable[str], *, allow_wildcard: bool
) -> tuple[str, list[str]]:
    """The normalized common name, and every DNS name (it first, no duplicates)."""
    cn = validate_domain(common_name, allow_wildcard=allow_wildcard)
    if len(cn) > _MAX_CN:
        raise InvalidInputError(
            f"common name {show(cn)} is {len(cn)} characters long; a common name has at "
            f"most {_MAX_CN}. Use a shorter name as CN and put the long one in dns_names"
        )
    names = [cn]
    for name in dns_names:
        normalized = validate_domain(name, allow_wildcard=allow_wildcard)
        if normalized not in names:
            names.append(normalized)
    return cn, names


def _subject(cn: str, *, country: str, state: str, locality: str, organization: str) -> x509.Name:
    """The subject C/ST/L/O/CN, each field checked."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, _check_country(country)),
            x509.NameAttribute(
                NameOID.STATE_OR_PROVINCE_NAME,
                _check_text("state", _check_state(state), _MAX_LOCALITY_OR_STATE),
            ),
            x509.NameAttribute(
                NameOID.LOCALITY_NAME, _check_text("locality", locality, _MAX_LOCALITY_OR_STATE)
            ),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME,
                _check_text("organization", organization, _MAX_ORGANIZATION),
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _check_country(country: str) -> str:
    if not isinstance(country, str):
        raise InvalidInputError(f"country must be a str, not {type(country).__name__}")
    code = country.strip()
    if len(code) != 2 or not (code.isascii() and code.isalpha()):
        raise InvalidInputError(
            f"country {show(country)} is not a two-letter ISO 3166 code; use e.g. 'US' or 'DE'"
        )
    return code.upper()


def _check_state(state: str) -> str:
    if isinstance(state, str):
        text = state.strip()
        if len(text) == 2 and text.isascii() and text.isalpha():
            warnings.warn(
                f"state {text!r} looks abbreviated; certificate profiles expect the full "
                "name, e.g. 'California' rather than 'CA'",
                AbbreviatedStateWarning,
                stacklevel=3,
            )
    return state


def _check_text(what: str, value: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a str, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidInputError(f"{what} is empty; give a value (e.g. the default)")
    if len(text) > limit:
        raise InvalidInputError(f"{what} {show(text)} is longer than {limit} characters")
    if not text.isprintable():
        raise InvalidInputError(f"{what} {show(text)} contains control characters")
    return text
