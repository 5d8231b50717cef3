"""``sectigo inspect --check-revocation``: the status from the issuer's CRL, over the
embedded emulator with --emulator, fetched directly otherwise; never a login."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import CLI


@pytest.fixture
def folder(cli: CLI) -> Path:
    data = cli.json(
        "create", "-a", "1", "-d", "example.com", "-p", "s3cretpass", "--download", "certs", "--pem"
    )
    return cli.tmp / Path(data["zip"]).with_suffix("")


def test_a_revoked_certificate_shows_revoked_with_reason_and_date(cli: CLI, folder: Path) -> None:
    fullchain = str(folder / "fullchain.pem")
    (before,) = cli.json("inspect", fullchain, "--check-revocation")
    assert before["revocation"] == {
        "status": "good",
        "reason": None,
        "revoked_at": None,
        "detail": None,
    }
    serial = before["serial_number"]
    cli.ok("revoke", "-p", "42", "-r", "key compromise", "-s", serial, "--yes")
    api_calls = sum(n for route, n in cli.requests.items() if "/emulator/crl/" not in route)
    (after,) = cli.json("inspect", fullchain, "--check-revocation")
    state = cli.state()
    try:
        [record] = state.revocations()
    finally:
        state.close()
    assert after["revocation"]["status"] == "revoked"
    assert after["revocation"]["reason"] == "key compromise"
    assert after["revocation"]["revoked_at"] == record.revoked_at.replace(microsecond=0).isoformat()
    shown = cli.ok("--table", "inspect", fullchain, "--check-revocation").stdout
    assert "REVOKED (key compromise" in shown
    # only CRLs were fetched: no login, no API call
    assert sum(n for route, n in cli.requests.items() if "/emulator/crl/" not in route) == api_calls


def test_without_the_issuer_it_is_unknown(cli: CLI, folder: Path) -> None:
    (info,) = cli.json("inspect", str(folder / "cert.pem"), "--check-revocation")
    assert info["revocation"]["status"] == "unknown"
    assert "no issuer certificate" in info["revocation"]["detail"]


def test_without_the_option_nothing_is_fetched(cli: CLI, folder: Path) -> None:
    before = sum(cli.requests.values())
    (info,) = cli.json("inspect", str(folder / "fullchain.pem"))
    assert "revocation" not in info and sum(cli.requests.values()) == before


def test_without_emulator_the_crl_is_fetched_from_its_distribution_point(cli: CLI) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from sectigo_iot import SyncSectigoClient
    from sectigo_iot.emulator import Emulator

    with Emulator() as emulator, emulator.run_in_thread() as url:
        with SyncSectigoClient(
            "tester", "supersecretsquirrel", base_url=url, token_store="memory"
        ) as client:
            batch = client.batches.create(
                1, common_name="served.example.com", pkcs12_password="pw-12345678"
            )
            client.batches.wait(batch.batch_id)
            [record] = emulator.certificates()
            client.certificates.revoke(42, record.serial_number, "cessation of operation")
        pem = record.certificate.public_bytes(Encoding.PEM) + emulator.ca_pem
        (cli.tmp / "served.pem").write_bytes(pem)
        result = cli("--json", "inspect", "served.pem", "--check-revocation")
    assert result.exit_code == 0, result.output
    assert '"reason": "cessation of operation"' in result.stdout
    assert not cli.opened  # no embedded emulator: fetched over HTTP from the served one
