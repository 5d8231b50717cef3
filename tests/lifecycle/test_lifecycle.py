"""Certificates kept valid in folders, end to end through the emulator: issue, keep,
renew (by date, by spec change, when damaged), revoke, notify, lock, dry run, many folders."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from sectigo_iot import BadRequestError, SectigoClient
from sectigo_iot.emulator import Emulator
from sectigo_iot.errors import InvalidInputError
from sectigo_iot.lifecycle import (
    CertificateResult,
    CertificateSpec,
    JournalError,
    LifecycleError,
    ensure_certificate,
    load_certificate,
    read_journal,
    renew_due,
)
from tests.lifecycle.helpers import key_matches, live_pair

pytestmark = pytest.mark.sectigo_emulator(key_type="ec-p256")

SPEC = CertificateSpec(
    authority_id=1,
    common_name="api.example.com",
    dns_names=("www.api.example.com",),
    params={"organizationName": "Example"},
)
DAY = 24 * 3600


async def test_issue_then_keep_then_renew_when_due(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folder = tmp_path / "certs" / "api"
    issued = await ensure_certificate(sectigo_client, SPEC, folder)
    assert (issued.action, issued.reason, issued.replaced_serial) == ("issued", "empty", None)
    assert issued.batch is not None and issued.bundle is not None
    assert set(issued.bundle.sans) == {"api.example.com", "www.api.example.com"}
    assert issued.changed and sectigo_emulator.licenses_used == 1

    # the layout: a private folder, a 0600 journal, live -> versions/<serial>, stable links
    serial = issued.bundle.serial_number
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "journal.json").stat().st_mode) == 0o600
    assert os.readlink(folder / "live") == f"versions/{serial}"
    for name in ("cert.pem", "chain.pem", "fullchain.pem", "key.pem"):
        assert os.readlink(folder / name) == f"live/{name}"
    assert stat.S_IMODE((folder / "live" / "key.pem").stat().st_mode) == 0o600
    assert live_pair(folder, via="") == (serial, True)
    assert not list(folder.glob("batch-*.zip"))
    journal = read_journal(folder)
    assert journal is not None and journal.pending is None and journal.spec == SPEC
    assert journal.current is not None and journal.current.serial == serial

    requests = sum(sectigo_emulator.stats.requests.values())
    kept = await ensure_certificate(sectigo_client, SPEC, folder)
    assert (kept.action, kept.reason, kept.batch) == ("kept", "valid", None)
    assert kept.bundle is not None and kept.bundle.serial_number == serial and not kept.changed
    assert sum(sectigo_emulator.stats.requests.values()) == requests  # not one request

    # the default policy renews at 2/3 of the 365 days, give or take 5 % (18.25 days):
    # between day 225.1 and day 261.6
    sectigo_emulator.clock.advance(220 * DAY)
    assert (await ensure_certificate(sectigo_client, SPEC, folder)).action == "kept"
    sectigo_emulator.clock.advance(45 * DAY)  # 265 days: past any point of the window
    renewed = await ensure_certificate(sectigo_client, SPEC, folder)
    assert (renewed.action, renewed.reason, renewed.replaced_serial) == ("renewed", "due", serial)
    assert renewed.bundle is not None
    new_serial = renewed.bundle.serial_number
    assert new_serial != serial and sectigo_emulator.licenses_used == 2
    assert live_pair(folder, via="") == (new_serial, True)
    # the version before stays for readers that resolved live just before the switch
    assert sorted(p.name for p in (folder / "versions").iterdir()) == sorted([serial, new_serial])
    assert sectigo_emulator.revocations() == []

    sectigo_emulator.clock.advance(DAY)
    third = await ensure_certificate(sectigo_client, SPEC, folder, force=True)
    assert (third.action, third.reason) == ("renewed", "forced")
    assert third.bundle is not None
    assert sorted(p.name for p in (folder / "versions").iterdir()) == sorted(
        [new_serial, third.bundle.serial_number]
    )


async def test_spec_change_of_names_renews_other_params_are_recorded(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    more = CertificateSpec(
        authority_id=1,
        common_name="api.example.com",
        dns_names=("www.api.example.com", "v2.api.example.com"),
    )
    renewed = await ensure_certificate(sectigo_client, more, tmp_path)
    assert (renewed.action, renewed.reason) == ("renewed", "names")
    assert renewed.bundle is not None and renewed.bundle.sans[-1] == "v2.api.example.com"
    assert first.bundle is not None and renewed.replaced_serial == first.bundle.serial_number

    same_names = CertificateSpec(
        authority_id=1, common_name="API.example.com", dns_names=more.dns_names, params={"x": "y"}
    )
    kept = await ensure_certificate(sectigo_client, same_names, tmp_path)
    assert kept.action == "kept"
    journal = read_journal(tmp_path)
    assert journal is not None and journal.spec == same_names  # used by the next renewal
    assert sectigo_emulator.licenses_used == 2


@pytest.mark.parametrize("damage", ["garbage key", "other key", "cert.pem", "no live", "no file"])
async def test_folder_damaged_by_hand_is_renewed(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path, damage: str
) -> None:
    other = tmp_path / "other"
    await ensure_certificate(sectigo_client, SPEC, other)
    folder = tmp_path / "api"
    first = await ensure_certificate(sectigo_client, SPEC, folder)
    assert first.bundle is not None
    version = folder / "versions" / first.bundle.serial_number
    if damage == "garbage key":
        (version / "key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
    elif damage == "other key":
        (version / "key.pem").write_bytes((other / "key.pem").read_bytes())
    elif damage == "cert.pem":
        (version / "cert.pem").write_bytes((other / "cert.pem").read_bytes())
    elif damage == "no live":
        (folder / "live").unlink()
    else:
        (version / "fullchain.pem").unlink()
    renewed = await ensure_certificate(sectigo_client, SPEC, folder)
    assert (renewed.action, renewed.reason) == ("renewed", "damaged"), renewed.detail
    assert renewed.replaced_serial == first.bundle.serial_number
    assert renewed.bundle is not None
    assert live_pair(folder, via="") == (renewed.bundle.serial_number, True)
    assert (await ensure_certificate(sectigo_client, SPEC, folder)).action == "kept"
    assert sectigo_emulator.licenses_used == 3


async def test_journal_removed_by_hand_is_rebuilt_and_files_read_as_a_pair(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    with pytest.raises(LifecycleError, match="no usable certificate"):
        load_certificate(tmp_path)
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert first.bundle is not None
    (tmp_path / "journal.json").unlink()
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert kept.action == "kept" and sectigo_emulator.licenses_used == 1
    journal = read_journal(tmp_path)
    assert journal is not None and journal.current is not None
    assert journal.current.serial == first.bundle.serial_number
    pair = load_certificate(tmp_path)
    assert pair.serial_number == first.bundle.serial_number and key_matches(pair)


async def test_live_replaced_by_a_folder_is_refused(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    await ensure_certificate(sectigo_client, SPEC, tmp_path)
    (tmp_path / "live").unlink()
    (tmp_path / "live").mkdir()
    with pytest.raises(LifecycleError, match="not a symlink"):
        await ensure_certificate(sectigo_client, SPEC, tmp_path)


async def test_revoke_replaced_after_on_change_sync_and_async(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    seen: list[tuple[str, str, bool]] = []

    def note(result: CertificateResult) -> None:
        assert result.bundle is not None
        on_disk, matches = live_pair(tmp_path, via="")
        assert on_disk == result.bundle.serial_number and matches  # already in place
        seen.append((result.action, on_disk, bool(sectigo_emulator.revocations())))

    async def anote(result: CertificateResult) -> None:
        await anyio.lowlevel.checkpoint()
        note(result)

    first = await ensure_certificate(sectigo_client, SPEC, tmp_path, on_change=note)
    assert first.bundle is not None
    await ensure_certificate(sectigo_client, SPEC, tmp_path, on_change=note)  # kept: no call
    sectigo_emulator.clock.advance(340 * DAY)
    renewed = await ensure_certificate(
        sectigo_client, SPEC, tmp_path, revoke_replaced=True, on_change=anote
    )
    assert renewed.revoked and renewed.replaced_serial == first.bundle.serial_number
    assert renewed.bundle is not None
    assert seen == [
        ("issued", first.bundle.serial_number, False),
        ("renewed", renewed.bundle.serial_number, False),  # called before the revocation
    ]
    [revocation] = sectigo_emulator.revocations()
    assert revocation.serial_number == first.bundle.serial_number
    assert (revocation.reason_code, revocation.profile_id) == (4, 42)  # superseded
    journal = read_journal(tmp_path)
    assert journal is not None and journal.revoke_pending == ()


async def test_revocation_owed_after_a_failure_is_settled_next_time(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert first.bundle is not None
    sectigo_emulator.inject("POST", "/api/v1/certificates/{profile}/revoke", "error", status=400)
    with pytest.raises(BadRequestError):
        await ensure_certificate(sectigo_client, SPEC, tmp_path, force=True, revoke_replaced=True)
    journal = read_journal(tmp_path)
    assert journal is not None and journal.revoke_pending == (first.bundle.serial_number,)
    assert journal.current is not None and journal.current.serial != first.bundle.serial_number
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert (kept.action, kept.revoked) == ("kept", True)
    assert [r.serial_number for r in sectigo_emulator.revocations()] == [first.bundle.serial_number]


async def test_two_tasks_at_once_one_issues_the_other_keeps(
    sectigo_emulator: Emulator, tmp_path: Path
) -> None:
    results: list[str] = []

    async def run() -> None:
        async with sectigo_emulator.client() as client:
            results.append((await ensure_certificate(client, SPEC, tmp_path)).action)

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(run)
    assert sorted(results) == ["issued", "kept", "kept"]
    assert sectigo_emulator.licenses_used == 1


async def test_create_refused_clears_the_attempt(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    sectigo_emulator.inject("PUT", "/api/v1/batches/createSingleCertBatch", "error", status=400)
    with pytest.raises(BadRequestError):
        await ensure_certificate(sectigo_client, SPEC, tmp_path)
    journal = read_journal(tmp_path)
    assert journal is not None and journal.pending is None
    assert (await ensure_certificate(sectigo_client, SPEC, tmp_path)).action == "issued"
    assert sectigo_emulator.licenses_used == 1


async def test_dry_run_sends_and_writes_nothing(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    folder = tmp_path / "api"
    plan = await ensure_certificate(sectigo_client, SPEC, folder, dry_run=True)
    assert (plan.action, plan.dry_run, plan.changed) == ("issued", True, False)
    assert not folder.exists() and sum(sectigo_emulator.stats.requests.values()) == 0
    await ensure_certificate(sectigo_client, SPEC, folder)
    sectigo_emulator.clock.advance(340 * DAY)
    before = sorted(p.name for p in folder.rglob("*"))
    plan = await ensure_certificate(sectigo_client, SPEC, folder, dry_run=True)
    assert (plan.action, plan.reason) == ("renewed", "due") and plan.bundle is not None
    assert plan.replaced_serial == plan.bundle.serial_number
    assert sorted(p.name for p in folder.rglob("*")) == before
    assert sectigo_emulator.licenses_used == 1


async def test_renew_due_walks_folders_and_reports_each(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    names = ["a", "b", "c", "d"]
    for name in names[:3]:
        spec = CertificateSpec(authority_id=1, common_name=f"{name}.example.com")
        await ensure_certificate(sectigo_client, spec, tmp_path / name)
    sectigo_emulator.clock.advance(340 * DAY)
    await ensure_certificate(  # b is renewed now, so it is not due below
        sectigo_client, CertificateSpec(authority_id=1, common_name="b.example.com"), tmp_path / "b"
    )
    (tmp_path / "c" / "journal.json").write_text("{not json")
    changed: list[Path] = []
    results = await renew_due(
        sectigo_client,
        [tmp_path / name for name in names],
        concurrency=2,
        on_change=lambda result: changed.append(result.folder),
    )
    assert [r.folder for r in results] == [tmp_path / name for name in names]
    assert [(r.action, r.reason) for r in results] == [
        ("renewed", "due"),
        ("kept", "valid"),
        ("failed", "error"),
        ("failed", "error"),
    ]
    assert isinstance(results[2].error, JournalError) and "damaged" in results[2].detail
    assert isinstance(results[3].error, JournalError) and "no journal" in results[3].detail
    assert changed == [tmp_path / "a"]
    assert results[0].bundle is not None and results[0].bundle.common_name == "a.example.com"
    assert sectigo_emulator.licenses_used == 5


async def test_finished_attempt_leaves_no_password_and_no_key_in_output(
    sectigo_client: SectigoClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert json.loads((tmp_path / "journal.json").read_text())["pending"] is None
    assert "PRIVATE KEY" not in repr(result) and "PRIVATE KEY" not in caplog.text


def test_spec_validation() -> None:
    with pytest.raises(InvalidInputError):
        CertificateSpec(authority_id=0, common_name="a.example.com")
    with pytest.raises(InvalidInputError):
        CertificateSpec(authority_id=1, common_name="bad_name.example.com")
    with pytest.raises(InvalidInputError):
        CertificateSpec(authority_id=1, common_name="a.example.com", dns_names="b.example.com")
    with pytest.raises(InvalidInputError, match="pkcs12Password"):
        CertificateSpec(authority_id=1, common_name="a.example.com", params={"pkcs12Password": "x"})
    spec = CertificateSpec(authority_id=1, common_name="A.Example.com", dns_names=["a.example.com"])
    assert spec.names == ("a.example.com",) and CertificateSpec.from_dict(spec.to_dict()) == spec


async def test_a_policy_decides_the_renewal_and_every_result_says_when(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    from datetime import timedelta

    from sectigo_iot.lifecycle import RenewalPolicy

    policy = RenewalPolicy(at=0.5, spread=0.2)
    folder = tmp_path / "api"
    issued = await ensure_certificate(sectigo_client, SPEC, folder, policy=policy)
    assert issued.bundle is not None and issued.renewal_time is not None
    bundle = issued.bundle
    # the folder's key is its absolute path: the same point on every call and host
    expected = policy.renewal_time(bundle.not_before, bundle.not_after, str(folder))
    assert issued.renewal_time == expected
    kept = await ensure_certificate(sectigo_client, SPEC, folder, policy=policy)
    assert (kept.action, kept.renewal_time) == ("kept", expected)
    sectigo_emulator.clock.advance((expected - bundle.not_before).total_seconds() + 60)
    renewed = await ensure_certificate(sectigo_client, SPEC, folder, policy=policy)
    assert (renewed.action, renewed.reason) == ("renewed", "due")
    with pytest.raises(InvalidInputError, match="not both"):
        await ensure_certificate(
            sectigo_client, SPEC, folder, policy=policy, renew_before=timedelta(days=3)
        )
    with pytest.raises(InvalidInputError, match="RenewalPolicy"):
        await renew_due(sectigo_client, [folder], policy="2/3")  # type: ignore[arg-type]
