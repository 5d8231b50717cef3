"""CLI fixtures: a runner of the `sectigo` command against an embedded emulator, and an
emulator served over HTTP in a thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sectigo_iot.emulator import Emulator
from tests.cli.helpers import CLI


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CLI:
    """The command line, run in process in ``tmp_path`` with a fresh emulator database."""
    return CLI(tmp_path, monkeypatch)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with Emulator() as emulator, emulator.run_in_thread() as url:
        yield url
