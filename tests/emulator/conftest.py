"""Fixtures the emulator tests share: an in-process emulator and a logged-in raw client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from sectigo_iot.emulator import Emulator
from tests.emulator.helpers import authed


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A fresh in-memory emulator (EC P-256 keys: fast to issue)."""
    with Emulator(key_type="ec-p256") as emulator:
        yield emulator


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A raw httpx client on ``emu``, logged in as the default user."""
    async with authed(emu) as client:
        yield client
