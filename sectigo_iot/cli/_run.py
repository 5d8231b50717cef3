"""The one way a command runs: settings from the context, a client, the result printed.

Failures are raised, never printed here: the group turns each into one ``error:`` line
and an exit status (see ``_group``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from ._client import open_client
from ._output import Output
from ._settings import Settings, settings_of

if TYPE_CHECKING:
    from .. import SectigoClient

__all__ = ["output_of", "run"]

T = TypeVar("T")


def run(
    ctx: typer.Context,
    action: Callable[[SectigoClient], Awaitable[T]],
    show: Callable[[Output, T], None],
    *,
    settings: Settings | None = None,
) -> None:
    """Run ``action`` with a client for the global options (or ``settings``) in a fresh
    event loop, then ``show`` its result."""
    import anyio

    resolved = settings or settings_of(ctx)

    async def main() -> T:
        async with open_client(resolved) as client:
            return await action(client)

    show(Output(resolved.json), anyio.run(main))


def output_of(ctx: typer.Context) -> Output:
    """Where and how a command that needs no client prints."""
    return Output(settings_of(ctx).json)
