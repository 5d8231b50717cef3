"""Fidelity findings from running the original Go client against the emulator.

* what the parameters endpoint lists as required is what create requires (and an
  upload, whose subject comes from its CSR, needs none of it in ``profileParams``);
* the subject holds only what the request asked for (OpenSSL is the judge);
* a batch's archive is the same bytes on every download, across restarts too;
* authority and profile ids are interchangeable on create, upload and revoke, as the
  documented walk-through uses them.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import (
    Authority,
    Batch,
    BatchStatus,
    ErrorBody,
    ProfileParameter,
    strict_converter,
)
from tests.certs.helpers import make_csr
from tests.emulator.helpers import (
    P12_PASSWORD,
    authed,
    create,
    create_id,
    openssl,
    params,
    strict,
    unzip,
    upload,
)
from tests.support import needs_openssl

# -- required parameters --------------------------------------------------------------


async def _parameters(http: httpx.AsyncClient) -> list[ProfileParameter]:
    response = await http.get("/api/v1/profiles/42/parameters")
    assert response.status_code == 200
    return [strict_converter.structure(item, ProfileParameter) for item in response.json()]


async def test_every_parameter_listed_as_required_is_required_by_create(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    parameters = await _parameters(http)
    required = [p.name for p in parameters if p.required]
    assert required  # the endpoint lists some: each one must be enforced
    for name in required:
        for missing in ({}, {name: ""}, {name: "  "}):
            body = {key: value for key, value in params().items() if key != name} | missing
            response = await create(http, profile_params=body)
            assert response.status_code == 400, (name, missing)
            assert strict(response, ErrorBody).message == f"Profile parameter {name} is required"
    assert emu.batches() == [] and emu.balance == 10


async def test_no_parameter_listed_as_optional_is_required(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    parameters = await _parameters(http)
    names = [p.name for p in parameters]
    optional = [p.name for p in parameters if not p.required]
    assert optional
    everything = params(
        organizationName="Example Org",
        localityName="Berlin",
        stateOrProvinceName="Berlin",
        countryName="DE",
    )
    assert sorted(everything) == sorted(names)
    for name in optional:
        body = {key: value for key, value in everything.items() if key != name}
        assert (await create(http, profile_params=body)).status_code == 200, name


async def test_an_upload_needs_no_profile_params_its_csr_gives_the_subject(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    # the Go client's upload sends profileParams {}: the CSR holds CN and dNSName
    good = make_csr("csr.example.com", ["csr.example.com"])
    batch = strict(await upload(http, ("a.csr", good, "text/plain")), Batch)
    assert strict(await http.get(f"/api/v1/batches/{batch.batch_id}"), Batch).status == (
        BatchStatus.READY_FOR_DOWNLOAD
    )
    # ... and dNSName, listed as required, is required of the CSR: no SAN, no certificate
    bare = make_csr("bare.example.com", [])
    rejected = strict(await upload(http, ("b.csr", bare, "text/plain")), Batch)
    detail = strict(await http.get(f"/api/v1/batches/{rejected.batch_id}"), Batch)
    assert detail.status == BatchStatus.REJECTED
    assert "dNSName value is missing" in detail.reject_reason


# -- the subject ----------------------------------------------------------------------


async def _leaf_subject(http: httpx.AsyncClient, batch_id: int, folder: Path) -> str:
    """The leaf's subject as OpenSSL prints it (RFC 2253), from the downloaded archive."""
    archive = unzip((await http.get(f"/api/v1/batches/{batch_id}/download")).content)
    (name, data), *_ = archive.items()
    if name.endswith(".p12"):
        bundle = pkcs12.load_pkcs12(data, P12_PASSWORD.encode())
        assert bundle.cert is not None
        data = bundle.cert.certificate.public_bytes(serialization.Encoding.PEM)
    leaf = folder / f"{batch_id}.pem"
    leaf.write_bytes(data)
    shown = openssl("x509", "-in", leaf, "-noout", "-subject", "-nameopt", "RFC2253")
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip().removeprefix("subject=").strip()


@needs_openssl
async def test_the_subject_holds_only_what_was_asked(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    only_cn = await create_id(http, "api.example.com")
    assert await _leaf_subject(http, only_cn, tmp_path) == "CN=api.example.com"
    with_org = await create(
        http, profile_params=params("org.example.com", organizationName="Example Org")
    )
    batch_id = strict(with_org, Batch).batch_id
    assert await _leaf_subject(http, batch_id, tmp_path) == "CN=org.example.com,O=Example Org"
    everything = params(
        "all.example.com",
        organizationName="Example Org",
        localityName="Berlin",
        stateOrProvinceName="Land Berlin",
        countryName="DE",
    )
    batch_id = strict(await create(http, profile_params=everything), Batch).batch_id
    assert (
        await _leaf_subject(http, batch_id, tmp_path)
        == "CN=all.example.com,O=Example Org,L=Berlin,ST=Land Berlin,C=DE"
    )
    csr = make_csr("csr.example.com", ["csr.example.com"])
    csr_batch = strict(await upload(http, ("c.csr", csr, "text/plain")), Batch).batch_id
    assert await _leaf_subject(http, csr_batch, tmp_path) == "CN=csr.example.com"


# -- the archive ----------------------------------------------------------------------


async def _download(http: httpx.AsyncClient, batch_id: int) -> bytes:
    response = await http.get(f"/api/v1/batches/{batch_id}/download")
    assert response.status_code == 200
    return response.content


async def test_a_batch_downloads_as_the_same_bytes_every_time(tmp_path: Path) -> None:
    db = tmp_path / "emulator.sqlite3"
    with Emulator(db_path=db, key_type="ec-p256") as emulator:
        async with authed(emulator) as http:
            single = await create_id(http, "same.example.com")
            csr = make_csr("csr.example.com", ["csr.example.com"])
            from_csr = strict(await upload(http, ("c.csr", csr, "text/plain")), Batch).batch_id
            first = {batch_id: await _download(http, batch_id) for batch_id in (single, from_csr)}
            for batch_id, data in first.items():
                assert await _download(http, batch_id) == data
                assert await _download(http, batch_id) == data
        (created,) = [b.created for b in emulator.batches() if b.batch_id == single]
    with Emulator(db_path=db, key_type="ec-p256") as restarted:
        async with authed(restarted) as http:
            for batch_id, data in first.items():
                assert await _download(http, batch_id) == data
    # the entry is dated when the batch was created (ZIP keeps even seconds)
    with zipfile.ZipFile(io.BytesIO(first[single])) as archive:
        (entry,) = archive.infolist()
    assert entry.date_time == (*created.timetuple()[:5], created.second // 2 * 2)
    bundle = pkcs12.load_pkcs12(unzip(first[single])["same.example.com.p12"], P12_PASSWORD.encode())
    assert bundle.key is not None


# -- authority and profile ids --------------------------------------------------------


@pytest.mark.parametrize(("create_as", "revoke_as", "upload_as"), [(42, 1, 1), (1, 42, 42)])
async def test_the_walk_through_with_either_id(
    emu: Emulator, tmp_path: Path, create_as: int, revoke_as: int, upload_as: int
) -> None:
    # README: create -a 42 ... ; upload -p 42 ...; revoke -p 42 ... (and -a 1 in issue)
    csr = make_csr("upload.example.com", ["upload.example.com"])
    async with emu.client() as client:
        batch = await client.batches.create(
            create_as, common_name="walk.example.com", pkcs12_password=P12_PASSWORD
        )
        uploaded = await client.batches.upload_csrs(upload_as, csr)
        for batch_id in (batch.batch_id, uploaded.batch_id):
            await client.batches.wait(batch_id, timeout=5)
        serials = {c.serial_number for c in emu.certificates()}
        for serial in serials:
            await client.certificates.revoke(revoke_as, serial, "superseded")
    assert [(b.authority_id, b.profile_id) for b in emu.batches()] == [(1, 42), (1, 42)]
    assert {r.serial_number for r in emu.revocations()} == serials


async def test_an_id_naming_no_authority_or_profile_is_refused(
    emu: Emulator, http: httpx.AsyncClient
) -> None:
    batch_id = await create_id(http)
    (certificate,) = emu.certificates()
    serial = certificate.serial_number
    assert (await create(http, authority_id=7)).status_code == 400
    csr = make_csr("x.example.com", ["x.example.com"])
    assert (await upload(http, ("x.csr", csr, "text/plain"), profile_id=7)).status_code == 400
    revoke = {"reasonCode": 1, "serialNumber": serial}
    assert (await http.post("/api/v1/certificates/7/revoke", json=revoke)).status_code == 400
    assert [b.batch_id for b in emu.batches()] == [batch_id] and emu.revocations() == []


async def test_an_authority_id_wins_over_another_authoritys_profile_id() -> None:
    # two authorities whose ids and profile ids cross: the authority id decides
    crossed = [
        Authority(id=1, ecosystem_id=1, signer_certificate_id=0, ecosystem_name="E",
                  balance=5, enabled=True, profile_id=2, profile_name="P2"),
        Authority(id=2, ecosystem_id=1, signer_certificate_id=0, ecosystem_name="E",
                  balance=5, enabled=True, profile_id=1, profile_name="P1"),
    ]  # fmt: skip
    with Emulator(authorities=crossed, key_type="ec-p256") as emulator:
        async with authed(emulator) as http:
            await create_id(http)  # authorityId 1
            assert (await create(http, authority_id=2)).status_code == 200
        assert [b.authority_id for b in emulator.batches()] == [1, 2]
