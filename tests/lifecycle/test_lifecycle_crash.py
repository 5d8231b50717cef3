"""A renewal killed at each step, then started again with a fresh client: it resumes,
never spends a second license, and says so when it cannot tell.

A kill is simulated by holding the flow at the step (an emulator fault on the next
request, or the module's ``_checkpoint`` test hook for the local steps) and cancelling
the task: what is on disk is what a killed process leaves. Two tests use real processes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from sectigo_iot import AmbiguousRequestError, SectigoClient
from sectigo_iot.emulator import Emulator
from sectigo_iot.lifecycle import (
    PENDING_SETTLE,
    CertificateSpec,
    _ensure,
    ensure_certificate,
    read_journal,
)
from tests.lifecycle.helpers import CREATE, DAY, SPEC, journal_of, live_pair

pytestmark = pytest.mark.sectigo_emulator(key_type="ec-p256")


def batch_id_journaled(folder: Path) -> bool:
    journal = read_journal(folder)
    return journal is not None and journal.pending is not None and bool(journal.pending.batch_id)


async def killed_when(
    flow: Callable[[], Coroutine[object, object, object]],
    reached: Callable[[], bool],
    within: float = 10,
) -> None:
    """Run ``flow`` until ``reached()``, then cancel it, as a kill would stop it."""
    async with anyio.create_task_group() as group:
        group.start_soon(flow)
        with anyio.fail_after(within):
            while not reached():  # noqa: ASYNC110 (disk and emulator state: no event)
                await anyio.sleep(0.01)
        group.cancel_scope.cancel()


def serial_at(folder: Path) -> str:
    """The serial of live/cert.pem, checking that live/key.pem is its key."""
    serial, matches = live_pair(folder)
    assert matches
    return serial


async def killed_at_step(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, folder: Path, step: str
) -> None:
    """Run ``ensure_certificate`` until it reaches the local ``step`` (the module's
    ``_checkpoint`` hook), then cancel it there, as a kill would stop it."""
    held: list[str] = []

    async def hold(reached: str) -> None:
        if reached == step:
            held.append(reached)
            await anyio.sleep_forever()

    with monkeypatch.context() as patch:
        patch.setattr(_ensure, "_checkpoint", hold)
        async with emulator.client() as client:
            await killed_when(lambda: ensure_certificate(client, SPEC, folder), lambda: bool(held))


async def test_killed_before_create_is_ambiguous_until_settled_then_sent_again(
    sectigo_emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fault = sectigo_emulator.inject("PUT", CREATE, "delay", seconds=30)  # never served
    async with sectigo_emulator.client() as client:
        await killed_when(
            lambda: ensure_certificate(client, SPEC, tmp_path), lambda: fault.hits == 1
        )
    pending = journal_of(tmp_path).pending
    assert pending is not None and pending.batch_id is None
    assert sectigo_emulator.batches() == []
    password = pending.pkcs12_password
    assert password not in repr(journal_of(tmp_path))

    async with sectigo_emulator.client() as client:
        with pytest.raises(AmbiguousRequestError) as caught:
            await ensure_certificate(client, SPEC, tmp_path)
    assert caught.value.batch_name == pending.batch_name
    assert password not in str(caught.value) and password not in caplog.text
    assert journal_of(tmp_path).pending == pending  # left for the next run or a person
    assert sectigo_emulator.licenses_used == 0

    sectigo_emulator.clock.advance(PENDING_SETTLE.total_seconds())
    async with sectigo_emulator.client() as client:
        result = await ensure_certificate(client, SPEC, tmp_path)
    assert (result.action, result.reason) == ("resumed", "pending")
    assert result.batch is not None and result.batch.batch_name == pending.batch_name
    assert sectigo_emulator.licenses_used == 1 and sectigo_emulator.issued_count == 1
    assert result.bundle is not None and serial_at(tmp_path) == result.bundle.serial_number
    assert password not in caplog.text


async def test_killed_after_create_without_reply_finds_the_batch_by_name(
    sectigo_emulator: Emulator, tmp_path: Path
) -> None:
    sectigo_emulator.inject("PUT", CREATE, "delay_after", seconds=30)  # done, reply held
    async with sectigo_emulator.client() as client:
        await killed_when(
            lambda: ensure_certificate(client, SPEC, tmp_path),
            lambda: len(sectigo_emulator.batches()) == 1,
        )
    pending = journal_of(tmp_path).pending
    assert pending is not None and pending.batch_id is None
    assert sectigo_emulator.licenses_used == 1

    async with sectigo_emulator.client() as client:
        result = await ensure_certificate(client, SPEC, tmp_path)
    assert result.action == "resumed" and result.batch is not None
    assert result.batch.batch_id == sectigo_emulator.batches()[0].batch_id
    assert sectigo_emulator.licenses_used == 1 and sectigo_emulator.issued_count == 1
    assert result.bundle is not None and serial_at(tmp_path) == result.bundle.serial_number


async def test_killed_after_the_batch_id_is_journaled(
    sectigo_emulator: Emulator, tmp_path: Path
) -> None:
    sectigo_emulator.inject("GET", "/api/v1/batches/{id}", "delay", seconds=30)  # the wait
    async with sectigo_emulator.client() as client:
        await killed_when(
            lambda: ensure_certificate(client, SPEC, tmp_path),
            lambda: batch_id_journaled(tmp_path),
        )
    pending = journal_of(tmp_path).pending
    assert pending is not None and pending.batch_id == sectigo_emulator.batches()[0].batch_id

    async with sectigo_emulator.client() as client:
        result = await ensure_certificate(client, SPEC, tmp_path)
    assert result.action == "resumed" and result.batch is not None
    assert result.batch.batch_id == pending.batch_id
    assert sectigo_emulator.licenses_used == 1 and sectigo_emulator.issued_count == 1


async def test_killed_after_download(
    sectigo_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await killed_at_step(sectigo_emulator, monkeypatch, tmp_path, "downloaded")
    pending = journal_of(tmp_path).pending
    assert pending is not None and pending.batch_id is not None
    assert (tmp_path / f"batch-{pending.batch_id}.zip").is_file()
    assert not (tmp_path / "live").exists()

    async with sectigo_emulator.client() as client:
        result = await ensure_certificate(client, SPEC, tmp_path)
    assert result.action == "resumed" and result.batch is not None
    assert result.batch.batch_id == pending.batch_id
    assert not list(tmp_path.glob("batch-*.zip"))
    assert sectigo_emulator.licenses_used == 1


async def test_killed_after_the_pem_files_of_a_renewal(
    sectigo_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sectigo_emulator.client() as client:
        first = await ensure_certificate(client, SPEC, tmp_path)
    assert first.bundle is not None
    old = first.bundle.serial_number
    sectigo_emulator.clock.advance(340 * DAY)
    await killed_at_step(sectigo_emulator, monkeypatch, tmp_path, "files_written")
    assert len(list((tmp_path / "versions").iterdir())) == 2  # the new version is written
    assert serial_at(tmp_path) == old  # but live still pairs the old key with the old cert

    async with sectigo_emulator.client() as client:
        result = await ensure_certificate(client, SPEC, tmp_path, revoke_replaced=True)
    assert (result.action, result.replaced_serial, result.revoked) == ("resumed", old, True)
    assert result.bundle is not None and serial_at(tmp_path) == result.bundle.serial_number
    assert sectigo_emulator.licenses_used == 2
    assert [r.serial_number for r in sectigo_emulator.revocations()] == [old]


# -- real processes ------------------------------------------------------------------

WORKER = """
import sys, anyio
from sectigo_iot import SectigoClient
from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate

async def main(url, folder):
    async with SectigoClient("tester", "supersecretsquirrel", base_url=url,
                             token_store="memory", allow_insecure_http=True) as client:
        spec = CertificateSpec(authority_id=1, common_name="node.example.com")
        result = await ensure_certificate(client, spec, folder)
        print(result.action, flush=True)

anyio.run(main, sys.argv[1], sys.argv[2])
"""


def start_worker(url: str, folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_at_once_one_issues_the_other_waits_and_keeps(tmp_path: Path) -> None:
    with Emulator(key_type="ec-p256", processing_delay=1.5) as emulator:
        with emulator.run_in_thread() as url:
            workers = [start_worker(url, tmp_path) for _ in range(2)]
            outputs = [worker.communicate(timeout=60) for worker in workers]
        assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
        assert sorted(out.strip() for out, _ in outputs) == ["issued", "kept"]
        assert emulator.licenses_used == 1


def test_process_killed_while_waiting_resumes_in_another(tmp_path: Path) -> None:
    with Emulator(key_type="ec-p256", processing_delay=3600) as emulator:
        with emulator.run_in_thread() as url:
            worker = start_worker(url, tmp_path)
            deadline = time.monotonic() + 30
            while True:
                if batch_id_journaled(tmp_path):
                    break
                assert time.monotonic() < deadline and worker.poll() is None
                time.sleep(0.05)
            os.kill(worker.pid, signal.SIGKILL)
            worker.communicate(timeout=10)
            emulator.clock.advance(3600)  # the batch finishes processing
            restarted = start_worker(url, tmp_path)
            out, err = restarted.communicate(timeout=60)
        assert restarted.returncode == 0, err
        assert out.strip() == "resumed"
        assert emulator.licenses_used == 1 and emulator.issued_count == 1


async def test_same_client_resumes_after_its_task_was_cancelled(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    """A cancelled call leaves the client usable; the next call resumes, the one after keeps."""
    sectigo_emulator.inject("PUT", CREATE, "delay_after", seconds=30)
    await killed_when(
        lambda: ensure_certificate(sectigo_client, SPEC, tmp_path),
        lambda: len(sectigo_emulator.batches()) == 1,
    )
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path, renew_before=timedelta(days=30))
    assert (first.action, kept.action) == ("resumed", "kept")
    assert sectigo_emulator.licenses_used == 1


# -- CSR mode: the key is made here, a CSR is uploaded ---------------------------------

CSR_SPEC = CertificateSpec(authority_id=1, common_name="csr.example.com", key_type="ec-p256")


async def test_csr_mode_issues_with_our_own_key_and_keeps_it(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    issued = await ensure_certificate(sectigo_client, CSR_SPEC, tmp_path)
    assert issued.action == "issued" and issued.bundle is not None
    assert (
        issued.bundle.key_type == "ec-p256" and serial_at(tmp_path) == issued.bundle.serial_number
    )
    kept = await ensure_certificate(sectigo_client, CSR_SPEC, tmp_path)
    assert kept.action == "kept" and sectigo_emulator.licenses_used == 1
    verified = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-noout", "-pubkey"],
        capture_output=True,
        text=True,
        check=True,
    )
    derived = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "key.pem"), "-pubout"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert verified.stdout == derived.stdout  # openssl: the certificate is for our key


async def test_a_csr_upload_killed_before_its_reply_is_never_sent_again_by_itself(
    sectigo_emulator: Emulator, tmp_path: Path
) -> None:
    fault = sectigo_emulator.inject("POST", "/api/v1/batches/upload", "delay", seconds=30)
    async with sectigo_emulator.client() as client:
        await killed_when(
            lambda: ensure_certificate(client, CSR_SPEC, tmp_path), lambda: fault.hits == 1
        )
    pending = journal_of(tmp_path).pending
    assert pending is not None and pending.private_key_pem is not None
    assert b"PRIVATE KEY" not in repr(journal_of(tmp_path)).encode()
    sectigo_emulator.clock.advance(2 * PENDING_SETTLE.total_seconds())
    async with sectigo_emulator.client() as client:
        with pytest.raises(AmbiguousRequestError, match="CSR upload"):
            await ensure_certificate(client, CSR_SPEC, tmp_path)
    assert sectigo_emulator.batches() == [] and sectigo_emulator.licenses_used == 0
    assert journal_of(tmp_path).pending == pending  # left for a person
