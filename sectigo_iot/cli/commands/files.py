"""Offline commands over files on this machine: csr (writes a key and a CSR) and inspect
(reads certificates). Neither calls the API."""

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._certfiles import load_bundles, summarize
from .._errors import CLIError, ExitCode
from .._files import write_new
from .._options import DnsNamesOption, DomainOption, subject_option
from .._output import Output, note
from .._run import output_of
from .._secrets import remember_secret

if TYPE_CHECKING:
    from ...certs import CertificateBundle, CSRResult

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
) -> None:
    """Show the subject, SANs, serial, issuer, validity and fingerprint of certificates."""
    remember_secret(password)
    bundles = load_bundles(file, password)

    def human(o: Output) -> None:
        for bundle in bundles:
            o.fields(summarize(bundle), title=bundle.source or str(file))

    output_of(ctx).result([bundle.to_dict() for bundle in bundles], human)
    if expires_within is not None:
        _check_expiry(bundles, expires_within)


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
