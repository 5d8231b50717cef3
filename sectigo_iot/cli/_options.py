"""Typer options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "DEFAULT_BEFORE",
    "DEFAULT_TIMEOUT",
    "ENV_CERTS_ROOT",
    "BatchIdOption",
    "BeforeOption",
    "DeployHookOption",
    "DnsNamesOption",
    "DomainOption",
    "DomainsOption",
    "DownloadOption",
    "DryRunOption",
    "RenewForceOption",
    "RevokeReplacedOption",
    "RootOption",
    "SerialOption",
    "TimeoutOption",
    "WaitOption",
    "WaitTimeoutOption",
]

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
BatchIdOption = Annotated[
    int, typer.Option("--id", "-i", metavar="ID", help="Batch id.", show_default=False)
]
DomainOption = Annotated[
    str,
    typer.Option(
        "--domain",
        "-d",
        metavar="DOMAIN",
        help="Common name, also the first DNS name.",
        show_default=False,
    ),
]
DnsNamesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--dns-name",
        metavar="NAME",
        help="Another DNS name for the certificate (repeatable).",
        show_default=False,
    ),
]
SerialOption = Annotated[
    str,
    typer.Option(
        "--serial-number",
        "-s",
        metavar="SERIAL",
        help="Serial number of the certificate (hex).",
        show_default=False,
    ),
]


# -- certificates kept in folders (issue, renew) -----------------------------------------

DEFAULT_BEFORE = "30d"
#: the folder whose sub-folders ``renew`` looks at (and ``issue`` writes into by default)
ENV_CERTS_ROOT = "SECTIGO_CERTS_ROOT"

DomainsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--domain",
        "-d",
        metavar="DOMAIN",
        help="A name for the certificate (repeatable): the first is the common name, "
        "the others more DNS names.",
        show_default=False,
    ),
]
RootOption = Annotated[
    str | None,
    typer.Option(
        "--root",
        metavar="DIR",
        envvar=ENV_CERTS_ROOT,
        show_envvar=True,
        help="Folder holding one sub-folder per certificate (default: certs in the user "
        "data folder, e.g. ~/.local/share/sectigo-iot/certs).",
        show_default=False,
    ),
]
BeforeOption = Annotated[
    str,
    typer.Option(
        "--before",
        metavar="DURATION",
        help="Renew when at most this much validity is left: a number and d, h or m "
        "(30d, 12h, 90m).",
    ),
]
RevokeReplacedOption = Annotated[
    bool,
    typer.Option(
        "--revoke-replaced",
        help="Revoke (reason superseded) the certificate a new one replaces, after the "
        "deploy hook.",
    ),
]
DeployHookOption = Annotated[
    str | None,
    typer.Option(
        "--deploy-hook",
        metavar="CMD",
        help="Shell command run once per folder that got a new certificate, after its "
        "files are in place, with SECTIGO_RENEWED_DIR set to the folder (also "
        "SECTIGO_RENEWED_ACTION, SECTIGO_RENEWED_SERIAL, SECTIGO_REPLACED_SERIAL). Its "
        "output goes to stderr; a failure gives exit status 1 but keeps the certificate.",
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Say what would be done: send nothing (no license is spent), write nothing, "
        "run no hook.",
    ),
]
RenewForceOption = Annotated[
    bool, typer.Option("--force", help="Renew even a certificate that is still valid.")
]
WaitTimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Seconds to wait for each new batch.",
        min=0.001,
    ),
]
