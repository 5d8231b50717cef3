"""Certificate files for ``inspect``: read with the toolkit's loaders, summarized."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ._errors import CLIError
from ._files import read_head, too_large
from ._output import printable
from ._secrets import remember_secret

if TYPE_CHECKING:
    from ..certs import CertificateBundle

__all__ = ["MAX_CERT_FILE_BYTES", "load_bundles", "summarize"]

#: the largest non-ZIP file read (the toolkit's limit for one file in a batch ZIP)
MAX_CERT_FILE_BYTES = 1024 * 1024
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def load_bundles(path: Path, password: str | None) -> list[CertificateBundle]:
    """The certificates of a batch .zip, a .p12/.pfx, a .p7b/.p7c, or a PEM/DER file.

    A ZIP goes to the toolkit by path (its 16 MiB limit applies); any other file is
    read up to 1 MiB, and refused beyond it.
    """
    if not path.exists():
        raise CLIError(f"{path} does not exist")
    if path.is_dir():
        raise CLIError(f"{path} is a directory, not a certificate file")
    data = read_head(path, MAX_CERT_FILE_BYTES + 1)
    is_zip = data[:4] in _ZIP_MAGIC
    if not is_zip and len(data) > MAX_CERT_FILE_BYTES:
        raise too_large(path, MAX_CERT_FILE_BYTES, "certificate file")
    if is_zip or path.suffix.lower() in (".p12", ".pfx"):
        return _with_password(path, data, is_zip, password)
    return [_load_unencrypted(path, data)]


def _with_password(
    path: Path, data: bytes, is_zip: bool, password: str | None
) -> list[CertificateBundle]:
    """A ZIP or PKCS#12, decrypted with ``password``, else with one that is asked for."""
    from ..certs import load_pkcs12, open_batch_zip
    from ..errors import PKCS12PasswordError

    def load(secret: str | None) -> list[CertificateBundle]:
        if is_zip:
            return open_batch_zip(path, secret)
        return [load_pkcs12(data, secret, source=path.name)]

    try:
        return load(password)
    except PKCS12PasswordError:
        if password is not None:
            raise
    secret = _ask_password(path)
    remember_secret(secret)
    return load(secret)


def _load_unencrypted(path: Path, data: bytes) -> CertificateBundle:
    """A PKCS#7 list by extension, as in a batch ZIP; else PEM, else DER."""
    from ..certs import load_der_bundle, load_pem_bundle, load_pkcs7_bundle
    from ..errors import InvalidInputError

    if path.suffix.lower() in (".p7b", ".p7c"):
        return load_pkcs7_bundle(data, source=path.name)
    if b"-----BEGIN" in data:
        return load_pem_bundle(data, source=path.name)
    try:
        return load_der_bundle(data, source=path.name)
    except InvalidInputError:
        raise CLIError(
            f"{path} is not a certificate file (.p12, .pfx, .p7b, .zip, PEM or DER)"
        ) from None


def _ask_password(path: Path) -> str:
    """A hidden prompt (a line of stdin when it is not a terminal)."""
    try:
        value: str = typer.prompt(
            f"PKCS#12 password for {printable(path.name)}", hide_input=True, err=True
        )
    except typer.Abort:
        raise CLIError(
            f"{path} is password-protected: give --password or set SECTIGO_PKCS12_PASSWORD"
        ) from None
    return value


def summarize(bundle: CertificateBundle) -> list[tuple[str, Any]]:
    """The rows shown for one certificate."""
    remaining = (bundle.not_after - datetime.now(timezone.utc)).total_seconds() / 86400
    validity = "EXPIRED" if remaining < 0 else f"{remaining:.0f} days left"
    return [
        ("subject", bundle.subject),
        ("common name", bundle.common_name),
        ("SANs", ", ".join(bundle.sans)),
        ("serial", bundle.serial_number),
        ("issuer", bundle.issuer),
        ("not before", bundle.not_before.isoformat()),
        ("not after", f"{bundle.not_after.isoformat()} ({validity})"),
        ("SHA-256", bundle.fingerprint_sha256),
        ("key type", bundle.key_type),
        ("private key", "included" if bundle.private_key is not None else "no"),
        ("chain", f"{len(bundle.chain)} certificate(s)"),
    ]
