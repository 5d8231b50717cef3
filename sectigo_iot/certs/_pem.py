"""Reading PEM/DER certificates and writing a bundle as PEM files."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from .._files import check_target, make_private_dirs, publish, sync_folder, write_temp
from ..errors import InvalidInputError
from ._bundle import CertificateBundle, check_certificate_count, make_bundle
from ._keys import key_encryption

__all__ = ["load_der_bundle", "load_pem_bundle", "load_pkcs7_bundle", "write_pem"]

# BEGIN and END lines are found in one pass: searching for each BEGIN's END separately is
# quadratic when BEGIN lines have no END.
_PEM_MARKER = re.compile(rb"-----(BEGIN|END) ([^\r\n-]*)-----")
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE"}
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"}


def load_pem_bundle(data: bytes, *, source: str = "") -> CertificateBundle:
    """Read PEM certificates (leaf and chain, in any order) and an optional private key.

    An unencrypted ``PRIVATE KEY`` (PKCS#8), ``RSA PRIVATE KEY`` or ``EC PRIVATE KEY``
    block becomes the bundle's key; other block types are ignored. ``source`` is stored
    on the bundle and named in errors. See :func:`make_bundle` for how the leaf is chosen.

    The text is read in one pass; at most ``MAX_BUNDLE_CERTIFICATES`` (100) certificates
    are accepted.

    Raises:
        InvalidInputError: no certificate, more than 100, a block that does not parse or
            has no END line (or a mismatched one), an encrypted or a second private key.
    """
    where = source or "PEM data"
    certs: list[x509.Certificate] = []
    key: PrivateKeyTypes | None = None
    for label, body, block in _pem_blocks(bytes(data), where):
        if label in _CERT_LABELS:
            check_certificate_count(len(certs) + 1, where)
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except (ValueError, x509.InvalidVersion) as exc:
                raise InvalidInputError(
                    f"{where}: certificate #{len(certs) + 1} does not parse: {exc}"
                ) from None
        elif label == b"ENCRYPTED PRIVATE KEY" or (label in _KEY_LABELS and b"ENCRYPTED" in body):
            raise InvalidInputError(
                f"{where}: the private key is encrypted; decrypt it first "
                "(openssl pkey -in KEY -out KEY.plain)"
            )
        elif label in _KEY_LABELS:
            if key is not None:
                raise InvalidInputError(f"{where}: holds more than one private key")
            try:
                key = serialization.load_pem_private_key(block, password=None)
            except (ValueError, TypeError) as exc:
                raise InvalidInputError(f"{where}: the private key does not parse: {exc}") from None
    if not certs:
        raise InvalidInputError(f"{where}: no PEM certificate found")
    return make_bundle(certs, key, source)


def _pem_blocks(data: bytes, where: str) -> Iterator[tuple[bytes, bytes, bytes]]:
    """Each PEM block as (label, body, whole block), in one pass over ``data``.

    A BEGIN line inside an open block, an END line with another label and a block left
    open at the end are refused: they mean a damaged or truncated file.
    """
    opened: re.Match[bytes] | None = None
    for marker in _PEM_MARKER.finditer(data):
        label = marker.group(2)
        if marker.group(1) == b"BEGIN":
            if opened is not None:
                raise InvalidInputError(
                    f"{where}: a {_shown(label)} block begins inside the "
                    f"{_shown(opened.group(2))} block on line {_line(data, opened)}, whose "
                    "END line is missing; the file is damaged"
                )
            opened = marker
        elif opened is not None:
            if label != opened.group(2):
                raise InvalidInputError(
                    f"{where}: the {_shown(opened.group(2))} block on line "
                    f"{_line(data, opened)} ends with an END {_shown(label)} line"
                )
            yield label, data[opened.end() : marker.start()], data[opened.start() : marker.end()]
            opened = None
    if opened is not None:
        raise InvalidInputError(
            f"{where}: the {_shown(opened.group(2))} block on line {_line(data, opened)} "
            "has no END line; the file is truncated"
        )


def _shown(label: bytes) -> str:
    return repr(label[:40].decode("ascii", "replace"))


def _line(data: bytes, marker: re.Match[bytes]) -> int:
    return data.count(b"\n", 0, marker.start()) + 1


def load_der_bundle(data: bytes, *, source: str = "") -> CertificateBundle:
    """Read one DER certificate, or a DER PKCS#7 (``.p7b``) holding a chain."""
    try:
        certs = [x509.load_der_x509_certificate(data)]
    except (ValueError, x509.InvalidVersion):
        problem = "not a DER certificate nor a PKCS#7 certificate list"
        certs = _parsed(pkcs7.load_der_pkcs7_certificates, data, source or "DER data", problem)
    return make_bundle(certs, None, source)


def load_pkcs7_bundle(data: bytes, *, source: str = "") -> CertificateBundle:
    """Read a PKCS#7 certificate list (``.p7b``/``.p7c``), PEM or DER."""
    if b"-----BEGIN" not in data:
        return load_der_bundle(data, source=source)
    problem = "not a PKCS#7 certificate list"
    certs = _parsed(pkcs7.load_pem_pkcs7_certificates, data, source or "PKCS#7 data", problem)
    return make_bundle(certs, None, source)


def _parsed(
    load: Callable[[bytes], list[x509.Certificate]], data: bytes, where: str, problem: str
) -> list[x509.Certificate]:
    """``load(data)``; InvalidInputError naming ``where`` and the problem if it fails."""
    try:
        return load(data)
    except (ValueError, x509.InvalidVersion):
        raise InvalidInputError(f"{where}: {problem}") from None


# Certificates are public: 0644. The private key: 0600.
_CERT_MODE = 0o644
_KEY_MODE = 0o600


def write_pem(
    bundle: CertificateBundle,
    folder: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    key_passphrase: str | bytes | None = None,
) -> dict[str, Path]:
    """Write a bundle as PEM files in ``folder`` and return them by role.

    Files (and roles): ``cert.pem`` (``"cert"``, the leaf), ``chain.pem`` (``"chain"``,
    only when the bundle has a chain), ``fullchain.pem`` (``"fullchain"``, leaf then
    chain) and ``key.pem`` (``"key"``, PKCS#8, only when the bundle has a key; encrypted
    when ``key_passphrase`` is given). Certificates get mode 0644, the key 0600. A missing
    folder is created with mode 0700.

    Each file is written to a temporary file in the same folder, synced, then moved into
    place, so a reader never sees half a file. Existing files are replaced only with
    ``overwrite=True``; every target is checked first, so a refusal writes nothing. A
    target that is a symlink is always refused. On failure no temporary file is left.

    Raises:
        InvalidInputError: ``folder`` is not a directory, a target exists (without
            ``overwrite``), is a symlink or a directory, or the passphrase is empty.
        OSError: the files cannot be written.
    """
    files = _pem_files(bundle, key_passphrase)
    directory = make_private_dirs(folder)
    targets = {role: directory / name for role, (name, _, _) in files.items()}
    for target in targets.values():
        check_target(target, overwrite=overwrite)

    temps: dict[str, Path] = {}
    created: list[Path] = []
    try:
        for role, (name, content, mode) in files.items():
            temps[role] = write_temp(directory, name, content, mode)
        for role, temp in temps.items():
            publish(temp, targets[role], overwrite=overwrite)
            if not overwrite:
                created.append(targets[role])
        sync_folder(directory)
    except BaseException:
        for path in created:  # undo a half-finished no-overwrite write
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    finally:
        for temp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    return targets


def _pem_files(
    bundle: CertificateBundle, key_passphrase: str | bytes | None
) -> dict[str, tuple[str, bytes, int]]:
    """The files ``write_pem`` writes, by role: (file name, content, mode)."""
    files: dict[str, tuple[str, bytes, int]] = {
        "cert": ("cert.pem", bundle.certificate_pem, _CERT_MODE)
    }
    if bundle.chain:
        files["chain"] = ("chain.pem", bundle.chain_pem, _CERT_MODE)
    files["fullchain"] = ("fullchain.pem", bundle.fullchain_pem, _CERT_MODE)
    if bundle.private_key is not None:
        files["key"] = ("key.pem", bundle.private_key_pem(key_passphrase), _KEY_MODE)
    elif key_passphrase is not None:
        key_encryption(key_passphrase)  # still reject an empty passphrase
    return files
