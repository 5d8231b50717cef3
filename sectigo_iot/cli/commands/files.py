"""Offline commands over files on this machine: csr (writes a key and a CSR) and inspect
(reads certificates; with --check-revocation it fetches their CRL). Neither calls the API."""

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._certfiles import load_bundles, summarize
from .._client import open_client
from .._errors import CLIError, ExitCode
from .._files import write_new
from .._options import DnsNamesOption, DomainOption, subject_option
from .._output import Output, note
from .._run import output_of
from .._secrets import remember_secret
from .._settings import settings_of

if TYPE_CHECKING:
    from cryptography import x509

    from ...certs import CertificateBundle, CSRResult, RevocationStatus

__all__ = ["register"]


# -- csr --------------------------------------------------------------------------------


def csr(
    ctx: typer.Context,
    domain: DomainOption = "",
    dns_names: DnsNamesOption = None,
    organization: Annotated[
        str | None,
        subject_option("organization", "Organization (default: TRISA Member VASP)."),
    ] = None,
    locality: Annotated[
        str | None, subject_option("locality", "City (default: Menlo Park).")
    ] = None,
    state: Annotated[
        str | None, subject_option("state", "State, spelled out (default: California).")
    ] = None,
    country: Annotated[
        str | None, subject_option("country", "Two-letter country code (default: US).")
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
    if not domain:
        raise CLIError("must specify domain name of cert subject")
    from ...certs import validate_domain

    common_name = validate_domain(domain)
    csr_path, key_path = _csr_targets(out_dir, common_name, force=force)
    subject = {
        key: value
        for key, value in (
            ("organization", organization),
            ("locality", locality),
            ("state", state),
            ("country", country),
        )
        if value is not None
    }
    result = _generate(common_name, list(dns_names or []), key_type, subject)
    write_new(key_path, result.key_pem, 0o600, overwrite=force)
    write_new(csr_path, result.csr_pem, 0o644, overwrite=force)
    _show_written(output_of(ctx), result, csr_path, key_path)


def _show_written(out: Output, result: "CSRResult", csr_path: Path, key_path: Path) -> None:
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


def _csr_targets(folder: Path, common_name: str, *, force: bool) -> tuple[Path, Path]:
    """DOMAIN.csr and DOMAIN.key in ``folder``, checked before the key is generated."""
    if folder.exists() and not folder.is_dir():
        raise CLIError(f'path "{folder}" is not a directory')
    if not folder.exists():
        raise CLIError(f'directory "{folder}" does not exist')
    targets = folder / f"{common_name}.csr", folder / f"{common_name}.key"
    for target in targets:
        if target.is_dir() or (target.is_symlink() and not target.exists()):
            raise CLIError(f"{target} is not a regular file")
        if target.exists() and not force:
            raise CLIError(f"{target} already exists; use --force to replace it")
    return targets


def _generate(
    common_name: str, dns_names: list[str], key_type: str, subject: dict[str, Any]
) -> "CSRResult":
    """A key and a CSR; the toolkit's warnings become ``warning:`` lines."""
    from ...certs import generate_csr

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = generate_csr(common_name, dns_names, key_type=key_type, **subject)
    for warning in caught:
        note(f"warning: {warning.message}")
    return result


# -- inspect ----------------------------------------------------------------------------


def inspect(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="A .p12/.pfx, a batch .zip, a .p7b, or a .pem/.crt/.der file."
        ),
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
    check_revocation: Annotated[
        bool,
        typer.Option(
            "--check-revocation",
            help="Fetch each certificate's CRL (from its distribution point, with no "
            "credential) and show whether it is good, revoked or unknown; the file must "
            "hold the issuer (a chain, e.g. fullchain.pem). With --emulator, the embedded "
            "emulator's CRL.",
        ),
    ] = False,
) -> None:
    """Show the subject, SANs, serial, issuer, validity and fingerprint of certificates."""
    remember_secret(password)
    bundles = load_bundles(file, password)
    statuses = _revocations(ctx, bundles) if check_revocation else None
    documents = [bundle.to_dict() for bundle in bundles]
    if statuses is not None:
        for document, status in zip(documents, statuses, strict=True):
            document["revocation"] = _revocation_dict(status)

    def human(o: Output) -> None:
        for index, bundle in enumerate(bundles):
            rows = summarize(bundle)
            if statuses is not None:
                rows.append(("revocation", _revocation_text(statuses[index])))
            o.fields(rows, title=bundle.source or str(file))

    output_of(ctx).result(documents, human)
    if expires_within is not None:
        _check_expiry(bundles, expires_within)


def _revocations(
    ctx: typer.Context, bundles: "list[CertificateBundle]"
) -> "list[RevocationStatus]":
    """The revocation status of each bundle's certificate, from its issuer's CRL: over
    the embedded emulator with --emulator, else fetched directly (no login either way)."""
    import anyio

    from ...certs import RevocationStatus, check_revocation

    settings = settings_of(ctx)
    pairs = [(bundle.certificate, _issuer_of(bundle)) for bundle in bundles]
    missing = RevocationStatus(
        status="unknown",
        detail="the file holds no issuer certificate; inspect one with the chain "
        "(e.g. fullchain.pem or the .p12)",
    )
    if not settings.emulator:
        return [
            check_revocation(cert, issuer) if issuer is not None else missing
            for cert, issuer in pairs
        ]

    async def over_emulator() -> "list[RevocationStatus]":
        async with open_client(settings) as client:
            return [
                await client.certificates.check_revocation(cert, issuer)
                if issuer is not None
                else missing
                for cert, issuer in pairs
            ]

    return anyio.run(over_emulator)


def _issuer_of(bundle: "CertificateBundle") -> "x509.Certificate | None":
    """The certificate of the bundle's chain that names the leaf's issuer, if any."""
    issuer = bundle.certificate.issuer
    return next((c for c in bundle.chain if c.subject == issuer), None)


def _revocation_dict(status: "RevocationStatus") -> dict[str, Any]:
    return {
        "status": status.status,
        "reason": status.reason.display if status.reason is not None else None,
        "revoked_at": status.revoked_at.isoformat() if status.revoked_at else None,
        "detail": status.detail or None,
    }


def _revocation_text(status: "RevocationStatus") -> str:
    if status.status == "revoked":
        reason = status.reason.display if status.reason is not None else "unspecified"
        when = status.revoked_at.isoformat() if status.revoked_at else "?"
        return f"REVOKED ({reason}, {when})"
    return "good" if status.status == "good" else f"unknown: {status.detail}"


def _check_expiry(bundles: "list[CertificateBundle]", days: float) -> None:
    """Exit with status 6 when a certificate expires within ``days`` days."""
    expiring = [b for b in bundles if b.expires_within(days)]
    if not expiring:
        return
    names = ", ".join(
        f"{b.common_name or b.subject} (serial {b.serial_number}, "
        f"not after {b.not_after.isoformat()})"
        for b in expiring
    )
    raise CLIError(
        f"{len(expiring)} certificate(s) expire within {days:g} days: {names}",
        ExitCode.EXPIRING,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("csr")(csr)
    app.command("inspect")(inspect)
