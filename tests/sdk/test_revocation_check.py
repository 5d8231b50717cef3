"""``client.certificates.check_revocation`` end to end through the emulator: revoked
certificates are listed in the emulator's CRL with their reason and date, the CRL is
fetched over the client's transport without its token and cached in the client."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from cryptography import x509

from sectigo_iot import SectigoClient, SyncSectigoClient
from sectigo_iot.certs import RevocationReason, RevocationStatus
from sectigo_iot.emulator import Emulator

P12 = "p12-Secret-42"
CRL_ROUTE = "GET /emulator/crl/{}.crl"


class Recording(httpx.AsyncBaseTransport):
    """The emulator's in-process transport, keeping every request it carries."""

    def __init__(self, emulator: Emulator) -> None:
        self.inner = emulator.transport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


def recording_client(emulator: Emulator, transport: Recording) -> SectigoClient:
    return SectigoClient(
        username="tester",
        password="supersecretsquirrel",
        base_url=emulator.base_url,
        transport=transport,
        clock=emulator.clock,
        token_store="memory",
        allow_insecure_http=True,
    )


async def issue(client: SectigoClient, emulator: Emulator, name: str) -> x509.Certificate:
    batch = await client.batches.create(1, common_name=name, pkcs12_password=P12)
    await client.batches.wait(batch.batch_id)
    [record] = [c for c in emulator.certificates() if c.batch_id == batch.batch_id]
    return record.certificate


def crl_fetches(emulator: Emulator) -> int:
    key_id = emulator.ca_certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value.digest.hex()
    return emulator.stats.requests[CRL_ROUTE.format(key_id)]


@pytest.mark.sectigo_emulator(balance=10)
async def test_revoked_certificates_are_revoked_with_their_reason_and_date(
    sectigo_emulator: Emulator,
) -> None:
    emulator = sectigo_emulator
    issuer = emulator.ca_certificate
    transport = Recording(emulator)
    async with recording_client(emulator, transport) as client:
        revoked = [await issue(client, emulator, "node.example.com") for _ in range(3)]
        kept = await issue(client, emulator, "other.example.com")
        done = await client.certificates.revoke_all("node.example.com", "keyCompromise")
        assert [outcome for _, outcome in done] == ["revoked"] * 3
        emulator.clock.advance(60)

        statuses = [await client.certificates.check_revocation(c, issuer) for c in revoked]
        good = await client.certificates.check_revocation(kept, issuer)

    dates = {r.serial_number: r.revoked_at for r in emulator.revocations()}
    for certificate, status in zip(revoked, statuses, strict=True):
        assert status == RevocationStatus(
            status="revoked",
            reason=RevocationReason.KEY_COMPROMISE,
            revoked_at=dates[format(certificate.serial_number, "X")].replace(microsecond=0),
        )
    assert good == RevocationStatus(status="good")
    # one fetch for four checks: the client keeps the CRL until its nextUpdate
    assert crl_fetches(emulator) == 1
    [crl_request] = [r for r in transport.requests if r.url.path.startswith("/emulator/crl/")]
    assert "authorization" not in crl_request.headers
    assert "cookie" not in crl_request.headers
    assert any("authorization" in r.headers for r in transport.requests)  # the API's had it


async def test_the_cache_lasts_until_next_update_and_a_new_client_starts_empty() -> None:
    with Emulator(crl_interval=3600) as emulator:
        issuer = emulator.ca_certificate
        async with emulator.client() as client:
            certificate = await issue(client, emulator, "cached.example.com")
            assert (await client.certificates.check_revocation(certificate, issuer)).status == (
                "good"
            )
            await client.certificates.revoke(42, format(certificate.serial_number, "X"), 1)
            # the cached CRL, still current, does not know yet: one fetch so far
            cached = await client.certificates.check_revocation(certificate, issuer)
            assert cached.status == "good" and crl_fetches(emulator) == 1
            emulator.clock.advance(3601)  # past nextUpdate on the client's clock
            fresh = await client.certificates.check_revocation(certificate, issuer)
            assert fresh.status == "revoked" and crl_fetches(emulator) == 2
        async with emulator.client() as another:
            status = await another.certificates.check_revocation(certificate, issuer)
            assert status.status == "revoked" and crl_fetches(emulator) == 3


async def test_a_certificate_from_another_emulator_is_not_believed_good() -> None:
    """The emulator in process answers every host: a CRL of another CA is never good."""
    with Emulator() as emulator, Emulator(ca_key_type="rsa2048") as other:
        async with other.client() as client:
            foreign = await issue(client, other, "foreign.example.com")
        async with emulator.client() as client:
            status = await client.certificates.check_revocation(foreign, other.ca_certificate)
        assert status.status == "unknown" and "404" in status.detail


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_on_either_backend(backend: str) -> None:
    import anyio

    async def scenario(emulator: Emulator) -> RevocationStatus:
        async with emulator.client() as client:
            certificate = await issue(client, emulator, "trio.example.com")
            await client.certificates.revoke(42, format(certificate.serial_number, "X"), 9)
            return await client.certificates.check_revocation(certificate, emulator.ca_certificate)

    with Emulator() as emulator:
        status = anyio.run(scenario, emulator, backend=backend)
    assert status.reason is RevocationReason.PRIVILEGE_WITHDRAWN


def test_the_blocking_client_and_function_agree_with_a_served_emulator() -> None:
    from sectigo_iot.certs import check_revocation

    with Emulator(crl_interval=600) as emulator, emulator.run_in_thread() as url:
        issuer = emulator.ca_certificate
        with SyncSectigoClient(
            username="tester",
            password="supersecretsquirrel",
            base_url=url,
            clock=emulator.clock,
            token_store="memory",
        ) as client:
            batch = client.batches.create(1, common_name="served.example.com", pkcs12_password=P12)
            client.batches.wait(batch.batch_id)
            [record] = emulator.certificates()
            client.certificates.revoke(42, record.serial_number, "superseded")
            status = client.certificates.check_revocation(record.certificate, issuer)
        assert status.status == "revoked" and status.reason is RevocationReason.SUPERSEDED
        now = emulator.clock.datetime()
        direct = check_revocation(record.certificate, issuer, now=now)
        assert direct == status
        later = check_revocation(record.certificate, issuer, now=now + timedelta(seconds=601))
        assert later.status == "unknown" and "stale" in later.detail
