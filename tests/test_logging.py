"""The redaction filter: no secret reaches a handler, whatever the level."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from support import BASE, Clock, token_pair

from sectigo_iot._logging import get_logger, redact, register_secret


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
