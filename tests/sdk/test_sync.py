"""``SyncSectigoClient``: the async client's surface, blocking, shared by threads, through
the emulator; its types under mypy --strict; closing and interpreter exit."""

from __future__ import annotations

import concurrent.futures
import gc
import inspect
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from sectigo_iot import (
    Batch,
    BatchRejectedError,
    InvalidInputError,
    NotFoundError,
    SectigoClient,
    SectigoError,
    SyncSectigoClient,
)
from sectigo_iot.certs import open_batch_zip, write_pem
from sectigo_iot.emulator import Emulator
from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate
from sectigo_iot.resources._base import Resource

P12_PASSWORD = "p12-sync-Secret-42"


def sync_client(emulator: Emulator, **kwargs: Any) -> SyncSectigoClient:
    """A blocking client wired to ``emulator`` as ``Emulator.client()`` wires an async one."""
    kwargs.setdefault("clock", emulator.clock)
    kwargs.setdefault("token_store", "memory")
    username, password = next(iter(emulator.config.users.items()))
    return SyncSectigoClient(
        username,
        password,
        base_url=emulator.base_url,
        transport=emulator.transport(),
        allow_insecure_http=True,
        **kwargs,
    )


@pytest.fixture
def client(sectigo_emulator: Emulator) -> Iterator[SyncSectigoClient]:
    with sync_client(sectigo_emulator) as client:
        yield client


# -- the same surface ------------------------------------------------------------------


def surface(obj: object) -> dict[str, object]:
    """Each public name of ``obj``: "property", a namespace's surface, or a signature."""
    found: dict[str, object] = {}
    for name in dir(obj):
        if name.startswith("_"):
            continue
        if isinstance(inspect.getattr_static(obj, name), property):
            found[name] = "property"
            continue
        value = getattr(obj, name)
        if isinstance(value, Resource) or type(value).__module__ == "sectigo_iot._sync":
            found[name] = surface(value)
        else:
            assert callable(value), name
            found[name] = inspect.signature(value)
    return found


async def test_same_names_and_signatures(sectigo_emulator: Emulator) -> None:
    """Every public method of the client and of each namespace, with its signature: a
    method added to the async client and not to the blocking one fails here."""
    async with sectigo_emulator.client() as async_client:
        expected = surface(async_client)
    with sync_client(sectigo_emulator) as client:
        actual = surface(client)
    assert expected.pop("aclose") == inspect.signature(client.close)
    assert actual.pop("close") == inspect.signature(client.close)
    assert actual.pop("run") == inspect.signature(client.run)
    from_env = actual.pop("from_env")
    assert isinstance(from_env, inspect.Signature)
    assert from_env.return_annotation == "SyncSectigoClient"
    assert from_env.replace(return_annotation="SectigoClient") == expected.pop("from_env")
    assert actual == expected
    assert inspect.signature(SyncSectigoClient) == inspect.signature(SectigoClient)
    assert not inspect.iscoroutinefunction(client.batches.wait)
    assert not inspect.iscoroutinefunction(client.batches.wait)


def test_typed_under_mypy_strict(tmp_path: Path) -> None:
    """Results have the async methods' types, arguments are checked (not ``Any``)."""
    from mypy import api

    source = tmp_path / "uses_sync.py"
    source.write_text(
        textwrap.dedent(
            """
            from sectigo_iot import SyncSectigoClient
            from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate

            client = SyncSectigoClient("user", "password")
            reveal_type(client.batches.get(1))
            reveal_type(client.certificates.find(common_name="a.example.com"))
            reveal_type(client.batches.download(1, "out"))
            reveal_type(client.authenticate())
            spec = CertificateSpec(authority_id=1, common_name="a.example.com")
            reveal_type(client.run(ensure_certificate, spec, "folder"))
            client.batches.get("1")
            client.batches.create(1, common_name="a.example.com")
            """
        )
    )
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    assert status == 1, out + err
    mine = [line for line in out.splitlines() if line.startswith(str(source))]
    lines = [line.split(": ", 1)[1] for line in mine]
    assert lines[:5] == [
        'note: Revealed type is "sectigo_iot.models._models.Batch"',
        'note: Revealed type is "sectigo_iot.resources.certificates.FoundCertificates"',
        'note: Revealed type is "pathlib.Path"',
        'note: Revealed type is "sectigo_iot.auth._tokens.TokenPair"',
        'note: Revealed type is "sectigo_iot.lifecycle._ensure.CertificateResult"',
    ]
    errors = "\n".join(lines[5:])
    assert 'Argument 1 has incompatible type "str"; expected "int"' in errors
    assert 'Missing named argument "pkcs12_password"' in errors


# -- the main flow, from several threads at once -------------------------------------


def issue_and_revoke(client: SyncSectigoClient, folder: Path, name: str) -> str:
    """List, create, wait, download, write PEM, find, revoke: the serial revoked."""
    authority = client.authorities.list()[0]
    batch = client.batches.create(authority.id, common_name=name, pkcs12_password=P12_PASSWORD)
    assert isinstance(batch, Batch)
    ready = client.batches.wait(batch.batch_id, timeout=30)
    archive = client.batches.download(ready.batch_id, folder)
    [bundle] = open_batch_zip(archive, P12_PASSWORD)
    written = write_pem(bundle, folder / "pem")
    assert written["key"].stat().st_mode & 0o777 == 0o600
    [found] = client.certificates.find(common_name=name)
    assert found.serial_number == bundle.serial_number
    client.certificates.revoke(authority.profile_id, bundle.serial_number, "superseded")
    [revoked] = client.certificates.find(serial_number=bundle.serial_number)
    assert revoked.status == "REVOKED"
    return bundle.serial_number


def test_main_flow_from_four_threads(
    sectigo_emulator: Emulator, client: SyncSectigoClient, tmp_path: Path
) -> None:
    """Four threads share one client: each issues and revokes its certificate; one
    login serves them all (the token logic runs once, in the client's loop)."""
    start = threading.Barrier(4)

    def worker(number: int) -> str:
        folder = tmp_path / f"worker-{number}"
        folder.mkdir()
        start.wait()
        return issue_and_revoke(client, folder, f"node-{number}.example.com")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        serials = list(pool.map(worker, range(4)))
    assert len(set(serials)) == 4
    assert sorted(r.serial_number for r in sectigo_emulator.revocations()) == sorted(serials)
    assert sectigo_emulator.stats.logins == 1
    assert client.authorities.balance(1) == 6


def test_same_errors(client: SyncSectigoClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.batches.get(424242)
    assert caught.value.status_code == 404
    with pytest.raises(InvalidInputError):
        client.batches.get(0)
    with pytest.raises(InvalidInputError, match="pkcs12_password"):
        client.batches.create(1, common_name="a.example.com", pkcs12_password="")


@pytest.mark.sectigo_emulator(batch_outcome="rejected")
def test_domain_errors_cross_the_thread(client: SyncSectigoClient) -> None:
    batch = client.batches.create(1, common_name="no.example.com", pkcs12_password=P12_PASSWORD)
    with pytest.raises(BatchRejectedError) as caught:
        client.batches.wait(batch.batch_id, timeout=30)
    assert caught.value.batch is not None and caught.value.batch.batch_id == batch.batch_id


def test_client_methods_and_properties(sectigo_emulator: Emulator) -> None:
    with sync_client(sectigo_emulator) as client:
        assert client.tokens is None
        pair = client.authenticate()
        assert client.tokens == pair and client.ensure_authenticated() == pair
        assert client.username == "tester" and client.base_url == sectigo_emulator.base_url
        assert client.clock is sectigo_emulator.clock
        assert "supersecretsquirrel" not in repr(client)
        client.logout()
        assert client.tokens is None and client.load_tokens() is None


def test_from_env(sectigo_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECTIGO_USERNAME", "tester")
    monkeypatch.setenv("SECTIGO_PASSWORD", "supersecretsquirrel")
    monkeypatch.setenv("SECTIGO_ENDPOINT", sectigo_emulator.base_url)
    with SyncSectigoClient.from_env(
        transport=sectigo_emulator.transport(), token_store="memory", allow_insecure_http=True
    ) as client:
        assert isinstance(client, SyncSectigoClient)
        assert [a.id for a in client.authorities.list()] == [1]


@pytest.mark.sectigo_emulator(key_type="ec-p256")
def test_run_drives_lifecycle_helpers(client: SyncSectigoClient, tmp_path: Path) -> None:
    """``run`` awaits an async helper that takes a client (here ``ensure_certificate``)."""
    spec = CertificateSpec(authority_id=1, common_name="kept.example.com")
    folder = tmp_path / "kept"
    first = client.run(ensure_certificate, spec, folder)
    assert first.action == "issued" and (folder / "cert.pem").is_file()
    assert client.run(ensure_certificate, spec, folder).action == "kept"


# -- closing, and exit without closing -----------------------------------------------


def test_close_ends_the_thread_and_cancels_running_calls(sectigo_emulator: Emulator) -> None:
    client = sync_client(sectigo_emulator)
    batch = client.batches.create(1, common_name="slow.example.com", pkcs12_password=P12_PASSWORD)
    loop_thread = client._loop.thread
    outcome: list[BaseException] = []

    def waiting() -> None:
        try:
            client.run(_sleep_forever)
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=waiting)
    caller.start()
    time.sleep(0.2)
    started = time.monotonic()
    client.close()
    caller.join(10)
    assert time.monotonic() - started < 5
    assert [type(exc) for exc in outcome] == [SectigoError]
    assert "closed" in str(outcome[0]) and "while this call was running" in str(outcome[0])
    assert not loop_thread.is_alive()
    client.close()  # twice is fine
    with pytest.raises(SectigoError, match="closed"):
        client.batches.get(batch.batch_id)


async def _sleep_forever(client: SectigoClient) -> None:
    await anyio.sleep_forever()


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt, raised in the waiting thread by a signal."""


def test_an_interrupt_cancels_the_call_in_the_loop(client: SyncSectigoClient) -> None:
    cancelled = threading.Event()

    async def sleep_until_cancelled(async_client: SectigoClient) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupt):
            client.run(sleep_until_cancelled)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert cancelled.wait(5)
    assert [a.id for a in client.authorities.list()] == [1]  # the client goes on


def test_with_block_closes(sectigo_emulator: Emulator) -> None:
    with sync_client(sectigo_emulator) as client:
        client.authorities.list()
    assert not client._loop.thread.is_alive()
    with pytest.raises(SectigoError, match="closed"):
        client.authorities.list()


def test_a_bad_argument_leaves_no_thread() -> None:
    before = threading.active_count()
    with pytest.raises(InvalidInputError):
        SyncSectigoClient("user", "password", base_url="http://example.com")
    assert threading.active_count() == before


def test_forgotten_client_does_not_hang_exit() -> None:
    """A client never closed, with a call still running in another thread: the
    interpreter exits at once, cleanly."""
    script = textwrap.dedent(
        """
        import threading
        from sectigo_iot import SyncSectigoClient
        from sectigo_iot.emulator import Emulator

        emulator = Emulator(processing_delay=3600)
        client = SyncSectigoClient(
            "tester", "supersecretsquirrel", base_url=emulator.base_url,
            transport=emulator.transport(), token_store="memory",
            allow_insecure_http=True, clock=emulator.clock,
        )
        batch = client.batches.create(
            1, common_name="left.example.com", pkcs12_password="p12-left-Secret-42"
        )

        def wait():
            try:
                client.batches.wait(batch.batch_id)
            except BaseException as exc:  # cancelled at exit
                print(type(exc).__name__, flush=True)

        threading.Thread(target=wait, daemon=True).start()
        print("issued", batch.batch_id, flush=True)
        """
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("issued ")
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_dropped_client_is_closed(sectigo_emulator: Emulator) -> None:
    client = sync_client(sectigo_emulator)
    loop_thread = client._loop.thread
    del client
    gc.collect()
    loop_thread.join(10)
    assert not loop_thread.is_alive()


def test_a_namespace_keeps_its_client_alive(sectigo_emulator: Emulator) -> None:
    assert [a.id for a in sync_client(sectigo_emulator).authorities.list()] == [1]
    authorities = sync_client(sectigo_emulator).authorities
    listing = sync_client(sectigo_emulator).batches.list
    gc.collect()  # nothing else references either client now
    assert [a.id for a in authorities.list()] == [1]
    assert listing() == []
    loop_thread = authorities._loop.thread
    del authorities, listing
    gc.collect()
    loop_thread.join(10)
    assert not loop_thread.is_alive()  # dropped with its last namespace: closed


def test_a_forked_child_gets_an_error_at_once_never_a_hang() -> None:
    """After os.fork() the client's loop thread exists only in the parent: the child's
    call, close and exit must not wait for it. A hang fails by the subprocess timeout."""
    script = textwrap.dedent(
        """
        import os, sys
        from sectigo_iot import SectigoError, SyncSectigoClient
        from sectigo_iot.emulator import Emulator

        emulator = Emulator()
        client = SyncSectigoClient(
            "tester", "supersecretsquirrel", base_url=emulator.base_url,
            transport=emulator.transport(), token_store="memory",
            allow_insecure_http=True, clock=emulator.clock,
        )
        client.authorities.list()
        pid = os.fork()
        if pid == 0:
            try:
                client.authorities.list()
            except SectigoError as exc:
                print("child:", exc, flush=True)
            client.close()
            sys.exit(0)  # the interpreter's exit runs the client's finalizer too
        _, status = os.waitpid(pid, 0)
        print("parent:", len(client.authorities.list()), os.waitstatus_to_exitcode(status))
        client.close()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    child, parent = result.stdout.splitlines()
    assert child.startswith("child: ") and "os.fork()" in child and "new client" in child
    assert parent == "parent: 1 0"  # the parent's client works on
    assert "Traceback" not in result.stderr
