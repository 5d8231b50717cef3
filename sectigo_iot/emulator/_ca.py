"""The emulator's test CA (a root and an issuing intermediate), issuance and ZIP packaging."""

from __future__ import annotations

import io
import re
import secrets
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ..certs import KEY_TYPES, leaf_extensions, new_private_key

__all__ = [
    "KEY_TYPES",
    "CertificateAuthority",
    "PrivateKey",
    "PublicKey",
    "build_zip",
    "cached_ca",
    "crl_path",
    "entry_name",
    "is_dns_name",
    "new_private_key",
    "subject_from_params",
]

PrivateKey: TypeAlias = "rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey"
PublicKey: TypeAlias = "rsa.RSAPublicKey | ec.EllipticCurvePublicKey"

#: key types the emulator can generate, for leaf keys and for its CA

#: the optional subject attributes of single-certificate params, in subject order
_SUBJECT_OIDS = (
    ("countryName", NameOID.COUNTRY_NAME),
    ("stateOrProvinceName", NameOID.STATE_OR_PROVINCE_NAME),
    ("localityName", NameOID.LOCALITY_NAME),
    ("organizationName", NameOID.ORGANIZATION_NAME),
)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_CLOCK_SKEW = timedelta(minutes=5)
_ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=timezone.utc)  # the earliest date a ZIP can hold


def is_dns_name(name: str) -> bool:
    """Whether ``name`` is an ASCII DNS host name (a leading ``*.`` wildcard is allowed)."""
    if not name.isascii() or len(name.rstrip(".")) > 253:
        return False
    labels = name.rstrip(".").split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    return all(_LABEL.fullmatch(label) for label in labels)


def subject_from_params(params: Mapping[str, str]) -> x509.Name:
    """The subject for single-certificate params: the common name and the optional
    attributes the request gave (none is made up). ``ValueError`` holds a reject reason."""
    common_name = params.get("commonName", "")
    if not is_dns_name(common_name):
        raise ValueError(
            f"Cert subject name error: commonName value {common_name!r} is not a valid DNS name"
        )
    values = {key: params[key] for key, _ in _SUBJECT_OIDS if params.get(key)}
    country = values.get("countryName", "US")
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        raise ValueError("Cert subject name error: countryName must be a two-letter code")
    for key, value in values.items():
        if len(value) > 64:
            raise ValueError(f"Cert subject name error: {key} is longer than 64 characters")
    attributes = [
        x509.NameAttribute(oid, values[key]) for key, oid in _SUBJECT_OIDS if key in values
    ]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sectigo-iot emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_certificate(
    name: x509.Name,
    key: PrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: PrivateKey,
    *,
    path_length: int,
) -> x509.Certificate:
    """A CA certificate for ``key``, self-signed when ``issuer`` is None."""
    now = datetime.now(timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    issuer_ski = (
        ski
        if issuer is None
        else issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


class CertificateAuthority:
    """The CA that signs the emulator's leaf certificates, with the CA certificates above it.

    ``certificate`` signs the leaves and ``key`` is its key; ``chain`` holds the
    certificates above it up to the self-signed root, and is empty when ``certificate``
    is that root. The emulator's own CA is a root and an intermediate, like Sectigo's.
    """

    certificate: x509.Certificate
    """The CA certificate that signs the leaves."""
    chain: tuple[x509.Certificate, ...]
    """The certificates above ``certificate``, up to the self-signed root."""

    def __init__(
        self,
        key: PrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        self._key = key
        self.certificate = certificate
        self.chain = tuple(chain)

    def __repr__(self) -> str:
        return f"<CertificateAuthority {self.certificate.subject.rfc4514_string()}>"

    @property
    def root(self) -> x509.Certificate:
        """The self-signed root at the top of the chain (``certificate`` when alone)."""
        return self.chain[-1] if self.chain else self.certificate

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """``certificate`` then ``chain``: what follows a leaf in a PKCS#12 or PEM chain."""
        return (self.certificate, *self.chain)

    @classmethod
    def generate(
        cls,
        key_type: str = "ec-p256",
        *,
        common_name: str = "Sectigo IoT Emulator Root CA",
        intermediate: bool = False,
    ) -> CertificateAuthority:
        """A new self-signed root named ``common_name``, valid for ten years; with
        ``intermediate``, an issuing intermediate under it signs instead (the root's
        key is then dropped), as the emulator's own CA does."""
        root_key = new_private_key(key_type)
        root = _ca_certificate(
            _ca_name(common_name), root_key, None, root_key, path_length=int(intermediate)
        )
        if not intermediate:
            return cls(root_key, root)
        key = new_private_key(key_type)
        issuing = _ca_certificate(
            _ca_name("Sectigo IoT Emulator Issuing CA"), key, root, root_key, path_length=0
        )
        return cls(key, issuing, (root,))

    @classmethod
    def from_pem(cls, certificate_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        """Load a CA from PEM certificates (the signing one first, then its chain, as
        :attr:`certificate_pem` writes them) and its unencrypted PEM private key."""
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError("the CA key must be an RSA or EC key")
        certificate, *chain = x509.load_pem_x509_certificates(certificate_pem)
        return cls(key, certificate, chain)

    @property
    def certificate_pem(self) -> bytes:
        """:attr:`certificates` in PEM: a CA file that verifies a leaf on its own."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates)

    def private_key_pem(self) -> bytes:
        """The signing key as unencrypted PKCS#8 PEM (for persistence only)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def key_id(self) -> str:
        """The signing certificate's subject key identifier in lower-case hex: the name
        of its CRL (:func:`crl_path`)."""
        return self._subject_key_identifier().digest.hex()

    def _subject_key_identifier(self) -> x509.SubjectKeyIdentifier:
        return self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    def issue(
        self,
        public_key: PublicKey,
        subject: x509.Name,
        dns_names: Sequence[str],
        *,
        now: datetime,
        validity: timedelta,
        crl_url: str | None = None,
    ) -> x509.Certificate:
        """Sign an end-entity certificate for ``public_key`` with a random 128-bit serial.

        ``now`` is the emulator's time: the certificate is valid from five minutes
        before it (never the wall clock, so a test that moves the clock ages the
        certificate too). ``crl_url``, when given, is its CRL distribution point.
        """
        issuer_ski = self._subject_key_identifier()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(secrets.randbits(128) or 1)
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + validity)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
                critical=False,
            )
        )
        if crl_url is not None:
            point = x509.DistributionPoint(
                [x509.UniformResourceIdentifier(crl_url)], None, None, None
            )
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        for extension, critical in leaf_extensions(public_key, dns_names):
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(self._key, hashes.SHA256())

    def crl(
        self, revoked: Iterable[tuple[int, datetime, int]], *, now: datetime, interval: timedelta
    ) -> bytes:
        """A DER CRL signed by this CA, issued at ``now`` and next updated ``interval``
        later, listing every ``(serial, revoked at, RFC 5280 reason code)``. Code 0
        (unspecified) carries no reason extension, as RFC 5280 asks."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(now + interval)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                    self._subject_key_identifier()
                ),
                critical=False,
            )
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        )
        for serial, when, code in revoked:
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            if code:
                entry = entry.add_extension(x509.CRLReason(_REASON_FLAGS[code]), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


#: RFC 5280 CRLReason codes as cryptography's flags (7 is unused)
_REASON_FLAGS = {
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}


def crl_path(key_id: str) -> str:
    """The emulator's path of the CRL of the CA whose key identifier is ``key_id``."""
    return f"/emulator/crl/{key_id}.crl"


_CACHE: dict[str, CertificateAuthority] = {}
_CACHE_LOCK = threading.Lock()


def cached_ca(key_type: str) -> CertificateAuthority:
    """One root and intermediate per key type and process, shared by in-memory emulators."""
    with _CACHE_LOCK:
        if key_type not in _CACHE:
            _CACHE[key_type] = CertificateAuthority.generate(key_type, intermediate=True)
        return _CACHE[key_type]


def entry_name(common_name: str, suffix: str) -> str:
    """The archive entry for a certificate: lower-cased CN, spaces as ``_``, no slashes."""
    stem = common_name.lower().replace(" ", "_").replace("/", "_").replace("\\", "_")
    return (stem or "certificate") + suffix


def build_zip(entries: Sequence[tuple[str, bytes]], dated: datetime) -> bytes:
    """A deflated ZIP archive of ``(name, data)`` entries; duplicate names get a suffix.

    Every entry is dated ``dated`` (UTC) and made on "Unix" with mode 0600, so the same
    entries always give the same bytes.
    """
    buffer = io.BytesIO()
    seen: set[str] = set()
    date_time = max(dated.astimezone(timezone.utc), _ZIP_EPOCH).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            unique, counter = name, 1
            while unique in seen:
                counter += 1
                stem, dot, ext = name.rpartition(".")
                unique = f"{stem}-{counter}{dot}{ext}" if dot else f"{name}-{counter}"
            seen.add(unique)
            info = zipfile.ZipInfo(unique, date_time)
            info.create_system = 3
            info.external_attr = 0o100600 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
