"""CSR batches: the multipart upload, PEM and ZIP inputs, checks, and PEM delivery."""

from __future__ import annotations

import json

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import Batch, BatchStatus, ErrorBody, ProcessingInfo
from tests.certs.helpers import make_csr
from tests.emulator.helpers import UPLOAD, strict, unzip, upload, zip_of


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
