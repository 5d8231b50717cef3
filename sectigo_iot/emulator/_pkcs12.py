"""PKCS#12 files as Sectigo delivers them: RC2-40 certificates, a 3DES key, a SHA-1 MAC.

The real service's archives (``spec/fixtures/certificate.zip``) hold a PFX (RFC 7292)
whose certificate bag (leaf, intermediate, root) is encrypted with
pbeWithSHAAnd40BitRC2-CBC, whose shrouded key bag uses pbeWithSHAAnd3-KeyTripleDES-CBC
(both 2048 iterations, 8-byte salts), with an HMAC-SHA1 MAC of 1 iteration and a
``localKeyID`` (SHA-1 of the leaf) on the leaf and the key. OpenSSL 3 opens such a file
only with ``-legacy``; :func:`legacy_pkcs12` writes exactly that.

``cryptography`` cannot write it: its serializer offers only 3DES and AES, and its RC2
accepts only 128-bit keys, while RC2-40 is a 5-byte key with 40 effective bits, which
RFC 2268 expands differently. So this module has its own RC2 (encryption only, checked
against the RFC's vectors), the PKCS#12 key derivation (RFC 7292 appendix B) and a DER
writer. The writer is some forty lines for the few element types a PFX uses (SEQUENCE,
SET, INTEGER, OBJECT IDENTIFIER, OCTET STRING, context tags) and the structure is fixed;
an ASN.1 library (pyasn1-modules, asn1crypto) would describe the same structure at
greater length, bring neither RC2-40 nor the key derivation, and add a dependency to
the ``emulator`` extra, so none is used. 3DES comes from ``cryptography``, SHA-1 and
HMAC from the standard library. The ``"modern"`` format is ``cryptography``'s own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.serialization import pkcs12

__all__ = ["PKCS12_FORMATS", "legacy_pkcs12", "modern_pkcs12", "pkcs12_bytes", "rc2_cbc_encrypt"]

#: ``"legacy"``: Sectigo's RC2-40/3DES/SHA-1 suite (OpenSSL 3 needs ``-legacy``);
#: ``"modern"``: 3DES throughout, which OpenSSL 3 opens without ``-legacy``
PKCS12_FORMATS = ("legacy", "modern")

_ITERATIONS = 2048
_MAC_ITERATIONS = 1
_SALT_SIZE = 8
_BLOCK = 8  # RC2 and 3DES block size

# RFC 7292 appendix B.3: what a derived key is for
_KEY_ID, _IV_ID, _MAC_ID = 1, 2, 3

_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_PBE_3DES = "1.2.840.113549.1.12.1.3"
_PBE_RC2_40 = "1.2.840.113549.1.12.1.6"
_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
_LOCAL_KEY_ID = "1.2.840.113549.1.9.21"
_SHA1 = "1.3.14.3.2.26"

# RFC 2268 section 2: a permutation of 0..255 based on the digits of pi
_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)


# -- DER ------------------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _set(*items: bytes) -> bytes:
    return _tlv(0x31, b"".join(sorted(items)))  # DER orders a SET OF by encoding


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _explicit(content: bytes) -> bytes:
    return _tlv(0xA0, content)  # [0] EXPLICIT


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray()
    for arc in (40 * first + second, *rest):
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | arc & 0x7F)
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


# -- ciphers and key derivation -------------------------------------------------------


def _pkcs12_kdf(password: bytes, salt: bytes, purpose: int, iterations: int, size: int) -> bytes:
    """RFC 7292 appendix B.2 with SHA-1; ``password`` is already a BMPString with NUL."""
    v = 64  # SHA-1 block size in bytes

    def fill(data: bytes) -> bytes:  # copies of data up to a multiple of v bytes
        length = -(-len(data) // v) * v
        return (data * (length // len(data) + 1))[:length] if data else b""

    i_blocks = bytearray(fill(salt) + fill(password))
    prefix = bytes((purpose,)) * v
    out = b""
    while True:
        digest = hashlib.sha1(prefix + i_blocks).digest()  # noqa: S324 - PKCS#12 v1 KDF
        for _ in range(iterations - 1):
            digest = hashlib.sha1(digest).digest()  # noqa: S324
        out += digest
        if len(out) >= size:
            return out[:size]
        b = int.from_bytes((digest * 4)[:v], "big") + 1
        for start in range(0, len(i_blocks), v):
            block = int.from_bytes(i_blocks[start : start + v], "big") + b
            i_blocks[start : start + v] = (block % (1 << (8 * v))).to_bytes(v, "big")


def _pad(data: bytes) -> bytes:
    count = _BLOCK - len(data) % _BLOCK
    return data + bytes((count,)) * count


def _rc2_key(key: bytes, effective_bits: int) -> list[int]:
    """The 64 16-bit words of RFC 2268's key expansion."""
    expanded = bytearray(128)
    expanded[: len(key)] = key
    for i in range(len(key), 128):
        expanded[i] = _PITABLE[(expanded[i - 1] + expanded[i - len(key)]) & 0xFF]
    t8 = (effective_bits + 7) // 8
    expanded[128 - t8] = _PITABLE[expanded[128 - t8] & (0xFF >> (8 * t8 - effective_bits))]
    for i in range(127 - t8, -1, -1):
        expanded[i] = _PITABLE[expanded[i + 1] ^ expanded[i + t8]]
    return [expanded[2 * i] | expanded[2 * i + 1] << 8 for i in range(64)]


def _rc2_block(k: list[int], r0: int, r1: int, r2: int, r3: int) -> tuple[int, int, int, int]:
    """Encrypt one block of four 16-bit words: 5 mixing rounds, a mashing round, 6 mixing,
    mashing, 5 mixing (RFC 2268 section 3)."""
    j = 0
    for rounds in (5, 6, 5):
        if j:
            r0 = (r0 + k[r3 & 63]) & 0xFFFF
            r1 = (r1 + k[r0 & 63]) & 0xFFFF
            r2 = (r2 + k[r1 & 63]) & 0xFFFF
            r3 = (r3 + k[r2 & 63]) & 0xFFFF
        for _ in range(rounds):
            r0 = (r0 + k[j] + (r3 & r2) + (~r3 & r1)) & 0xFFFF
            r0 = (r0 << 1 | r0 >> 15) & 0xFFFF
            r1 = (r1 + k[j + 1] + (r0 & r3) + (~r0 & r2)) & 0xFFFF
            r1 = (r1 << 2 | r1 >> 14) & 0xFFFF
            r2 = (r2 + k[j + 2] + (r1 & r0) + (~r1 & r3)) & 0xFFFF
            r2 = (r2 << 3 | r2 >> 13) & 0xFFFF
            r3 = (r3 + k[j + 3] + (r2 & r1) + (~r2 & r0)) & 0xFFFF
            r3 = (r3 << 5 | r3 >> 11) & 0xFFFF
            j += 4
    return r0, r1, r2, r3


def rc2_cbc_encrypt(key: bytes, effective_bits: int, iv: bytes, data: bytes) -> bytes:
    """RC2-CBC (RFC 2268) of ``data``, whose length must be a multiple of 8."""
    k = _rc2_key(key, effective_bits)
    words = struct.unpack(f"<{len(data) // 2}H", data)  # RC2 words are little-endian
    c0, c1, c2, c3 = struct.unpack("<4H", iv)
    out: list[int] = []
    for i in range(0, len(words), 4):
        c0, c1, c2, c3 = _rc2_block(
            k, words[i] ^ c0, words[i + 1] ^ c1, words[i + 2] ^ c2, words[i + 3] ^ c3
        )
        out += (c0, c1, c2, c3)
    return struct.pack(f"<{len(out)}H", *out)


def _encrypt(scheme: str, password: bytes, salt: bytes, data: bytes) -> bytes:
    """Encrypt under a PKCS#12 PBE scheme (RFC 7292 appendix C), padding included."""
    key_size = 5 if scheme == _PBE_RC2_40 else 24
    key = _pkcs12_kdf(password, salt, _KEY_ID, _ITERATIONS, key_size)
    iv = _pkcs12_kdf(password, salt, _IV_ID, _ITERATIONS, _BLOCK)
    if scheme == _PBE_RC2_40:
        return rc2_cbc_encrypt(key, 40, iv, _pad(data))
    encryptor = Cipher(TripleDES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(_pad(data)) + encryptor.finalize()


def _pbe_algorithm(scheme: str, salt: bytes) -> bytes:
    return _seq(_oid(scheme), _seq(_octets(salt), _int(_ITERATIONS)))


# -- the PFX --------------------------------------------------------------------------


def _bag(bag_type: str, value: bytes, attribute: bytes) -> bytes:
    """A SafeBag; ``attribute`` may be empty, giving an empty set as Sectigo's files do."""
    return _seq(_oid(bag_type), _explicit(value), _set(attribute))


def _encrypted_certificates(
    certificates: Sequence[x509.Certificate], key_id: bytes, secret: bytes
) -> bytes:
    """The certificates' bags under RC2-40, the leaf's carrying ``key_id``."""
    cert_bags = _seq(
        *(
            _bag(
                _CERT_BAG,
                _seq(
                    _oid(_X509_CERTIFICATE),
                    _explicit(_octets(cert.public_bytes(serialization.Encoding.DER))),
                ),
                key_id if index == 0 else b"",
            )
            for index, cert in enumerate(certificates)
        )
    )
    cert_salt = secrets.token_bytes(_SALT_SIZE)
    return _seq(
        _oid(_ENCRYPTED_DATA),
        _explicit(
            _seq(
                _int(0),
                _seq(
                    _oid(_DATA),
                    _pbe_algorithm(_PBE_RC2_40, cert_salt),
                    _tlv(0x80, _encrypt(_PBE_RC2_40, secret, cert_salt, cert_bags)),  # [0] IMPLICIT
                ),
            )
        ),
    )


def legacy_pkcs12(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    certificates: Sequence[x509.Certificate],
    password: str,
) -> bytes:
    """A PFX like Sectigo's: ``certificates`` (leaf first) under RC2-40, the key under 3DES.

    The leaf and the key carry ``localKeyID`` = SHA-1 of the leaf's DER, the other
    certificates an empty attribute set; the MAC is HMAC-SHA1 with 1 iteration.
    """
    secret = password.encode("utf-16-be") + b"\0\0"
    leaf_der = certificates[0].public_bytes(serialization.Encoding.DER)
    key_id = _seq(
        _oid(_LOCAL_KEY_ID),
        _set(_octets(hashlib.sha1(leaf_der).digest())),  # noqa: S324 - an identifier
    )
    encrypted_certs = _encrypted_certificates(certificates, key_id, secret)
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_salt = secrets.token_bytes(_SALT_SIZE)
    shrouded = _seq(
        _pbe_algorithm(_PBE_3DES, key_salt), _octets(_encrypt(_PBE_3DES, secret, key_salt, key_der))
    )
    key_bags = _seq(_bag(_SHROUDED_KEY_BAG, shrouded, key_id))
    key_data = _seq(_oid(_DATA), _explicit(_octets(key_bags)))
    auth_safe = _seq(encrypted_certs, key_data)
    mac_salt = secrets.token_bytes(_SALT_SIZE)
    mac_key = _pkcs12_kdf(secret, mac_salt, _MAC_ID, _MAC_ITERATIONS, 20)
    mac = hmac.new(mac_key, auth_safe, "sha1").digest()
    # the iteration count is left out: its DEFAULT is 1, as DER requires
    mac_data = _seq(_seq(_seq(_oid(_SHA1)), _octets(mac)), _octets(mac_salt))
    return _seq(_int(3), _seq(_oid(_DATA), _explicit(_octets(auth_safe))), mac_data)


def modern_pkcs12(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    certificates: Sequence[x509.Certificate],
    password: str,
) -> bytes:
    """A PFX with 3DES for certificates and key and a SHA-1 MAC (2048 iterations each),
    as ``cryptography`` writes it: OpenSSL 3 reads it without ``-legacy``."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(_ITERATIONS)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # noqa: S303 - what PKCS#12 readers without -legacy expect
        .build(password.encode("utf-8"))
    )
    return pkcs12.serialize_key_and_certificates(
        None, key, certificates[0], list(certificates[1:]), encryption
    )


def pkcs12_bytes(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    certificates: Sequence[x509.Certificate],
    password: str,
    pkcs12_format: str = "legacy",
) -> bytes:
    """``key`` and ``certificates`` (leaf first) in one of :data:`PKCS12_FORMATS`."""
    if pkcs12_format == "legacy":
        return legacy_pkcs12(key, certificates, password)
    if pkcs12_format == "modern":
        return modern_pkcs12(key, certificates, password)
    raise ValueError(f"unknown PKCS#12 format {pkcs12_format!r}; expected legacy or modern")
