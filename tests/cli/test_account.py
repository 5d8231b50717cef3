"""The account commands: authorities, licenses, profiles, organization, with the original
tool's documented command lines against the embedded emulator (JSON, as stdout is not a
terminal, with the API's own field names).
"""

from __future__ import annotations

import pytest

from tests.cli.helpers import CLI, documents
from tests.support import EMULATOR_AUTHORITY


def test_authorities(cli: CLI) -> None:
    assert cli.json("authorities") == [EMULATOR_AUTHORITY]


def test_authorities_balances_prints_a_second_document(cli: CLI) -> None:
    result = cli.ok("authorities", "--balances")
    listing, balances = documents(result.stdout)
    assert [a["id"] for a in listing] == [1]
    assert balances == {"1": 10}
    assert cli.requests["GET /api/v1/authorities/1/balanceavailable"] == 1


def test_licenses(cli: CLI) -> None:
    assert cli.json("licenses") == {"ordered": 10, "issued": 0}


def test_profiles(cli: CLI) -> None:
    profiles = cli.json("profiles")
    assert [p["profileId"] for p in profiles] == [42]
    assert set(profiles[0]) == {"profileId", "algorithms", "ca"}


def test_profiles_id(cli: CLI) -> None:
    detail = cli.json("profiles", "-i", "42")
    assert set(detail) == {
        "profileName",
        "profileId",
        "rawProfileConfig",
        "name",
        "keyAlgorithmInfo",
    }
    assert detail["profileId"] == 42


@pytest.mark.parametrize("command", ["profiles", "profile"])
def test_profile_params(cli: CLI, command: str) -> None:
    """`sectigo profile -i 42 --params` as the upstream README writes it works too."""
    params = cli.json(command, "-i", "42", "--params")
    names = [p["name"] for p in params]
    assert {"commonName", "dNSName", "pkcs12Password"} <= set(names)
    assert {"name", "inputType", "required", "validationPattern", "title"} <= set(params[0])


def test_organization(cli: CLI) -> None:
    org = cli.json("organization")
    assert org["organizationName"] == "Sectigo IoT Emulator"
    assert {"organizationId", "primaryContactEmail", "authorities", "orgStatus"} <= set(org)
