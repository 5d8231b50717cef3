"""The batch commands: create, upload, batches, download, as the original tool documents
them, and beyond it the whole flow (--wait, --download, --pem).

Output is JSON because stdout is not a terminal, with the API's own field names.
"""

from __future__ import annotations

import json
import re
import zipfile

from sectigo_iot.certs import load_pem_bundle, open_batch_zip
from tests.cli.helpers import API_DATE, CLI, create_args, make_csr, mode

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


# -- create / upload with --wait, --download, --pem ----------------------------------------


def test_create_wait_download_pem(cli: CLI) -> None:
    result = cli.ok(*create_args("--dns-name", "www.example.com", "--download", "certs", "--pem"))
    data = json.loads(result.stdout)
    batch_id = data["batch"]["batchId"]
    assert data["batch"]["status"] == "READY_FOR_DOWNLOAD"
    assert data["zip"] == f"certs/{batch_id}.zip"
    (files,) = data["pem"]
    folder = cli.tmp / "certs" / str(batch_id)
    assert files == {
        role: f"certs/{batch_id}/{role}.pem" for role in ("cert", "chain", "fullchain", "key")
    }
    assert mode(folder / "key.pem") == 0o600
    assert mode(folder / "cert.pem") == 0o644
    bundle = load_pem_bundle(
        (folder / "fullchain.pem").read_bytes() + (folder / "key.pem").read_bytes()
    )
    assert bundle.sans == ("example.com", "www.example.com")
    assert bundle.private_key is not None
    assert f"batch {batch_id}: READY_FOR_DOWNLOAD" in result.stderr


def test_create_wait_only_prints_the_ready_batch(cli: CLI) -> None:
    batch = cli.json("create", "-a", "1", "-d", "example.com", "-p", "s3cretpass", "--wait")
    assert batch["status"] == "READY_FOR_DOWNLOAD"
    assert "zip" not in batch


def test_wait_polls_until_ready(cli: CLI) -> None:
    env = {"SECTIGO_EMULATOR_DELAY": "1"}
    result = cli.ok("create", "-a", "1", "-d", "example.com", "-p", "s3cretpass", "--wait", env=env)
    assert json.loads(result.stdout)["status"] == "READY_FOR_DOWNLOAD"
    progress = [line for line in result.stderr.splitlines() if line.startswith("batch ")]
    assert progress[0].startswith("batch 10001: PROCESSING (active 1")
    assert progress[-1].startswith("batch 10001: READY_FOR_DOWNLOAD (active 0, success 1")


def test_upload_wait_download_writes_certificates_only(cli: CLI) -> None:
    csr, key = make_csr(cli, "device.example.com", ["alt.example.com"])
    data = json.loads(cli.ok("upload", "-p", "42", str(csr), "--download", "out").stdout)
    batch_id = data["batch"]["batchId"]
    (files,) = data["pem"]
    assert set(files) == {"cert", "chain", "fullchain"}  # the key never left this machine
    cert = load_pem_bundle((cli.tmp / files["fullchain"]).read_bytes() + key.read_bytes())
    assert cert.private_key is not None  # the certificate matches our key
    assert cert.sans == ("device.example.com", "alt.example.com")
    assert (cli.tmp / "out" / f"{batch_id}.zip").is_file()


def test_upload_no_pem(cli: CLI) -> None:
    csr, _ = make_csr(cli)
    data = json.loads(cli.ok("upload", "-p", "42", str(csr), "--download", "o", "--no-pem").stdout)
    assert "pem" not in data
    assert not (cli.tmp / "o" / str(data["batch"]["batchId"])).exists()


def test_upload_of_several_csrs_writes_one_folder_each(cli: CLI) -> None:
    first, _ = make_csr(cli, "a.example.com")
    second, _ = make_csr(cli, "b.example.com")
    (cli.tmp / "both.csr").write_bytes(first.read_bytes() + second.read_bytes())
    data = json.loads(cli.ok("upload", "-p", "42", "both.csr", "--download", "o").stdout)
    batch_id = data["batch"]["batchId"]
    assert data["batch"]["size"] == 2
    for name in ("a.example.com", "b.example.com"):
        assert (cli.tmp / "o" / str(batch_id) / name / "cert.pem").is_file()


def test_batches_wait(cli: CLI) -> None:
    batch_id = cli.create()
    assert cli.json("batches", "-i", str(batch_id), "--wait")["status"] == "READY_FOR_DOWNLOAD"
