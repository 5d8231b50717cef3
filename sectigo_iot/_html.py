"""HTML tables for Jupyter (``_repr_html_``): every value escaped, secrets left out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

__all__ = ["fields_html", "shown_fields", "table_html"]


def table_html(
    caption: str, header: Sequence[str], rows: Iterable[Sequence[object]], *, footer: str = ""
) -> str:
    """A table; every caption, header and cell is escaped."""
    from html import escape  # only notebooks need it (html.entities is slow to import)

    def cell(value: object) -> str:
        return f"<td>{escape(str(value), quote=True)}</td>"

    head = "".join(f"<th>{escape(name, quote=True)}</th>" for name in header)
    body = "".join("<tr>" + "".join(map(cell, row)) + "</tr>" for row in rows)
    foot = f"<p>{escape(footer, quote=True)}</p>" if footer else ""
    return (
        f"<table><caption>{escape(caption, quote=True)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{foot}"
    )


def shown_fields(
    instance: Any, show: Callable[[object], object] = lambda value: value
) -> list[tuple[str, object]]:
    """An attrs instance's ``(name, show(value))`` pairs as its repr shows them: fields
    with ``repr=False`` are left out, and a custom repr (one that masks) gives the text."""
    pairs: list[tuple[str, object]] = []
    for field in attrs.fields(type(instance)):
        if field.repr is False:
            continue
        value = getattr(instance, field.name)
        pairs.append((field.name, field.repr(value) if callable(field.repr) else show(value)))
    return pairs


def fields_html(instance: Any) -> str:
    """An attrs instance as a two-column table of its shown fields."""
    return table_html(type(instance).__name__, ("field", "value"), shown_fields(instance))
