"""Item 8: checking a folder that is not due reads it without the lock.

A folder kept as it is (nothing to write, nothing to send) is decided from an unlocked
read, so a check never waits for another process. Everything else (due, forced, a
pending attempt, leftovers to remove, a journal to update, a revocation owed, a folder
that cannot be read as it is) takes the lock and decides again under it. Another real
process holds the lock in these tests: anything that tries to take it with
``lock_timeout=0`` gets FolderLockedError at once.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest

from sectigo_iot import SectigoClient
from sectigo_iot.emulator import Emulator
from sectigo_iot.lifecycle import (
    CertificateSpec,
    FolderLockedError,
    LifecycleError,
    PendingAttempt,
    ensure_certificate,
    renew_due,
)
from sectigo_iot.lifecycle._journal import write_journal
from tests.lifecycle.helpers import DAY, SPEC, LockWaits, held_lock, journal_of, key_matches

pytestmark = pytest.mark.sectigo_emulator(key_type="ec-p256")


def lock_record(folder: Path) -> dict[str, object]:
    record = json.loads((folder / ".lock").read_text())
    assert isinstance(record, dict)
    return record


def unsent_attempt(emulator: Emulator) -> PendingAttempt:
    """An attempt made now whose batch was never sent (it holds a PKCS#12 password)."""
    return PendingAttempt(
        batch_name="never-sent",
        pkcs12_password="Aa1-never-used-password",
        attempted_at=datetime.fromtimestamp(emulator.clock(), timezone.utc),
        spec=SPEC,
    )


async def test_a_kept_check_never_takes_the_lock(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    issued = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert issued.bundle is not None
    told = LockWaits()
    with held_lock(tmp_path) as holder:
        before = lock_record(tmp_path)
        kept = await ensure_certificate(
            sectigo_client, SPEC, tmp_path, lock_timeout=0, on_lock_wait=told
        )
        [again] = await renew_due(sectigo_client, [tmp_path], lock_timeout=0)
        assert lock_record(tmp_path) == before  # the holder's record: nothing written
    assert before["pid"] == holder.pid
    assert (kept.action, kept.reason, kept.revoked) == ("kept", "valid", False)
    assert (again.action, again.error) == ("kept", None)
    for result in (kept, again):
        assert result.bundle is not None and key_matches(result.bundle)
        assert result.bundle.serial_number == issued.bundle.serial_number
    assert told == []
    assert sectigo_emulator.licenses_used == 1


@pytest.mark.parametrize("why", ["due", "forced", "names"])
async def test_a_folder_that_needs_work_waits_for_the_lock(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path, why: str
) -> None:
    await ensure_certificate(sectigo_client, SPEC, tmp_path)
    spec = SPEC
    if why == "due":
        sectigo_emulator.clock.advance(340 * DAY)
    elif why == "names":
        spec = CertificateSpec(
            authority_id=1, common_name="node.example.com", dns_names=["b.example.com"]
        )
    requests = sum(sectigo_emulator.stats.requests.values())
    told = LockWaits()
    with held_lock(tmp_path) as holder, pytest.raises(FolderLockedError) as caught:
        await ensure_certificate(
            sectigo_client,
            spec,
            tmp_path,
            force=why == "forced",
            lock_timeout=0.2,
            on_lock_wait=told,
        )
    assert caught.value.holder.pid == holder.pid
    assert [who.pid for _, who in told] == [holder.pid]
    assert sum(sectigo_emulator.stats.requests.values()) == requests  # nothing sent
    assert sectigo_emulator.licenses_used == 1
    # released: the work is done under the lock
    done = await ensure_certificate(sectigo_client, spec, tmp_path, force=why == "forced")
    assert done.action == "renewed" and done.reason == why
    assert lock_record(tmp_path)["pid"] == os.getpid()


async def test_leftovers_are_removed_under_the_lock_only(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    await ensure_certificate(sectigo_client, SPEC, tmp_path)
    leftover = tmp_path / "batch-12.zip"
    leftover.write_bytes(b"PK\x03\x04 left by a crash")
    with held_lock(tmp_path):
        with pytest.raises(FolderLockedError):
            await ensure_certificate(sectigo_client, SPEC, tmp_path, lock_timeout=0)
        assert leftover.exists()  # never removed while another process holds the folder
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path, lock_timeout=0)
    assert kept.action == "kept" and not leftover.exists()


@pytest.mark.parametrize("state", ["pending", "revoke_owed", "no_journal", "new_params"])
async def test_a_journal_that_asks_for_more_than_a_keep_goes_the_locked_way(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path, state: str
) -> None:
    """A pending attempt is always finished under the lock; a journal to update or a
    revocation owed is written under it."""
    issued = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert issued.bundle is not None
    journal = journal_of(tmp_path)
    spec = SPEC
    if state == "pending":
        pending = unsent_attempt(sectigo_emulator)
        write_journal(tmp_path, journal.replace(pending=pending))
    elif state == "revoke_owed":
        write_journal(tmp_path, journal.replace(revoke_pending=("ABCDEF",)))
    elif state == "no_journal":
        (tmp_path / "journal.json").unlink()
    else:
        spec = CertificateSpec(
            authority_id=1, common_name="node.example.com", params={"organizationName": "X"}
        )
    written = (tmp_path / "journal.json").read_bytes() if state != "no_journal" else None
    requests = sum(sectigo_emulator.stats.requests.values())
    with held_lock(tmp_path):
        with pytest.raises(FolderLockedError):
            await ensure_certificate(sectigo_client, spec, tmp_path, lock_timeout=0)
        if written is None:
            assert not (tmp_path / "journal.json").exists()
        else:
            assert (tmp_path / "journal.json").read_bytes() == written
    assert sum(sectigo_emulator.stats.requests.values()) == requests
    if state == "new_params":  # kept, and the journal now records the spec asked for
        kept = await ensure_certificate(sectigo_client, spec, tmp_path)
        assert kept.action == "kept" and journal_of(tmp_path).spec == spec


@pytest.mark.parametrize("attack", ["live_outside", "fifo_key", "nested_journal"])
async def test_a_hostile_folder_is_never_kept_by_the_unlocked_read(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path, attack: str
) -> None:
    """The unlocked read refuses what the locked one refuses (without blocking on a
    FIFO, without following a link out of the folder): it goes the locked way, which
    raises the typed error once the lock is free."""
    folder = tmp_path / "node"
    issued = await ensure_certificate(sectigo_client, SPEC, folder)
    assert issued.bundle is not None
    serial = issued.bundle.serial_number
    if attack == "live_outside":  # a valid copy outside, which must not be kept
        outside = tmp_path / "elsewhere" / "versions"
        outside.mkdir(parents=True)
        (folder / "versions" / serial).rename(outside / serial)
        (folder / "live").unlink()
        (folder / "live").symlink_to(f"../elsewhere/versions/{serial}")
    elif attack == "fifo_key":
        key = folder / "versions" / serial / "key.pem"
        key.unlink()
        os.mkfifo(key)
    else:
        (folder / "journal.json").write_text("[" * 60_000 + "]" * 60_000)
    with held_lock(folder), pytest.raises(FolderLockedError):
        await ensure_certificate(sectigo_client, SPEC, folder, lock_timeout=0)
    with pytest.raises(LifecycleError) as caught:
        await ensure_certificate(sectigo_client, SPEC, folder, lock_timeout=0)
    assert not isinstance(caught.value, FolderLockedError)
    assert sectigo_emulator.licenses_used == 1


async def test_unlocked_checks_racing_renewals_see_whole_certificates(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    """Checks that run while the folder is renewed again and again (worker threads
    doing the file work at the same time) each get one whole certificate, key
    included: one that was live, never a mix, never an error."""
    issued = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert issued.bundle is not None
    serials = {issued.bundle.serial_number}
    seen: list[str] = []
    renewing = True

    async def renew() -> None:
        nonlocal renewing
        for _ in range(6):
            result = await ensure_certificate(sectigo_client, SPEC, tmp_path, force=True)
            assert result.bundle is not None
            serials.add(result.bundle.serial_number)
        renewing = False

    async def check() -> None:
        while renewing:
            result = await ensure_certificate(sectigo_client, SPEC, tmp_path)
            assert result.action == "kept" and result.bundle is not None
            assert key_matches(result.bundle)
            seen.append(result.bundle.serial_number)

    async with anyio.create_task_group() as group:
        group.start_soon(renew)
        for _ in range(3):
            group.start_soon(check)
    assert seen and set(seen) <= serials and len(serials) == 7
    assert sectigo_emulator.licenses_used == 7


async def test_only_a_journal_without_a_secret_is_remembered(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    """Checks decode a settled journal once per content; a pending attempt (it holds
    the PKCS#12 password) is decoded at each read and never kept."""
    from sectigo_iot.lifecycle._journal import _settled, read_settled_journal

    await ensure_certificate(sectigo_client, SPEC, tmp_path)
    settled = read_settled_journal(tmp_path)
    assert settled is not None and read_settled_journal(tmp_path) is settled
    pending = unsent_attempt(sectigo_emulator)
    write_journal(tmp_path, settled.replace(pending=pending))
    remembered = _settled.cache_info().currsize
    first, second = read_settled_journal(tmp_path), read_settled_journal(tmp_path)
    assert first is not None and first.pending == pending and first is not second
    assert _settled.cache_info().currsize == remembered
    write_journal(tmp_path, settled)  # the same content again: the same object
    assert read_settled_journal(tmp_path) is settled
