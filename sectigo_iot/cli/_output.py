"""Printing results: JSON for scripts, rich tables for people, notes on stderr.

JSON is the API's own shape (the models' camelCase names, the API's date format, two
spaces of indentation), printed when stdout is not a terminal or with ``--json``. Rich
loads only when a table or a spinner is actually shown.

Everything printed goes through this module, and nothing a server, a file or a user
sent is ever interpreted by the terminal: control characters (C0, DEL, C1: escape
sequences, BEL, newlines inside a value) and bidirectional overrides are shown escaped
(``\\x1b``, ``\\u202e``), and rich never reads markup or emoji codes (``[/prod]`` and
``:AB:`` print as such). In JSON, C1 and bidi characters are ``\\uXXXX`` escapes too.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Output",
    "isatty",
    "make_console",
    "note",
    "note_lines",
    "printable",
    "scrub",
    "to_json",
]

_SECRET_KEYS = ("password", "secret", "token")
MASK = "***"

#: characters a terminal (or a reader) could take for something else: C0 controls
#: (ESC, BEL, CR, LF, TAB...), DEL, C1 controls, bidi marks, embeddings, overrides and
#: isolates, line/paragraph separators, and lone surrogates (which cannot be encoded)
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")
#: the same, less what ``json.dumps`` already escapes (C0)
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any) -> str:
    """``str(value)`` with every control and bidi character shown as an escape:
    safe to print on a terminal, and always one line."""
    return _UNSAFE.sub(_escape, str(value))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps(data: Any) -> str:
    """JSON (2-space indent): non-ASCII text as is, except C1, DEL, bidi and separator
    characters and lone surrogates, which are ``\\uXXXX`` escapes."""
    return _JSON_UNSAFE.sub(_json_escape, json.dumps(data, indent=2, ensure_ascii=False))


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


def make_console(file: TextIO) -> Console:
    """A rich console that prints text literally: no markup, no emoji codes, no
    highlighting, never wrapped by rich itself."""
    from rich.console import Console

    return Console(file=file, markup=False, emoji=False, highlight=False, soft_wrap=False)


class Output:
    """Where and how a command prints its result."""

    def __init__(self, json_flag: bool | None) -> None:
        self.explicit = json_flag is not None
        self.json = json_flag if json_flag is not None else not isatty(sys.stdout)

    # -- JSON ------------------------------------------------------------------------

    def emit_json(self, data: Any) -> None:
        """One JSON document (2-space indent, trailing newline) on stdout."""
        sys.stdout.write(dumps(data) + "\n")
        sys.stdout.flush()

    def result(self, data: Any, human: Callable[[Output], None]) -> None:
        """JSON of ``data`` (already JSON-ready) or the human rendering."""
        if self.json:
            self.emit_json(data)
        else:
            human(self)

    def text(self, lines: str | Sequence[str], data: Any = None) -> None:
        """Plain lines the original tool printed; JSON of ``data`` only with ``--json``."""
        if self.explicit and self.json and data is not None:
            self.emit_json(data)
            return
        for line in [lines] if isinstance(lines, str) else lines:
            self.line(line)

    # -- people ----------------------------------------------------------------------

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None = None,
        whole: Collection[str] = (),
    ) -> None:
        """A rich table (``None`` cells are shown empty).

        A cell wraps only between words and never splits one (serials, fingerprints,
        paths are copied whole); a column in ``whole`` never wraps at all. When the
        terminal is too narrow, the table is wider than the terminal.
        """
        from rich.cells import cell_len
        from rich.table import Table
        from rich.text import Text

        cells = [["" if cell is None else printable(cell) for cell in row] for row in rows]
        headers = [printable(column) for column in columns]
        widest, longest_word = [], []
        for index, header in enumerate(headers):
            values = [header, *(row[index] for row in cells)]
            widest.append(max(cell_len(value) for value in values))
            keep = columns[index] in whole
            parts = [part for value in values for part in ([value] if keep else value.split())]
            longest_word.append(max((cell_len(part) for part in parts), default=0))
        console = make_console(sys.stdout)
        borders = 3 * len(headers) + 1  # a border and two spaces of padding per column
        widths = _share(console.width - borders, widest, longest_word)
        console.width = max(console.width, sum(widths) + borders)
        table = Table(
            title=Text(printable(title)) if title else None,
            title_justify="left",
            header_style="bold",
        )
        for header, width in zip(headers, widths, strict=True):
            table.add_column(Text(header), width=width)
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)

    def fields(self, pairs: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
        """A ``name  value`` summary, one pair per line (values are never wrapped)."""
        if title:
            self.line(title)
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            shown = "" if value is None else printable(value)
            self.line(f"{name:<{width}}  {shown}".rstrip())

    def line(self, text: str) -> None:
        """One plain line on stdout (control characters escaped)."""
        sys.stdout.write(printable(text) + "\n")
        sys.stdout.flush()


def _share(room: int, widest: list[int], least: list[int]) -> list[int]:
    """Column widths: each column's widest value when all fit in ``room``; else each gets
    at least ``least`` (its longest word) and the rest of the room goes to the columns
    that wrap, in proportion to what they lack. The sum may exceed ``room``."""
    if sum(widest) <= room:
        return widest
    spare = max(room - sum(least), 0)
    lacking = [most - low for most, low in zip(widest, least, strict=True)]
    total = sum(lacking) or 1
    return [low + spare * lack // total for low, lack in zip(least, lacking, strict=True)]


def note(text: str) -> None:
    """A line for the user on stderr (never part of the result; escaped like stdout)."""
    sys.stderr.write(printable(text) + "\n")
    sys.stderr.flush()


def note_lines(text: str) -> None:
    """Each line of ``text`` (a traceback, a log record) on stderr, escaped as by
    :func:`note`."""
    sys.stderr.writelines(printable(line) + "\n" for line in text.splitlines())
    sys.stderr.flush()


def isatty(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (False for anything that cannot tell)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
