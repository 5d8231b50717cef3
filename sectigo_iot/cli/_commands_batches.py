"""Batch commands: create, upload, batches, download, and the wait/download/PEM flow."""

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._output import Output, note, progress, to_json
from ._runtime import CLIError, Settings, call, remember_secret

if TYPE_CHECKING:
    from .. import Batch, SectigoClient
    from ..certs import CertificateBundle

__all__ = ["register", "write_bundles"]

DEFAULT_TIMEOUT = 900.0

WaitOption = Annotated[
    bool, typer.Option("--wait", help="Wait until the batch is ready for download.")
]
DownloadOption = Annotated[
    str | None,
    typer.Option(
        "--download",
        metavar="DIR",
        help="Wait, then save the batch ZIP in DIR (created if missing).",
        show_default=False,
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Seconds to wait for the batch with --wait or --download.",
        min=0.001,
    ),
]


def _settings(ctx: typer.Context) -> Settings:
    from ._app import settings_of

    return settings_of(ctx)


def prepare_folder(folder: Path) -> Path:
    """Check (or create, mode 0700 at every level made) a folder that will receive
    files, before any request."""
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise CLIError(f'path "{folder}" is not a directory')
        return folder
    missing = [folder, *(p for p in folder.parents if not (p.exists() or p.is_symlink()))]
    for level in sorted(set(missing), key=lambda p: len(p.parts)):
        try:
            os.mkdir(level, 0o700)
            os.chmod(level, 0o700)  # mkdir's mode is reduced by the umask
        except FileExistsError:
            if not level.is_dir():
                raise CLIError(f'path "{level}" is not a directory') from None
        except OSError as exc:
            raise CLIError(f'could not create directory "{level}": {exc.strerror}') from None
    return folder


def default_batch_name(domain: str) -> str:
    """``new certs for DOMAIN (8 hex digits)``: unique, so an ambiguous create can be
    found again by name."""
    return f"new certs for {domain} ({secrets.token_hex(4)})"


def parse_params(values: "list[str] | None") -> dict[str, str]:
    """``KEY=VALUE`` options as a dict; malformed or repeated keys are usage errors."""
    params: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise CLIError(f"--param {item!r} must be KEY=VALUE")
        if not key:
            raise CLIError(f"--param {item!r} has an empty key")
        if key in params:
            raise CLIError(f"--param {key} is given more than once")
        params[key] = value
    return params


def write_bundles(
    bundles: "list[CertificateBundle]", folder: Path, *, overwrite: bool = False
) -> list[dict[str, str]]:
    """Write each bundle as PEM files: in ``folder`` for one bundle, else in a
    sub-folder per certificate (named after its common name, or its position)."""
    from ..certs import write_pem

    written = []
    used: set[str] = set()
    for index, bundle in enumerate(bundles, 1):
        target = folder
        if len(bundles) > 1:
            name = _safe_name(bundle.common_name) or f"certificate-{index}"
            if name in used:
                name = f"{name}-{index}"
            used.add(name)
            target = folder / name
        paths = write_pem(bundle, target, overwrite=overwrite)
        written.append({role: str(path) for role, path in paths.items()})
    return written


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned[:100]


async def finish(
    client: "SectigoClient",
    batch: "Batch",
    *,
    wait: bool,
    download: Path | None,
    pem: bool,
    password: str | None,
    timeout: float,
) -> dict[str, Any]:
    """Wait for the batch, download it and write PEM files, as asked."""
    result: dict[str, Any] = {"batch": batch}
    if not (wait or download is not None):
        return result
    with progress(f"batch {batch.batch_id}") as on_progress:
        batch = await client.batches.wait(batch.batch_id, timeout=timeout, on_progress=on_progress)
    result["batch"] = batch
    if download is None:
        return result
    archive = await client.batches.download(batch.batch_id, download)
    result["zip"] = str(archive)
    if pem:
        from ..certs import open_batch_zip

        bundles = open_batch_zip(archive, password)
        result["pem"] = write_bundles(bundles, download / str(batch.batch_id))
    return result


def _show(out: Output, result: dict[str, Any]) -> None:
    """Print a batch (and the files written) as JSON or as a summary."""
    batch = result["batch"]
    extra = {key: value for key, value in result.items() if key != "batch"}
    if out.json:
        out.emit_json({"batch": to_json(batch), **extra} if extra else to_json(batch))
        return
    show_batch(out, batch)
    if "zip" in extra:
        out.line(f"downloaded batch {batch.batch_id} to {extra['zip']}")
    for files in extra.get("pem", []):
        out.line("wrote " + ", ".join(files[role] for role in sorted(files)))


def show_batch(out: Output, batch: "Batch") -> None:
    """A batch as a summary table."""
    from ..models import format_date

    out.fields(
        [
            ("batchId", batch.batch_id),
            ("batchName", batch.batch_name),
            ("status", batch.status),
            ("orderNumber", batch.order_number),
            ("creationDate", format_date(batch.creation_date) if batch.creation_date else ""),
            ("profile", batch.profile),
            ("size", batch.size),
            ("downloadable", "yes" if batch.downloadable else "no"),
            ("rejectReason", batch.reject_reason),
        ],
        title=f"Batch {batch.batch_id}",
    )


def _check_flow(download: str | None, pem: bool | None) -> Path | None:
    if pem and download is None:
        raise CLIError("--pem needs --download DIR (the folder receiving the files)")
    if download is None:
        return None
    if not download.strip():
        raise CLIError('directory "" does not exist')
    return prepare_folder(Path(download))


def create(
    ctx: typer.Context,
    authority: Annotated[
        int,
        typer.Option(
            "--authority",
            "-a",
            metavar="ID",
            help="Id of the issuing authority.",
            show_default=False,
        ),
    ] = 0,
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
    password: Annotated[
        str,
        typer.Option(
            "--password",
            "-p",
            metavar="PASSWORD",
            envvar="SECTIGO_PKCS12_PASSWORD",
            help="PKCS#12 password; when omitted one is generated and printed once on stderr.",
            show_default=False,
        ),
    ] = "",
    batch_name: Annotated[
        str,
        typer.Option(
            "--batch-name",
            "-b",
            metavar="NAME",
            help="Batch name, sent as given (default: new certs for DOMAIN (RANDOM HEX)).",
            show_default=False,
        ),
    ] = "",
    country: Annotated[
        str,
        typer.Option("--country", "-c", metavar="CODE", help="Country code (End Entity profile)."),
    ] = "",
    state: Annotated[
        str,
        typer.Option(
            "--state", "-s", metavar="STATE", help="State or province (End Entity profile)."
        ),
    ] = "",
    locality: Annotated[
        str,
        typer.Option(
            "--locality", "-l", metavar="CITY", help="City or locality (End Entity profile)."
        ),
    ] = "",
    organization: Annotated[
        str,
        typer.Option(
            "--organization", "-o", metavar="ORG", help="Organization name (End Entity profile)."
        ),
    ] = "",
    dns_names: Annotated[
        list[str] | None,
        typer.Option(
            "--dns-name", metavar="NAME", help="Another DNS name for the certificate (repeatable)."
        ),
    ] = None,
    wait: WaitOption = False,
    download: DownloadOption = None,
    pem: Annotated[
        bool,
        typer.Option(
            "--pem",
            help="With --download: decrypt the PKCS#12 into DIR/<batchId>/ as cert.pem, "
            "chain.pem, fullchain.pem and key.pem (0600).",
        ),
    ] = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Create a single-certificate batch (Sectigo generates the key).

    The certificate and its key are delivered as a PKCS#12 encrypted with the password.
    """
    settings = _settings(ctx)
    out = Output(settings.json)
    if not domain:
        raise CLIError("must specify domain name of cert subject")
    if not authority:
        raise CLIError("must specify authority ID")
    if authority < 0:
        raise CLIError(f"authority ID must be positive, got {authority}")

    from ..certs import generate_password, validate_domain

    validate_domain(domain)
    extra_names = [validate_domain(name) for name in dns_names or []]
    folder = _check_flow(download, pem)
    params: dict[str, str] | None = None
    if settings.end_entity:
        params = {
            "localityName": locality,
            "stateOrProvinceName": state,
            "countryName": country,
            "organizationName": organization,
        }
    elif country or state or locality or organization:
        note(
            "warning: --country, --state, --locality and --organization are only sent "
            "with the End Entity profile (-P 85)"
        )
    if not password:
        password = generate_password()
        note(f"pkcs12 password: {password}")
    remember_secret(password)
    name = batch_name or default_batch_name(domain)

    async def action(client: "SectigoClient") -> dict[str, Any]:
        batch = await client.batches.create(
            authority,
            common_name=domain,
            dns_names=extra_names,
            pkcs12_password=password,
            name=name,
            params=params,
        )
        return await finish(
            client,
            batch,
            wait=wait,
            download=folder,
            pem=pem,
            password=password,
            timeout=timeout,
        )

    _show(out, call(settings, action))


def upload(
    ctx: typer.Context,
    profile: Annotated[
        int,
        typer.Option(
            "--profile",
            "-p",
            metavar="ID",
            help="Id of the profile (or authority) that signs the certificates.",
            show_default=False,
        ),
    ] = 0,
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FILE",
            help="PEM file with one or more CSRs (at most 1 MiB).",
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="KEY=VALUE",
            help="A profile parameter sent with the CSRs (repeatable).",
            show_default=False,
        ),
    ] = None,
    wait: WaitOption = False,
    download: DownloadOption = None,
    pem: Annotated[
        bool,
        typer.Option(
            "--pem/--no-pem",
            help="With --download: also write the certificates as PEM in DIR/<batchId>/.",
        ),
    ] = True,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Submit a batch of CSRs (the private keys never leave your machine)."""
    settings = _settings(ctx)
    out = Output(settings.json)
    if not files or len(files) != 1:
        raise CLIError("specify the path to one CSR for upload")
    if not profile:
        raise CLIError("specify the profile ID to sign the cert under")
    if profile < 0:
        raise CLIError(f"profile ID must be positive, got {profile}")
    params = parse_params(param)
    path = Path(files[0])
    from ..certs import load_csrs

    # one read, capped by the toolkit; every CSR is checked before anything is sent
    data = b"".join(info.pem for info in load_csrs(path))
    folder = _check_flow(download, pem if download is not None else None)

    async def action(client: "SectigoClient") -> dict[str, Any]:
        batch = await client.batches.upload_csrs(
            profile, data, name=path.name, params=params or None
        )
        return await finish(
            client,
            batch,
            wait=wait,
            download=folder,
            pem=pem,
            password=None,
            timeout=timeout,
        )

    _show(out, call(settings, action))


def batches(
    ctx: typer.Context,
    batch_id: Annotated[
        int, typer.Option("--id", "-i", metavar="ID", help="Batch id.", show_default=False)
    ] = 0,
    status: Annotated[
        bool, typer.Option("--status", "-s", help="Print the text status, normalized.")
    ] = False,
    info: Annotated[
        bool, typer.Option("--info", "-I", help="Show the active/success/failed counts.")
    ] = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Show a batch: its detail, its text status or its processing counts."""
    settings = _settings(ctx)
    out = Output(settings.json)
    if batch_id <= 0:
        raise CLIError("specify batch id to get information")
    if info:

        async def counts(client: "SectigoClient") -> Any:
            return await client.batches.processing_info(batch_id)

        found = call(settings, counts)
        out.result(
            to_json(found),
            lambda o: o.fields(
                [("active", found.active), ("success", found.success), ("failed", found.failed)],
                title=f"Batch {batch_id}",
            ),
        )
    elif status:

        async def text(client: "SectigoClient") -> str:
            return await client.batches.status(batch_id)

        value = call(settings, text)
        out.text(value, data={"batchId": batch_id, "status": value})
    else:

        async def detail(client: "SectigoClient") -> dict[str, Any]:
            batch = await client.batches.get(batch_id)
            return await finish(
                client, batch, wait=wait, download=None, pem=False, password=None, timeout=timeout
            )

        _show(out, call(settings, detail))


def download(
    ctx: typer.Context,
    batch_id: Annotated[
        int, typer.Option("--id", "-i", metavar="ID", help="Batch id.", show_default=False)
    ] = 0,
    outdir: Annotated[
        str,
        typer.Option(
            "--outdir",
            "-o",
            metavar="DIR",
            help="Folder that receives <batchId>.zip (created, mode 0700, if missing).",
            show_default=False,
        ),
    ] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing ZIP of this batch.")
    ] = False,
) -> None:
    """Download a batch's ZIP archive."""
    settings = _settings(ctx)
    out = Output(settings.json)
    if batch_id <= 0:
        raise CLIError("must specify batch id for download")
    if not outdir.strip():
        raise CLIError('directory "" does not exist')
    folder = Path(outdir)
    target = folder / f"{batch_id}.zip"
    if (target.exists() or target.is_symlink()) and not force:
        raise CLIError(f"{target} already exists; use --force to replace it")
    prepare_folder(folder)
    if not os.access(folder, os.W_OK):
        raise CLIError(f'directory "{outdir}" is not writable')

    async def action(client: "SectigoClient") -> Path:
        return await client.batches.download(batch_id, folder, overwrite=force)

    archive = call(settings, action)
    out.text(
        f"downloaded batch {batch_id} to {archive}\n"
        f"read it with `sectigo inspect {archive}`, or unzip it and decrypt with your "
        "password using `openssl pkcs12 -legacy -in INFILE.p12 -out OUTFILE.pem -nodes`",
        data={"batchId": batch_id, "path": str(archive)},
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("create")(create)
    app.command("upload")(upload)
    app.command("batches")(batches)
    app.command("download")(download)
