"""The client a command talks to: the embedded emulator, or the API at the endpoint."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ._emulated import open_emulator
from ._errors import CLIError, ExitCode
from ._settings import Settings, check_environment
from ._tokens import token_store

if TYPE_CHECKING:
    from .. import SectigoClient

__all__ = ["open_client"]


@asynccontextmanager
async def open_client(settings: Settings, **options: Any) -> AsyncIterator[SectigoClient]:
    """A client for the settings: the embedded emulator, or the API at the endpoint;
    ``options`` are more arguments of SectigoClient (``metrics=``)."""
    if settings.emulator:
        async with _emulator_client(settings, **options) as client:
            yield client
        return
    from .. import SectigoClient

    check_environment(settings.environment, settings.base_url)
    if not settings.username:
        raise CLIError(
            "no username: use --username/-u or set SECTIGO_USERNAME "
            "(or --emulator to try the embedded emulator)",
            ExitCode.AUTH,
        )
    async with SectigoClient(
        settings.username,
        settings.password,
        base_url=settings.base_url,
        token_store=token_store(settings),
        **options,
    ) as client:
        yield client


@asynccontextmanager
async def _emulator_client(settings: Settings, **options: Any) -> AsyncIterator[SectigoClient]:
    if settings.endpoint:
        sys.stderr.write("warning: --endpoint is ignored with --emulator\n")
    emulator = open_emulator()
    try:
        async with emulator.client(
            settings.username or None,
            settings.password or None,
            token_store=token_store(settings),
            **options,
        ) as client:
            yield client
    finally:
        emulator.close()
