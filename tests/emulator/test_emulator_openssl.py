"""OpenSSL as the independent judge of what the emulator issues and packages."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sectigo_iot.emulator import Emulator
from sectigo_iot.models import Batch
from tests.certs.helpers import make_csr
from tests.emulator.helpers import (
    P12_PASSWORD,
    authed,
    create,
    openssl,
    params,
    strict,
    unzip,
    upload,
)
from tests.support import needs_openssl

pytestmark = needs_openssl


async def fetch_ca(emulator: Emulator, folder: Path) -> Path:
    async with authed(emulator) as http:
        response = await http.get("/emulator/ca.pem")
    path = folder / "ca.pem"
    path.write_bytes(response.content)
    return path


@pytest.mark.parametrize("key_type", ["rsa2048", "ec-p256"])
async def test_single_batch_p12_and_certificate(tmp_path: Path, key_type: str) -> None:
    with Emulator(key_type=key_type) as emulator:
        emulator.clock.advance(3 * 86400)  # a clock moved forward ages the certificates
        at = ("-attime", str(int(emulator.clock())))  # verified at the emulator's time
        ca = await fetch_ca(emulator, tmp_path)
        root = tmp_path / "root.pem"
        root.write_bytes(emulator.root_certificate.public_bytes(serialization.Encoding.PEM))
        async with authed(emulator) as http:
            profile_params = params("api.example.com", "www.example.com", organizationName="Org")
            batch = strict(await create(http, profile_params=profile_params), Batch)
            download = await http.get(f"/api/v1/batches/{batch.batch_id}/download")
            p12 = tmp_path / "api.example.com.p12"
            p12.write_bytes(unzip(download.content)["api.example.com.p12"])

            # Sectigo's legacy suite: OpenSSL 3 opens it only with -legacy
            opened = openssl(
                "pkcs12", "-legacy", "-in", p12, "-nodes", "-passin", f"pass:{P12_PASSWORD}"
            )
            assert opened.returncode == 0, opened.stderr
            assert opened.stdout.count("BEGIN CERTIFICATE") == 3
            assert "PRIVATE KEY" in opened.stdout
            wrong = openssl("pkcs12", "-legacy", "-in", p12, "-nodes", "-passin", "pass:wrong")
            assert wrong.returncode != 0 and "mac verify error" in wrong.stderr.lower()

            leaf, chain = tmp_path / "leaf.pem", tmp_path / "chain.pem"
            for option, path in (("-clcerts", leaf), ("-cacerts", chain)):
                extracted = openssl(
                    "pkcs12", "-legacy", "-in", p12, option, "-nokeys",
                    "-passin", f"pass:{P12_PASSWORD}", "-out", path,
                )  # fmt: skip
                assert extracted.returncode == 0, extracted.stderr
            # the root alone is the trust anchor; the intermediate comes from the file
            verified = openssl("verify", *at, "-CAfile", root, "-untrusted", chain, leaf)
            assert verified.returncode == 0, verified.stderr
            assert verified.stdout.strip().endswith("OK")
            assert openssl("verify", *at, "-CAfile", root, leaf).returncode != 0
            # /emulator/ca.pem (intermediate and root) verifies a bare leaf
            assert openssl("verify", *at, "-CAfile", ca, leaf).returncode == 0

            text = openssl("x509", "-in", leaf, "-noout", "-text").stdout
            assert "DNS:api.example.com, DNS:www.example.com" in text
            assert "TLS Web Client Authentication, TLS Web Server Authentication" in text
            assert "CA:FALSE" in text
            assert "Digital Signature, Non Repudiation" in text
            assert ("Key Encipherment" in text) == (key_type == "rsa2048")
            assert "O = Org" in text and "CN = api.example.com" in text
            assert "Subject Key Identifier" in text and "Authority Key Identifier" in text
            assert (
                "Issuer: C = US, O = sectigo-iot emulator, CN = Sectigo IoT Emulator Issuing CA"
                in text
            )
            serial = openssl("x509", "-in", leaf, "-noout", "-serial").stdout.strip()
            found = await http.post(
                "/api/v1/certificates/find", json={"serialNumber": serial.split("=")[1]}
            )
            assert found.json()["totalCount"] == 1


async def test_modern_format_opens_without_legacy(tmp_path: Path) -> None:
    with Emulator(key_type="ec-p256", pkcs12_format="modern") as emulator:
        async with authed(emulator) as http:
            batch = strict(await create(http, "modern.example.com"), Batch)
            download = await http.get(f"/api/v1/batches/{batch.batch_id}/download")
    p12 = tmp_path / "modern.p12"
    p12.write_bytes(unzip(download.content)["modern.example.com.p12"])
    info = openssl("pkcs12", "-info", "-in", p12, "-nodes", "-passin", f"pass:{P12_PASSWORD}")
    assert info.returncode == 0, info.stderr
    assert info.stdout.count("BEGIN CERTIFICATE") == 3
    assert "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048" in info.stderr
    assert "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048" in info.stderr
    assert "RC2" not in info.stderr


async def test_csr_batch_certificates_verify(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = make_csr("rsa.example.com", key=rsa_key) + make_csr(
        "ec.example.com", ["ec.example.com", "api.ec.example.com"]
    )
    with Emulator(key_type="ec-p256") as emulator:
        ca = await fetch_ca(emulator, tmp_path)
        async with authed(emulator) as http:
            batch = strict(await upload(http, ("two.csr", pem, "text/plain")), Batch)
            download = await http.get(f"/api/v1/batches/{batch.batch_id}/download")
    archive = unzip(download.content)
    assert sorted(archive) == ["ec.example.com.pem", "rsa.example.com.pem"]
    root = tmp_path / "root.pem"
    root.write_bytes(emulator.root_certificate.public_bytes(serialization.Encoding.PEM))
    for name, data in archive.items():
        path = tmp_path / name
        path.write_bytes(data)  # leaf, intermediate, root
        assert data.count(b"BEGIN CERTIFICATE") == 3
        verified = openssl("verify", "-CAfile", root, "-untrusted", path, path)
        assert verified.returncode == 0, verified.stderr
        assert openssl("verify", "-CAfile", ca, path).returncode == 0
    text = openssl("x509", "-in", tmp_path / "ec.example.com.pem", "-noout", "-text").stdout
    assert "DNS:ec.example.com, DNS:api.ec.example.com" in text
    assert "CN = ec.example.com" in text


async def test_ca_pem_is_the_intermediate_then_the_root(tmp_path: Path) -> None:
    with Emulator() as emulator:
        ca = await fetch_ca(emulator, tmp_path)
        intermediate, root = emulator.ca_certificate, emulator.root_certificate
    assert x509.load_pem_x509_certificates(ca.read_bytes()) == [intermediate, root]
    paths = {}
    for name, certificate in (("intermediate", intermediate), ("root", root)):
        paths[name] = tmp_path / f"{name}.pem"
        paths[name].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        text = openssl("x509", "-in", paths[name], "-noout", "-text").stdout
        assert "CA:TRUE" in text and "Certificate Sign" in text
    assert "pathlen:0" in openssl("x509", "-in", paths["intermediate"], "-noout", "-text").stdout
    assert openssl("verify", "-CAfile", paths["root"], paths["root"]).returncode == 0
    verified = openssl("verify", "-CAfile", paths["root"], paths["intermediate"])
    assert verified.returncode == 0, verified.stderr
