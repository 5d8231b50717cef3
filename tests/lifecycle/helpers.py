"""Helpers the lifecycle tests share: the certificate they keep, reading its journal, and
what a managed folder's links point at."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sectigo_iot.certs import CertificateBundle, load_pem_bundle
from sectigo_iot.lifecycle import CertificateSpec, Journal, read_journal

#: the certificate most lifecycle tests keep
SPEC = CertificateSpec(authority_id=1, common_name="node.example.com")
CREATE = "/api/v1/batches/createSingleCertBatch"
DAY = 24 * 3600


def journal_of(folder: Path) -> Journal:
    """The journal of ``folder``, which must have one."""
    journal = read_journal(folder)
    assert journal is not None
    return journal


def key_matches(bundle: CertificateBundle) -> bool:
    """Whether the bundle's private key is the certificate's."""
    assert bundle.private_key is not None
    der = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key = bundle.private_key.public_key().public_bytes(*der)
    return key == bundle.certificate.public_key().public_bytes(*der)


def live_pair(folder: Path, via: str = "live/") -> tuple[str, bool]:
    """The serial at the stable paths, and whether the key there matches it."""
    bundle = load_pem_bundle(
        (folder / f"{via}cert.pem").read_bytes() + (folder / f"{via}key.pem").read_bytes()
    )
    return bundle.serial_number, key_matches(bundle)
