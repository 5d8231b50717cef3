"""Typer options shared by several commands, declared once."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

import typer

from ._errors import CLIError

__all__ = [
    "DEFAULT_BEFORE",
    "DEFAULT_TIMEOUT",
    "ENV_CERTS_ROOT",
    "ENV_FLEET_STORE",
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
    "fleet_store",
    "fleet_store_option",
    "parse_duration",
    "subject_option",
    "value_option",
]

DEFAULT_TIMEOUT = 900.0
#: the environment variable naming the fleet's store, as its option does
ENV_FLEET_STORE = "SECTIGO_FLEET_STORE"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def value_option(names: str, metavar: str, help_text: str, **settings: Any) -> Any:
    """An option taking a value whose default ``--help`` does not show: its flags
    (space-separated: ``"--domain -d"``), metavar and help, and any other setting."""
    return typer.Option(
        *names.split(), metavar=metavar, help=help_text, show_default=False, **settings
    )


WaitOption = Annotated[
    bool, typer.Option("--wait", help="Wait until the batch is ready for download.")
]
DownloadOption = Annotated[
    str | None,
    value_option("--download", "DIR", "Wait, then save the batch ZIP in DIR (created if missing)."),
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
BatchIdOption = Annotated[int, value_option("--id -i", "ID", "Batch id.")]
DomainOption = Annotated[
    str,
    value_option("--domain -d", "DOMAIN", "Common name, also the first DNS name."),
]
DnsNamesOption = Annotated[
    list[str] | None,
    value_option("--dns-name", "NAME", "Another DNS name for the certificate (repeatable)."),
]
SerialOption = Annotated[
    str,
    value_option("--serial-number -s", "SERIAL", "Serial number of the certificate (hex)."),
]


#: the subject fields create and csr take: their flags and metavar
_SUBJECT_FLAGS = {
    "organization": ("--organization -o", "ORG"),
    "locality": ("--locality -l", "CITY"),
    "state": ("--state -s", "STATE"),
    "country": ("--country -c", "CODE"),
}


def subject_option(field: str, help_text: str) -> Any:
    """The option of a subject field: organization, locality, state or country."""
    names, metavar = _SUBJECT_FLAGS[field]
    return value_option(names, metavar, help_text)


# -- certificates kept in folders (issue, renew) -----------------------------------------

DEFAULT_BEFORE = "30d"
#: the folder whose sub-folders ``renew`` looks at (and ``issue`` writes into by default)
ENV_CERTS_ROOT = "SECTIGO_CERTS_ROOT"

DomainsOption = Annotated[
    list[str] | None,
    value_option(
        "--domain -d",
        "DOMAIN",
        "A name for the certificate (repeatable): the first is the common name, "
        "the others more DNS names.",
    ),
]
RootOption = Annotated[
    str | None,
    value_option(
        "--root",
        "DIR",
        "Folder holding one sub-folder per certificate (default: certs in the user "
        "data folder, e.g. ~/.local/share/sectigo-iot/certs).",
        envvar=ENV_CERTS_ROOT,
        show_envvar=True,
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
    value_option(
        "--deploy-hook",
        "CMD",
        "Shell command run once per folder that got a new certificate, after its "
        "files are in place, with SECTIGO_RENEWED_DIR set to the folder (also "
        "SECTIGO_RENEWED_ACTION, SECTIGO_RENEWED_SERIAL, SECTIGO_REPLACED_SERIAL). Its "
        "output goes to stderr; a failure gives exit status 1 but keeps the certificate.",
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


def fleet_store_option(flag: str) -> Any:
    """The option naming a fleet's store (``flag``, or ``SECTIGO_FLEET_STORE``)."""
    return value_option(
        flag,
        "PATH|URL",
        "The fleet's store: an SQLite file or a postgresql:// URL (keep a database "
        "password in ~/.pgpass or PGPASSWORD, not here). Its secrets are sealed with a "
        "key derived from SECTIGO_FLEET_KEY (for SQLite without it: a 0600 key file "
        "beside the database).",
        envvar=ENV_FLEET_STORE,
        show_envvar=True,
    )


def fleet_store(store: str | None, flag: str = "--store") -> str:
    """The store a :func:`fleet_store_option` gave; a usage error when none was."""
    if store is None or not store.strip():
        raise CLIError(
            f"no fleet store: give {flag} PATH_OR_URL or set {ENV_FLEET_STORE} (an SQLite "
            "file, made when missing, or a postgresql://user@host/database URL)"
        )
    return store


def parse_duration(value: str, option: str = "--before") -> timedelta:
    """``30d``, ``12h`` or ``90m`` as a timedelta; anything else is a usage error."""
    match = _DURATION.fullmatch(value.strip().lower())
    if match is None:
        raise CLIError(
            f"{option} must be a number followed by d, h or m (e.g. 30d, 12h, 90m), got {value!r}"
        )
    number, unit = match.groups()
    try:
        return timedelta(**{_UNITS[unit]: float(number)})
    except OverflowError:
        raise CLIError(f"{option} {value!r} is too long") from None
