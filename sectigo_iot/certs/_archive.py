"""Opening a Sectigo batch ZIP in memory, with checks against hostile archives."""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable
from typing import IO

from ..errors import InvalidArchiveError, InvalidInputError, UnsupportedPKCS12Error
from ._bundle import CertificateBundle
from ._pem import load_der_bundle, load_pem_bundle, load_pkcs7_bundle
from ._pkcs12 import decrypt_pkcs12
from ._pkcs12_kdf import MAX_PKCS12_ITERATIONS, check_kdf_work, too_much_work

__all__ = ["open_batch_zip"]

MAX_ARCHIVE_BYTES = 16 * 1024 * 1024  # the ZIP file itself
MAX_MEMBERS = 100
MAX_MEMBER_BYTES = 1024 * 1024  # a .p12 is a few KB
MAX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_RATIO = 100  # uncompressed / compressed
_RATIO_FLOOR = 64 * 1024  # small members may compress well without being bombs
_CHUNK = 64 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")

_Loader = Callable[[bytes, str | bytes | None, str], CertificateBundle]


def _pem_or_der(data: bytes, password: str | bytes | None, source: str) -> CertificateBundle:
    if b"-----BEGIN" in data:
        return load_pem_bundle(data, source=source)
    return load_der_bundle(data, source=source)


def _pem(data: bytes, password: str | bytes | None, source: str) -> CertificateBundle:
    return load_pem_bundle(data, source=source)


def _der(data: bytes, password: str | bytes | None, source: str) -> CertificateBundle:
    return load_der_bundle(data, source=source)


def _p7(data: bytes, password: str | bytes | None, source: str) -> CertificateBundle:
    return load_pkcs7_bundle(data, source=source)


def _p12(data: bytes, password: str | bytes | None, source: str) -> CertificateBundle:
    return decrypt_pkcs12(data, password, source)  # iteration counts checked beforehand


# Members are decoded by extension; members with other extensions are ignored.
_LOADERS: dict[str, _Loader] = {
    ".p12": _p12,
    ".pfx": _p12,
    ".pem": _pem,
    ".crt": _pem_or_der,
    ".cer": _pem_or_der,
    ".der": _der,
    ".p7b": _p7,
    ".p7c": _p7,
}


def open_batch_zip(
    data_or_path: bytes | str | os.PathLike[str],
    password: str | bytes | None = None,
) -> list[CertificateBundle]:
    """Open a batch download and return one bundle per certificate file in it.

    ``data_or_path`` is the ZIP's bytes, or the path of the ZIP file (a str is always a
    path). Nothing is extracted to disk. ``.p12``/``.pfx`` members are decrypted with
    ``password`` (legacy RC2-40 as Sectigo delivers, 3DES or AES); ``.pem`` members are
    read as PEM, ``.crt``/``.cer`` as PEM or DER, ``.der`` as DER and ``.p7b``/``.p7c`` as
    PKCS#7 chains; other members are ignored. Each bundle's ``source`` is its member name.

    Limits: at most 100 members, 1 MiB per member and 16 MiB in total (counted while
    decompressing, not taken from the headers), a compression ratio of at most 100, and a
    ZIP file of at most 16 MiB; at most 100 certificates per member; and 1,000,000
    key-derivation iterations over all the PKCS#12 members' MACs and encrypted parts,
    read from the files before anything is decrypted.

    Raises:
        InvalidArchiveError: not a ZIP or truncated; a member with an unsafe name
            (absolute, ``..``, backslash, NUL, drive letter), a symlink, an encrypted or
            duplicate member; a limit exceeded; a member that does not decode; or no
            certificate at all.
        PKCS12PasswordError: the password does not open a ``.p12`` member.
        UnsupportedPKCS12Error: this OpenSSL cannot decrypt the member's legacy
            encryption, or the PKCS#12 members ask for more iterations than the cap.
    """
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        if len(data_or_path) > MAX_ARCHIVE_BYTES:
            raise InvalidArchiveError(_too_big("the archive", MAX_ARCHIVE_BYTES))
        return _read_archive(io.BytesIO(bytes(data_or_path)), password)
    if not isinstance(data_or_path, (str, os.PathLike)):
        raise InvalidInputError(
            f"expected the ZIP's bytes or a path, not {type(data_or_path).__name__}"
        )
    try:
        with open(data_or_path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_ARCHIVE_BYTES:
                raise InvalidArchiveError(_too_big(os.fspath(data_or_path), MAX_ARCHIVE_BYTES))
            return _read_archive(handle, password)
    except OSError as exc:
        raise InvalidArchiveError(
            f"cannot read {os.fspath(data_or_path)}: {exc.strerror}"
        ) from None


def _read_archive(stream: IO[bytes], password: str | bytes | None) -> list[CertificateBundle]:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise InvalidArchiveError(f"not a ZIP archive, or it is truncated ({exc})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise InvalidArchiveError(
                f"the archive has {len(members)} members; at most {MAX_MEMBERS} are accepted"
            )
        seen: set[str] = set()
        for info in members:
            _check_member(info, seen)
        # Read every member first, so the limits hold before anything is decoded.
        contents: list[tuple[str, _Loader, bytes]] = []
        total = 0
        for info in members:
            loader = _LOADERS.get(os.path.splitext(info.filename)[1].lower())
            if info.is_dir() or loader is None:
                continue
            content = _read_member(archive, info, MAX_TOTAL_BYTES - total)
            total += len(content)
            contents.append((info.filename, loader, content))
    bundles: list[CertificateBundle] = []
    try:
        work = sum(check_kdf_work(data, name) for name, loader, data in contents if loader is _p12)
        if work > MAX_PKCS12_ITERATIONS:
            raise UnsupportedPKCS12Error(too_much_work("the archive's PKCS#12 members", work))
        for name, loader, content in contents:
            bundles.append(loader(content, password, name))
    except InvalidInputError as exc:
        raise InvalidArchiveError(str(exc)) from None
    if not bundles:
        raise InvalidArchiveError(
            "the archive holds no certificate (no readable .p12, .pfx, .pem, .crt, .cer, "
            ".der or .p7b member)"
        )
    return bundles


def _check_member(info: zipfile.ZipInfo, seen: set[str]) -> None:
    name = info.orig_filename  # before zipfile cuts it at a NUL
    shown = repr(name[:80])
    if not name or "\x00" in name:
        raise InvalidArchiveError(f"member {shown} has an empty name or a NUL character")
    if "\\" in name:
        raise InvalidArchiveError(f"member {shown} has a backslash in its name")
    if name.startswith("/") or _DRIVE.match(name):
        raise InvalidArchiveError(f"member {shown} has an absolute path")
    if ".." in name.split("/"):
        raise InvalidArchiveError(f"member {shown} has a '..' component (path traversal)")
    if len(name.encode("utf-8", "surrogateescape")) > 255:
        raise InvalidArchiveError(f"member {shown} has a name longer than 255 bytes")
    if name in seen:
        raise InvalidArchiveError(f"member {shown} appears twice in the archive")
    seen.add(name)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InvalidArchiveError(f"member {shown} is a symbolic link")
    if info.flag_bits & 0x1:
        raise InvalidArchiveError(f"member {shown} is encrypted, which batch archives never are")
    if info.file_size > MAX_MEMBER_BYTES or info.compress_size > MAX_MEMBER_BYTES:
        raise InvalidArchiveError(_too_big(f"member {shown}", MAX_MEMBER_BYTES))
    if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise InvalidArchiveError(f"member {shown} is compressed suspiciously well (zip bomb?)")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Decompress one member in chunks, enforcing the limits on the bytes actually produced."""
    shown = repr(info.filename[:80])
    limit = min(MAX_MEMBER_BYTES, budget)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    if limit < MAX_MEMBER_BYTES:
                        raise InvalidArchiveError(
                            f"the archive's members add up to more than "
                            f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB; refusing to read them"
                        )
                    raise InvalidArchiveError(_too_big(f"member {shown}", MAX_MEMBER_BYTES))
                if size > _RATIO_FLOOR and size > MAX_RATIO * max(info.compress_size, 1):
                    raise InvalidArchiveError(
                        f"member {shown} is compressed suspiciously well (zip bomb?)"
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise InvalidArchiveError(f"member {shown} is corrupt or unreadable ({exc})") from None
    return b"".join(chunks)


def _too_big(what: str, limit: int) -> str:
    return f"{what} is larger than {limit // (1024 * 1024)} MiB; refusing to read it"
