"""examples/renew.py against the embedded emulator (loaded like tests/test_examples.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import load_module

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "renew.py"


def test_renew_example_issues_keeps_then_renews(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "api"
    argv = ["api.example.com", "--emulator", "--out", str(out), "--dns-name", "www.api.example.com"]
    status = load_module("example_renew", EXAMPLE).main(
        [*argv, "--then-after-days", "340", "--processing-delay", "0.2"]
    )
    printed = capsys.readouterr()
    assert status == 0
    actions = [line.split(" ", 1)[0] for line in printed.out.splitlines()]
    assert actions == ["issued", "kept", "renewed"]
    assert "replaced" in printed.out.splitlines()[2]
    assert printed.err.count("reload the servers") == 2
    assert os.readlink(out / "fullchain.pem") == "live/fullchain.pem"
    assert (out / "key.pem").stat().st_mode & 0o777 == 0o600
