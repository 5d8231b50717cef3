"""Waiting for a batch: polling its state until ready, with progress reports."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from attrs import frozen

from .._checks import seconds
from .._html import table_html
from .._logging import get_logger
from ..errors import BatchFailedError, BatchRejectedError, WaitTimeoutError
from ..models import Batch, BatchStatus, ProcessingInfo

__all__ = ["READY", "WaitProgress", "is_done", "look", "poll_until_ready", "with_display"]

logger = get_logger("sectigo_iot.batches")

# Polling of batches.wait: 1 s, times 1.5, capped at 20 s.
POLL_INITIAL, POLL_FACTOR, POLL_MAX = 1.0, 1.5, 20.0
READY = frozenset({BatchStatus.READY_FOR_DOWNLOAD, BatchStatus.COLLECTED})


@frozen(kw_only=True)
class WaitProgress:
    """What ``batches.wait`` saw on one poll, passed to its ``on_progress`` callback.

    ``info`` holds the certificates counted by state: as the batch detail tells them
    (its ``size``, ``active`` flag and status), or from ``processing_info`` when the
    status could not tell.
    """

    batch: Batch
    status: str
    info: ProcessingInfo
    elapsed: float

    def __str__(self) -> str:
        info = self.info
        return (
            f"batch {self.batch.batch_id}: {self.status or 'no status'} after {self.elapsed:.1f} s "
            f"(active {info.active}, success {info.success}, failed {info.failed})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("batch", self.batch.batch_id),
            ("name", self.batch.batch_name),
            ("status", self.status),
            ("active", self.info.active),
            ("success", self.info.success),
            ("failed", self.info.failed),
            ("elapsed", f"{self.elapsed:.1f} s"),
        ]
        return table_html("WaitProgress", ("field", "value"), rows)


async def poll_until_ready(
    batch_id: int,
    *,
    timeout: float,
    on_progress: Callable[[WaitProgress], Any] | None,
    get: Callable[[int], Awaitable[Batch]],
    status: Callable[[int], Awaitable[str]],
    processing_info: Callable[[int], Awaitable[ProcessingInfo]],
    sleep: Callable[[float], Awaitable[Any]],
) -> Batch:
    """Poll the batch (``get``, and ``status`` or ``processing_info`` only when the
    detail cannot tell) until it is ready; see ``Batches.wait``."""
    timeout = seconds("timeout", timeout)
    import anyio  # on first use: it is a large import

    delay, waited = POLL_INITIAL, 0.0
    batch, state = None, ""
    with anyio.move_on_after(timeout):
        while True:
            batch, state, info = await look(
                batch_id, get=get, status=status, processing_info=processing_info
            )
            if on_progress is not None:
                on_progress(WaitProgress(batch=batch, status=state, info=info, elapsed=waited))
            if is_done(batch, state, info):
                return batch
            if waited >= timeout:
                break
            pause = min(delay, timeout - waited)
            await sleep(pause)
            waited += pause
            delay = min(delay * POLL_FACTOR, POLL_MAX)
    raise WaitTimeoutError(
        f"batch {batch_id} was not ready after {timeout:g} s (last status: {state or 'none'})",
        status=state,
        batch=batch,
    )


async def look(
    batch_id: int,
    *,
    get: Callable[[int], Awaitable[Batch]],
    status: Callable[[int], Awaitable[str]],
    processing_info: Callable[[int], Awaitable[ProcessingInfo]],
) -> tuple[Batch, str, ProcessingInfo]:
    """One poll: the batch detail, its state, and its counts (the text status and the
    processing counts asked only when the detail cannot tell)."""
    batch = await get(batch_id)
    state = BatchStatus.normalize(batch.status)
    if state in ("", BatchStatus.COLLECTED):
        state = await status(batch_id)
    info = _counts_told_by(batch, state) or await processing_info(batch_id)
    return batch, state, info


def with_display(
    on_progress: Callable[[WaitProgress], Any] | None,
) -> Callable[[WaitProgress], Any]:
    """``on_progress`` preceded by a progress display: one display updated in place
    under IPython (loaded only here, and optional), else a line on stderr per poll."""
    display: Any = None
    with contextlib.suppress(ImportError):
        ipython = importlib.import_module("IPython")
        if ipython.get_ipython() is not None:
            display = importlib.import_module("IPython.display").display
    handle: Any = None

    def show(update: WaitProgress) -> None:
        nonlocal handle
        if display is None:
            print(update, file=sys.stderr, flush=True)
        elif handle is None:
            handle = display(update, display_id=True)
        else:
            handle.update(update)
        if on_progress is not None:
            on_progress(update)

    return show


def _counts_told_by(batch: Batch, status: str) -> ProcessingInfo | None:
    """The processing counts as the detail tells them (its ``size``, ``active`` flag and
    status), or None when only ``processing_info`` can tell (an unknown status)."""
    size = max(batch.size, 1)
    if batch.active or status in (BatchStatus.CREATED, BatchStatus.PROCESSING):
        return ProcessingInfo(active=size)
    if status in READY:
        return ProcessingInfo(success=size)
    if status in BatchStatus.FAILURES:
        return ProcessingInfo(failed=size)
    return None


def is_done(batch: Batch, status: str, info: ProcessingInfo) -> bool:
    """True when ready; raises for rejected or failed batches; False to keep polling."""
    if status == BatchStatus.REJECTED or (batch.reject_reason and info.failed and not info.success):
        raise BatchRejectedError(
            f"batch {batch.batch_id} was rejected: {batch.reject_reason or 'no reason given'}",
            reject_reason=batch.reject_reason,
            batch=batch,
        )
    if info.active > 0:
        return False
    if status in READY and (info.success > 0 or info.failed == 0):
        if info.failed:
            logger.warning(
                "batch %d is ready but %d certificate(s) failed", batch.batch_id, info.failed
            )
        return True
    if status in BatchStatus.FAILURES or (info.failed > 0 and info.success == 0):
        raise BatchFailedError(
            f"batch {batch.batch_id} failed with status {status or 'unknown'}", batch=batch
        )
    return False
