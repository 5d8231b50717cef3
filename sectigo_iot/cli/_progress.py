"""Progress of ``batches.wait``: a spinner on a terminal, one line per change otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ._output import isatty, make_console, note, printable

if TYPE_CHECKING:
    from ..resources import WaitProgress

__all__ = ["progress"]


@contextmanager
def progress(label: str) -> Iterator[Callable[[WaitProgress], None]]:
    """A callback for ``batches.wait(on_progress=...)`` that shows the batch's state.

    A rich spinner on stderr when it is a terminal; otherwise one plain line per change.
    """
    if not isatty(sys.stderr):
        yield _lines(label)
        return
    from rich.text import Text

    with make_console(sys.stderr).status(Text(printable(f"{label}: waiting..."))) as status:
        yield lambda p: status.update(Text(printable(_describe(label, p))))


def _lines(label: str) -> Callable[[WaitProgress], None]:
    """A callback that notes the state on stderr each time it changes."""
    last: list[str] = []

    def show(p: WaitProgress) -> None:
        key = f"{p.status}/{p.info.active}/{p.info.success}/{p.info.failed}"
        if not last or last[-1] != key:
            last.append(key)
            note(_describe(label, p))

    return show


def _describe(label: str, p: WaitProgress) -> str:
    info = p.info
    return (
        f"{label}: {p.status or 'unknown'} (active {info.active}, success {info.success}, "
        f"failed {info.failed}) after {p.elapsed:.0f} s"
    )
