"""A catalogue of hostile archives, PEM, CSR and PKCS#12 files, built at run time.

Each :class:`HostileCase` names the bytes, the toolkit entry point they are given to and
the typed error expected (``None``: the input is legal, at a limit, and must load). The
catalogue serves ``tests/certs/test_hostile_inputs.py`` (right error) and ``bench/_hostile.py``
(time per case). Nothing binary is checked in; only cryptography and the standard
library are used, so the module loads from the test suite and from the benchmark alike.
"""

from __future__ import annotations

import base64
import functools
import io
import random
import struct
import warnings
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, pkcs12
from cryptography.x509.oid import NameOID

from sectigo_iot.certs import load_csrs, load_pem_bundle, load_pkcs12, open_batch_zip
from sectigo_iot.errors import (
    InvalidArchiveError,
    InvalidCSRError,
    InvalidInputError,
    SectigoError,
    UnsupportedPKCS12Error,
)

__all__ = ["PASSWORD", "HostileCase", "catalogue", "same_name_certificates", "self_issued"]

PASSWORD = "hostile-pkcs12-password"
MIB = 1024 * 1024
BOMB = 2**31 - 1  # the iteration count of the reported PKCS#12 bombs


class HostileCase(NamedTuple):
    """One hostile input: its bytes, the entry point to call, the error expected."""

    name: str
    data: bytes
    entry: Callable[[bytes], object]
    expected: type[SectigoError] | None


# -- entry points ----------------------------------------------------------------------


def open_zip(data: bytes) -> object:
    """``open_batch_zip`` with the catalogue's password."""
    return open_batch_zip(data, PASSWORD)


def open_p12(data: bytes) -> object:
    """``load_pkcs12`` with the catalogue's password."""
    return load_pkcs12(data, PASSWORD, source="hostile.p12")


def open_pem(data: bytes) -> object:
    """``load_pem_bundle``."""
    return load_pem_bundle(data, source="hostile.pem")


def open_csrs(data: bytes) -> object:
    """``load_csrs``."""
    return load_csrs(data)


# -- DER building ----------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _explicit(content: bytes) -> bytes:
    return _tlv(0xA0, content)


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray([40 * first + second])
    for arc in rest:
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


_NULL = b"\x05\x00"
_DATA = "1.2.840.113549.1.7.1"


def _pkcs12_pbe(iterations: int) -> bytes:
    """pbeWithSHAAnd3-KeyTripleDES-CBC with ``iterations``."""
    return _seq(_oid("1.2.840.113549.1.12.1.3"), _seq(_octets(bytes(8)), _int(iterations)))


def _pbes2_pbkdf2(iterations: int) -> bytes:
    """PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC."""
    kdf = _seq(
        _oid("1.2.840.113549.1.5.12"),
        _seq(_octets(bytes(8)), _int(iterations), _seq(_oid("1.2.840.113549.2.9"), _NULL)),
    )
    cipher = _seq(_oid("2.16.840.1.101.3.4.1.42"), _octets(bytes(16)))
    return _seq(_oid("1.2.840.113549.1.5.13"), _seq(kdf, cipher))


def _pbes2_scrypt(cost: int, block_size: int, parallel: int) -> bytes:
    """PBES2 with scrypt (N, r, p) and AES-256-CBC."""
    kdf = _seq(
        _oid("1.3.6.1.4.1.11591.4.11"),
        _seq(_octets(bytes(8)), _int(cost), _int(block_size), _int(parallel)),
    )
    cipher = _seq(_oid("2.16.840.1.101.3.4.1.42"), _octets(bytes(16)))
    return _seq(_oid("1.2.840.113549.1.5.13"), _seq(kdf, cipher))


def _encrypted_part(algorithm: bytes) -> bytes:
    """An encryptedData ContentInfo (where a PKCS#12 keeps its certificates)."""
    info = _seq(_oid(_DATA), algorithm, _tlv(0x80, bytes(64)))
    return _seq(_oid("1.2.840.113549.1.7.6"), _explicit(_seq(_int(0), info)))


def _key_part(algorithm: bytes) -> bytes:
    """A data ContentInfo holding one shrouded (encrypted) private-key bag."""
    bag = _seq(
        _oid("1.2.840.113549.1.12.10.1.2"),
        _explicit(_seq(algorithm, _octets(bytes(64)))),
    )
    return _seq(_oid(_DATA), _explicit(_octets(_seq(bag))))


def _pfx(*parts: bytes, mac_iterations: int | None = None) -> bytes:
    """A PFX around ``parts``; a (wrong) SHA-1 MAC when ``mac_iterations`` is given."""
    auth_safe = _seq(_oid(_DATA), _explicit(_octets(_seq(*parts))))
    fields = [_int(3), auth_safe]
    if mac_iterations is not None:
        digest = _seq(_seq(_oid("1.3.14.3.2.26"), _NULL), _octets(bytes(20)))
        fields.append(_seq(digest, _octets(bytes(8)), _int(mac_iterations)))
    return _seq(*fields)


# -- certificates, keys and containers --------------------------------------------------


def self_issued(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.CertificateBuilder:
    """A builder for a certificate of ``key`` issued by itself, valid from yesterday for 30
    days; the serial number is still to set."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
    )


def same_name_certificates(count: int) -> list[bytes]:
    """``count`` self-issued PEM certificates that all share one name (one key, fast),
    serial numbers 1 to ``count`` in order."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = self_issued(key, "Same Name CA")
    return [
        builder.serial_number(serial).sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)
        for serial in range(1, count + 1)
    ]


def _real_pkcs12(rounds: int) -> bytes:
    """A genuine PKCS#12 (EC key, self-signed certificate, 3DES) with ``rounds`` per part."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_issued(key, "hostile.example.com").serial_number(7).sign(key, hashes.SHA256())
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(rounds)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .build(PASSWORD.encode())
    )
    return pkcs12.serialize_key_and_certificates(b"hostile", key, cert, None, encryption)


def _zip(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for name, content in members:
                archive.writestr(name, content)
    return buffer.getvalue()


def _zip_entry(info: zipfile.ZipInfo, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, content)
    return buffer.getvalue()


def _lying_sizes(data: bytes, claimed: int) -> bytes:
    """Rewrite every size field of a one-member ZIP to ``claimed``."""
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    struct.pack_into("<I", patched, local + 22, claimed)  # uncompressed size
    central = patched.find(b"PK\x01\x02")
    struct.pack_into("<I", patched, central + 24, claimed)
    return bytes(patched)


def _random_base64(rng: random.Random, size: int) -> bytes:
    return base64.b64encode(rng.randbytes(size))[:size]


# -- the catalogue ---------------------------------------------------------------------


@functools.cache
def catalogue() -> tuple[HostileCase, ...]:
    """Every hostile case (built once per process, in about a second)."""
    rng = random.Random(10)
    cases: list[HostileCase] = []

    def add(
        name: str,
        data: bytes,
        entry: Callable[[bytes], object],
        expected: type[SectigoError] | None,
    ) -> None:
        cases.append(HostileCase(name, data, entry, expected))

    # PKCS#12 iteration bombs: refused before OpenSSL derives any key.
    mac_bomb = _pfx(mac_iterations=BOMB)
    add("p12-mac-iterations", mac_bomb, open_p12, UnsupportedPKCS12Error)
    add("zip-p12-mac-iterations", _zip(("bomb.p12", mac_bomb)), open_zip, UnsupportedPKCS12Error)
    bag_bomb = _pfx(_encrypted_part(_pkcs12_pbe(BOMB)))
    add("p12-encrypted-part-iterations", bag_bomb, open_p12, UnsupportedPKCS12Error)
    add("zip-p12-bag-iterations", _zip(("bomb.p12", bag_bomb)), open_zip, UnsupportedPKCS12Error)
    add(
        "p12-shrouded-key-iterations",
        _pfx(_key_part(_pkcs12_pbe(BOMB)), mac_iterations=1),
        open_p12,
        UnsupportedPKCS12Error,
    )
    add(
        "p12-pbes2-pbkdf2-iterations",
        _pfx(_key_part(_pbes2_pbkdf2(BOMB))),
        open_p12,
        UnsupportedPKCS12Error,
    )
    add(
        "p12-pbes2-scrypt-cost",
        _pfx(_encrypted_part(_pbes2_scrypt(2**14, 8, 2**16))),
        open_p12,
        UnsupportedPKCS12Error,
    )
    add(
        "p12-huge-iteration-integer",
        _pfx(mac_iterations=1 << 800),
        open_p12,
        UnsupportedPKCS12Error,
    )
    many_parts = _pfx(*[_encrypted_part(_pkcs12_pbe(200_000)) for _ in range(10)])
    add("p12-many-parts-under-the-cap-each", many_parts, open_p12, UnsupportedPKCS12Error)
    under_cap = _pfx(_encrypted_part(_pkcs12_pbe(300_000)))
    add(
        "zip-many-p12-under-the-cap-each",
        _zip(*[(f"m{n}.p12", under_cap) for n in range(5)]),
        open_zip,
        UnsupportedPKCS12Error,
    )

    # Malformed PKCS#12: a typed error from the DER reader, never an IndexError.
    real = _real_pkcs12(2048)
    add("p12-truncated", real[: len(real) // 2], open_p12, InvalidInputError)
    add("zip-p12-truncated", _zip(("cut.p12", real[:-40])), open_zip, InvalidArchiveError)
    add("p12-deep-indefinite-nesting", b"\x30\x80" * 50_000, open_p12, InvalidInputError)
    add("p12-deep-definite-nesting", _deep_definite(5_000), open_p12, InvalidInputError)
    add("p12-garbage", rng.randbytes(MIB), open_p12, InvalidInputError)
    add("p12-overlong-length", b"\x30\x84\xff\xff\xff\xff\x02\x01\x03", open_p12, InvalidInputError)
    add("p12-huge-length-of-length", b"\x30\xfe" + bytes(200), open_p12, InvalidInputError)
    add("p12-high-tag-number", b"\x30\x06\x1f\xff\xff\xff\xff\x7f", open_p12, InvalidInputError)
    unknown_parts = _pfx(_seq(_oid("1.2.3.4")) * 20_000)
    add("p12-too-many-elements", unknown_parts, open_p12, InvalidInputError)
    add(
        "p12-indefinite-elements-flood",
        _pfx(b"\x30\x80" + b"\x05\x00" * 200_000 + b"\x00\x00"),
        open_p12,
        InvalidInputError,
    )
    add("p12-a-zip-inside", _zip(("a.pem", b"x")), open_p12, InvalidInputError)
    # Legal and at the cap: 2 x 498,976 + 2,048 (MAC) = 1,000,000 iterations, must load.
    add("p12-at-the-iteration-cap", _real_pkcs12(498_976), open_p12, None)

    # PEM: one linear pass, at most 100 certificates.
    add("pem-begin-without-end", b"-----BEGIN CERTIFICATE-----\n" * (MIB // 28), open_pem,
        InvalidInputError)  # fmt: skip
    add("pem-begin-without-end-label-flood", b"-----BEGIN " + b"A" * MIB, open_pem,
        InvalidInputError)  # fmt: skip
    add("pem-one-huge-base64-line", b"-----BEGIN CERTIFICATE-----\n" + _random_base64(rng, MIB)
        + b"\n-----END CERTIFICATE-----\n", open_pem, InvalidInputError)  # fmt: skip
    add("pem-empty-blocks-flood", b"-----BEGIN X-----\n-----END X-----\n" * (MIB // 34),
        open_pem, InvalidInputError)  # fmt: skip
    add("pem-end-without-begin", b"-----END CERTIFICATE-----\n" * (MIB // 26), open_pem,
        InvalidInputError)  # fmt: skip
    same_name = b"".join(same_name_certificates(1600))
    add("pem-1600-same-name-certificates", same_name, open_pem, InvalidInputError)
    add("pem-100-same-name-certificates", b"".join(same_name_certificates(100)), open_pem, None)
    add("zip-pem-1600-same-name-certificates", _zip(("chain.pem", same_name)), open_zip,
        InvalidArchiveError)  # fmt: skip
    unended = b"".join(
        b"-----BEGIN CERTIFICATE-----\n" + _random_base64(rng, 64) + b"\n"
        for _ in range(MIB // 100)
    )
    add("zip-pem-begin-without-end", _zip(("chain.pem", unended)), open_zip, InvalidArchiveError)

    # CSRs.
    add("csr-begin-without-end", b"-----BEGIN CERTIFICATE REQUEST-----\n" * (MIB // 37),
        open_csrs, InvalidCSRError)  # fmt: skip
    tiny = b"-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"
    add("csr-too-many-blocks", tiny * 1001, open_csrs, InvalidCSRError)
    add("csr-huge-base64-line", b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + _random_base64(rng, MIB - 80) + b"\n-----END CERTIFICATE REQUEST-----\n",
        open_csrs, InvalidCSRError)  # fmt: skip

    # ZIP archives.
    add("zip-high-ratio", _zip(("zeros.pem", bytes(MIB))), open_zip, InvalidArchiveError)
    add("zip-size-lie", _lying_sizes(_zip(("zeros.pem", bytes(16 * MIB))), 100), open_zip,
        InvalidArchiveError)  # fmt: skip
    add("zip-many-members", _zip(*[(f"{n}.pem", b"") for n in range(5000)]), open_zip,
        InvalidArchiveError)  # fmt: skip
    chunk = rng.randbytes(MIB // 2).hex().encode()  # compresses about 2:1: no ratio alarm
    add("zip-total-size", _zip(*[(f"{n}.pem", chunk) for n in range(17)]), open_zip,
        InvalidArchiveError)  # fmt: skip
    for name in ("../../etc/cron.d/x.pem", "/etc/x.pem", "..\\x.pem", "C:x.pem"):
        add(f"zip-slip {name!r}", _zip((name, b"x")), open_zip, InvalidArchiveError)
    nul_name = _zip(("a?.pem", b"x")).replace(b"a?.pem", b"a\x00.pem")  # zipfile cuts at NUL
    add("zip-nul-in-name", nul_name, open_zip, InvalidArchiveError)
    link = zipfile.ZipInfo("link.pem")
    link.external_attr = (0o120777 << 16) | 0x20
    add("zip-symlink-member", _zip_entry(link, b"/etc/passwd"), open_zip, InvalidArchiveError)
    add("zip-duplicate-names", _zip(("a.pem", b"x"), ("a.pem", b"y")), open_zip,
        InvalidArchiveError)  # fmt: skip
    inner = _zip(("x.pem", same_name[:2000]))
    add("zip-nested-zip", _zip(("inner.zip", inner)), open_zip, InvalidArchiveError)
    add("zip-nested-zip-named-p12", _zip(("inner.p12", inner)), open_zip, InvalidArchiveError)
    add("zip-der-deep-nesting", _zip(("x.der", _deep_definite(3000))), open_zip,
        InvalidArchiveError)  # fmt: skip
    add("zip-p7b-garbage", _zip(("x.p7b", rng.randbytes(4096))), open_zip, InvalidArchiveError)
    add("zip-truncated", _zip(("a.p12", real))[:-30], open_zip, InvalidArchiveError)
    add("zip-garbage", rng.randbytes(MIB), open_zip, InvalidArchiveError)
    return tuple(cases)


def _deep_definite(depth: int) -> bytes:
    """``depth`` SEQUENCEs nested in one another, each with a 3-byte definite length."""
    heads = [
        b"\x30\x83" + (3 + 5 * (depth - 1 - level)).to_bytes(3, "big") for level in range(depth)
    ]
    return b"".join(heads) + b"\x05\x01\x00"
