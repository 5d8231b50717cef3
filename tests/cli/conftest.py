"""CLI fixtures: a runner of the `sectigo` command against an embedded emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import CLI


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CLI:
    """The command line, run in process in ``tmp_path`` with a fresh emulator database."""
    return CLI(tmp_path, monkeypatch)
