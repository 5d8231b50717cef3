"""Batches: single-certificate creation (validation, balance, lifecycle, rejection,
listing) and CSR uploads (the multipart upload, PEM and ZIP inputs, checks, PEM delivery)."""

from __future__ import annotations

import json

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import Batch, BatchStatus, ErrorBody, ProcessingInfo
from tests.certs.helpers import make_csr
from tests.emulator.helpers import (
    CREATE,
    P12_PASSWORD,
    UPLOAD,
    authed,
    create,
    create_id,
    params,
    strict,
    unzip,
    upload,
    zip_of,
)


async def detail(http: httpx.AsyncClient, batch_id: int) -> Batch:
    return strict(await http.get(f"/api/v1/batches/{batch_id}"), Batch)


@pytest.mark.parametrize(
    ("profile_params", "message"),
    [
        ({"dNSName": "a.example.com", "pkcs12Password": "pw"}, "commonName"),
        ({"commonName": "", "pkcs12Password": "pw"}, "commonName"),
        ({"commonName": "a.example.com", "dNSName": "a.example.com"}, "pkcs12Password"),
        (
            {"commonName": "a.example.com", "dNSName": "a.example.com", "pkcs12Password": ""},
            "pkcs12Password",
        ),
        ({**params("a.example.com"), "favouriteColour": "blue"}, "favouriteColour"),
        ({}, "commonName"),
    ],
)
async def test_create_validates_params(
    emu: Emulator, http: httpx.AsyncClient, profile_params: dict[str, str], message: str
) -> None:
    response = await create(http, profile_params=profile_params)
    assert response.status_code == 400
    assert message in strict(response, ErrorBody).message
    assert emu.batches() == [] and emu.balance == 10


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"batchName": "x", "profileParams": {}}',
        b'{"authorityId": "one", "batchName": "x", "profileParams": {}}',
    ],
)
async def test_create_rejects_malformed_bodies(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.put(CREATE, content=body)
    assert response.status_code == 400
    strict(response, ErrorBody)


async def test_create_rejects_unknown_authority(emu: Emulator, http: httpx.AsyncClient) -> None:
    response = await create(http, authority_id=999)
    assert response.status_code == 400
    assert emu.batches() == []


@pytest.mark.parametrize("authority_id", [1, 42])
async def test_create_accepts_authority_id_or_profile_id(
    emu: Emulator, http: httpx.AsyncClient, authority_id: int
) -> None:
    assert (await create(http, authority_id=authority_id)).status_code == 200
    [batch] = emu.batches()
    assert (batch.authority_id, batch.profile_id) == (1, 42)


async def test_balance_decrements_per_certificate(emu: Emulator, http: httpx.AsyncClient) -> None:
    await create_id(http)
    await create_id(http)
    assert (await http.get("/api/v1/authorities/1/balanceavailable")).json() == 8
    assert (await http.get("/api/v1/authorities/allowed")).json()[0]["balance"] == 8
    assert emu.balance == 8 and emu.licenses_used == 2 and emu.issued_count == 2


async def test_zero_balance_refuses_create_and_upload() -> None:
    with Emulator(balance=1, key_type="ec-p256") as emulator:
        async with authed(emulator) as http:
            await create_id(http)
            response = await create(http)
            assert response.status_code == 400
            error = strict(response, ErrorBody)
            assert "balance" in error.message.lower()
            upload_response = await upload(http, ("a.csr", make_csr("a.example.com"), "text/plain"))
            assert upload_response.status_code == 400
            assert (await http.get("/api/v1/authorities/1/balanceavailable")).json() == 0
        assert len(emulator.batches()) == 1 and emulator.balance == 0


async def test_set_balance(emu: Emulator, http: httpx.AsyncClient) -> None:
    emu.set_balance(0)
    assert (await create(http)).status_code == 400
    emu.set_balance(3)
    assert (await create(http)).status_code == 200
    assert emu.balance == 2


async def test_configured_authorities() -> None:
    authorities = [
        {"id": 489, "ecosystemId": 21, "ecosystemName": "Staging", "balance": 0, "enabled": True,
         "profileId": 85, "profileName": "End Entity"},
        {"id": 423, "ecosystemId": 21, "ecosystemName": "Staging", "balance": 5, "enabled": True,
         "profileId": 17, "profileName": "EE"},
    ]  # fmt: skip
    with Emulator(authorities=authorities, key_type="ec-p256") as emulator:
        async with authed(emulator) as http:
            listed = (await http.get("/api/v1/authorities/allowed")).json()
            assert [(a["id"], a["balance"]) for a in listed] == [(489, 0), (423, 5)]
            assert (await http.get("/api/v1/authorities/489/balanceavailable")).json() == 0
            assert (await create(http, authority_id=489)).status_code == 400
            assert (await create(http, authority_id=17)).status_code == 200
            assert (await http.get("/api/v1/authorities/423/balanceavailable")).json() == 4
            profiles = (await http.get("/api/v1/profiles")).json()
            assert [p["profileId"] for p in profiles] == [17, 85]
            assert (await http.get("/api/v1/devices")).json() == {"ordered": 5, "issued": 1}
            batch = strict(
                await http.get(f"/api/v1/batches/{emulator.batches()[0].batch_id}"), Batch
            )
            assert batch.profile == "EE"


async def test_batch_ids_count_up_from_10001(http: httpx.AsyncClient) -> None:
    assert [await create_id(http) for _ in range(3)] == [10001, 10002, 10003]


async def test_lifecycle_respects_processing_delay() -> None:
    with Emulator(processing_delay=30, key_type="ec-p256") as emulator:
        async with authed(emulator) as http:
            created = strict(await create(http, "slow.example.com"), Batch)
            assert created.status == BatchStatus.CREATED and created.active
            batch_id = created.batch_id
            batch = await detail(http, batch_id)
            assert batch.status == BatchStatus.PROCESSING
            assert batch.active and batch.rejectable and not batch.downloadable
            assert (await http.get(f"/api/v1/batches/{batch_id}/status")).text == "Processing"
            info = await http.get(f"/api/v1/batches/{batch_id}/processing_info")
            assert strict(info, ProcessingInfo) == ProcessingInfo(active=1)
            download = await http.get(f"/api/v1/batches/{batch_id}/download")
            assert download.status_code == 400
            strict(download, ErrorBody)
            found = await http.post(
                "/api/v1/certificates/find", json={"commonName": "slow.example.com"}
            )
            assert found.json()["totalCount"] == 0
            assert (await http.get("/api/v1/devices")).json()["issued"] == 0
            assert emulator.licenses_used == 1 and emulator.issued_count == 0

            emulator.clock.advance(29.9)
            assert (await detail(http, batch_id)).status == BatchStatus.PROCESSING
            emulator.clock.advance(0.1)
            batch = await detail(http, batch_id)
            assert batch.status == BatchStatus.READY_FOR_DOWNLOAD
            assert batch.downloadable and not batch.active and not batch.rejectable
            assert (await http.get("/api/v1/devices")).json()["issued"] == 1


async def test_download_makes_the_batch_collected(http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http, "collect.example.com")
    first = await http.get(f"/api/v1/batches/{batch_id}/download")
    assert first.status_code == 200
    batch = await detail(http, batch_id)
    assert batch.status == BatchStatus.COLLECTED and batch.downloadable
    assert (await http.get(f"/api/v1/batches/{batch_id}/status")).text == "Ready for download"
    info = await http.get(f"/api/v1/batches/{batch_id}/processing_info")
    assert strict(info, ProcessingInfo) == ProcessingInfo(success=1)
    second = await http.get(f"/api/v1/batches/{batch_id}/download")
    assert second.status_code == 200
    assert unzip(second.content).keys() == unzip(first.content).keys()


@pytest.mark.parametrize(
    ("profile_params", "reason"),
    [
        (params("not a domain!"), "commonName"),
        (params("bad_name.example.com"), "commonName"),
        (params("ok.example.com", "-bad-.example.com"), "dNSName"),
        (params("ok.example.com", countryName="USA"), "countryName"),
    ],
)
async def test_invalid_request_ends_rejected(
    emu: Emulator, http: httpx.AsyncClient, profile_params: dict[str, str], reason: str
) -> None:
    response = await create(http, profile_params=profile_params)
    assert response.status_code == 200
    created = strict(response, Batch)
    assert created.status == BatchStatus.CREATED
    batch = await detail(http, created.batch_id)
    assert batch.status == BatchStatus.REJECTED and not batch.downloadable
    assert reason in batch.reject_reason
    status = await http.get(f"/api/v1/batches/{created.batch_id}/status")
    assert status.text == "Rejected"
    info = await http.get(f"/api/v1/batches/{created.batch_id}/processing_info")
    assert strict(info, ProcessingInfo) == ProcessingInfo(failed=1)
    assert (await http.get(f"/api/v1/batches/{created.batch_id}/download")).status_code == 400
    assert emu.balance == 10 and emu.licenses_used == 0
    assert emu.batches()[0].status == BatchStatus.REJECTED


async def test_rejection_waits_for_the_processing_delay() -> None:
    with Emulator(processing_delay=10) as emulator:
        async with authed(emulator) as http:
            batch_id = strict(await create(http, "not valid"), Batch).batch_id
            batch = await detail(http, batch_id)
            assert batch.status == BatchStatus.PROCESSING and batch.reject_reason == ""
            emulator.clock.advance(10)
            assert (await detail(http, batch_id)).status == BatchStatus.REJECTED


async def assert_ended(
    http: httpx.AsyncClient, batch_id: int, status: str, text: str, reason: str = ""
) -> None:
    """A batch that ended without certificates: detail, text status, counts, download."""
    batch = await detail(http, batch_id)
    assert (batch.status, batch.reject_reason) == (status, reason)
    assert not (batch.active or batch.downloadable or batch.rejectable)
    response = await http.get(f"/api/v1/batches/{batch_id}/status")
    assert response.text == text and response.headers["content-type"].startswith("text/plain")
    info = await http.get(f"/api/v1/batches/{batch_id}/processing_info")
    assert strict(info, ProcessingInfo) == ProcessingInfo(active=0, success=0, failed=batch.size)
    assert (await http.get(f"/api/v1/batches/{batch_id}/download")).status_code == 400


@pytest.mark.parametrize(
    ("outcome", "status", "text", "reason"),
    [
        ("failed", BatchStatus.FAILED, "Failed", ""),
        ("not_acceptable", BatchStatus.NOT_ACCEPTABLE, "Not Acceptable. Status: Error", ""),
        ("rejected", BatchStatus.REJECTED, "Rejected", "Rejected by the emulator"),
    ],
)
async def test_configured_outcome_ends_every_batch(
    outcome: str, status: str, text: str, reason: str
) -> None:
    with Emulator(batch_outcome=outcome, processing_delay=5, key_type="ec-p256") as emulator:
        async with authed(emulator) as http:
            created = strict(await create(http, "end.example.com"), Batch)
            assert created.status == BatchStatus.CREATED
            assert (await detail(http, created.batch_id)).status == BatchStatus.PROCESSING
            emulator.clock.advance(5)
            await assert_ended(http, created.batch_id, status, text, reason)
            csrs = make_csr("a.example.com") + make_csr("b.example.com")
            uploaded = strict(await upload(http, ("two.csr", csrs, "text/plain")), Batch)
            emulator.clock.advance(5)
            await assert_ended(http, uploaded.batch_id, status, text, reason)
            assert [b.status for b in emulator.batches()] == [status, status]
            found = await http.post(
                "/api/v1/certificates/find", json={"commonName": "a.example.com"}
            )
            assert found.json()["totalCount"] == 0
            assert emulator.balance == 10 and emulator.licenses_used == 0


async def test_next_outcome_applies_to_the_next_valid_batches(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    emu.set_next_outcome("not_acceptable", reason="Pending Issue", times=2)
    emu.set_next_outcome("rejected", reason="Domain not validated")
    invalid = strict(await create(http, "not valid"), Batch).batch_id  # uses up nothing
    first, second, third, fourth = [await create_id(http, f"n{i}.example.com") for i in range(4)]
    text = "Not Acceptable. Status: Pending Issue"
    await assert_ended(http, first, BatchStatus.NOT_ACCEPTABLE, text)
    await assert_ended(http, second, BatchStatus.NOT_ACCEPTABLE, text)
    await assert_ended(http, third, BatchStatus.REJECTED, "Rejected", "Domain not validated")
    assert (await detail(http, fourth)).status == BatchStatus.READY_FOR_DOWNLOAD
    assert (await detail(http, invalid)).status == BatchStatus.REJECTED
    assert [b.reject_reason for b in emu.batches()][1:4] == [
        "Pending Issue",
        "Pending Issue",
        "Domain not validated",
    ]
    assert emu.licenses_used == 1 and emu.balance == 9


async def test_next_outcome_overrides_the_configured_one() -> None:
    with Emulator(batch_outcome="failed", key_type="ec-p256") as emulator:
        emulator.set_next_outcome("ready")
        async with authed(emulator) as http:
            ready, failed = await create_id(http), await create_id(http)
            assert (await detail(http, ready)).status == BatchStatus.READY_FOR_DOWNLOAD
            await assert_ended(http, failed, BatchStatus.FAILED, "Failed")


def test_outcomes_are_validated(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown batch outcome"):
        emu.set_next_outcome("exploded")
    with pytest.raises(ValueError, match="times"):
        emu.set_next_outcome("failed", times=0)
    with pytest.raises(ValueError, match="batch_outcome"):
        Emulator(batch_outcome="exploded")


async def test_certificate_contents_follow_the_params(http: httpx.AsyncClient) -> None:
    profile_params = params(
        "Api.Example.com",
        "www.example.com",
        "",
        "*.example.org",
        organizationName="Example Org",
        countryName="DE",
    )
    response = await create(http, profile_params=profile_params)
    batch_id = strict(response, Batch).batch_id
    archive = unzip((await http.get(f"/api/v1/batches/{batch_id}/download")).content)
    bundle = pkcs12.load_pkcs12(archive["api.example.com.p12"], P12_PASSWORD.encode())
    assert bundle.cert is not None and isinstance(bundle.key, ec.EllipticCurvePrivateKey)
    cert = bundle.cert.certificate
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "Api.Example.com",
        "www.example.com",
        "*.example.org",
    ]
    subject = {attr.oid: attr.value for attr in cert.subject}
    assert subject[NameOID.COMMON_NAME] == "Api.Example.com"
    assert subject[NameOID.ORGANIZATION_NAME] == "Example Org"
    assert subject[NameOID.COUNTRY_NAME] == "DE"
    assert set(subject) == {NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.COUNTRY_NAME}
    assert (
        format(cert.serial_number, "X")
        == (
            await http.post("/api/v1/certificates/find", json={"commonName": "Api.Example.com"})
        ).json()["items"][0]["serialNumber"]
    )


async def test_default_key_type_is_rsa_2048() -> None:
    with Emulator() as emulator:
        async with authed(emulator) as http:
            batch_id = await create_id(http, "rsa.example.com")
            archive = unzip((await http.get(f"/api/v1/batches/{batch_id}/download")).content)
    bundle = pkcs12.load_pkcs12(archive["rsa.example.com.p12"], P12_PASSWORD.encode())
    assert isinstance(bundle.key, rsa.RSAPrivateKey) and bundle.key.key_size == 2048


async def test_batch_list_pages_newest_first(http: httpx.AsyncClient) -> None:
    ids = [await create_id(http) for _ in range(5)]
    pages = []
    for page in range(3):
        body = (await http.get("/api/v1/batches", params={"page": page, "size": 2})).json()
        assert (body["totalElements"], body["totalPages"], body["number"]) == (5, 3, page)
        pages.append([b["batchId"] for b in body["content"]])
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    default = (await http.get("/api/v1/batches")).json()
    assert default["size"] == 20 and len(default["content"]) == 5
    beyond = (await http.get("/api/v1/batches", params={"page": 9})).json()
    assert beyond["content"] == [] and beyond["number"] == 9


@pytest.mark.parametrize("query", [{"page": -1}, {"size": 0}, {"page": "x"}, {"size": 99999}])
async def test_batch_list_rejects_bad_paging(
    http: httpx.AsyncClient, query: dict[str, int | str]
) -> None:
    response = await http.get("/api/v1/batches", params=query)
    assert response.status_code == 400
    strict(response, ErrorBody)


async def test_emulator_batch_records(emu: Emulator, http: httpx.AsyncClient) -> None:
    batch_id = await create_id(http, "record.example.com")
    [record] = emu.batches()
    assert record.batch_id == batch_id and record.kind == "single" and record.username == "tester"
    assert record.status == BatchStatus.READY_FOR_DOWNLOAD and len(record.serial_numbers) == 1
    [certificate] = emu.certificates()
    assert certificate.serial_number == record.serial_numbers[0]
    assert certificate.certificate.issuer == emu.ca_certificate.subject
    assert P12_PASSWORD not in repr(record) + repr(certificate)


# -- CSR uploads -------------------------------------------------------------------------


def public_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def ready(http: httpx.AsyncClient, response: httpx.Response) -> Batch:
    assert response.status_code == 200, response.text
    batch_id = strict(response, Batch).batch_id
    return strict(await http.get(f"/api/v1/batches/{batch_id}"), Batch)


async def test_pem_file_with_two_csrs(emu: Emulator, http: httpx.AsyncClient) -> None:
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]
    pem = (
        make_csr("one.example.com", key=keys[0])
        + b"\n"
        + make_csr("two.example.com", ["two.example.com", "alt.example.com"], key=keys[1])
    )
    batch = await ready(http, await upload(http, ("two.csr", pem, "text/plain")))
    assert batch.status == BatchStatus.READY_FOR_DOWNLOAD and batch.size == 2
    info = await http.get(f"/api/v1/batches/{batch.batch_id}/processing_info")
    assert strict(info, ProcessingInfo) == ProcessingInfo(success=2)
    assert emu.balance == 8

    download = await http.get(f"/api/v1/batches/{batch.batch_id}/download")
    archive = unzip(download.content)
    assert sorted(archive) == ["one.example.com.pem", "two.example.com.pem"]
    for key, name in zip(keys, ["one.example.com.pem", "two.example.com.pem"], strict=True):
        leaf, intermediate, root = x509.load_pem_x509_certificates(archive[name])
        assert (intermediate, root) == (emu.ca_certificate, emu.root_certificate)
        leaf.verify_directly_issued_by(intermediate)
        assert leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == public_der(key)
        assert not any(line.startswith(b"-----BEGIN") and b"PRIVATE" in line
                       for line in archive[name].splitlines())  # fmt: skip
    two = x509.load_pem_x509_certificates(archive["two.example.com.pem"])[0]
    san = two.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["two.example.com", "alt.example.com"]


async def test_zip_of_csr_files(emu: Emulator, http: httpx.AsyncClient) -> None:
    archive = zip_of(
        a__csr=make_csr("a.example.com"),
        b__pem=make_csr("b.example.com"),
        README__txt=b"not a csr: ignored",
    )
    batch = await ready(http, await upload(http, ("csrs.zip", archive, "application/zip")))
    assert batch.size == 2 and batch.status == BatchStatus.READY_FOR_DOWNLOAD
    names = unzip((await http.get(f"/api/v1/batches/{batch.batch_id}/download")).content)
    assert sorted(names) == ["a.example.com.pem", "b.example.com.pem"]
    assert [b.kind for b in emu.batches()] == ["csr"]


async def test_several_file_parts(http: httpx.AsyncClient) -> None:
    response = await upload(
        http,
        ("a.csr", make_csr("a.example.com"), "application/octet-stream"),
        ("b.csr", make_csr("b.example.com"), "application/x-x509-ca-cert"),
    )
    assert (await ready(http, response)).size == 2


async def test_csr_without_san_is_rejected(emu: Emulator, http: httpx.AsyncClient) -> None:
    response = await upload(http, ("nosan.csr", make_csr("nosan.example.com", []), "text/plain"))
    batch = await ready(http, response)
    assert batch.status == BatchStatus.REJECTED
    assert batch.reject_reason == (
        "Cert subject name error: SubjectAlternativeName dNSName value is missing"
    )
    info = await http.get(f"/api/v1/batches/{batch.batch_id}/processing_info")
    assert strict(info, ProcessingInfo) == ProcessingInfo(failed=1)
    assert emu.balance == 10 and emu.licenses_used == 0


async def test_one_bad_csr_rejects_the_batch(emu: Emulator, http: httpx.AsyncClient) -> None:
    pem = make_csr("good.example.com") + make_csr("bad.example.com", [])
    batch = await ready(http, await upload(http, ("mixed.csr", pem, "text/plain")))
    assert batch.status == BatchStatus.REJECTED
    assert batch.reject_reason.startswith("CSR #2: Cert subject name error")
    assert emu.certificates() == []


@pytest.mark.parametrize("problem", ["signature", "weak-rsa", "bad-dns"])
async def test_invalid_csrs_are_rejected(http: httpx.AsyncClient, problem: str) -> None:
    if problem == "signature":
        pem = make_csr("sig.example.com")
        der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
        tampered = der[:-3] + bytes([der[-3] ^ 0xFF]) + der[-2:]
        pem = x509.load_der_x509_csr(tampered).public_bytes(serialization.Encoding.PEM)
    elif problem == "weak-rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
        pem = make_csr("weak.example.com", key=key)
    else:
        pem = make_csr("dns.example.com", ["dns.example.com", "under_score.example.com"])
    batch = await ready(http, await upload(http, ("x.csr", pem, "text/plain")))
    assert batch.status == BatchStatus.REJECTED and batch.reject_reason


@pytest.mark.parametrize(
    "data",
    [b"hello, world", b"PK\x03\x04 broken zip", zip_of(notes__txt=b"nothing here"), b""],
)
async def test_garbage_upload_is_400(emu: Emulator, http: httpx.AsyncClient, data: bytes) -> None:
    response = await upload(http, ("junk.csr", data, "text/plain"))
    assert response.status_code == 400
    strict(response, ErrorBody)
    assert emu.batches() == []


async def test_upload_needs_every_part(http: httpx.AsyncClient) -> None:
    csr = ("a.csr", make_csr("a.example.com"), "text/plain")
    body = json.dumps({"profileId": 42, "batchType": "BATCH", "profileParams": {}}).encode()
    cases = [
        await http.post(UPLOAD, files=[("csrBatchRequest", ("blob", body, "application/json")),
                                       ("files", csr)]),
        await http.post(UPLOAD, data={"profileId": "42"}, files=[("files", csr)]),
        await http.post(UPLOAD, data={"profileId": "42"},
                        files=[("csrBatchRequest", ("blob", body, "application/json"))]),
        await http.post(UPLOAD, data={"profileId": "42"},
                        files=[("csrBatchRequest", ("blob", b"{bad", "application/json")),
                               ("files", csr)]),
        await upload(http, csr, profile_id=42,
                     batch_request={"profileId": 17, "batchType": "BATCH", "profileParams": {}}),
        await upload(http, csr, profile_id=17,
                     batch_request={"profileId": 17, "batchType": "BATCH", "profileParams": {}}),
        await http.post(UPLOAD, content=make_csr("raw.example.com")),
    ]  # fmt: skip
    for index, response in enumerate(cases):
        assert response.status_code == 400, index
        strict(response, ErrorBody)


async def test_upload_needs_auth(emu: Emulator) -> None:
    async with httpx.AsyncClient(transport=emu.transport(), base_url=emu.base_url) as anonymous:
        response = await upload(anonymous, ("a.csr", make_csr("a.example.com"), "text/plain"))
    assert response.status_code == 401
