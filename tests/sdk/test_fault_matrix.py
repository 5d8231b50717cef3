"""Every emulator fault against every kind of call: success or the documented error.

Each row injects one fault once, runs one call through the SDK (retries on, pauses
skipped) and checks the outcome, that no call hangs, and that the emulator spent
exactly as many licenses as certificates were asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from sectigo_iot import (
    AmbiguousRequestError,
    APIConnectionError,
    APIError,
    BadRequestError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    RateLimitError,
    SectigoClient,
    ServerError,
)
from sectigo_iot.emulator import Emulator
from tests.sdk.helpers import no_sleep

P12 = "fault-matrix-P12-pw"
RETRIED = (408, 429, 500, 502, 503, 504)
NOT_RETRIED = {400: BadRequestError, 404: NotFoundError, 409: ConflictError, 501: ServerError}
CALLS = ("get", "create", "upload", "revoke", "download", "login", "refresh")
ROUTES = {
    "get": ("GET", "/api/v1/batches/{id}"),
    "create": ("PUT", "/api/v1/batches/createSingleCertBatch"),
    "upload": ("POST", "/api/v1/batches/upload"),
    "revoke": ("POST", "/api/v1/certificates/{id}/revoke"),
    "download": ("GET", "/api/v1/batches/{id}/download"),
    "login": ("POST", "/auth/pwd"),
    "refresh": ("POST", "/auth/refresh"),
}
OK = "ok"


def expected(call: str, fault: str, status: int | None) -> Any:
    """The documented outcome of one call under one fault: OK or an error class."""
    if fault in ("delay", "delay_after", "gzip"):
        return OK
    idempotent = call in ("get", "download")
    if call == "refresh":  # a failed refresh falls back to a login with the password
        return OK
    if fault == "rate_limit":
        return OK if idempotent else RateLimitError
    if fault == "error":
        assert status is not None
        if status in NOT_RETRIED:
            return NOT_RETRIED[status]
        if idempotent:
            return OK
        if call == "login":
            return RateLimitError if status == 429 else (ServerError if status >= 500 else APIError)
        if status >= 500:  # may have reached the server: never re-sent
            return AmbiguousRequestError
        return RateLimitError if status == 429 else APIError
    if fault == "gzip_bomb":  # refused past the cap on decoded bytes, never retried
        if call in ("create", "revoke"):
            return OK  # the work was done: found by name / checked with find
        return AmbiguousRequestError if call == "upload" else InvalidResponseError
    # drops, and bodies cut or stalled after the headers: GETs are retried; a login is
    # not retried in a loop
    if idempotent:
        return OK
    if call == "login":
        return APIConnectionError
    processed = fault != "drop_before"
    if call == "create":
        return OK if processed else AmbiguousRequestError  # found by its name
    if call == "revoke":
        return OK if processed else AmbiguousRequestError  # checked with find
    return AmbiguousRequestError  # upload: no name on the wire, never re-sent


FAULTS: list[tuple[str, int | None]] = [
    ("delay", None),
    ("delay_after", None),
    ("rate_limit", None),
    ("drop_before", None),
    ("drop_after", None),
    ("truncate", None),
    ("stall", None),
    ("gzip", None),
    ("gzip_bomb", None),
    *[("error", s) for s in RETRIED],
    *[("error", s) for s in NOT_RETRIED],
]
MATRIX = [(call, fault, status) for call in CALLS for fault, status in FAULTS]
# Faults after which the server has done the work (a license spent) whatever the client saw.
PROCESSED = frozenset(
    {"delay", "delay_after", "drop_after", "truncate", "stall", "gzip", "gzip_bomb"}
)
CLIENT_TIMEOUT = 1.0  # a stall outlasts it; the emulator answers every real call well within


def inject(emulator: Emulator, method: str, path: str, fault: str, status: int | None) -> None:
    """Inject ``fault`` once: pauses short, a stall longer than the client's timeout, a
    gzip bomb inflating past every cap (64 MiB downloads, 10 MiB replies)."""
    if fault == "stall":
        emulator.inject(method, path, "stall", seconds=30.0)
    elif fault == "gzip_bomb":
        emulator.inject(method, path, "gzip", inflate_to=80 * 1024 * 1024)
    elif fault in ("delay", "delay_after"):
        emulator.inject(method, path, fault, seconds=0.05)
    elif fault in ("error", "rate_limit"):
        emulator.inject(method, path, fault, status=status or 500, retry_after=1)
    else:
        emulator.inject(method, path, fault)


class Scenario:
    """An emulator, a client and the state one call needs (a ready batch, a serial)."""

    def __init__(self, emulator: Emulator, client: SectigoClient, tmp_path: Path) -> None:
        self.emulator, self.client, self.tmp_path = emulator, client, tmp_path
        self.batch_id = 0
        self.serial = ""
        self.certificates_asked = 0

    async def prepare(self, csr_pem: bytes) -> None:
        self.csr_pem = csr_pem
        batch = await self.client.batches.create(
            1, common_name="ready.example.com", pkcs12_password=P12
        )
        self.certificates_asked += 1
        await self.client.batches.wait(batch.batch_id, timeout=5)
        self.batch_id = batch.batch_id
        [item] = await self.client.certificates.find(common_name="ready.example.com")
        self.serial = item.serial_number

    def action(self, call: str) -> Callable[[], Awaitable[Any]]:
        client = self.client

        async def get() -> Any:
            return await client.batches.get(self.batch_id)

        async def create() -> Any:
            self.certificates_asked += 1
            return await client.batches.create(
                1, common_name="new.example.com", pkcs12_password=P12
            )

        async def upload() -> Any:
            self.certificates_asked += 1
            return await client.batches.upload_csrs(42, self.csr_pem)

        async def revoke() -> Any:
            return await client.certificates.revoke(42, self.serial, "superseded")

        async def download() -> Any:
            return await client.batches.download(self.batch_id, self.tmp_path, overwrite=True)

        async def login() -> Any:
            return await client.authenticate()

        async def refresh() -> Any:
            self.emulator.clock.advance(601)  # the access token expired: the next call refreshes
            return await client.licenses.used()

        return {
            "get": get,
            "create": create,
            "upload": upload,
            "revoke": revoke,
            "download": download,
            "login": login,
            "refresh": refresh,
        }[call]


@pytest.mark.parametrize(
    ("call", "fault", "status"), MATRIX, ids=[f"{c}-{f}-{s or ''}" for c, f, s in MATRIX]
)
async def test_fault_matrix(
    sectigo_emulator: Emulator,
    tmp_path: Path,
    csr_pem: bytes,
    call: str,
    fault: str,
    status: int | None,
) -> None:
    async with sectigo_emulator.client(timeout=CLIENT_TIMEOUT, sleep=no_sleep) as client:
        scenario = Scenario(sectigo_emulator, client, tmp_path)
        await scenario.prepare(csr_pem)
        method, path = ROUTES[call]
        inject(sectigo_emulator, method, path, fault, status)
        outcome = expected(call, fault, status)
        with anyio.fail_after(10):  # no call may hang past its timeout
            if outcome is OK:
                await scenario.action(call)()
            else:
                with pytest.raises(outcome):
                    await scenario.action(call)()
        spent = sectigo_emulator.licenses_used
        if call in ("create", "upload") and fault not in PROCESSED:
            assert spent == scenario.certificates_asked - 1  # the failed request issued nothing
        else:
            assert spent == scenario.certificates_asked  # never a double issuance


async def test_delay_past_the_read_timeout(sectigo_emulator: Emulator, tmp_path: Path) -> None:
    async with sectigo_emulator.client(timeout=0.2, sleep=anyio.sleep) as client:
        batch = await client.batches.create(1, common_name="slow.example.com", pkcs12_password=P12)
        sectigo_emulator.inject("GET", "/api/v1/batches/{id}", "delay", seconds=1.0)
        with anyio.fail_after(5):
            assert (await client.batches.get(batch.batch_id)).batch_id == batch.batch_id  # retried


def test_matrix_counts() -> None:
    """The README's reliability table quotes these numbers."""
    assert len(CALLS) == 7 and len(FAULTS) == 19 and len(MATRIX) == 133


@pytest.mark.parametrize("fault", ["drop_before", "drop_after"])
async def test_an_older_batch_of_the_same_name_is_not_taken_for_the_new_one(
    sectigo_emulator: Emulator, fault: str
) -> None:
    async with sectigo_emulator.client(sleep=no_sleep) as client:
        old = await client.batches.create(
            1, common_name="dup.example.com", pkcs12_password=P12, name="dup"
        )
        sectigo_emulator.clock.advance(3600)
        sectigo_emulator.inject("PUT", "/api/v1/batches/createSingleCertBatch", fault)
        if fault == "drop_before":
            with pytest.raises(AmbiguousRequestError):
                await client.batches.create(
                    1, common_name="dup.example.com", pkcs12_password=P12, name="dup"
                )
        else:
            new = await client.batches.create(
                1, common_name="dup.example.com", pkcs12_password=P12, name="dup"
            )
            assert new.batch_id != old.batch_id
