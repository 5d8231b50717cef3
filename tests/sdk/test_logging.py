"""The redaction filter: no secret reaches a handler, whatever the level."""

from __future__ import annotations

import gc
import logging
import weakref
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sectigo_iot import InvalidInputError
from sectigo_iot._logging import (
    MAX_SECRETS,
    MIN_SECRET_LENGTH,
    SecretRegistry,
    get_logger,
    may_need_redaction,
    redact,
    register_secret,
)
from tests.support import BASE, Clock, token_pair


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc.def.ghi",
        '{"password": "hunter2hunter2"}',
        "pkcs12Password=Zq8w7e6r5t4y",
        "token eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJ4In0.c2ln here",
        "refresh_token: 'opaque-refresh-value'",
    ],
)
def test_secret_looking_values_are_redacted(text: str) -> None:
    cleaned = redact(text)
    for secret in (
        "abc.def.ghi",
        "hunter2hunter2",
        "Zq8w7e6r5t4y",
        "eyJzdWIiOiJ4In0",
        "opaque-refresh-value",
    ):
        assert secret not in cleaned


def test_registered_secrets_are_redacted_everywhere() -> None:
    register_secret("plain-canary-0042")
    assert redact("value plain-canary-0042 in text") == "value *** in text"


def test_filter_applies_to_records_with_args(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("sectigo_iot.test")
    register_secret("arg-canary-7777")
    with caplog.at_level(logging.DEBUG, logger="sectigo_iot"):
        logger.debug("got %s and %d", "arg-canary-7777", 3)
    assert caplog.records[0].getMessage() == "got *** and 3"


async def test_debug_logs_of_a_session_hold_no_secret(
    make_client: Any, httpx_mock: Any, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = token_pair(clock.now)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", json=tokens)
    httpx_mock.add_response(url=f"{BASE}/api/v1/devices", json={"ordered": 1, "issued": 0})
    httpx_mock.add_response(method="PUT", json={"batchId": 1})
    with caplog.at_level(logging.DEBUG):
        async with make_client(password="pw-log-canary-31") as client:
            await client.licenses.used()
            await client.batches.create(
                1, common_name="a.example.com", pkcs12_password="p12-log-canary-9"
            )
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /api/v1/devices -> 200" in text
    for secret in (
        "pw-log-canary-31",
        "p12-log-canary-9",
        tokens["accessToken"],
        tokens["refreshToken"],
    ):
        assert secret not in text


def test_a_client_registry_redacts_records_and_redact(caplog: pytest.LogCaptureFixture) -> None:
    registry = SecretRegistry()
    registry.add("client-canary-0042")
    logger = get_logger("sectigo_iot.test")
    with caplog.at_level(logging.DEBUG, logger="sectigo_iot"):
        logger.debug("sent %s", "client-canary-0042")
    assert caplog.records[0].getMessage() == "sent ***"
    assert redact("x client-canary-0042 y") == "x *** y"
    assert "client-canary" not in repr(registry)


def test_longest_secret_wins_when_secrets_overlap() -> None:
    registry = SecretRegistry()
    registry.add("overlap-secret")
    registry.add("overlap-secret-and-more")
    assert redact("[overlap-secret-and-more]") == "[***]"


def test_the_registry_keeps_only_the_most_recent_secrets() -> None:
    registry = SecretRegistry()
    secrets = [f"bounded-secret-{i:05d}" for i in range(MAX_SECRETS + 1)]
    for secret in secrets[:MAX_SECRETS]:
        registry.add(secret)
    registry.add(secrets[0])  # used again: now the most recent
    registry.add(secrets[MAX_SECRETS])
    assert len(registry) == MAX_SECRETS
    assert redact(secrets[1]) == secrets[1]  # the oldest is forgotten
    assert redact(f"{secrets[0]} {secrets[MAX_SECRETS]}") == "*** ***"


def test_many_registrations_keep_the_registry_bounded() -> None:
    registry = SecretRegistry()
    for i in range(10_000):
        registry.add(f"many-secret-{i:06d}")
    assert len(registry) == MAX_SECRETS
    assert redact("many-secret-009999 many-secret-000000") == "*** many-secret-000000"


def test_the_process_registry_is_bounded_too() -> None:
    first = "process-secret-first"
    register_secret(first)
    for i in range(MAX_SECRETS):
        register_secret(f"process-secret-{i:05d}")
    assert redact(first) == first


@pytest.mark.parametrize("secret", ["", "the", "a-b-c-d", 12345678])
def test_short_secrets_are_refused(secret: Any) -> None:
    registry = SecretRegistry()
    with pytest.raises(InvalidInputError, match=f"at least {MIN_SECRET_LENGTH} characters"):
        registry.add(secret)
    with pytest.raises(InvalidInputError, match="redacted safely"):
        register_secret(secret)
    assert len(registry) == 0


def test_a_short_login_password_is_redacted_only_as_a_whole_word() -> None:
    registry = SecretRegistry()
    registry.set_password("pw12")
    assert redact('login "pw12" failed; pw12') == 'login "***" failed; ***'
    assert redact("pw123 xpw12 pw12_") == "pw123 xpw12 pw12_"  # words that hold it


def test_a_login_password_outlives_the_recent_secrets() -> None:
    registry = SecretRegistry(limit=2)
    registry.set_password("login-password-long")
    for i in range(5):
        registry.add(f"rotating-token-{i}")
    assert len(registry) == 3
    assert redact("login-password-long") == "***"


def test_a_cleared_registry_redacts_nothing() -> None:
    registry = SecretRegistry()
    registry.set_password("cleared-password")
    registry.add("cleared-secret-1")
    registry.clear()
    assert redact("cleared-password cleared-secret-1") == "cleared-password cleared-secret-1"
    assert len(registry) == 0


def test_a_dropped_registry_is_forgotten() -> None:
    registry = SecretRegistry()
    registry.add("dropped-registry-secret")
    ref = weakref.ref(registry)
    del registry
    gc.collect()
    assert ref() is None
    assert redact("dropped-registry-secret") == "dropped-registry-secret"


async def test_a_collected_client_is_forgotten(make_client: Any) -> None:
    async with make_client(password="collected-client-pw") as client:
        assert redact("collected-client-pw") == "***"
    del client
    gc.collect()
    assert redact("collected-client-pw") == "collected-client-pw"


_FRAGMENTS = st.sampled_from(
    [
        "eyJ",
        "hbGc",
        ".",
        "Bearer ",
        "bearer\t",
        "pass",
        "word",
        "phrase",
        "PASSWORD",
        "=",
        ": ",
        '"',
        "access_",
        "Token",
        "secret",
        "Authorization",
        "pkcs12_",
        "abc123",
        " ",
        ",",
        "}",
        "Zq8w7e6r5t4y",  # a live secret (added below)
        "\u00e9",
        "\u212a",  # the Kelvin sign: "k" to a case-insensitive match
    ]
)


@given(st.lists(_FRAGMENTS, max_size=12).map("".join))
def test_may_need_redaction_never_misses_what_redact_changes(text: str) -> None:
    registry = SecretRegistry()
    registry.add("Zq8w7e6r5t4y")
    if redact(text) != text:
        assert may_need_redaction(text)
    del registry


@given(st.lists(_FRAGMENTS, max_size=12).map("".join))
def test_may_need_redaction_of_the_bytes_never_misses_what_redact_changes(text: str) -> None:
    registry = SecretRegistry()
    registry.add("Zq8w7e6r5t4y")
    if redact(text) != text:
        assert may_need_redaction(text.encode())
    del registry


def test_may_need_redaction_clears_plain_text() -> None:
    assert not may_need_redaction('{"serialNumber":"0A1B","status":"READY_FOR_DOWNLOAD"}')
    registry = SecretRegistry()
    registry.add("plain-secret-9")
    assert may_need_redaction('{"status":"plain-secret-9"}')
    assert may_need_redaction("caf\u00e9")  # beyond ASCII: left to redact
