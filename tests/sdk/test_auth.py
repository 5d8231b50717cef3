"""Token policy (spec/auth.md, DESIGN policies) with an injected clock."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from sectigo_iot import (
    AuthenticationError,
    CredentialsError,
    MemoryTokenStore,
    PermissionDeniedError,
    RateLimitError,
    SectigoClient,
    TLSClientAuthRequiredError,
    TokenError,
)
from sectigo_iot._logging import MAX_SECRETS, SecretRegistry, redact
from sectigo_iot.auth import TokenManager, TokenPair, decode_claims
from tests.support import BASE, Clock, make_jwt, token_pair

DEVICES = f"{BASE}/api/v1/devices"
LICENSES = {"ordered": 1, "issued": 0}


def count(httpx_mock: Any, path: str) -> int:
    return sum(1 for r in httpx_mock.get_requests() if r.url.path == path)


async def test_first_call_logs_in_then_reuses_the_token(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    login()
    httpx_mock.add_response(url=DEVICES, json=LICENSES, is_reusable=True)
    for _ in range(3):
        await client.licenses.used()
    assert count(httpx_mock, "/auth/pwd") == 1


async def test_refresh_ahead_of_expiry_with_raw_token_body(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Clock
) -> None:
    first = login(access_ttl=600)
    httpx_mock.add_response(url=DEVICES, json=LICENSES, is_reusable=True)
    await client.licenses.used()
    clock.advance(600 - 30)  # inside the refresh window (min(60, ttl/4) = 60 s)
    renewed = token_pair(clock.now)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/refresh", json=renewed)
    await client.licenses.used()
    refresh = httpx_mock.get_requests(url=f"{BASE}/auth/refresh")[0]
    assert refresh.content == first["refreshToken"].encode()
    assert refresh.headers["Content-Type"] == "application/json;charset=UTF-8"
    last = httpx_mock.get_requests(url=DEVICES)[-1]
    assert last.headers["Authorization"] == f"Bearer {renewed['accessToken']}"


async def test_refresh_keeps_the_old_refresh_token_when_none_returned(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Clock
) -> None:
    first = login()
    await client.authenticate()
    clock.advance(700)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/auth/refresh",
        json={"accessToken": token_pair(clock.now)["accessToken"], "refreshToken": ""},
    )
    httpx_mock.add_response(url=DEVICES, json=LICENSES)
    await client.licenses.used()
    assert client.tokens is not None and client.tokens.refresh_token == first["refreshToken"]


async def test_expired_refresh_token_means_a_new_login(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Clock
) -> None:
    login()
    await client.authenticate()
    clock.advance(7200 + 1)
    login()
    httpx_mock.add_response(url=DEVICES, json=LICENSES)
    await client.licenses.used()
    assert count(httpx_mock, "/auth/refresh") == 0
    assert count(httpx_mock, "/auth/pwd") == 2


async def test_refresh_token_not_yet_valid_means_login(
    client: SectigoClient, httpx_mock: Any, clock: Clock
) -> None:
    nbf_future = {
        "accessToken": make_jwt(iat=int(clock.now), exp=int(clock.now + 600)),
        "refreshToken": make_jwt(
            iat=int(clock.now), nbf=int(clock.now + 3000), exp=int(clock.now + 7200)
        ),
    }
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", json=nbf_future)
    await client.authenticate()
    clock.advance(700)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", json=token_pair(clock.now))
    httpx_mock.add_response(url=DEVICES, json=LICENSES)
    await client.licenses.used()
    assert count(httpx_mock, "/auth/refresh") == 0


async def test_failed_refresh_falls_back_to_login(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Clock
) -> None:
    login()
    await client.authenticate()
    clock.advance(700)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/refresh", status_code=401)
    login()
    httpx_mock.add_response(url=DEVICES, json=LICENSES)
    await client.licenses.used()
    assert count(httpx_mock, "/auth/refresh") == 1 and count(httpx_mock, "/auth/pwd") == 2


async def test_fifty_concurrent_calls_share_one_refresh(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Clock
) -> None:
    login()
    await client.authenticate()
    clock.advance(601)  # the access token has expired
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/refresh", json=token_pair(clock.now))
    httpx_mock.add_response(url=DEVICES, json=LICENSES, is_reusable=True)
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(client.licenses.used)
    assert count(httpx_mock, "/auth/refresh") == 1
    assert count(httpx_mock, "/api/v1/devices") == 50


async def test_a_401_forces_one_refresh_and_one_retry(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Clock
) -> None:
    login()
    httpx_mock.add_response(url=DEVICES, status_code=401)
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/auth/refresh", json=token_pair(clock.now + 1)
    )
    httpx_mock.add_response(url=DEVICES, json=LICENSES)
    assert (await client.licenses.used()).ordered == 1
    assert count(httpx_mock, "/auth/refresh") == 1


async def test_a_second_401_is_raised_not_looped(
    client: SectigoClient, httpx_mock: Any, login: Any, clock: Clock
) -> None:
    login()
    httpx_mock.add_response(url=DEVICES, status_code=401, is_reusable=True)
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/auth/refresh", json=token_pair(clock.now + 1)
    )
    with pytest.raises(AuthenticationError):
        await client.licenses.used()
    assert count(httpx_mock, "/api/v1/devices") == 2


async def test_skewed_server_clock_does_not_loop(
    make_client: Any, httpx_mock: Any, clock: Clock
) -> None:
    # the server's clock is 5 minutes behind ours: tokens look nearly expired locally
    server_now = clock.now - 300
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/auth/pwd", json=token_pair(server_now, access_ttl=600)
    )
    httpx_mock.add_response(url=DEVICES, json=LICENSES, is_reusable=True)
    async with make_client() as client:
        for _ in range(5):
            await client.licenses.used()
            clock.advance(60)
    assert count(httpx_mock, "/auth/pwd") == 1 and count(httpx_mock, "/auth/refresh") == 0


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationError), (403, PermissionDeniedError)]
)
async def test_login_failures(
    client: SectigoClient, httpx_mock: Any, status: int, error: type
) -> None:
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", status_code=status)
    with pytest.raises(error):
        await client.authenticate()


async def test_redirect_from_login_is_not_followed(client: SectigoClient, httpx_mock: Any) -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/auth/pwd",
        status_code=307,
        headers={"Location": "https://iot.sectigo.com/auth/cert"},
    )
    with pytest.raises(TLSClientAuthRequiredError, match="TLS client-certificate"):
        await client.authenticate()
    assert len(httpx_mock.get_requests()) == 1


async def test_rate_limited_login_backs_off(
    client: SectigoClient, httpx_mock: Any, clock: Clock
) -> None:
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/auth/pwd", status_code=429, headers={"Retry-After": "30"}
    )
    with pytest.raises(RateLimitError):
        await client.licenses.used()
    with pytest.raises(RateLimitError) as caught:
        await client.licenses.used()
    assert caught.value.retry_after == pytest.approx(30)
    assert count(httpx_mock, "/auth/pwd") == 1  # the second call did not hit the server
    clock.advance(31)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", json=token_pair(clock.now))
    httpx_mock.add_response(url=DEVICES, json=LICENSES)
    await client.licenses.used()


async def test_missing_credentials(make_client: Any) -> None:
    async with make_client(username="", password="") as client:
        with pytest.raises(CredentialsError, match="SECTIGO_USERNAME"):
            await client.licenses.used()


async def test_stored_tokens_are_reused_across_clients(
    make_client: Any, httpx_mock: Any, login: Any
) -> None:
    store = MemoryTokenStore()
    login()
    httpx_mock.add_response(url=DEVICES, json=LICENSES, is_reusable=True)
    async with make_client(token_store=store) as first:
        await first.licenses.used()
    async with make_client(token_store=store) as second:
        await second.licenses.used()
    assert count(httpx_mock, "/auth/pwd") == 1


async def test_tokens_of_other_users_and_hosts_never_mix(
    make_client: Any, httpx_mock: Any, clock: Clock
) -> None:
    store = MemoryTokenStore()
    httpx_mock.add_response(method="POST", json=token_pair(clock.now), is_reusable=True)
    httpx_mock.add_response(method="GET", json=LICENSES, is_reusable=True)
    async with make_client(token_store=store, username="alice") as a:
        await a.licenses.used()
    async with make_client(token_store=store, username="bob") as b:
        await b.licenses.used()
    async with make_client(
        token_store=store, username="alice", base_url="https://other.example"
    ) as c:
        await c.licenses.used()
    assert count(httpx_mock, "/auth/pwd") == 3


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.!!!.c", "a.bm90IGpzb24.c", "a.WzFd.c"])
def test_malformed_tokens_raise_token_error(token: str) -> None:
    with pytest.raises(TokenError):
        decode_claims(token)


def test_tokens_without_iat_or_exp_are_rejected() -> None:
    with pytest.raises(TokenError, match="access token"):
        TokenPair.parse(make_jwt(exp=10), make_jwt(iat=1, exp=10), now=0)
    with pytest.raises(TokenError, match="refresh token"):
        TokenPair.parse(make_jwt(iat=1, exp=10), make_jwt(iat=1), now=0)


def test_token_pair_repr_hides_tokens(clock: Clock) -> None:
    tokens = token_pair(clock.now)
    pair = TokenPair.parse(tokens["accessToken"], tokens["refreshToken"], now=clock.now)
    assert tokens["accessToken"] not in repr(pair) and tokens["refreshToken"] not in repr(pair)
    assert json.loads(pair.to_json(host="h", username="u"))["host"] == "h"


async def test_the_manager_keeps_its_secrets_in_the_client_registry(clock: Clock) -> None:
    sent: list[str] = []

    async def send(path: str, body: bytes) -> dict[str, str]:
        sent.append(path)
        return token_pair(clock.now)

    registry = SecretRegistry()
    manager = TokenManager(
        host="iot.sectigo.com",
        username="api-user",
        password="manager-canary-pw",
        store=MemoryTokenStore(),
        send=send,
        clock=clock,
        secrets=registry,
    )
    assert "manager-canary-pw" in registry
    seen = []
    for _ in range(3 * MAX_SECRETS):  # a long-lived client: many refreshes
        seen.append(await manager.access_token())
        clock.advance(600)
    assert sent.count("/auth/refresh") == 3 * MAX_SECRETS - 1
    pair = manager.tokens
    assert pair is not None and pair.access_token in registry and pair.refresh_token in registry
    assert len(registry) == MAX_SECRETS + 1  # bounded; the password is never evicted
    assert redact("manager-canary-pw") == "***"
    assert seen[0] not in registry  # an old token is forgotten (the JWT pattern remains)
    registry.clear()
    assert redact("manager-canary-pw") == "manager-canary-pw"
