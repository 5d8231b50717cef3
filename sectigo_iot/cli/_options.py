"""Typer options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "DEFAULT_TIMEOUT",
    "BatchIdOption",
    "DnsNamesOption",
    "DomainOption",
    "DownloadOption",
    "SerialOption",
    "TimeoutOption",
    "WaitOption",
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
