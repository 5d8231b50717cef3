"""The pytest plugin (``sectigo_iot.testing``) and ``Emulator.client()``."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest_plugins = ["pytester"]

INNER_TESTS = """
import pytest

from sectigo_iot.emulator import Emulator


def test_fresh_emulator(sectigo_emulator):
    assert isinstance(sectigo_emulator, Emulator)
    assert sectigo_emulator.batches() == [] and sectigo_emulator.balance == 10


@pytest.mark.sectigo_emulator(users={"alice": "pw"}, balance=3)
def test_marker_options(sectigo_emulator):
    assert list(sectigo_emulator.config.users) == ["alice"] and sectigo_emulator.balance == 3


async def test_client(sectigo_emulator, sectigo_client):
    [authority] = await sectigo_client.authorities.list()
    assert authority.profile_id == 42
    assert sectigo_emulator.stats.logins == 1
"""


def test_fixtures_work_under_pytest_asyncio_auto_mode(
    pytester: pytest.Pytester, pytestconfig: pytest.Config
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_inner=INNER_TESTS)
    # installed packages load the plugin through the pytest11 entry point already
    loaded = pytestconfig.pluginmanager.has_plugin("sectigo_iot")
    args = [] if loaded else ["-p", "sectigo_iot.testing"]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)


def test_importing_the_plugin_is_cheap() -> None:
    code = (
        "import sys, sectigo_iot.testing; "
        "mods = ('starlette', 'uvicorn', 'sectigo_iot.emulator'); "
        "heavy = [m for m in mods if m in sys.modules]; "
        "print(heavy)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert output.strip() == "[]"
