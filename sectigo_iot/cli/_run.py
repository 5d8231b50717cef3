"""The one way a command runs: settings from the context, a client, the result printed.

Failures are raised, never printed here: the group turns each into one ``error:`` line
and an exit status (see ``_group``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from ._client import open_client
from ._errors import CLIError, ExitCode
from ._output import Output
from ._settings import Settings, settings_of

if TYPE_CHECKING:
    from .. import SectigoClient

__all__ = ["output_of", "run", "set_resume_hint"]

T = TypeVar("T")

#: what the running command would leave unfinished if interrupted, and how to finish it
_resume_hint: list[str] = []


def set_resume_hint(hint: str | None) -> None:
    """Say what a Ctrl-C from now on leaves unfinished, and how to resume (None: nothing)."""
    _resume_hint[:] = [hint] if hint else []


def run(
    ctx: typer.Context,
    action: Callable[[SectigoClient], Awaitable[T]],
    show: Callable[[Output, T], None],
    *,
    settings: Settings | None = None,
    client_options: dict[str, Any] | None = None,
) -> None:
    """Run ``action`` with a client for the global options (or ``settings``; with
    ``client_options``, more arguments of SectigoClient) in a fresh event loop, then
    ``show`` its result."""
    import anyio

    resolved = settings or settings_of(ctx)

    async def main() -> T:
        async with open_client(resolved, **(client_options or {})) as client:
            return await action(client)

    set_resume_hint(None)
    try:
        result = anyio.run(main)
    except KeyboardInterrupt:
        if not _resume_hint:
            raise
        raise CLIError(f"interrupted: {_resume_hint[0]}", ExitCode.INTERRUPTED) from None
    finally:
        set_resume_hint(None)
    show(Output(resolved.json), result)


def output_of(ctx: typer.Context) -> Output:
    """Where and how a command that needs no client prints."""
    return Output(settings_of(ctx).json)
