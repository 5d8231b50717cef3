"""Secret canaries: every flow at DEBUG, then no secret in logs, reprs or errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from sectigo_iot import SectigoClient, SectigoError
from sectigo_iot.certs import open_batch_zip, write_pem
from sectigo_iot.emulator import Emulator
from tests.sdk.helpers import no_sleep

PASSWORD = "canary-API-pw-7d1c9e"
P12 = "canary-P12-pw-4b8a2f"


async def every_flow(
    client: SectigoClient, emulator: Emulator, tmp_path: Path, csr_pem: bytes
) -> list[Any]:
    """Run each SDK flow, including failing ones; return every object and error seen."""
    seen: list[Any] = [client, client.batches, client._session, client._session.tokens]
    seen += await client.authorities.list()
    seen += [await client.licenses.used(), await client.organizations.current()]
    seen += await client.profiles.list()
    seen += await client.profiles.parameters(42)
    batch = await client.batches.create(1, common_name="canary.example.com", pkcs12_password=P12)
    seen += [batch, await client.batches.wait(batch.batch_id, timeout=5)]
    archive = await client.batches.download(batch.batch_id, tmp_path)
    [bundle] = open_batch_zip(archive, P12)
    seen += [bundle, write_pem(bundle, tmp_path / "pem")]
    seen += await client.certificates.find(common_name="canary.example.com")
    await client.certificates.revoke(42, bundle.serial_number, "superseded")
    upload = await client.batches.upload_csrs(42, csr_pem)
    seen.append(upload)
    emulator.clock.advance(601)  # force a refresh
    seen.append(await client.licenses.used())
    seen.append(client.tokens)
    failures = [
        lambda: open_batch_zip(archive, P12 + "-wrong"),
    ]
    for failure in failures:
        try:
            failure()
        except SectigoError as exc:
            seen.append(exc)
    emulator.inject("PUT", "/api/v1/batches/createSingleCertBatch", "error", status=400)
    try:
        await client.batches.create(1, common_name="canary2.example.com", pkcs12_password=P12)
    except SectigoError as exc:
        seen.append(exc)
    emulator.inject("PUT", "/api/v1/batches/createSingleCertBatch", "drop_before")
    try:
        await client.batches.create(1, common_name="canary3.example.com", pkcs12_password=P12)
    except SectigoError as exc:
        seen.append(exc)
    return seen


@pytest.mark.sectigo_emulator(users={"canary-user": PASSWORD})
async def test_no_secret_anywhere(
    sectigo_emulator: Emulator, tmp_path: Path, csr_pem: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with sectigo_emulator.client(sleep=no_sleep) as client:
        seen = await every_flow(client, sectigo_emulator, tmp_path, csr_pem)
        tokens = client.tokens
        assert tokens is not None
        secrets = [PASSWORD, P12, tokens.access_token, tokens.refresh_token]
    async with sectigo_emulator.client(password="wrong-" + PASSWORD) as bad:
        try:
            await bad.licenses.used()
        except SectigoError as exc:
            seen.append(exc)
            secrets.append("wrong-" + PASSWORD)
    texts = [r.getMessage() for r in caplog.records if r.name.startswith("sectigo_iot")]
    texts += [repr(obj) for obj in seen] + [str(obj) for obj in seen]
    assert len(seen) > 20 and any("->" in t for t in texts)  # flows ran and were logged
    for secret in secrets:
        leaks = [t for t in texts if secret in t]
        assert leaks == [], f"secret leaked: {leaks[:2]}"
