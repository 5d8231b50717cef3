"""Key generation and key-type names shared by the CSR and bundle code."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)

from ..errors import InvalidInputError

__all__ = [
    "KEY_TYPES",
    "check_key_type",
    "key_encryption",
    "key_type_name",
    "new_private_key",
    "private_key_pem",
    "signing_hash",
]

# Key types generate_csr can create, in the order they are listed to users.
KEY_TYPES = ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384")

_CURVE_NAMES = {"secp256r1": "p256", "secp384r1": "p384", "secp521r1": "p521"}


def key_type_name(public_key: CertificatePublicKeyTypes) -> str:
    """Name a public key the way ``generate_csr`` does: ``"rsa4096"``, ``"ec-p256"``..."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ec-" + _CURVE_NAMES.get(public_key.curve.name, public_key.curve.name)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ed448"
    return type(public_key).__name__.lower()


def check_key_type(key_type: str) -> str:
    """Return ``key_type`` if it is one of :data:`KEY_TYPES`, else raise InvalidInputError."""
    if key_type not in KEY_TYPES:
        raise InvalidInputError(
            f"unknown key type {key_type!r}; use one of: {', '.join(KEY_TYPES)}"
        )
    return key_type


def new_private_key(key_type: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Generate a key of one of :data:`KEY_TYPES` (already checked)."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))


def signing_hash(key_type: str) -> hashes.SHA256 | hashes.SHA384:
    """SHA-384 for RSA 4096 (as the upstream OpenSSL recipe) and P-384, SHA-256 otherwise."""
    return hashes.SHA384() if key_type in ("rsa4096", "ec-p384") else hashes.SHA256()


def key_encryption(passphrase: str | bytes | None) -> serialization.KeySerializationEncryption:
    """The PKCS#8 encryption for ``passphrase``: none for None, the best available otherwise."""
    if passphrase is None:
        return serialization.NoEncryption()
    if not isinstance(passphrase, (str, bytes)) or not passphrase:
        raise InvalidInputError("the key passphrase must be a non-empty str or bytes, or None")
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    return serialization.BestAvailableEncryption(secret)


def private_key_pem(
    key: PrivateKeyTypes, encryption: serialization.KeySerializationEncryption
) -> bytes:
    """Serialize a private key as PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
