"""The emulator's CA, finding certificates by CN or serial, and revoking them."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from sectigo_iot.emulator import CertificateAuthority, Emulator
from sectigo_iot.emulator._ca import new_private_key
from sectigo_iot.models import ErrorBody, FindCertificateResponse
from tests.emulator.helpers import create_id, strict

FIND = "/api/v1/certificates/find"


def path_length(certificate: x509.Certificate) -> int | None:
    return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length


def issue_leaf(ca: CertificateAuthority, name: str = "leaf.example.com") -> x509.Certificate:
    subject = x509.Name.from_rfc4514_string(f"CN={name}")
    key = new_private_key("ec-p256")
    now = datetime.now(timezone.utc)
    return ca.issue(key.public_key(), subject, [name], now=now, validity=timedelta(days=30))


def test_generate_makes_a_root_or_a_root_and_an_intermediate() -> None:
    alone = CertificateAuthority.generate()
    assert alone.chain == () and alone.root == alone.certificate
    assert alone.certificates == (alone.certificate,)
    alone.root.verify_directly_issued_by(alone.root)
    assert path_length(alone.root) == 0

    ca = CertificateAuthority.generate(intermediate=True)
    intermediate, root = ca.certificates
    assert ca.chain == (root,) and ca.root == root and ca.certificate == intermediate
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert (path_length(intermediate), path_length(root)) == (0, 1)
    assert "Issuing CA" in intermediate.subject.rfc4514_string()
    issue_leaf(ca).verify_directly_issued_by(intermediate)


def test_pem_round_trip_keeps_the_chain() -> None:
    ca = CertificateAuthority.generate(intermediate=True)
    assert x509.load_pem_x509_certificates(ca.certificate_pem) == list(ca.certificates)
    loaded = CertificateAuthority.from_pem(ca.certificate_pem, ca.private_key_pem())
    assert loaded.certificates == ca.certificates
    issue_leaf(loaded).verify_directly_issued_by(ca.certificate)


def test_leaf_verifies_from_the_root_with_the_intermediate_supplied() -> None:
    """cryptography's path builder, trusting only the root, as a TLS client would."""
    ca = CertificateAuthority.generate(intermediate=True)
    leaf = issue_leaf(ca, "tls.example.com")
    verifier = (
        PolicyBuilder()
        .store(Store([ca.root]))
        .build_server_verifier(x509.DNSName("tls.example.com"))
    )
    chain = verifier.verify(leaf, [ca.certificate])
    assert chain == [leaf, ca.certificate, ca.root]
    with pytest.raises(VerificationError):
        verifier.verify(leaf, [])


def test_emulator_ca_is_an_intermediate_under_a_root(tmp_path: Path) -> None:
    with Emulator() as emulator, Emulator() as other:
        assert emulator.ca_certificate.issuer == emulator.root_certificate.subject
        assert emulator.ca_certificate != emulator.root_certificate
        assert x509.load_pem_x509_certificates(emulator.ca_pem) == [
            emulator.ca_certificate,
            emulator.root_certificate,
        ]
        assert other.ca is emulator.ca  # made once per process and key type
    db = tmp_path / "emulator.sqlite"
    with Emulator(db_path=db) as first:
        certificates = first.ca.certificates
        assert len(certificates) == 2 and first.ca is not emulator.ca
    with Emulator(db_path=db) as second:
        assert second.ca.certificates == certificates


async def find(http: httpx.AsyncClient, **body: str) -> FindCertificateResponse:
    response = await http.post(FIND, json=body)
    assert response.status_code == 200, response.text
    return strict(response, FindCertificateResponse)


def serial_of(emu: Emulator, batch_id: int) -> str:
    return next(b for b in emu.batches() if b.batch_id == batch_id).serial_numbers[0]


async def test_find_by_common_name(emu: Emulator, http: httpx.AsyncClient) -> None:
    first = await create_id(http, "dup.example.com")
    second = await create_id(http, "dup.example.com")
    await create_id(http, "other.example.com")
    result = await find(http, commonName="dup.example.com")
    assert result.total_count == 2 and result.items is not None
    assert [i.serial_number for i in result.items] == [
        serial_of(emu, first),
        serial_of(emu, second),
    ]
    item = result.items[0]
    assert item.common_name == "dup.example.com"
    assert item.status == "READY_FOR_DOWNLOAD"
    assert uuid.UUID(item.device_id)
    assert item.creation_date is not None
    raw = (await http.post(FIND, json={"commonName": "dup.example.com"})).json()["items"][0]
    assert isinstance(raw["deviceId"], str)
    assert re.fullmatch(r"[0-9A-F]+", raw["serialNumber"]) and raw["serialNumber"][0] != "0"
    assert (await find(http, commonName="DUP.example.com")).total_count == 0


async def test_find_by_serial_ignores_case(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http, "serial.example.com")
    serial = serial_of(emu, batch_id)
    for query in (serial, serial.lower(), "00" + serial):
        result = await find(http, serialNumber=query)
        assert result.items is not None and [i.serial_number for i in result.items] == [serial]


async def test_find_is_a_union(emu: Emulator, http: httpx.AsyncClient) -> None:
    by_name = await create_id(http, "a.example.com")
    by_serial = await create_id(http, "b.example.com")
    result = await find(http, commonName="a.example.com", serialNumber=serial_of(emu, by_serial))
    assert result.items is not None
    assert {i.common_name for i in result.items} == {"a.example.com", "b.example.com"}
    same = await find(http, commonName="a.example.com", serialNumber=serial_of(emu, by_name))
    assert same.total_count == 1


async def test_find_nothing(http: httpx.AsyncClient) -> None:
    assert (await http.post(FIND, json={"commonName": "none.example.com"})).json() == {
        "totalCount": 0,
        "items": [],
    }


@pytest.mark.parametrize("body", [{}, {"commonName": ""}, {"serialNumber": ""}])
async def test_find_needs_a_field(http: httpx.AsyncClient, body: dict[str, str]) -> None:
    response = await http.post(FIND, json=body)
    assert response.status_code == 400
    strict(response, ErrorBody)


async def test_revoke_marks_the_certificate(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http, "revoke.example.com")
    serial = serial_of(emu, batch_id)
    emu.clock.advance(100)
    response = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 4, "serialNumber": serial.lower()}
    )
    assert response.status_code == 200
    result = await find(http, commonName="revoke.example.com")
    assert result.items is not None and result.items[0].status == "REVOKED"
    [revocation] = emu.revocations()
    assert (revocation.serial_number, revocation.reason_code, revocation.profile_id) == (
        serial,
        4,
        42,
    )
    assert abs(revocation.revoked_at.timestamp() - emu.clock()) < 5
    assert revocation.username == "tester" and revocation.common_name == "revoke.example.com"
    assert emu.certificates()[0].status == "REVOKED"
    again = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 4, "serialNumber": serial}
    )
    assert again.status_code == 400
    # the batch itself stays downloadable
    assert (await http.get(f"/api/v1/batches/{batch_id}/download")).status_code == 200


async def test_revoke_accepts_the_authority_id_too(emu: Emulator, http: httpx.AsyncClient) -> None:
    serial = serial_of(emu, await create_id(http))
    response = await http.post(
        "/api/v1/certificates/1/revoke", json={"reasonCode": 0, "serialNumber": serial}
    )
    assert response.status_code == 200


@pytest.mark.parametrize("reason", [7, 11, -1, 100])
async def test_revoke_rejects_bad_reason_codes(
    emu: Emulator, http: httpx.AsyncClient, reason: int
) -> None:
    serial = serial_of(emu, await create_id(http))
    response = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": reason, "serialNumber": serial}
    )
    assert response.status_code == 400
    strict(response, ErrorBody)
    assert emu.revocations() == []


async def test_revoke_errors(emu: Emulator, http: httpx.AsyncClient) -> None:
    serial = serial_of(emu, await create_id(http))
    unknown = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 1, "serialNumber": "ABCDEF0123"}
    )
    assert unknown.status_code == 404
    strict(unknown, ErrorBody)
    wrong_profile = await http.post(
        "/api/v1/certificates/17/revoke", json={"reasonCode": 1, "serialNumber": serial}
    )
    assert wrong_profile.status_code == 400
    empty = await http.post(
        "/api/v1/certificates/42/revoke", json={"reasonCode": 1, "serialNumber": ""}
    )
    assert empty.status_code == 400
    malformed = await http.post("/api/v1/certificates/42/revoke", json={"serialNumber": serial})
    assert malformed.status_code == 400
    assert emu.revocations() == []
