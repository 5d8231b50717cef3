"""The account endpoints: authorities and balances, licenses, the organization, profiles."""

from __future__ import annotations

import httpx

from sectigo_iot import models
from sectigo_iot.models import strict_converter
from tests.emulator.helpers import JSON, create_id, strict
from tests.support import EMULATOR_AUTHORITY


async def test_authorities_allowed_default(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/authorities/allowed")
    assert response.status_code == 200
    assert response.json() == [EMULATOR_AUTHORITY]
    strict_converter.structure(response.json(), list[models.Authority])
    assert response.headers["content-type"] == JSON


async def test_balance_is_a_bare_integer(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/authorities/1/balanceavailable")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    assert response.content == b"10"
    missing = await http.get("/api/v1/authorities/77/balanceavailable")
    assert missing.status_code == 404
    strict(missing, models.ErrorBody)


async def test_devices_counts_licenses(http: httpx.AsyncClient) -> None:
    assert strict(await http.get("/api/v1/devices"), models.Licenses) == models.Licenses(
        ordered=10, issued=0
    )
    await create_id(http)
    assert strict(await http.get("/api/v1/devices"), models.Licenses) == models.Licenses(
        ordered=10, issued=1
    )


async def test_organization(http: httpx.AsyncClient) -> None:
    org = strict(await http.get("/api/v1/organizations/user"), models.Organization)
    assert org.org_status == "ACTIVE"
    assert org.organization_name
    assert org.authorities is not None and [a.id for a in org.authorities] == [1]
    assert org.ecosystem_id == 100


async def test_profiles_list_detail_and_parameters(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/profiles")
    profiles = strict_converter.structure(response.json(), list[models.Profile])
    assert [p.profile_id for p in profiles] == [42]
    assert response.headers["content-type"] == JSON

    detail = strict(await http.get("/api/v1/profiles/42"), models.ProfileDetail)
    assert detail.profile_name == "TRISA Profile" and detail.profile_id == 42
    assert detail.raw_profile_config and detail.key_algorithm_info.startswith("EC")

    response = await http.get("/api/v1/profiles/42/parameters")
    parameters = strict_converter.structure(response.json(), list[models.ProfileParameter])
    required = {p.name for p in parameters if p.required}
    optional = {p.name for p in parameters if not p.required}
    assert required == {"commonName", "dNSName", "pkcs12Password"}
    assert optional == {"organizationName", "localityName", "stateOrProvinceName", "countryName"}

    for path in ("/api/v1/profiles/7", "/api/v1/profiles/7/parameters"):
        assert (await http.get(path)).status_code == 404
