"""Finding batches by name: the batch list read newest first, page by page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from ..errors import InvalidResponseError
from ..models import Batch

__all__ = ["named_batches"]

#: reads page ``page`` of ``size`` batches: the batches, and whether it is surely the last
PageReader = Callable[[int, int], Awaitable[tuple[list[Batch], bool]]]


async def named_batches(
    read_page: PageReader,
    name: str,
    created_after: datetime | None,
    *,
    first_only: bool,
    page_size: int,
    max_pages: int,
) -> list[Batch]:
    """The batches called exactly ``name`` (created after ``created_after``, or of
    unknown date), newest first.

    Pages are read newest first until the list ends, or a page holds only batches
    created before ``created_after``; with ``first_only``, until the first page
    holding one; else also until a page that holds one and reaches back before
    ``created_after`` (the window since then is complete). DOUBT: a batch without a
    creation date cannot be placed in time, so it never ends the walk early. After
    ``max_pages`` pages the walk gives up with an error, never "not found".
    """
    found: list[Batch] = []
    for page in range(max_pages):
        batches, last = await read_page(page, page_size)
        found += [
            batch
            for batch in batches
            if batch.batch_name == name
            and (
                created_after is None
                or batch.creation_date is None
                or batch.creation_date >= created_after
            )
        ]
        older = (
            []
            if created_after is None
            else [
                batch
                for batch in batches
                if batch.creation_date is not None and batch.creation_date < created_after
            ]
        )
        if last or len(older) == len(batches) or (found and (first_only or older)):
            return found
    raise InvalidResponseError(
        f"the batch list did not end after {max_pages} pages of {page_size}",
        path="/api/v1/batches",
    )
