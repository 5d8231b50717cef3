"""Certificate commands: find, revoke (API) and csr, inspect (offline)."""

import contextlib
import os
import secrets
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._output import Output, note, to_json
from ._runtime import (
    CLIError,
    ExitCode,
    Settings,
    call,
    read_head,
    remember_secret,
    too_large,
)

if TYPE_CHECKING:
    from .. import SectigoClient
    from ..certs import CertificateBundle

__all__ = ["load_bundles", "register", "summarize"]


def _settings(ctx: typer.Context) -> Settings:
    from ._app import settings_of

    return settings_of(ctx)


# -- find and revoke ------------------------------------------------------------------


def find(
    ctx: typer.Context,
    common_name: Annotated[
        str,
        typer.Option(
            "--common-name", "-n", metavar="NAME", help="Search by common name.", show_default=False
        ),
    ] = "",
    serial_number: Annotated[
        str,
        typer.Option(
            "--serial-number",
            "-s",
            metavar="SERIAL",
            help="Search by serial number (hex).",
            show_default=False,
        ),
    ] = "",
) -> None:
    """Search for certificates by common name or serial number."""
    settings = _settings(ctx)
    out = Output(settings.json)
    if not common_name and not serial_number:
        raise CLIError("specify a common name (-n) or a serial number (-s) to search for")

    async def action(client: "SectigoClient") -> Any:
        return await client.certificates.find(
            common_name=common_name or None, serial_number=serial_number or None
        )

    items = call(settings, action)
    from ..models import format_date

    out.result(
        {"totalCount": items.total_count, "items": to_json(list(items))},
        lambda o: o.table(
            ["serialNumber", "commonName", "status", "created"],
            [
                [
                    i.serial_number,
                    i.common_name,
                    i.status,
                    format_date(i.creation_date)[:10] if i.creation_date else "",
                ]
                for i in items
            ],
            title=f"{len(items)} certificate(s)",
        ),
    )


def revoke(
    ctx: typer.Context,
    profile: Annotated[
        int,
        typer.Option(
            "--profile",
            "-p",
            metavar="ID",
            help="Id of the profile that issued the certificate.",
            show_default=False,
        ),
    ] = 0,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            "-r",
            metavar="REASON",
            help="RFC 5280 reason, case and spaces ignored: unspecified, key compromise, "
            "ca compromise, affiliation changed, superseded, cessation of operation, "
            "certificate hold, remove from crl, privilege withdrawn, aa compromise.",
        ),
    ] = "unspecified",
    serial_number: Annotated[
        str,
        typer.Option(
            "--serial-number",
            "-s",
            metavar="SERIAL",
            help="Serial number of the certificate (hex).",
            show_default=False,
        ),
    ] = "",
) -> None:
    """Revoke a certificate (prints nothing on success in JSON mode)."""
    settings = _settings(ctx)
    out = Output(settings.json)
    if not profile:
        raise CLIError("must specify profile id")
    if profile < 0:
        raise CLIError(f"profile id must be positive, got {profile}")
    from ..certs import RevocationReason
    from ..resources.certificates import normalize_serial

    code = RevocationReason.parse(reason)
    if not serial_number:
        raise CLIError("must specify serial number of certificate")
    serial = normalize_serial(serial_number)

    async def action(client: "SectigoClient") -> None:
        await client.certificates.revoke(profile, serial, code)

    call(settings, action)
    if not out.json:
        out.line(f"revoked certificate {serial} ({code.display}) under profile {profile}")


# -- csr --------------------------------------------------------------------------------


def _write_new(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically with ``mode``; never replace without
    ``overwrite``."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except FileExistsError:
                raise CLIError(f"{path} already exists; use --force to replace it") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def csr(
    ctx: typer.Context,
    domain: Annotated[
        str,
        typer.Option(
            "--domain",
            "-d",
            metavar="DOMAIN",
            help="Common name, also the first DNS name.",
            show_default=False,
        ),
    ] = "",
    dns_names: Annotated[
        list[str] | None,
        typer.Option(
            "--dns-name", metavar="NAME", help="Another DNS name (repeatable).", show_default=False
        ),
    ] = None,
    organization: Annotated[
        str | None,
        typer.Option(
            "--organization",
            "-o",
            metavar="ORG",
            help="Organization (default: TRISA Member VASP).",
            show_default=False,
        ),
    ] = None,
    locality: Annotated[
        str | None,
        typer.Option(
            "--locality",
            "-l",
            metavar="CITY",
            help="City (default: Menlo Park).",
            show_default=False,
        ),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            "-s",
            metavar="STATE",
            help="State, spelled out (default: California).",
            show_default=False,
        ),
    ] = None,
    country: Annotated[
        str | None,
        typer.Option(
            "--country",
            "-c",
            metavar="CODE",
            help="Two-letter country code (default: US).",
            show_default=False,
        ),
    ] = None,
    key_type: Annotated[
        str,
        typer.Option(
            "--key-type", metavar="TYPE", help="rsa2048, rsa3072, rsa4096, ec-p256 or ec-p384."
        ),
    ] = "rsa4096",
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", metavar="DIR", help="Folder that receives DOMAIN.csr and DOMAIN.key."
        ),
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Generate a private key and a CSR to submit with 'upload'.

    Writes DOMAIN.csr and DOMAIN.key (mode 0600); never replaces files without --force.
    """
    settings = _settings(ctx)
    out = Output(settings.json)
    if not domain:
        raise CLIError("must specify domain name of cert subject")
    from ..certs import generate_csr, validate_domain

    common_name = validate_domain(domain)
    if out_dir.exists() and not out_dir.is_dir():
        raise CLIError(f'path "{out_dir}" is not a directory')
    if not out_dir.exists():
        raise CLIError(f'directory "{out_dir}" does not exist')
    csr_path, key_path = out_dir / f"{common_name}.csr", out_dir / f"{common_name}.key"
    for target in (csr_path, key_path):
        if target.is_dir() or (target.is_symlink() and not target.exists()):
            raise CLIError(f"{target} is not a regular file")
        if target.exists() and not force:
            raise CLIError(f"{target} already exists; use --force to replace it")
    subject: dict[str, Any] = {
        key: value
        for key, value in (
            ("organization", organization),
            ("locality", locality),
            ("state", state),
            ("country", country),
        )
        if value is not None
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = generate_csr(common_name, list(dns_names or []), key_type=key_type, **subject)
    for warning in caught:
        note(f"warning: {warning.message}")
    _write_new(key_path, result.key_pem, 0o600, overwrite=force)
    _write_new(csr_path, result.csr_pem, 0o644, overwrite=force)
    data = {
        "common_name": result.common_name,
        "dns_names": list(result.dns_names),
        "key_type": result.key_type,
        "csr": str(csr_path),
        "key": str(key_path),
    }
    out.result(
        data,
        lambda o: o.line(
            f"wrote {csr_path} and {key_path} (0600) for {', '.join(result.dns_names)} "
            f"({result.key_type}); submit it with `sectigo upload -p PROFILE_ID {csr_path}`"
        ),
    )


# -- inspect ----------------------------------------------------------------------------


def _ask_password(path: Path) -> str:
    """A hidden prompt (a line of stdin when it is not a terminal)."""
    try:
        value: str = typer.prompt(f"PKCS#12 password for {path.name}", hide_input=True, err=True)
    except typer.Abort:
        raise CLIError(
            f"{path} is password-protected: give --password or set SECTIGO_PKCS12_PASSWORD"
        ) from None
    return value


def load_bundles(path: Path, password: str | None) -> "list[CertificateBundle]":
    """The certificates of a .p12/.pfx, a batch .zip, or a PEM/DER file.

    A ZIP goes to the toolkit by path (its 16 MiB limit applies); any other file is
    read up to the toolkit's 1 MiB per-certificate-file limit, and refused beyond it.
    """
    from ..certs import load_pem_bundle, load_pkcs12, open_batch_zip
    from ..certs._archive import MAX_MEMBER_BYTES
    from ..errors import PKCS12PasswordError

    if not path.exists():
        raise CLIError(f"{path} does not exist")
    if path.is_dir():
        raise CLIError(f"{path} is a directory, not a certificate file")
    data = read_head(path, MAX_MEMBER_BYTES + 1)
    suffix = path.suffix.lower()
    is_zip = data[:4] in (b"PK\x03\x04", b"PK\x05\x06")
    if not is_zip and len(data) > MAX_MEMBER_BYTES:
        raise too_large(path, MAX_MEMBER_BYTES, "certificate file")
    if is_zip or suffix in (".p12", ".pfx"):

        def load(secret: str | None) -> "list[CertificateBundle]":
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
    if b"-----BEGIN" in data:
        return [load_pem_bundle(data, source=path.name)]
    return [load_pem_bundle(_der_to_pem(data, path), source=path.name)]


def _der_to_pem(data: bytes, path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        return x509.load_der_x509_certificate(data).public_bytes(Encoding.PEM)
    except ValueError:
        raise CLIError(f"{path} is not a certificate file (.p12, .pfx, .zip, PEM or DER)") from None


def summarize(bundle: "CertificateBundle") -> list[tuple[str, Any]]:
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


def inspect(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A .p12/.pfx, a batch .zip, or a .pem/.crt file.")
    ],
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            "-p",
            metavar="PASSWORD",
            envvar="SECTIGO_PKCS12_PASSWORD",
            help="PKCS#12 password (prompted for, hidden, when needed and not given).",
            show_default=False,
        ),
    ] = None,
    expires_within: Annotated[
        float | None,
        typer.Option(
            "--expires-within",
            metavar="DAYS",
            min=0,
            help="Exit with status 6 when a certificate expires within DAYS days.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show the subject, SANs, serial, issuer, validity and fingerprint of certificates."""
    settings = _settings(ctx)
    out = Output(settings.json)
    remember_secret(password)
    bundles = load_bundles(file, password)

    def human(o: Output) -> None:
        for bundle in bundles:
            o.fields(summarize(bundle), title=bundle.source or str(file))

    out.result([bundle.to_dict() for bundle in bundles], human)
    if expires_within is not None:
        expiring = [b for b in bundles if b.expires_within(expires_within)]
        if expiring:
            names = ", ".join(
                f"{b.common_name or b.subject} (serial {b.serial_number}, "
                f"not after {b.not_after.isoformat()})"
                for b in expiring
            )
            raise CLIError(
                f"{len(expiring)} certificate(s) expire within {expires_within:g} days: {names}",
                ExitCode.EXPIRING,
            )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("find")(find)
    app.command("revoke")(revoke)
    app.command("csr")(csr)
    app.command("inspect")(inspect)
