"""The SDK end to end through the emulator: every endpoint, in process and over HTTP."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sectigo_iot import (
    AuthenticationError,
    BatchRejectedError,
    BatchStatus,
    NotFoundError,
    SectigoClient,
)
from sectigo_iot.certs import generate_csr, open_batch_zip, write_pem
from sectigo_iot.emulator import Emulator
from tests.certs.helpers import make_csr

PASSWORD = "p12-e2e-Secret-42"


async def issue(client: SectigoClient, tmp_path: Path, name: str = "node.example.com") -> Path:
    """Create, wait and download one batch; return the archive."""
    authority = (await client.authorities.list())[0]
    batch = await client.batches.create(
        authority.id, common_name=name, dns_names=[f"www.{name}"], pkcs12_password=PASSWORD
    )
    ready = await client.batches.wait(batch.batch_id, timeout=10)
    return await client.batches.download(ready.batch_id, tmp_path)


async def test_every_endpoint_in_process(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path, csr_pem: bytes
) -> None:
    client = sectigo_client
    authorities = await client.authorities.list()
    assert [a.id for a in authorities] == [1] and authorities[0].profile_id == 42
    assert await client.authorities.balance(1) == 10
    assert (await client.licenses.used()).issued == 0
    assert (await client.organizations.current()).organization_name
    assert [p.profile_id for p in await client.profiles.list()] == [42]
    assert (await client.profiles.get(42)).profile_id == 42
    names = {p.name: p.required for p in await client.profiles.parameters(42)}
    assert names["commonName"] and names["dNSName"] and names["pkcs12Password"]

    archive = await issue(client, tmp_path)
    assert archive == tmp_path / f"{archive.stem}.zip"
    batch_id = int(archive.stem)
    detail = await client.batches.get(batch_id)
    assert detail.status == BatchStatus.COLLECTED
    assert await client.batches.status(batch_id) == BatchStatus.READY_FOR_DOWNLOAD
    info = await client.batches.processing_info(batch_id)
    assert (info.active, info.success, info.failed) == (0, 1, 0)
    assert await client.authorities.balance(1) == 9
    assert (await client.licenses.used()).issued == 1

    [bundle] = open_batch_zip(archive, PASSWORD)
    assert bundle.common_name == "node.example.com"
    assert set(bundle.sans) == {"node.example.com", "www.node.example.com"}
    assert bundle.private_key is not None
    written = write_pem(bundle, tmp_path / "pem")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(sectigo_emulator.ca_pem)
    check = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca), str(written["cert"])],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr

    [found] = await client.certificates.find(common_name="node.example.com")
    assert found.serial_number == bundle.serial_number
    await client.certificates.revoke(42, bundle.serial_number, "key compromise")
    [revoked] = await client.certificates.find(serial_number=bundle.serial_number)
    assert revoked.status == "REVOKED"
    assert sectigo_emulator.revocations()[0].reason_code == 1

    upload = await client.batches.upload_csrs(42, csr_pem)
    await client.batches.wait(upload.batch_id, timeout=10)
    csr_archive = await client.batches.download(
        upload.batch_id, tmp_path / f"{upload.batch_id}.zip"
    )
    [csr_bundle] = open_batch_zip(csr_archive)
    assert csr_bundle.private_key is None and csr_bundle.common_name == "api.example.com"
    listed = await client.batches.list()
    assert [b.batch_id for b in listed] == [upload.batch_id, batch_id]
    assert (await client.batches.find_by_name(detail.batch_name)) == await client.batches.get(
        batch_id
    )


async def test_same_flow_over_http_with_uvicorn(tmp_path: Path) -> None:
    emulator = Emulator()
    with emulator.run_in_thread() as url:
        async with SectigoClient(
            "tester", "supersecretsquirrel", base_url=url, token_store="memory"
        ) as client:
            archive = await issue(client, tmp_path, "served.example.com")
            [bundle] = open_batch_zip(archive, PASSWORD)
            assert bundle.common_name == "served.example.com"
    emulator.close()


@pytest.mark.sectigo_emulator(users={"alice": "pw-alice-1", "bob": "pw-bob-2"})
async def test_users_see_only_their_own_batches(sectigo_emulator: Emulator, tmp_path: Path) -> None:
    async with sectigo_emulator.client("alice") as alice, sectigo_emulator.client("bob") as bob:
        batch = await alice.batches.create(
            1, common_name="alice.example.com", pkcs12_password=PASSWORD
        )
        with pytest.raises(NotFoundError):
            await bob.batches.get(batch.batch_id)
        assert await bob.certificates.find(common_name="alice.example.com") == []


@pytest.mark.sectigo_emulator(access_ttl=600, refresh_ttl=7200)
async def test_tokens_expire_with_the_moved_clock(sectigo_emulator: Emulator) -> None:
    async with sectigo_emulator.client() as client:
        await client.licenses.used()
        sectigo_emulator.clock.advance(601)
        await client.licenses.used()
        assert sectigo_emulator.stats.refreshes == 1
        sectigo_emulator.clock.advance(7201)
        await client.licenses.used()
        assert sectigo_emulator.stats.logins == 2


async def test_wrong_password_is_401(sectigo_emulator: Emulator) -> None:
    async with sectigo_emulator.client(password="wrong-password") as client:
        with pytest.raises(AuthenticationError):
            await client.licenses.used()


async def test_rejected_csr_batch(
    sectigo_client: SectigoClient, sectigo_emulator: Emulator
) -> None:
    # bypass our own validation: send a CSR without SAN straight to the emulator
    csr = make_csr("nosan.example.com", ())
    import httpx

    async with httpx.AsyncClient(transport=sectigo_emulator.transport()) as raw:
        token = await sectigo_client._session.tokens.access_token()
        reply = await raw.post(
            f"{sectigo_emulator.base_url}/api/v1/batches/upload",
            headers={"Authorization": f"Bearer {token}"},
            data={"profileId": "42"},
            files=[
                (
                    "csrBatchRequest",
                    ("blob", b'{"profileId":42,"batchType":"BATCH"}', "application/json"),
                ),
                ("files", ("x.csr", csr, "application/octet-stream")),
            ],
        )
    batch_id = reply.json()["batchId"]
    with pytest.raises(BatchRejectedError, match="dNSName"):
        await sectigo_client.batches.wait(batch_id, timeout=5)
    assert sectigo_emulator.licenses_used == 0


async def test_generated_csr_round_trip(sectigo_client: SectigoClient, tmp_path: Path) -> None:
    result = generate_csr("edge.example.com", ["api.edge.example.com"], key_type="ec-p256")
    batch = await sectigo_client.batches.upload_csrs(42, result.csr_pem)
    await sectigo_client.batches.wait(batch.batch_id, timeout=5)
    [bundle] = open_batch_zip(await sectigo_client.batches.download(batch.batch_id, tmp_path))
    assert set(bundle.sans) == {"edge.example.com", "api.edge.example.com"}
