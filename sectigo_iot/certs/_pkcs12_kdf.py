"""The key-derivation work a PKCS#12 file asks for, read before anything decrypts it.

Every MAC and every encrypted part of a PKCS#12 file names its own iteration count, and
OpenSSL runs whatever count it finds: a 1 KB file asking for 2^31-1 iterations keeps a
CPU busy for minutes. The counts sit in the file's unencrypted algorithm parameters, so
they can be read first and refused.
"""

from __future__ import annotations

from itertools import islice

from ..errors import InvalidInputError, UnsupportedPKCS12Error
from ._der import CONTEXT_0, SEQUENCE, DERError, Element, Reader

__all__ = ["MAX_PKCS12_ITERATIONS", "check_kdf_work", "kdf_work"]

#: Key-derivation iterations one PKCS#12 file (or all those of one archive) may ask for,
#: counted over its MAC and every encrypted part. Real files ask for 2,048 to 10,000 per
#: part; a million costs OpenSSL about a third of a second.
MAX_PKCS12_ITERATIONS = 1_000_000

_PKCS7 = "2a864886f70d0107"
_DATA = bytes.fromhex(_PKCS7 + "01")
_ENCRYPTED_DATA = bytes.fromhex(_PKCS7 + "06")
_SHROUDED_KEY_BAG = bytes.fromhex("2a864886f70d010c0a0102")
_SAFE_CONTENTS_BAG = bytes.fromhex("2a864886f70d010c0a0106")
# Schemes whose parameters are SEQUENCE { salt, iterationCount }: the PKCS#12 PBEs
# (1.2.840.113549.1.12.1.1-6) and PBES1 (1.2.840.113549.1.5.1, 3, 4, 6, 10, 11).
_SALT_AND_COUNT = frozenset(
    [bytes.fromhex(f"2a864886f70d010c01{n:02x}") for n in range(1, 7)]
    + [bytes.fromhex(f"2a864886f70d0105{n:02x}") for n in (1, 3, 4, 6, 10, 11)]
)
_PBES2 = bytes.fromhex("2a864886f70d01050d")  # 1.2.840.113549.1.5.13
_PBMAC1 = bytes.fromhex("2a864886f70d01050e")  # 1.2.840.113549.1.5.14 (RFC 9579)
_PBKDF2 = bytes.fromhex("2a864886f70d01050c")  # 1.2.840.113549.1.5.12
_SCRYPT = bytes.fromhex("2b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11


def kdf_work(data: bytes) -> list[tuple[str, int]]:
    """Each key derivation the file asks for, as (what it protects, iteration count).

    An scrypt derivation counts as N·r·p. Parts this reader does not know (other content
    types, bag types or algorithms) are skipped: OpenSSL refuses them or derives no key.

    Raises:
        DERError: the file is not well-formed BER/DER PKCS#12.
    """
    reader = Reader(data)
    found: list[tuple[str, int]] = []
    pfx = _parts(reader, reader.expect(reader.root(), SEQUENCE, "PFX"), 0, 3, 2)
    content_type, content = _parts(reader, reader.expect(pfx[1], SEQUENCE, "ContentInfo"), 1, 2, 2)
    if reader.oid(content_type) == _DATA:
        safe = reader.nested(reader.octets(_explicit(reader, content, 2), 3))
        for info in safe.children(safe.expect(safe.root(), SEQUENCE, "AuthenticatedSafe"), 0):
            _content_info(safe, info, found)
    if len(pfx) == 3:
        mac = _parts(reader, reader.expect(pfx[2], SEQUENCE, "MacData"), 1, 3, 2)
        digest_algorithm = _parts(reader, mac[0], 2, 1, 1)[0]
        _algorithm(reader, digest_algorithm, 3, "the integrity check (MAC)", found)
        found.append(("the integrity check (MAC)", reader.integer(mac[2]) if len(mac) == 3 else 1))
    return found


def check_kdf_work(data: bytes, where: str) -> int:
    """The total iteration count of ``data``, after checking it against the cap.

    Raises:
        UnsupportedPKCS12Error: the file asks for more than :data:`MAX_PKCS12_ITERATIONS`.
        InvalidInputError: the data is not PKCS#12.
    """
    try:
        work = kdf_work(data)
    except DERError as exc:
        raise InvalidInputError(f"{where} is not a valid PKCS#12 file ({exc})") from None
    for what, count in work:
        if count > MAX_PKCS12_ITERATIONS:
            raise UnsupportedPKCS12Error(
                f"{where} asks for {_count(count)} key-derivation iterations for {what}; at "
                f"most {MAX_PKCS12_ITERATIONS:,} are accepted (real files use 2,048 to "
                "10,000), as a guard against files built to stall the CPU. Re-export the "
                "file with a normal count, e.g. openssl pkcs12 -export -iter 10000"
            )
    total = sum(count for _, count in work)
    if total > MAX_PKCS12_ITERATIONS:
        raise UnsupportedPKCS12Error(too_much_work(where, total))
    return total


def too_much_work(where: str, total: int) -> str:
    """The message for key derivations that together exceed the cap."""
    return (
        f"the key derivations of {where} add up to {_count(total)} iterations; at most "
        f"{MAX_PKCS12_ITERATIONS:,} are accepted, as a guard against files built to stall "
        "the CPU. Re-export with fewer encrypted parts or a normal count (2,048 to 10,000)"
    )


def _count(count: int) -> str:
    return f"{count:,}" if count < 1 << 64 else "more than 2^64"


def _parts(reader: Reader, parent: Element, depth: int, most: int, least: int) -> list[Element]:
    """The first ``most`` children of a SEQUENCE, requiring at least ``least``."""
    found = list(islice(reader.children(parent, depth), most))
    if len(found) < least:
        raise DERError(f"a structure has {len(found)} parts where {least} are needed")
    return found


def _explicit(reader: Reader, element: Element, depth: int) -> Element:
    """The element inside an explicit ``[0]`` tag."""
    return _parts(reader, reader.expect(element, CONTEXT_0, "[0]"), depth, 1, 1)[0]


def _content_info(reader: Reader, info: Element, found: list[tuple[str, int]]) -> None:
    content_type, *content = _parts(reader, reader.expect(info, SEQUENCE, "ContentInfo"), 1, 2, 1)
    kind = reader.oid(content_type)
    if not content:
        return
    if kind == _DATA:
        bags = reader.nested(reader.octets(_explicit(reader, content[0], 2), 3))
        _bags(bags, bags.expect(bags.root(), SEQUENCE, "SafeContents"), 0, found)
    elif kind == _ENCRYPTED_DATA:
        encrypted = reader.expect(_explicit(reader, content[0], 2), SEQUENCE, "EncryptedData")
        info_part = reader.expect(_parts(reader, encrypted, 3, 2, 2)[1], SEQUENCE, "content info")
        algorithm = _parts(reader, info_part, 4, 2, 2)[1]
        _algorithm(reader, algorithm, 5, "an encrypted part (certificates)", found)


def _bags(reader: Reader, safe: Element, depth: int, found: list[tuple[str, int]]) -> None:
    for bag in reader.children(safe, depth):
        bag_id, value = _parts(reader, reader.expect(bag, SEQUENCE, "SafeBag"), depth + 1, 2, 2)
        kind = reader.oid(bag_id)
        if kind == _SHROUDED_KEY_BAG:
            key_info = reader.expect(_explicit(reader, value, depth + 2), SEQUENCE, "key info")
            algorithm = _parts(reader, key_info, depth + 3, 1, 1)[0]
            _algorithm(reader, algorithm, depth + 4, "the encrypted private key", found)
        elif kind == _SAFE_CONTENTS_BAG:
            inner = reader.expect(_explicit(reader, value, depth + 2), SEQUENCE, "SafeContents")
            _bags(reader, inner, depth + 3, found)


def _algorithm(
    reader: Reader, algorithm: Element, depth: int, what: str, found: list[tuple[str, int]]
) -> None:
    """Record the iteration count of a password-based AlgorithmIdentifier."""
    oid, *params = _parts(reader, reader.expect(algorithm, SEQUENCE, "algorithm"), depth, 2, 1)
    kind = reader.oid(oid)
    if kind in _SALT_AND_COUNT:
        found.append((what, reader.integer(_fields(reader, params, depth, 2)[1])))
    elif kind in (_PBES2, _PBMAC1):
        kdf = reader.expect(_fields(reader, params, depth, 1)[0], SEQUENCE, "key derivation")
        kdf_oid, *kdf_params = _parts(reader, kdf, depth + 2, 2, 1)
        kdf_kind = reader.oid(kdf_oid)
        if kdf_kind == _PBKDF2:
            found.append((what, reader.integer(_fields(reader, kdf_params, depth + 2, 2)[1])))
        elif kdf_kind == _SCRYPT:
            _, cost, block_size, parallel = _fields(reader, kdf_params, depth + 2, 4)
            work = reader.integer(cost) * reader.integer(block_size) * reader.integer(parallel)
            found.append((what + " (scrypt N·r·p)", work))


def _fields(reader: Reader, params: list[Element], depth: int, least: int) -> list[Element]:
    """The first fields of an algorithm's parameters SEQUENCE."""
    if not params:
        raise DERError("a password-based algorithm has no parameters")
    sequence = reader.expect(params[0], SEQUENCE, "algorithm parameters")
    return _parts(reader, sequence, depth + 1, 4, least)
