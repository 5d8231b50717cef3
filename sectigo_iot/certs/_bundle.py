"""A certificate with its chain and (maybe) its private key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from attrs import field, frozen
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import NameOID

from .._html import table_html
from ..errors import InvalidInputError
from ._keys import key_encryption, key_type_name, private_key_pem

__all__ = [
    "MAX_BUNDLE_CERTIFICATES",
    "CertificateBundle",
    "check_certificate_count",
    "common_name_of",
    "make_bundle",
]

#: Certificates accepted in one bundle (a PEM file, a PKCS#12 or PKCS#7 file): a leaf and
#: its chain are a handful; thousands are a way to make chain building slow.
MAX_BUNDLE_CERTIFICATES = 100


@frozen(kw_only=True, repr=False)
class CertificateBundle:
    """A leaf certificate, its issuers and, when delivered, its private key.

    ``chain`` holds the issuers from the leaf's issuer upwards (the leaf is not in it);
    ``source`` names where the bundle came from (an archive member name, for example).
    The private key never appears in the repr nor in :meth:`to_dict`.
    """

    certificate: x509.Certificate
    private_key: PrivateKeyTypes | None = field(default=None, repr=False, eq=False)
    chain: tuple[x509.Certificate, ...] = ()
    source: str = ""

    @property
    def subject(self) -> str:
        """The leaf's subject as an RFC 4514 string."""
        return self.certificate.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        """The leaf's issuer as an RFC 4514 string."""
        return self.certificate.issuer.rfc4514_string()

    @property
    def common_name(self) -> str:
        """The leaf's subject common name, or ``""`` when it has none."""
        return common_name_of(self.certificate.subject)

    @property
    def sans(self) -> tuple[str, ...]:
        """The DNS names of the leaf's subjectAltName extension."""
        try:
            ext = self.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return ()
        return tuple(ext.value.get_values_for_type(x509.DNSName))

    @property
    def serial_number(self) -> str:
        """The serial as Sectigo prints it: upper-case hex, no separators or leading zeros."""
        return format(self.certificate.serial_number, "X")

    @property
    def not_before(self) -> datetime:
        """Start of validity, an aware UTC datetime."""
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        """End of validity, an aware UTC datetime."""
        return self.certificate.not_valid_after_utc

    @property
    def fingerprint_sha256(self) -> str:
        """SHA-256 of the leaf's DER, as colon-separated upper-case hex (OpenSSL's style)."""
        return self.certificate.fingerprint(hashes.SHA256()).hex(":").upper()

    @property
    def key_type(self) -> str:
        """The leaf's public key type, e.g. ``"rsa4096"`` or ``"ec-p256"``."""
        return key_type_name(self.certificate.public_key())

    @property
    def certificate_pem(self) -> bytes:
        """The leaf as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        """The issuers as concatenated PEM (empty when there is no chain)."""
        return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in self.chain)

    @property
    def fullchain_pem(self) -> bytes:
        """The leaf followed by its issuers, as PEM."""
        return self.certificate_pem + self.chain_pem

    def private_key_pem(self, passphrase: str | bytes | None = None) -> bytes:
        """The private key as PKCS#8 PEM, encrypted when ``passphrase`` is given.

        Raises:
            InvalidInputError: the bundle has no private key, or the passphrase is empty.
        """
        if self.private_key is None:
            raise InvalidInputError(f"the bundle {self.source!r} has no private key")
        return private_key_pem(self.private_key, key_encryption(passphrase))

    def expires_within(self, days: float, *, now: datetime | None = None) -> bool:
        """True if the leaf expires within ``days`` days from ``now`` (or is expired)."""
        moment = now if now is not None else datetime.now(timezone.utc)
        return self.not_after <= moment + timedelta(days=days)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary of the leaf and its chain (never the key)."""
        return {
            "source": self.source,
            "subject": self.subject,
            "common_name": self.common_name,
            "sans": list(self.sans),
            "serial_number": self.serial_number,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "fingerprint_sha256": self.fingerprint_sha256,
            "key_type": self.key_type,
            "has_private_key": self.private_key is not None,
            "chain": [
                {
                    "subject": cert.subject.rfc4514_string(),
                    "serial_number": format(cert.serial_number, "X"),
                    "not_after": cert.not_valid_after_utc.isoformat(),
                }
                for cert in self.chain
            ],
        }

    def _repr_html_(self) -> str:
        summary = self.to_dict()
        chain = summary.pop("chain")
        summary["sans"] = ", ".join(summary["sans"])
        rows = [*summary.items()]
        rows += [
            (f"chain[{number}]", f"{cert['subject']} (serial {cert['serial_number']})")
            for number, cert in enumerate(chain)
        ]
        return table_html("CertificateBundle", ("field", "value"), rows)

    def __repr__(self) -> str:
        return (
            f"CertificateBundle(common_name={self.common_name!r}, "
            f"serial_number={self.serial_number!r}, not_after={self.not_after.isoformat()!r}, "
            f"chain={len(self.chain)}, private_key={self.private_key is not None}, "
            f"source={self.source!r})"
        )


def make_bundle(
    certificates: Sequence[x509.Certificate],
    private_key: PrivateKeyTypes | None,
    source: str,
) -> CertificateBundle:
    """Pick the leaf among ``certificates`` and order the rest as its chain.

    The leaf is the certificate whose public key matches ``private_key``; without a key
    (or no match), the first certificate that issued none of the others; failing that, the
    first one. The chain follows issuer names from the leaf upwards, and any certificate
    not on that path is appended in its original order. Certificates are indexed by
    subject, so the work grows linearly with their number, which is capped at
    :data:`MAX_BUNDLE_CERTIFICATES`.

    Raises:
        InvalidInputError: no certificate, too many, or one whose fields do not parse.
    """
    where = source or "the data"
    check_certificate_count(len(certificates), where)
    unique: dict[x509.Certificate, None] = {}
    for number, cert in enumerate(certificates, 1):
        _check_parses(cert, f"{where}: certificate #{number}")
        unique[cert] = None
    certs = list(unique)
    if not certs:
        raise InvalidInputError(f"{where} holds no certificate")
    subjects = [cert.subject for cert in certs]
    issuers = [cert.issuer for cert in certs]
    by_subject: dict[x509.Name, list[int]] = {}
    for index, subject in enumerate(subjects):
        by_subject.setdefault(subject, []).append(index)
    leaf = _find_leaf(certs, subjects, issuers, private_key)
    used = {leaf}
    chain: list[int] = []
    skip: dict[x509.Name, int] = {}  # per subject: how many candidates are already used
    current = leaf
    while True:
        issuer = issuers[current]
        candidates = by_subject.get(issuer, [])
        position = skip.get(issuer, 0)
        while position < len(candidates) and candidates[position] in used:
            position += 1
        skip[issuer] = position
        if position == len(candidates):
            break
        current = candidates[position]
        used.add(current)
        chain.append(current)
    chain.extend(index for index in range(len(certs)) if index not in used)
    return CertificateBundle(
        certificate=certs[leaf],
        private_key=private_key,
        chain=tuple(certs[index] for index in chain),
        source=source,
    )


def check_certificate_count(count: int, where: str) -> None:
    """Refuse more than :data:`MAX_BUNDLE_CERTIFICATES` certificates in one bundle."""
    if count > MAX_BUNDLE_CERTIFICATES:
        raise InvalidInputError(
            f"{where} holds more than {MAX_BUNDLE_CERTIFICATES} certificates; a certificate "
            "file has a leaf and a short chain. Split the file, or keep only the leaf and "
            "its issuers"
        )


def _check_parses(cert: x509.Certificate, what: str) -> None:
    """Parse the lazily decoded fields now, so a damaged certificate fails here, clearly."""
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        _ = cert.extensions, cert.not_valid_before_utc, cert.not_valid_after_utc
        cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise InvalidInputError(f"{what} is malformed or unsupported ({exc})") from None


def _find_leaf(
    certs: list[x509.Certificate],
    subjects: list[x509.Name],
    issuers: list[x509.Name],
    private_key: PrivateKeyTypes | None,
) -> int:
    if private_key is not None:
        wanted = _spki(private_key.public_key())
        for index, cert in enumerate(certs):
            if _spki(cert.public_key()) == wanted:
                return index
    issued = Counter(issuers)
    for index, subject in enumerate(subjects):
        # how many of the others name this certificate's subject as their issuer
        if issued[subject] - (subject == issuers[index]) == 0:
            return index
    return 0


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def common_name_of(name: x509.Name) -> str:
    """The first common name in ``name``, or ``""``."""
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return ""
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
