"""Shared helpers for the SDK tests."""

from __future__ import annotations


async def no_sleep(_: float) -> None:
    """A client's ``sleep`` that skips every pause (retries, polling)."""
    return None
