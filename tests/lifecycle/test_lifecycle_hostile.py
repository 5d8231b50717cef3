"""A folder never stuck, never misled: dead batches, lost revoke replies, batches that
are not the attempt's, aliases of one folder, hostile folder contents, bad create ids,
leftovers. Each test attacks its promise the way the second round of attacks did."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from sectigo_iot import AmbiguousRequestError, SectigoClient
from sectigo_iot.emulator import Emulator
from sectigo_iot.errors import BatchFailedError, BatchRejectedError
from sectigo_iot.lifecycle import (
    PENDING_SETTLE,
    Journal,
    JournalError,
    LifecycleError,
    PendingAttempt,
    ensure_certificate,
    renew_due,
)
from sectigo_iot.lifecycle._journal import write_journal
from tests.lifecycle.helpers import (
    CREATE,
    DAY,
    SPEC,
    LockWaits,
    held_lock,
    journal_of,
    live_pair,
)
from tests.support import rewrite_replies, skip_outside_ci

pytestmark = pytest.mark.sectigo_emulator(key_type="ec-p256")

REVOKE = "/api/v1/certificates/{profile}/revoke"


def journaled_password(folder: Path) -> str:
    """The PKCS#12 password of the pending attempt in ``folder``'s journal."""
    pending = json.loads((folder / "journal.json").read_text())["pending"]
    return str(pending["pkcs12_password"])


# -- 1. a batch that ends rejected, failed or not acceptable -------------------------


@pytest.mark.parametrize("outcome", ["rejected", "failed", "not_acceptable"])
async def test_a_dead_batch_closes_its_attempt_and_the_next_run_starts_anew(
    sectigo_emulator: Emulator, tmp_path: Path, outcome: str
) -> None:
    folder = tmp_path / "node"
    echoed: list[str] = []

    def echo_password(body: dict[str, Any]) -> None:
        """A hostile server: the reject reason repeats the attempt's PKCS#12 password."""
        password = journaled_password(folder)
        echoed.append(password)
        body["rejectReason"] = f"refused, password {password} was seen"

    sectigo_emulator.set_next_outcome(outcome)
    rewrite_replies(sectigo_emulator, "GET", r"/api/v1/batches/\d+", echo_password)
    async with sectigo_emulator.client() as client:
        with pytest.raises((BatchRejectedError, BatchFailedError)) as caught:
            await ensure_certificate(client, SPEC, folder)
    [dead] = sectigo_emulator.batches()
    journal = journal_of(folder)
    assert journal.pending is None and journal.current is None
    failure = journal.last_failure
    assert failure is not None and failure.batch_id == dead.batch_id
    assert failure.batch_name == dead.name
    assert failure.reason.startswith(type(caught.value).__name__)
    assert "refused, password *** was seen" in failure.reason
    text = (folder / "journal.json").read_text()
    assert echoed and echoed[0] not in text and "pkcs12_password" not in text

    # the next run is not stuck on the dead batch: a new attempt, a new batch
    async with sectigo_emulator.client() as client:
        result = await ensure_certificate(client, SPEC, folder)
    assert (result.action, result.reason) == ("issued", "empty")
    assert result.batch is not None and result.batch.batch_id != dead.batch_id
    assert journal_of(folder).last_failure is None
    assert sectigo_emulator.licenses_used == 1  # a dead batch spends no license


async def test_a_rejected_renewal_keeps_the_certificate_and_force_tries_again(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert first.bundle is not None
    sectigo_emulator.set_next_outcome("rejected", reason="Domain validation failed")
    with pytest.raises(BatchRejectedError):
        await ensure_certificate(sectigo_client, SPEC, tmp_path, force=True)
    assert live_pair(tmp_path) == (first.bundle.serial_number, True)
    failure = journal_of(tmp_path).last_failure
    assert failure is not None and "Domain validation failed" in failure.reason
    assert (await ensure_certificate(sectigo_client, SPEC, tmp_path)).action == "kept"
    again = await ensure_certificate(sectigo_client, SPEC, tmp_path, force=True)
    assert again.action == "renewed" and sectigo_emulator.licenses_used == 2


# -- 2. a revoke that reached the server before the reply was lost -------------------


async def test_a_revoke_whose_reply_is_dropped_is_done_on_the_next_run(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert first.bundle is not None
    old = first.bundle.serial_number
    sectigo_emulator.inject("POST", REVOKE, "drop_after")  # revoked; the reply is lost
    # and the SDK cannot confirm it either: the run ends unsure
    sectigo_emulator.inject("POST", "/api/v1/certificates/find", "error", status=503, times=20)
    with pytest.raises(AmbiguousRequestError):
        await ensure_certificate(sectigo_client, SPEC, tmp_path, force=True, revoke_replaced=True)
    assert [r.serial_number for r in sectigo_emulator.revocations()] == [old]
    assert journal_of(tmp_path).revoke_pending == (old,)
    sectigo_emulator.clear_faults()

    # the next run sends the revoke again, hears "already revoked", and counts it done
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert (kept.action, kept.revoked) == ("kept", True)
    assert journal_of(tmp_path).revoke_pending == ()
    assert len(sectigo_emulator.revocations()) == 1
    assert (await ensure_certificate(sectigo_client, SPEC, tmp_path)).revoked is False


REVOKER = """
import sys, anyio
from sectigo_iot import SectigoClient
from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate

async def main(url, folder, force):
    async with SectigoClient("tester", "supersecretsquirrel", base_url=url,
                             token_store="memory", allow_insecure_http=True) as client:
        spec = CertificateSpec(authority_id=1, common_name="node.example.com")
        result = await ensure_certificate(client, spec, folder, force=force == "1",
                                          revoke_replaced=True)
        print(result.action, result.revoked, flush=True)

anyio.run(main, *sys.argv[1:])
"""


def test_process_killed_after_its_revoke_reached_the_server(tmp_path: Path) -> None:
    with Emulator(key_type="ec-p256") as emulator, emulator.run_in_thread() as url:

        def worker(force: str) -> subprocess.Popen[str]:
            args = [sys.executable, "-c", REVOKER, url, str(tmp_path), force]
            return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        first = worker("0")
        out, err = first.communicate(timeout=60)
        assert out.split() == ["issued", "False"], err
        emulator.inject("POST", REVOKE, "delay_after", seconds=60)  # revoked, reply held
        renewing = worker("1")
        deadline = time.monotonic() + 30
        while not emulator.revocations():
            assert time.monotonic() < deadline and renewing.poll() is None
            time.sleep(0.05)
        os.kill(renewing.pid, signal.SIGKILL)
        renewing.communicate(timeout=10)
        emulator.clear_faults()
        [owed] = journal_of(tmp_path).revoke_pending
        assert owed == emulator.revocations()[0].serial_number

        restarted = worker("0")
        out, err = restarted.communicate(timeout=60)
        assert restarted.returncode == 0, err
        assert out.split() == ["kept", "True"]
        assert journal_of(tmp_path).revoke_pending == ()
        assert len(emulator.revocations()) == 1 and emulator.licenses_used == 2


# -- 3. a batch found by name must be the attempt's own ------------------------------


def pending_attempt(folder: Path, name: str, at: datetime) -> PendingAttempt:
    """Journal an attempt whose create was never answered (as a kill leaves it)."""
    pending = PendingAttempt(
        batch_name=name, pkcs12_password="attempt-password-1234", attempted_at=at, spec=SPEC
    )
    folder.mkdir(mode=0o700, exist_ok=True)
    write_journal(folder, Journal(spec=SPEC, pending=pending))
    return pending


def downloads(emulator: Emulator) -> int:
    return sum(n for key, n in emulator.stats.requests.items() if key.endswith("/download"))


def now_of(emulator: Emulator) -> datetime:
    return datetime.fromtimestamp(emulator.clock(), timezone.utc)


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("attempt-password-1234", "its certificate is for other.example.com"),
        ("somebody-elses-password", "password does not open its archive"),
    ],
)
async def test_a_batch_of_the_same_name_made_by_someone_else_is_not_taken(
    sectigo_emulator: Emulator,
    sectigo_client: SectigoClient,
    tmp_path: Path,
    password: str,
    why: str,
) -> None:
    pending = pending_attempt(tmp_path, "sectigo-iot-shared-name", now_of(sectigo_emulator))
    sectigo_emulator.clock.advance(1)
    other = await sectigo_client.batches.create(  # somebody else's, same name, after
        1, common_name="other.example.com", pkcs12_password=password, name=pending.batch_name
    )
    with pytest.raises(AmbiguousRequestError) as caught:
        await ensure_certificate(sectigo_client, SPEC, tmp_path)
    message = str(caught.value)
    assert f"batch {other.batch_id}" in message and why in message
    assert f"sectigo batches -i {other.batch_id}" in message
    assert caught.value.candidates[0].batch_id == other.batch_id
    assert journal_of(tmp_path).pending == pending  # untouched: still the attempt's
    assert not (tmp_path / "live").exists() and not list(tmp_path.glob("batch-*.zip"))


async def test_a_batch_of_the_same_name_made_before_the_attempt_is_never_downloaded(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    old = await sectigo_client.batches.create(
        1, common_name=SPEC.common_name, pkcs12_password="an-older-password", name="reused-name"
    )
    sectigo_emulator.clock.advance(3600)
    pending_attempt(tmp_path, "reused-name", now_of(sectigo_emulator))
    with pytest.raises(AmbiguousRequestError, match="not listed"):
        await ensure_certificate(sectigo_client, SPEC, tmp_path)
    sectigo_emulator.clock.advance(PENDING_SETTLE.total_seconds())
    result = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert result.action == "resumed" and result.batch is not None
    assert result.batch.batch_id != old.batch_id
    assert sectigo_emulator.stats.requests[f"GET /api/v1/batches/{old.batch_id}/download"] == 0
    assert downloads(sectigo_emulator) == 1


# -- 4. aliases of one folder ---------------------------------------------------------


async def test_aliases_of_one_due_folder_spend_one_license(
    sectigo_emulator: Emulator,
    sectigo_client: SectigoClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = tmp_path / "certs" / "node"
    await ensure_certificate(sectigo_client, SPEC, real)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    sectigo_emulator.clock.advance(340 * DAY)
    aliases = [real, tmp_path / "link", real / ".." / "node", Path("certs/node")]
    results = await renew_due(sectigo_client, aliases, concurrency=4)
    assert [(r.folder, r.action) for r in results] == [(real, "renewed")]
    assert sectigo_emulator.licenses_used == 2


# -- 5. hostile folder contents ---------------------------------------------------------


@contextlib.contextmanager
def unblocking(fifo: Path, after: float = 10) -> Iterator[None]:
    """If something blocks opening ``fifo`` for reading, open its other end after
    ``after`` seconds, so that a broken implementation fails instead of hanging."""

    def open_writer() -> None:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    timer = threading.Timer(after, open_writer)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.mark.parametrize("depth", [30_000, 60_000])
async def test_a_deeply_nested_journal_is_a_journal_error(
    sectigo_client: SectigoClient, tmp_path: Path, depth: int
) -> None:
    (tmp_path / "journal.json").write_text("[" * depth + "]" * depth)
    with pytest.raises(JournalError):
        await ensure_certificate(sectigo_client, SPEC, tmp_path)
    [result] = await renew_due(sectigo_client, [tmp_path])
    assert isinstance(result.error, JournalError)


async def test_a_fifo_journal_is_refused_at_once(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    fifo = tmp_path / "journal.json"
    os.mkfifo(fifo)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    with unblocking(fifo):
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            with pytest.raises(JournalError, match="FIFO"):
                await ensure_certificate(sectigo_client, SPEC, tmp_path)
            [result] = await renew_due(sectigo_client, [tmp_path])
            group.cancel_scope.cancel()
    assert isinstance(result.error, JournalError) and "FIFO" in result.detail
    assert ticks > 0


@pytest.mark.parametrize("kind", ["fifo", "device", "symlink"])
async def test_a_key_that_is_not_a_file_is_refused(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path, kind: str
) -> None:
    first = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert first.bundle is not None
    key = tmp_path / "versions" / first.bundle.serial_number / "key.pem"
    key.unlink()
    if kind == "fifo":
        os.mkfifo(key)
    elif kind == "device":
        try:
            os.mknod(key, 0o600 | 0o020000, os.makedev(1, 5))  # a copy of /dev/zero
        except PermissionError:
            skip_outside_ci("making a device node needs CAP_MKNOD (CI runs as root)")
    else:
        key.symlink_to("/dev/zero")
    expected = {"fifo": "FIFO", "device": "character device", "symlink": "symbolic link"}
    with unblocking(key), pytest.raises(LifecycleError, match=expected[kind]):
        await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert sectigo_emulator.licenses_used == 1


@pytest.mark.parametrize("where", ["versions", "version", "live"])
async def test_links_out_of_the_folder_are_refused_and_never_written_through(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path, where: str
) -> None:
    folder = tmp_path / "node"
    first = await ensure_certificate(sectigo_client, SPEC, folder)
    assert first.bundle is not None
    serial = first.bundle.serial_number
    elsewhere = tmp_path / "elsewhere"
    if where == "versions":
        (folder / "versions").rename(elsewhere)
        (folder / "versions").symlink_to(elsewhere)
    elif where == "version":
        elsewhere.mkdir()
        (folder / "versions" / serial).rename(elsewhere / serial)
        (folder / "versions" / serial).symlink_to(elsewhere / serial)
    else:
        (elsewhere / "versions").mkdir(parents=True)
        (folder / "versions" / serial).rename(elsewhere / "versions" / serial)
        (folder / "live").unlink()
        (folder / "live").symlink_to(f"../elsewhere/versions/{serial}")
    before = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))
    for force in (False, True):
        with pytest.raises(LifecycleError, match="move it away"):
            await ensure_certificate(sectigo_client, SPEC, folder, force=force)
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before
    assert sectigo_emulator.licenses_used == 1


READ_ONLY_CHECK = """
import os, sys, anyio
from sectigo_iot import SectigoClient
from sectigo_iot.lifecycle import CertificateSpec, LifecycleError, ensure_certificate

async def main(url, folder, force):
    try:
        open(os.path.join(folder, "probe"), "w").close()
    except PermissionError:
        pass
    else:
        print("WRITABLE", flush=True)
        return
    async with SectigoClient("tester", "supersecretsquirrel", base_url=url,
                             token_store="memory", allow_insecure_http=True) as client:
        spec = CertificateSpec(authority_id=1, common_name="node.example.com")
        try:
            result = await ensure_certificate(client, spec, folder, force=force == "1")
        except LifecycleError as exc:
            print("LifecycleError", exc, flush=True)
        else:
            print(result.action, flush=True)

anyio.run(main, *sys.argv[1:])
"""


def drop_root_powers() -> None:
    """In the child, before exec: take the capabilities that ignore file permissions
    out of the bounding set, so that the exec'd root process obeys them."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP


def test_a_read_only_folder_is_kept_and_only_a_needed_write_fails(tmp_path: Path) -> None:
    """Run in another process; as root, one stripped of the capabilities that ignore
    permissions, so the folder is read-only for it too (skipped only if the process
    can still write there)."""
    folder = tmp_path / "node"
    with Emulator(key_type="ec-p256") as emulator, emulator.run_in_thread() as url:

        async def issue() -> None:
            async with emulator.client() as client:
                await ensure_certificate(client, SPEC, folder)

        anyio.run(issue)
        (folder / "batch-99.zip").write_bytes(b"leftover")  # a removal it cannot make
        listing = sorted((str(p), p.lstat().st_mtime_ns) for p in folder.rglob("*"))
        for path in [folder, *folder.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~0o222)
        try:

            def check(force: str) -> str:
                script = [sys.executable, "-c", READ_ONLY_CHECK, url, str(folder), force]
                done = subprocess.run(
                    script,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    preexec_fn=drop_root_powers if os.geteuid() == 0 else None,
                )
                assert done.returncode == 0, done.stderr
                if done.stdout.strip() == "WRITABLE":
                    skip_outside_ci("this system lets the process write a read-only folder")
                return done.stdout.strip()

            assert check("0") == "kept"
            refused = check("1")
            assert refused.startswith("LifecycleError cannot write in"), refused
        finally:
            for path in [folder, *folder.rglob("*")]:
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | 0o200)
        assert sorted((str(p), p.lstat().st_mtime_ns) for p in folder.rglob("*")) == listing
        assert emulator.licenses_used == 1  # nothing was sent for the refused renewal
        assert emulator.stats.requests[f"PUT {CREATE}"] == 1


# -- 7. a create answered with an id that is not a positive integer ------------------


@pytest.mark.parametrize("bad_id", [0, -7])
async def test_a_create_with_a_bad_batch_id_is_looked_up_and_the_journal_stays_readable(
    sectigo_emulator: Emulator, tmp_path: Path, bad_id: int
) -> None:
    def spoil(body: dict[str, Any]) -> None:
        body["batchId"] = bad_id

    rewrite_replies(sectigo_emulator, "PUT", CREATE, spoil)
    hidden = True

    def hide(body: Any) -> None:
        if hidden:
            body.clear() if isinstance(body, list) else body.update(content=[])

    rewrite_replies(sectigo_emulator, "GET", r"/api/v1/batches", hide)
    async with sectigo_emulator.client() as client:
        with pytest.raises(AmbiguousRequestError, match="not a positive integer"):
            await ensure_certificate(client, SPEC, tmp_path)
    pending = journal_of(tmp_path).pending  # readable: the bad id was never written
    assert pending is not None and pending.batch_id is None
    [made] = sectigo_emulator.batches()
    assert made.name == pending.batch_name

    hidden = False  # listed now: the next run takes it by name
    async with sectigo_emulator.client() as client:
        result = await ensure_certificate(client, SPEC, tmp_path)
    assert result.action == "resumed" and result.batch is not None
    assert result.batch.batch_id == made.batch_id and sectigo_emulator.licenses_used == 1


async def test_download_leftovers_go_at_the_next_run_that_keeps_the_folder(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    await ensure_certificate(sectigo_client, SPEC, tmp_path)
    for batch_id in (12, 345):
        (tmp_path / f"batch-{batch_id}.zip").write_bytes(b"PK\x03\x04 left by a crash")
    kept = await ensure_certificate(sectigo_client, SPEC, tmp_path)
    assert kept.action == "kept" and not list(tmp_path.glob("batch-*.zip"))


# -- 13. a dry run on a valid folder ---------------------------------------------------


async def test_a_dry_run_on_a_valid_folder_replaces_nothing(
    sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    await ensure_certificate(sectigo_client, SPEC, tmp_path)
    plan = await ensure_certificate(sectigo_client, SPEC, tmp_path, dry_run=True)
    assert (plan.action, plan.replaced_serial, plan.dry_run) == ("kept", None, True)


# -- under trio too ---------------------------------------------------------------------


def test_issue_keep_and_a_closed_attempt_under_trio(tmp_path: Path) -> None:
    async def main() -> list[str]:
        with Emulator(key_type="ec-p256") as emulator:
            emulator.set_next_outcome("rejected")
            async with emulator.client() as client:
                actions = []
                try:
                    await ensure_certificate(client, SPEC, tmp_path)
                except BatchRejectedError:
                    actions.append("rejected")
                for _ in range(2):
                    actions.append((await ensure_certificate(client, SPEC, tmp_path)).action)
                return actions

    assert anyio.run(main, backend="trio") == ["rejected", "issued", "kept"]


# -- 6. a folder locked by another process ---------------------------------------------


async def test_a_locked_folder_says_who_holds_it_and_gives_up_after_lock_timeout(
    sectigo_emulator: Emulator, sectigo_client: SectigoClient, tmp_path: Path
) -> None:
    import socket

    from sectigo_iot.lifecycle import FolderLockedError

    told = LockWaits()
    with held_lock(tmp_path) as holder:
        with pytest.raises(FolderLockedError) as caught:
            await ensure_certificate(
                sectigo_client, SPEC, tmp_path, lock_timeout=0.3, on_lock_wait=told
            )
        [result] = await renew_due(sectigo_client, [tmp_path], lock_timeout=0)
    assert [(folder, who.pid, who.host) for folder, who in told] == [
        (tmp_path, holder.pid, socket.gethostname())
    ]
    assert caught.value.holder.pid == holder.pid
    assert f"locked by pid {holder.pid}" in str(caught.value) and "0.3 s" in str(caught.value)
    assert isinstance(result.error, FolderLockedError)
    assert sum(sectigo_emulator.stats.requests.values()) == 0  # nothing sent while locked
    # released: the folder is worked on, and the lock names its new holder
    assert (await ensure_certificate(sectigo_client, SPEC, tmp_path, lock_timeout=0)).action == (
        "issued"
    )
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
