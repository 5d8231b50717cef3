"""The emulator's CRL: every certificate names it, it lists every revocation with its
reason and date, it is signed by the issuing CA; OpenSSL is the independent judge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sectigo_iot.emulator import Emulator
from tests.emulator.helpers import authed, create_id, openssl, raw_client
from tests.support import needs_openssl


def distribution_point(certificate: x509.Certificate) -> str:
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    [point] = points
    [name] = point.full_name or []
    assert isinstance(name, x509.UniformResourceIdentifier)
    return name.value


def key_id(emulator: Emulator) -> str:
    ski = emulator.ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return ski.value.digest.hex()


async def issue(http: httpx.AsyncClient, emulator: Emulator, name: str) -> x509.Certificate:
    await create_id(http, name)
    return next(c.certificate for c in emulator.certificates() if c.common_name == name)


async def revoke(http: httpx.AsyncClient, certificate: x509.Certificate, code: int) -> None:
    body = {"reasonCode": code, "serialNumber": format(certificate.serial_number, "X")}
    response = await http.post("/api/v1/certificates/42/revoke", json=body)
    assert response.status_code == 200, response.text


def pem(certificate: x509.Certificate, path: Path) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


async def test_every_certificate_names_the_crl_of_its_issuer() -> None:
    with Emulator(key_type="ec-p256") as emulator:
        async with authed(emulator) as http:
            leaf = await issue(http, emulator, "crl.example.com")
        expected = f"http://emulator.local/emulator/crl/{key_id(emulator)}.crl"
        assert distribution_point(leaf) == expected
        assert key_id(emulator) == key_id(emulator).lower()


async def test_the_crl_lists_revocations_with_reason_and_date(tmp_path: Path) -> None:
    with Emulator(key_type="ec-p256", crl_interval=3600) as emulator:
        emulator.clock.advance(86400)
        async with authed(emulator) as http:
            revoked = await issue(http, emulator, "revoked.example.com")
            kept = await issue(http, emulator, "kept.example.com")
            unspecified = await issue(http, emulator, "unspecified.example.com")
            await revoke(http, revoked, 1)
            await revoke(http, unspecified, 0)
        emulator.clock.advance(60)
        before = emulator.clock.datetime().replace(microsecond=0)
        async with raw_client(emulator) as anonymous:  # a CRL needs no credential
            response = await anonymous.get(distribution_point(kept))
        after = emulator.clock.datetime()  # the clock goes on with the wall clock
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pkix-crl"
        crl = x509.load_der_x509_crl(response.content)

        assert crl.is_signature_valid(emulator.ca_certificate.public_key())
        assert crl.issuer == emulator.ca_certificate.subject
        assert before <= crl.last_update_utc <= after
        assert crl.next_update_utc == crl.last_update_utc + timedelta(hours=1)
        assert len(crl) == 2
        entry = crl.get_revoked_certificate_by_serial_number(revoked.serial_number)
        assert entry is not None
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert reason == x509.ReasonFlags.key_compromise
        [record] = [r for r in emulator.revocations() if r.common_name == "revoked.example.com"]
        assert entry.revocation_date_utc == record.revoked_at.replace(microsecond=0)
        bare = crl.get_revoked_certificate_by_serial_number(unspecified.serial_number)
        assert bare is not None and len(bare.extensions) == 0  # RFC 5280: no "unspecified"
        assert crl.get_revoked_certificate_by_serial_number(kept.serial_number) is None


async def test_certificates_follow_the_emulator_clock() -> None:
    with Emulator(key_type="ec-p256", validity_days=90) as emulator:
        emulator.clock.advance(200 * 86400)
        async with authed(emulator) as http:
            leaf = await issue(http, emulator, "aged.example.com")
        issued = emulator.clock.datetime()
        assert abs(leaf.not_valid_before_utc - (issued - timedelta(minutes=5))).total_seconds() < 2
        assert abs(leaf.not_valid_after_utc - (issued + timedelta(days=90))).total_seconds() < 2


async def test_another_issuer_has_no_crl_here() -> None:
    with Emulator() as emulator:
        async with raw_client(emulator) as http:
            response = await http.get(f"/emulator/crl/{'ab' * 20}.crl")
        assert response.status_code == 404


def test_served_emulator_names_its_served_address() -> None:
    emulator = Emulator(key_type="ec-p256")
    with emulator, emulator.run_in_thread() as url, httpx.Client(base_url=url) as http:
        token = http.post(
            "/auth/pwd", json={"username": "tester", "password": "supersecretsquirrel"}
        ).json()["accessToken"]
        body = {
            "authorityId": 1,
            "batchName": "served",
            "profileParams": {
                "commonName": "served.example.com",
                "dNSName": "served.example.com",
                "pkcs12Password": "p12-Secret-42",
            },
        }
        headers = {"Authorization": f"Bearer {token}"}
        created = http.put("/api/v1/batches/createSingleCertBatch", json=body, headers=headers)
        assert created.status_code == 200, created.text
        [record] = emulator.certificates()
        point = distribution_point(record.certificate)
        assert point == f"{url}/emulator/crl/{key_id(emulator)}.crl"
        crl = x509.load_der_x509_crl(http.get(point).content)
        assert crl.is_signature_valid(emulator.ca_certificate.public_key())


@needs_openssl
async def test_openssl_reads_the_crl_and_rejects_the_revoked_certificate(
    tmp_path: Path,
) -> None:
    with Emulator(key_type="ec-p256") as emulator:
        emulator.clock.advance(7 * 86400)
        async with authed(emulator) as http:
            revoked = await issue(http, emulator, "bad.example.com")
            kept = await issue(http, emulator, "good.example.com")
            await revoke(http, revoked, 1)
            der = (await http.get(distribution_point(kept))).content
        crl = tmp_path / "ca.crl"
        crl.write_bytes(der)
        text = openssl("crl", "-inform", "DER", "-in", crl, "-noout", "-text")
        assert text.returncode == 0, text.stderr
        # openssl prints each serial in whole bytes: a leading 0 when the hex is odd
        listed = {
            int(line.split(":", 1)[1], 16)
            for line in text.stdout.splitlines()
            if line.strip().startswith("Serial Number:")
        }
        assert listed == {revoked.serial_number}
        assert "Key Compromise" in text.stdout
        assert "Next Update" in text.stdout and "Last Update" in text.stdout

        ca = tmp_path / "ca.pem"
        ca.write_bytes(emulator.ca_pem)
        crl_pem = tmp_path / "ca-crl.pem"
        converted = openssl("crl", "-inform", "DER", "-in", crl, "-out", crl_pem)
        assert converted.returncode == 0, converted.stderr
        at = ("-attime", str(int(emulator.clock())))
        check = ("-crl_check", "-CRLfile", crl_pem, "-CAfile", ca)
        bad = openssl("verify", *at, *check, pem(revoked, tmp_path / "bad.pem"))
        assert bad.returncode != 0 and "certificate revoked" in bad.stderr
        good = openssl("verify", *at, *check, pem(kept, tmp_path / "good.pem"))
        assert good.returncode == 0, good.stderr
