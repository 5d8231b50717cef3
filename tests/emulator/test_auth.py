"""Login, refresh and bearer tokens: HS512 JWTs, expiry on the emulator clock, users."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import ErrorBody
from tests.emulator.helpers import PASSWORD, USER, authed, create_id, login, raw_client, strict


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(users={"alice": "pw1", "bob": "pw2"}, key_type="ec-p256") as emulator:
        yield emulator


async def test_default_user_is_tester() -> None:
    with Emulator() as emulator:
        async with raw_client(emulator) as http:
            await login(http, USER, PASSWORD)
        assert emulator.stats.logins_by_user == {USER: 1}


async def test_token_claims(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        tokens = await login(http, "alice", "pw1")
    access, refresh = claims(tokens["accessToken"]), claims(tokens["refreshToken"])
    assert header(tokens["accessToken"])["alg"] == "HS512"
    assert access["scopes"] == ["ROLE_USER"] and refresh["scopes"] == ["ROLE_REFRESH_TOKEN"]
    assert access["exp"] - access["iat"] == 600 and refresh["exp"] - refresh["iat"] == 7200
    assert access["sub"] == refresh["sub"] and access["sub"].endswith("/alice")
    assert access["iss"] == refresh["iss"]
    assert access["jti"] != refresh["jti"]


async def test_ttls_are_configurable() -> None:
    with Emulator(access_ttl=60, refresh_ttl=120) as emulator:
        async with raw_client(emulator) as http:
            tokens = await login(http)
    access, refresh = claims(tokens["accessToken"]), claims(tokens["refreshToken"])
    assert access["exp"] - access["iat"] == 60 and refresh["exp"] - refresh["iat"] == 120


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "alice", "password": "pw2"},
        {"username": "mallory", "password": "pw1"},
        {"username": "alice", "password": ""},
    ],
)
async def test_bad_credentials_are_401(emu: Emulator, body: dict[str, str]) -> None:
    async with raw_client(emu) as http:
        response = await http.post("/auth/pwd", json=body)
    assert response.status_code == 401
    assert strict(response, ErrorBody).status == 401
    assert emu.stats.logins == 0 and emu.stats.failed_logins == 1


async def test_malformed_login_body_is_400(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        assert (await http.post("/auth/pwd", content=b"nope")).status_code == 400
        assert (await http.post("/auth/pwd", json={"username": "alice"})).status_code == 400


async def test_access_token_expires_with_the_clock(emu: Emulator) -> None:
    async with authed(emu, "alice", "pw1") as http:
        assert (await http.get("/api/v1/devices")).status_code == 200
        emu.clock.advance(599)
        assert (await http.get("/api/v1/devices")).status_code == 200
        emu.clock.advance(1)
        response = await http.get("/api/v1/devices")
    assert response.status_code == 401
    assert strict(response, ErrorBody).message


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6cHcx",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIvYWNjb3VudC80Mi91c2VyL2FsaWNlIn0.",
        "Bearer \u00fcn\u00efcode.x.y",
    ],
)
async def test_missing_or_malformed_bearer_is_401(emu: Emulator, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization.encode("latin-1")}
    async with raw_client(emu) as http:
        response = await http.get("/api/v1/authorities/allowed", headers=headers)
    assert response.status_code == 401
    strict(response, ErrorBody)


async def test_foreign_token_is_401(emu: Emulator) -> None:
    with Emulator(users={"alice": "pw1"}) as other:
        async with raw_client(other) as http:
            foreign = (await login(http, "alice", "pw1"))["accessToken"]
    async with raw_client(emu) as http:
        response = await http.get("/api/v1/devices", headers={"Authorization": f"Bearer {foreign}"})
    assert response.status_code == 401


async def test_tampered_token_is_401(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        token = (await login(http, "bob", "pw2"))["accessToken"]
        head, _, signature = token.split(".")
        forged_claims = {**claims(token), "sub": "/account/42/user/alice"}
        body = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
        forged = f"{head}.{body}.{signature}"
        response = await http.get("/api/v1/devices", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_refresh_with_raw_token_body(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        tokens = await login(http, "alice", "pw1")
        emu.clock.advance(601)
        response = await http.post(
            "/auth/refresh",
            content=tokens["refreshToken"].encode(),
            headers={"Content-Type": "application/json;charset=UTF-8"},
        )
        assert response.status_code == 200
        fresh = response.json()
        assert set(fresh) == {"accessToken", "refreshToken"}
        assert claims(fresh["accessToken"])["iat"] > claims(tokens["accessToken"])["iat"]
        ok = await http.get(
            "/api/v1/devices", headers={"Authorization": f"Bearer {fresh['accessToken']}"}
        )
        assert ok.status_code == 200
    assert emu.stats.refreshes == 1 and emu.stats.refreshes_by_user == {"alice": 1}
    assert emu.stats.logins == 1


async def test_refresh_rejects_access_tokens_and_wrapped_bodies(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        tokens = await login(http, "alice", "pw1")
        for body in (
            tokens["accessToken"].encode(),
            json.dumps(tokens["refreshToken"]).encode(),
            json.dumps({"refreshToken": tokens["refreshToken"]}).encode(),
            b"",
            b"garbage",
        ):
            response = await http.post("/auth/refresh", content=body)
            assert response.status_code == 401, body
            strict(response, ErrorBody)
    assert emu.stats.refreshes == 0


async def test_expired_refresh_token_is_401(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        tokens = await login(http, "alice", "pw1")
        emu.clock.advance(7200)
        response = await http.post("/auth/refresh", content=tokens["refreshToken"].encode())
    assert response.status_code == 401


async def test_refresh_token_is_not_a_bearer_token(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        tokens = await login(http, "alice", "pw1")
        response = await http.get(
            "/api/v1/devices", headers={"Authorization": f"Bearer {tokens['refreshToken']}"}
        )
    assert response.status_code == 401


async def test_users_see_only_their_own_batches(emu: Emulator) -> None:
    async with authed(emu, "alice", "pw1") as alice, authed(emu, "bob", "pw2") as bob:
        batch_id = await create_id(alice, "alice.example.com")
        for suffix in ("", "/status", "/processing_info", "/download"):
            response = await bob.get(f"/api/v1/batches/{batch_id}{suffix}")
            assert response.status_code == 404, suffix
            strict(response, ErrorBody)
        assert (await alice.get(f"/api/v1/batches/{batch_id}")).status_code == 200

        found = await bob.post(
            "/api/v1/certificates/find", json={"commonName": "alice.example.com"}
        )
        assert found.json() == {"totalCount": 0, "items": []}
        serial = emu.batches("alice")[0].serial_numbers[0]
        revoke = await bob.post(
            "/api/v1/certificates/42/revoke", json={"reasonCode": 0, "serialNumber": serial}
        )
        assert revoke.status_code == 404
        listing = await bob.get("/api/v1/batches")
        assert listing.json()["totalElements"] == 0
    assert [b.username for b in emu.batches()] == ["alice"]
    assert emu.batches("bob") == []


async def test_login_counts_per_user(emu: Emulator) -> None:
    async with raw_client(emu) as http:
        await login(http, "alice", "pw1")
        await login(http, "alice", "pw1")
        await login(http, "bob", "pw2")
    assert emu.stats.logins == 3
    assert emu.stats.logins_by_user == {"alice": 2, "bob": 1}
    assert emu.stats.requests["POST /auth/pwd"] == 3
    emu.stats.reset()
    assert emu.stats.logins == 0 and not emu.stats.requests


def test_secrets_stay_out_of_reprs(emu: Emulator) -> None:
    text = repr(emu) + repr(emu.config) + repr(emu.stats)
    assert "pw1" not in text and "pw2" not in text
    assert "alice" in repr(emu.config)
