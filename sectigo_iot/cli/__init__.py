"""The ``sectigo`` command-line tool (needs the ``cli`` extra: Typer and rich).

``main()`` is the console script; ``app`` is the Typer application (for tests:
``typer.testing.CliRunner().invoke(app, [...])``). Exit statuses are in
:data:`EXIT_CODES`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._app import app
from ._errors import EXIT_CODES, ExitCode
from ._group import SectigoGroup

__all__ = ["EXIT_CODES", "ExitCode", "app", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sectigo`` with ``argv`` (default: the process arguments); return the status."""
    from typer.main import get_command

    command = get_command(app)
    assert isinstance(command, SectigoGroup)
    code: int = command.main(
        args=list(argv) if argv is not None else None, prog_name="sectigo", standalone_mode=False
    )
    return code
