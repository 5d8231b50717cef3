"""Reading PKCS#12 files, including Sectigo's legacy RC2-40 encryption."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import RC2
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.serialization import pkcs12

from ..errors import InvalidInputError, PKCS12PasswordError, UnsupportedPKCS12Error
from ._bundle import CertificateBundle, make_bundle
from ._pkcs12_kdf import check_kdf_work

__all__ = ["decrypt_pkcs12", "load_pkcs12"]

_DEFAULT_WHERE = "the PKCS#12 file"

# DER-encoded OIDs (tag, length, value) of the PKCS#12 encryptions that need RC2 or RC4,
# which OpenSSL 3 only provides through its "legacy" provider. The algorithm identifiers
# of a PKCS#12 file are not encrypted, so finding these bytes tells which cipher it uses.
_LEGACY_CIPHER_OIDS = (
    bytes.fromhex("060a2a864886f70d010c0101"),  # pbeWithSHAAnd128BitRC4
    bytes.fromhex("060a2a864886f70d010c0102"),  # pbeWithSHAAnd40BitRC4
    bytes.fromhex("060a2a864886f70d010c0105"),  # pbeWithSHAAnd128BitRC2-CBC
    bytes.fromhex("060a2a864886f70d010c0106"),  # pbeWithSHAAnd40BitRC2-CBC (Sectigo's)
    bytes.fromhex("06082a864886f70d0302"),  # rc2-cbc (inside PBES2)
)


def load_pkcs12(
    data: bytes, password: str | bytes | None, *, source: str = ""
) -> CertificateBundle:
    """Decrypt a PKCS#12 (``.p12``/``.pfx``) file into a bundle with its key and chain.

    Reads the legacy RC2-40/3DES encryption Sectigo uses as well as modern AES files.
    ``password`` is a str (UTF-8) or bytes; None for a file without a password.
    ``source`` is stored on the bundle and named in errors.

    Before anything is decrypted, the iteration counts of the file's MAC and encrypted
    parts are read and their total is capped at ``MAX_PKCS12_ITERATIONS`` (1,000,000; real
    files use a few thousand per part), so a crafted file cannot stall the CPU. A file
    holds at most ``MAX_BUNDLE_CERTIFICATES`` (100) certificates.

    Raises:
        PKCS12PasswordError: the password does not open the file.
        UnsupportedPKCS12Error: the file asks for more key-derivation iterations than the
            cap, or uses RC2 but the OpenSSL behind ``cryptography`` cannot decrypt it
            (legacy provider not loaded, or FIPS mode).
        InvalidInputError: the data is not PKCS#12, holds no certificate or too many.
    """
    data = bytes(data)
    check_kdf_work(data, source or _DEFAULT_WHERE)
    return decrypt_pkcs12(data, password, source)


def decrypt_pkcs12(data: bytes, password: str | bytes | None, source: str) -> CertificateBundle:
    """:func:`load_pkcs12` for data whose iteration counts were already checked."""
    where = source or _DEFAULT_WHERE
    if password is None:
        secret = None
    elif isinstance(password, str):
        secret = password.encode("utf-8")
    elif isinstance(password, bytes):
        secret = password
    else:
        raise InvalidInputError(
            f"the PKCS#12 password must be a str or bytes, not {type(password).__name__}"
        )
    try:
        loaded = pkcs12.load_pkcs12(data, secret)
    except ValueError as exc:
        # cryptography says "Invalid password or PKCS12 data" when decryption or the MAC
        # fails, and "Could not deserialize PKCS12 data" when the structure is broken.
        if "password" not in str(exc).lower():
            raise InvalidInputError(f"{where} is not a valid PKCS#12 file") from None
        if _uses_legacy_cipher(data) and not _rc2_available():
            raise UnsupportedPKCS12Error(
                f"{where} is encrypted with legacy RC2, which the OpenSSL used by the "
                "'cryptography' package cannot decrypt here: its legacy provider is not "
                "loaded (is the CRYPTOGRAPHY_OPENSSL_NO_LEGACY environment variable set, or "
                "is OpenSSL in FIPS mode?). Unset CRYPTOGRAPHY_OPENSSL_NO_LEGACY, or re-encrypt "
                "the file with AES: `openssl pkcs12 -legacy -in OLD.p12 -nodes | "
                "openssl pkcs12 -export -out NEW.p12`"
            ) from None
        if secret is None:
            raise PKCS12PasswordError(
                f"{where} is password-protected; give the batch's PKCS#12 password"
            ) from None
        raise PKCS12PasswordError(
            f"wrong PKCS#12 password for {where} (or the file is corrupt); check the "
            "password that was given when the batch was created"
        ) from None
    certs = [loaded.cert.certificate] if loaded.cert is not None else []
    certs += [extra.certificate for extra in loaded.additional_certs]
    return make_bundle(certs, loaded.key, source)


def _uses_legacy_cipher(data: bytes) -> bool:
    return any(oid in data for oid in _LEGACY_CIPHER_OIDS)


def _rc2_available() -> bool:
    """Whether OpenSSL, as loaded by cryptography, can run RC2 (legacy provider present)."""
    try:
        Cipher(RC2(bytes(16)), modes.CBC(bytes(8))).encryptor()
    except UnsupportedAlgorithm:
        return False
    return True
