"""pytest plugin: ``sectigo_emulator`` and ``sectigo_client`` fixtures.

Active once sectigo-iot is installed (entry point ``pytest11``). Importing it is cheap:
the emulator (Starlette, cryptography) loads when a fixture first runs. Options for
the emulator come from a marker::

    @pytest.mark.sectigo_emulator(users={"alice": "pw"}, processing_delay=5)
    async def test_wait(sectigo_emulator, sectigo_client): ...

    @pytest.mark.sectigo_emulator(batch_outcome="failed")  # every batch ends FAILED
    async def test_failure(sectigo_emulator, sectigo_client): ...

``sectigo_client`` is an async fixture. It is declared with ``pytest_asyncio.fixture``
when pytest-asyncio is installed (strict or auto mode); without pytest-asyncio it is a
plain async-generator fixture, which another async plugin (such as anyio's) must run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sectigo_iot import SectigoClient
    from sectigo_iot.emulator import Emulator

__all__ = ["sectigo_client", "sectigo_emulator"]

if TYPE_CHECKING:
    _async_fixture = pytest.fixture
else:
    try:
        from pytest_asyncio import fixture as _async_fixture
    except ImportError:  # pragma: no cover - depends on the environment
        _async_fixture = pytest.fixture


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``sectigo_emulator`` marker."""
    config.addinivalue_line(
        "markers",
        "sectigo_emulator(**options): EmulatorConfig options for the sectigo_emulator fixture",
    )


@pytest.fixture
def sectigo_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A fresh in-memory emulator for each test (the CA key is shared per process)."""
    from sectigo_iot.emulator import Emulator

    marker = request.node.get_closest_marker("sectigo_emulator")
    emulator = Emulator(**(marker.kwargs if marker else {}))
    try:
        yield emulator
    finally:
        emulator.close()


@_async_fixture
async def sectigo_client(sectigo_emulator: Emulator) -> AsyncIterator[SectigoClient]:
    """A ``SectigoClient`` logged in as the emulator's first user, in process."""
    async with sectigo_emulator.client() as client:
        yield client
