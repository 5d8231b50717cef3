"""Batch commands: create, upload, batches, download."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._batch_flow import Flow, default_batch_name, end_if_aside, finish, taken, written_lines
from .._errors import CLIError, check_id
from .._files import prepare_folder
from .._options import (
    DEFAULT_TIMEOUT,
    BatchIdOption,
    DnsNamesOption,
    DomainOption,
    DownloadOption,
    TimeoutOption,
    WaitOption,
    subject_option,
    value_option,
)
from .._output import Output, note, to_json
from .._run import run
from .._secrets import remember_secret
from .._settings import settings_of

if TYPE_CHECKING:
    from ... import Batch, SectigoClient
    from ...models import ProcessingInfo

__all__ = ["register"]

#: create: the archive is a PKCS#12, decrypted with the batch's password
DecryptPemOption = Annotated[
    bool,
    typer.Option(
        "--pem",
        help="With --download: decrypt the PKCS#12 into DIR/<batchId>/ as cert.pem, "
        "chain.pem, fullchain.pem and key.pem (0600).",
    ),
]
#: upload: the archive holds certificates only (the keys are the caller's)
CertificatesPemOption = Annotated[
    bool,
    typer.Option(
        "--pem/--no-pem",
        help="With --download: also write the certificates as PEM in DIR/<batchId>/.",
    ),
]


def _parse_params(values: "list[str] | None") -> dict[str, str]:
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


def _show(out: Output, result: dict[str, Any]) -> None:
    """Print a batch (and the files written) as JSON or as a summary."""
    batch = result["batch"]
    extra = {key: value for key, value in result.items() if key != "batch"}
    if out.json:
        out.emit_json({"batch": to_json(batch), **extra} if extra else to_json(batch))
    else:
        _show_batch(out, batch)
        if "zip" in extra:
            out.line(f"downloaded batch {batch.batch_id} to {extra['zip']}")
        for line in written_lines(result):
            out.line(line)
    end_if_aside(result)


def _show_batch(out: Output, batch: "Batch") -> None:
    """A batch as a summary table."""
    from ...models import format_date

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
    """The ``--download`` folder, checked (or created) before anything is sent."""
    if pem and download is None:
        raise CLIError("--pem needs --download DIR (the folder receiving the files)")
    if download is None:
        return None
    if not download.strip():
        raise CLIError('directory "" does not exist')
    folder = prepare_folder(Path(download))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f'directory "{download}" is not writable')
    return folder


#: create's options (beside the shared ones)
CreatePasswordOption = Annotated[
    str,
    value_option(
        "--password -p",
        "PASSWORD",
        "PKCS#12 password; when omitted one is generated and printed once on stderr.",
        envvar="SECTIGO_PKCS12_PASSWORD",
    ),
]
BatchNameOption = Annotated[
    str,
    value_option(
        "--batch-name -b",
        "NAME",
        "Batch name, sent as given (default: new certs for DOMAIN (RANDOM HEX)).",
    ),
]


def create(
    ctx: typer.Context,
    authority: Annotated[
        int, value_option("--authority -a", "ID", "Id of the issuing authority.")
    ] = 0,
    domain: DomainOption = "",
    password: CreatePasswordOption = "",
    batch_name: BatchNameOption = "",
    country: Annotated[str, subject_option("country", "Country code (End Entity profile).")] = "",
    state: Annotated[str, subject_option("state", "State or province (End Entity profile).")] = "",
    locality: Annotated[
        str, subject_option("locality", "City or locality (End Entity profile).")
    ] = "",
    organization: Annotated[
        str, subject_option("organization", "Organization name (End Entity profile).")
    ] = "",
    dns_names: DnsNamesOption = None,
    wait: WaitOption = False,
    download: DownloadOption = None,
    pem: DecryptPemOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Create a single-certificate batch (Sectigo generates the key).

    The certificate and its key are delivered as a PKCS#12 encrypted with the password.
    """
    if not domain:
        raise CLIError("must specify domain name of cert subject")
    check_id(authority, "authority ID", "must specify authority ID")
    from ...certs import validate_domain

    validate_domain(domain)
    extra_names = [validate_domain(name) for name in dns_names or []]
    folder = _check_flow(download, pem)
    flow = Flow(
        wait=wait or folder is not None, download=folder, pem=pem, timeout=timeout, encrypted=True
    )
    password, generated = _pkcs12_password(password)
    params = _subject_params(
        settings_of(ctx).end_entity,
        localityName=locality,
        stateOrProvinceName=state,
        countryName=country,
        organizationName=organization,
    )
    request = {
        "common_name": domain,
        "dns_names": extra_names,
        "pkcs12_password": password,
        "name": batch_name or default_batch_name(domain),
        "params": params,
    }
    run(
        ctx,
        lambda client: _create_batch(client, authority, flow, generated=generated, **request),
        _show,
    )


async def _create_batch(
    client: "SectigoClient", authority: int, flow: Flow, *, generated: bool, **request: Any
) -> dict[str, Any]:
    """Create the batch, then go on as ``flow`` says. A generated password is printed once
    the batch exists, or may exist (its files need it)."""
    from ...errors import AmbiguousRequestError

    password = request["pkcs12_password"]
    try:
        batch = await client.batches.create(authority, **request)
    except AmbiguousRequestError:
        if generated:
            note(f"pkcs12 password (of the batch this create may have made): {password}")
        raise
    if generated:  # only now: the password of a batch that exists
        note(f"pkcs12 password: {password}")
    return await finish(client, batch.batch_id, flow, password, batch=batch)


def _subject_params(end_entity: bool, **subject: str) -> dict[str, str] | None:
    """The subject parameters create sends: only with the End Entity profile."""
    if end_entity:
        return subject
    if any(subject.values()):
        note(
            "warning: --country, --state, --locality and --organization are only sent "
            "with the End Entity profile (-P 85)"
        )
    return None


def _pkcs12_password(given: str) -> tuple[str, bool]:
    """The PKCS#12 password (``given``, checked, else a generated one) and whether it was
    generated; remembered as a secret either way."""
    if given:
        _check_password(given)
        password = given
    else:
        from ...certs import generate_password

        password = generate_password()
    remember_secret(password)
    return password, not given


def _check_password(password: str) -> None:
    """The PKCS#12 password's rules, said with the flags (the SDK checks them too)."""
    from ..._logging import MIN_SECRET_LENGTH

    if len(password) < MIN_SECRET_LENGTH:
        raise CLIError(
            f"the PKCS#12 password (--password/-p or SECTIGO_PKCS12_PASSWORD) must have at "
            f"least {MIN_SECRET_LENGTH} characters; leave it out to have a strong one "
            "generated and printed once"
        )


def upload(
    ctx: typer.Context,
    profile: Annotated[
        int,
        value_option(
            "--profile -p", "ID", "Id of the profile (or authority) that signs the certificates."
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
        value_option(
            "--param", "KEY=VALUE", "A profile parameter sent with the CSRs (repeatable)."
        ),
    ] = None,
    wait: WaitOption = False,
    download: DownloadOption = None,
    pem: CertificatesPemOption = True,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Submit a batch of CSRs (the private keys never leave your machine)."""
    if not files or len(files) != 1:
        raise CLIError("specify the path to one CSR for upload")
    check_id(profile, "profile ID", "specify the profile ID to sign the cert under")
    params = _parse_params(param)
    path = Path(files[0])
    from ...certs import load_csrs

    # one read, capped by the toolkit; every CSR is checked before anything is sent
    data = b"".join(info.pem for info in load_csrs(path))
    folder = _check_flow(download, pem if download is not None else None)
    flow = Flow(wait=wait or folder is not None, download=folder, pem=pem, timeout=timeout)

    async def action(client: "SectigoClient") -> dict[str, Any]:
        batch = await client.batches.upload_csrs(
            profile, data, name=path.name, params=params or None
        )
        return await finish(client, batch.batch_id, flow, batch=batch)

    run(ctx, action, _show)


def batches(
    ctx: typer.Context,
    batch_id: BatchIdOption = 0,
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
    if batch_id <= 0:
        raise CLIError("specify batch id to get information")
    if info:
        run(
            ctx,
            lambda client: client.batches.processing_info(batch_id),
            lambda out, found: _show_counts(out, found, batch_id),
        )
    elif status:
        run(
            ctx,
            lambda client: client.batches.status(batch_id),
            lambda out, value: out.text(value, data={"batchId": batch_id, "status": value}),
        )
    else:

        async def detail(client: "SectigoClient") -> dict[str, Any]:
            if wait:
                return await finish(client, batch_id, Flow(wait=True, timeout=timeout))
            return {"batch": await client.batches.get(batch_id)}

        run(ctx, detail, _show)


def _show_counts(out: Output, found: "ProcessingInfo", batch_id: int) -> None:
    out.result(
        to_json(found),
        lambda o: o.fields(
            [("active", found.active), ("success", found.success), ("failed", found.failed)],
            title=f"Batch {batch_id}",
        ),
    )


def download(
    ctx: typer.Context,
    batch_id: BatchIdOption = 0,
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
        bool, typer.Option("--force", help="Replace an existing ZIP (and PEM files).")
    ] = False,
    wait: WaitOption = False,
    pem: Annotated[
        bool,
        typer.Option(
            "--pem",
            help="Also write PEM files in DIR/<batchId>/ (cert.pem, chain.pem, "
            "fullchain.pem, and key.pem 0600 for a batch made by create).",
        ),
    ] = False,
    password: Annotated[
        str,
        value_option(
            "--password -p",
            "PASSWORD",
            "With --pem: the PKCS#12 password of a batch made by create.",
            envvar="SECTIGO_PKCS12_PASSWORD",
        ),
    ] = "",
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Download a batch's ZIP archive (and write its PEM files with --pem)."""
    if batch_id <= 0:
        raise CLIError("must specify batch id for download")
    if not outdir.strip():
        raise CLIError('directory "" does not exist')
    _check_targets(Path(outdir), batch_id, pem=pem, force=force)
    remember_secret(password)
    flow = Flow(
        wait=wait,
        download=_check_flow(outdir, pem),
        pem=pem,
        timeout=timeout,
        force=force,
        encrypted=pem,  # a hint names -p: most PEM downloads are of create batches
    )
    run(
        ctx,
        lambda client: finish(client, batch_id, flow, password or None),
        lambda out, result: _show_download(out, batch_id, result),
    )


def _check_targets(folder: Path, batch_id: int, *, pem: bool, force: bool) -> None:
    """Without ``--force``, the ZIP (and with ``--pem`` the PEM folder) must not exist."""
    archive, pem_folder = folder / f"{batch_id}.zip", folder / str(batch_id)
    for target, there in (
        (archive, archive.exists() or archive.is_symlink()),
        (pem_folder, pem and taken(pem_folder)),
    ):
        if there and not force:
            raise CLIError(f"{target} already exists; use --force to replace it")


def _show_download(out: Output, batch_id: int, result: dict[str, Any]) -> None:
    archive = result["zip"]
    lines = [f"downloaded batch {batch_id} to {archive}"]
    lines += written_lines(result)
    if "pem" not in result:
        lines.append(
            f"read it with `sectigo inspect {archive}`, or unzip it and decrypt with your "
            "password using `openssl pkcs12 -legacy -in INFILE.p12 -out OUTFILE.pem -nodes`"
        )
    data = {"batchId": batch_id, "path": archive}
    if "pem" in result:
        data["pem"] = result["pem"]
    out.text(lines, data=data)
    end_if_aside(result)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("create")(create)
    app.command("upload")(upload)
    app.command("batches")(batches)
    app.command("download")(download)
