"""The original tool's documented command lines, verbatim, against the embedded emulator.

Output is JSON because stdout is not a terminal, with the API's own field names.
"""

from __future__ import annotations

import re
import zipfile

import pytest

from sectigo_iot.certs import open_batch_zip
from tests.cli.helpers import CLI, create_args, documents, make_csr
from tests.support import EMULATOR_AUTHORITY

API_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$")
BATCH_FIELDS = {
    "batchId",
    "orderNumber",
    "creationDate",
    "profile",
    "size",
    "status",
    "active",
    "batchName",
    "rejectReason",
    "generatorParametersValues",
    "userId",
    "downloadable",
    "rejectable",
}


def test_authorities(cli: CLI) -> None:
    assert cli.json("authorities") == [EMULATOR_AUTHORITY]


def test_authorities_balances_prints_a_second_document(cli: CLI) -> None:
    result = cli.ok("authorities", "--balances")
    listing, balances = documents(result.stdout)
    assert [a["id"] for a in listing] == [1]
    assert balances == {"1": 10}
    assert cli.requests["GET /api/v1/authorities/1/balanceavailable"] == 1


def test_licenses(cli: CLI) -> None:
    assert cli.json("licenses") == {"ordered": 10, "issued": 0}


def test_profiles(cli: CLI) -> None:
    profiles = cli.json("profiles")
    assert [p["profileId"] for p in profiles] == [42]
    assert set(profiles[0]) == {"profileId", "algorithms", "ca"}


def test_profiles_id(cli: CLI) -> None:
    detail = cli.json("profiles", "-i", "42")
    assert set(detail) == {
        "profileName",
        "profileId",
        "rawProfileConfig",
        "name",
        "keyAlgorithmInfo",
    }
    assert detail["profileId"] == 42


@pytest.mark.parametrize("command", ["profiles", "profile"])
def test_profile_params(cli: CLI, command: str) -> None:
    """`sectigo profile -i 42 --params` as the upstream README writes it works too."""
    params = cli.json(command, "-i", "42", "--params")
    names = [p["name"] for p in params]
    assert {"commonName", "dNSName", "pkcs12Password"} <= set(names)
    assert {"name", "inputType", "required", "validationPattern", "title"} <= set(params[0])


def test_organization(cli: CLI) -> None:
    org = cli.json("organization")
    assert org["organizationName"] == "Sectigo IoT Emulator"
    assert {"organizationId", "primaryContactEmail", "authorities", "orgStatus"} <= set(org)


def test_create(cli: CLI) -> None:
    batch = cli.json(*create_args("-b", "example.com certs", authority="42"))
    assert set(batch) == BATCH_FIELDS
    assert batch["batchName"] == "example.com certs"
    assert batch["status"] == "CREATED"
    assert API_DATE.match(batch["creationDate"])
    assert cli.requests["PUT /api/v1/batches/createSingleCertBatch"] == 1


def test_create_default_batch_name_and_dns_names(cli: CLI) -> None:
    batch = cli.json(*create_args("--dns-name", "www.example.com"))
    # a unique suffix, so an ambiguous create can be found again by its name
    assert re.fullmatch(r"new certs for example\.com \([0-9a-f]{8}\)", batch["batchName"])
    again = cli.json(*create_args())
    assert again["batchName"] != batch["batchName"]
    with cli.state() as state:
        certificate = state.certificates()[0]
    from cryptography import x509

    sans = certificate.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    assert sans == ["example.com", "www.example.com"]


def test_global_flags_of_the_documented_example(cli: CLI) -> None:
    """`sectigo -P 17 -E production create -a ... -d example.com -p s3cretpass -b ...`."""
    batch = cli.json(
        "-P", "17", "-E", "production", *create_args("-b", "example.com certs", authority="42")
    )
    assert batch["batchName"] == "example.com certs"


def test_end_entity_profile_sends_subject_params(cli: CLI) -> None:
    subject_args = ("-c", "DE", "-s", "Berlin", "-l", "Berlin", "-o", "ACME GmbH", "--wait")
    cli.ok("-P", "85", *create_args(*subject_args, domain="ee.example.com"))
    with cli.state() as state:
        (certificate,) = state.certificates()
    subject = certificate.certificate.subject.rfc4514_string()
    assert subject == "CN=ee.example.com,O=ACME GmbH,L=Berlin,ST=Berlin,C=DE"


def test_batches(cli: CLI) -> None:
    batch_id = cli.create()
    detail = cli.json("batches", "-i", str(batch_id))
    assert set(detail) == BATCH_FIELDS
    assert detail["batchId"] == batch_id
    assert detail["status"] == "READY_FOR_DOWNLOAD"


def test_batches_status_prints_the_normalized_text(cli: CLI) -> None:
    batch_id = cli.create()
    assert cli.ok("batches", "-i", str(batch_id), "--status").stdout == "READY_FOR_DOWNLOAD\n"


def test_batches_info(cli: CLI) -> None:
    batch_id = cli.create()
    assert cli.json("batches", "-i", str(batch_id), "--info") == {
        "active": 0,
        "success": 1,
        "failed": 0,
    }


def test_download(cli: CLI) -> None:
    """`sectigo download -i ID -o DIR`, in a later run than the create."""
    batch_id = cli.create(password="s3cretpass")
    (cli.tmp / "certs").mkdir()
    result = cli.ok("download", "-i", str(batch_id), "-o", "certs")
    first, second = result.stdout.splitlines()
    assert first == f"downloaded batch {batch_id} to certs/{batch_id}.zip"
    assert "sectigo inspect" in second
    archive = cli.tmp / "certs" / f"{batch_id}.zip"
    assert zipfile.is_zipfile(archive)
    (bundle,) = open_batch_zip(archive, "s3cretpass")
    assert bundle.common_name == "example.com"
    assert bundle.private_key is not None


def test_upload(cli: CLI) -> None:
    """`sectigo upload -p 42 FILE.csr`."""
    csr, _ = make_csr(cli, "device.example.com")
    batch = cli.json("upload", "-p", "42", str(csr))
    assert set(batch) == BATCH_FIELDS
    assert batch["batchName"] == "device.example.com.csr"
    assert cli.requests["POST /api/v1/batches/upload"] == 1
    assert cli.ok("batches", "-i", str(batch["batchId"]), "-s").stdout == "READY_FOR_DOWNLOAD\n"


def test_find(cli: CLI) -> None:
    cli.create("example.com")
    cli.create("other.example.com")
    found = cli.json("find", "-n", "example.com")
    assert found["totalCount"] == 1
    (item,) = found["items"]
    assert set(item) == {"deviceId", "commonName", "serialNumber", "creationDate", "status"}
    assert item["commonName"] == "example.com"
    assert API_DATE.match(item["creationDate"])
    by_serial = cli.json("find", "-s", item["serialNumber"])
    assert by_serial["items"] == [item]


def test_revoke(cli: CLI) -> None:
    """`sectigo revoke -p 42 -r "cessation of operation" -s SERIAL` prints nothing."""
    cli.create()
    serial = cli.serial_of("example.com")
    result = cli.ok("revoke", "-p", "42", "-r", "cessation of operation", "-s", serial)
    assert result.stdout == ""
    with cli.state() as state:
        (revocation,) = state.revocations()
    assert (revocation.serial_number, revocation.reason_code) == (serial, 5)
    assert cli.json("find", "-s", serial)["items"][0]["status"] == "REVOKED"


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (None, 0),
        ("Key Compromise", 1),
        ("CA COMPROMISE", 2),
        ("affiliationchanged", 3),
        ("superseded", 4),
        ("remove from crl", 8),
        ("privilege withdrawn", 9),
        ("aa compromise", 10),
    ],
)
def test_revoke_reasons(cli: CLI, reason: str | None, code: int) -> None:
    cli.create()
    serial = cli.serial_of("example.com")
    args = ["revoke", "-p", "42", "-s", serial.lower()]
    if reason is not None:
        args += ["-r", reason]
    cli.ok(*args)
    with cli.state() as state:
        assert [r.reason_code for r in state.revocations()] == [code]
