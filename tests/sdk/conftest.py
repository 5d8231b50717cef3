"""SDK fixtures: a movable clock and clients wired to pytest-httpx, pauses recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sectigo_iot import MemoryTokenStore, SectigoClient
from tests.support import BASE, Clock, token_pair


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses (retries, polling) of clients made by ``make_client``, which never sleep."""
    return []


@pytest.fixture
def make_client(clock: Clock, sleeps: list[float]) -> Callable[..., SectigoClient]:
    """Build clients against the real base URL, with a memory store and recorded pauses."""

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    def factory(**kwargs: Any) -> SectigoClient:
        kwargs.setdefault("token_store", MemoryTokenStore())
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("sleep", record)
        return SectigoClient(
            kwargs.pop("username", "api-user"), kwargs.pop("password", "pw-1234"), **kwargs
        )

    return factory


@pytest.fixture
async def client(make_client: Callable[..., SectigoClient]) -> AsyncIterator[SectigoClient]:
    async with make_client() as c:
        yield c


@pytest.fixture
def login(httpx_mock: Any, clock: Clock) -> Callable[..., dict[str, str]]:
    """Register one successful login response and return its tokens."""

    def add(**kwargs: Any) -> dict[str, str]:
        tokens = token_pair(clock.now, **kwargs)
        httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", json=tokens)
        return tokens

    return add
