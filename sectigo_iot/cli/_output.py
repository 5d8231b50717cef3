"""Printing results: JSON for scripts, rich tables for people, notes on stderr.

JSON is the API's own shape (the models' camelCase names, the API's date format, two
spaces of indentation), printed when stdout is not a terminal or with ``--json``. Rich
loads only when a table or a spinner is actually shown.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["Output", "isatty", "note", "scrub", "to_json"]

_SECRET_KEYS = ("password", "secret", "token")
MASK = "***"


def scrub(value: Any) -> Any:
    """A copy of JSON data with the value of any password/secret/token key masked."""
    if isinstance(value, Mapping):
        return {
            key: (
                MASK
                if isinstance(key, str)
                and any(word in key.lower() for word in _SECRET_KEYS)
                and value[key] not in (None, "")
                else scrub(value[key])
            )
            for key in value
        }
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


def to_json(value: Any) -> Any:
    """Models (attrs) as the API's JSON; lists and dicts of them too; secrets masked."""
    from ..models import converter

    if isinstance(value, (list, tuple)):  # also list subclasses, e.g. FoundCertificates
        return [to_json(item) for item in value]
    return scrub(converter.unstructure(value))


class Output:
    """Where and how a command prints its result."""

    def __init__(self, json_flag: bool | None) -> None:
        self.explicit = json_flag is not None
        self.json = json_flag if json_flag is not None else not isatty(sys.stdout)

    # -- JSON ------------------------------------------------------------------------

    def emit_json(self, data: Any) -> None:
        """One JSON document (2-space indent, trailing newline) on stdout."""
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def result(self, data: Any, human: Callable[[Output], None]) -> None:
        """JSON of ``data`` (already JSON-ready) or the human rendering."""
        if self.json:
            self.emit_json(data)
        else:
            human(self)

    def text(self, line: str, data: Any = None) -> None:
        """A plain line the original tool printed; JSON of ``data`` only with ``--json``."""
        if self.explicit and self.json and data is not None:
            self.emit_json(data)
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    # -- people ----------------------------------------------------------------------

    def console(self) -> Console:
        from rich.console import Console

        return Console(file=sys.stdout, highlight=False, soft_wrap=False)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None = None,
    ) -> None:
        """A rich table (``None`` cells are shown empty)."""
        from rich.table import Table

        table: Table = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self.console().print(table)

    def fields(self, pairs: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
        """A two-column "name: value" summary."""
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name, value in pairs:
            table.add_row(name, "" if value is None else str(value))
        console = self.console()
        if title:
            console.print(f"[bold underline]{title}[/]")
        console.print(table)

    def line(self, text: str) -> None:
        """A plain line on stdout."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def note(text: str) -> None:
    """A line for the user on stderr (never part of the result)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for anything that cannot tell)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
