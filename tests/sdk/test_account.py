"""``client.authorities``, ``.profiles``, ``.licenses`` and ``.organizations`` (the
account area): what their replies decode to. Their requests' wire format is in
test_wire.py."""

from __future__ import annotations

from typing import Any

from sectigo_iot import Authority, SectigoClient
from tests.support import BASE


async def test_balance_is_a_bare_integer(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_response(url=f"{BASE}/api/v1/authorities/1/balanceavailable", text="7")
    assert await client.authorities.balance(1) == 7


async def test_authorities_decode(client: SectigoClient, httpx_mock: Any, login: Any) -> None:
    login()
    item = {
        "id": 423,
        "ecosystemId": 21,
        "signerCertificateId": 0,
        "ecosystemName": "Staging",
        "balance": 100,
        "enabled": True,
        "profileId": 423,
        "profileName": "CipherTrace EE_#17",
    }
    httpx_mock.add_response(url=f"{BASE}/api/v1/authorities/allowed", json=[item])
    assert await client.authorities.list() == [
        Authority(
            id=423,
            ecosystem_id=21,
            signer_certificate_id=0,
            ecosystem_name="Staging",
            balance=100,
            enabled=True,
            profile_id=423,
            profile_name="CipherTrace EE_#17",
        )
    ]
