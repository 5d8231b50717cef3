"""Token stores: file permissions and atomicity, keyring fallback, foreign entries."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from keyring.backend import KeyringBackend

from sectigo_iot import FileTokenStore, KeyringTokenStore, MemoryTokenStore, SectigoClient
from sectigo_iot.auth import resolve_token_store
from tests.support import BASE, Clock, token_pair

DEVICES = f"{BASE}/api/v1/devices"
HANG_LIMIT = 60.0  # seconds a hung backend waits for release: far beyond any bound below


class HangingKeyring(KeyringBackend):
    """A keyring whose every call blocks until the test releases it."""

    priority = 1

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.running = 0
        self.idle = threading.Condition()

    def _hang(self) -> None:
        with self.idle:
            self.calls += 1
            self.running += 1
        self.release.wait(HANG_LIMIT)
        with self.idle:
            self.running -= 1
            self.idle.notify_all()

    def get_password(self, service: str, username: str) -> str | None:
        self._hang()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._hang()

    def delete_password(self, service: str, username: str) -> None:
        self._hang()


@pytest.fixture
def hanging_keyring() -> Iterator[HangingKeyring]:
    """The process keyring hangs during the test; released (no thread left) after it."""
    import keyring

    backend = HangingKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
        backend.release.set()
        with backend.idle:  # the abandoned worker threads return at once
            assert backend.idle.wait_for(lambda: backend.running == 0, timeout=HANG_LIMIT)


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


async def test_file_store_modes_and_round_trip(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    await store.save("iot.sectigo.com", "alice", "data-1")
    path = store.path_for("iot.sectigo.com", "alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert await store.load("iot.sectigo.com", "alice") == "data-1"
    assert await store.load("iot.sectigo.com", "bob") is None
    await store.delete("iot.sectigo.com", "alice")
    await store.delete("iot.sectigo.com", "alice")  # no error the second time
    assert await store.load("iot.sectigo.com", "alice") is None


async def test_file_store_replaces_atomically(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    await store.save("h", "u", "old")
    inode = store.path_for("h", "u").stat().st_ino
    await store.save("h", "u", "new")
    path = store.path_for("h", "u")
    assert path.read_text() == "new"
    assert path.stat().st_ino != inode  # a new file was renamed over the old one
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


async def test_file_store_keeps_hosts_and_users_apart(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path)
    keys = {("a.example", "u"), ("b.example", "u"), ("a.example", "v")}
    assert len({store.path_for(h, u) for h, u in keys}) == 3


def test_two_processes_sharing_the_file_store_never_tear_it(tmp_path: Path) -> None:
    script = (
        "import anyio, sys\n"
        "from sectigo_iot import FileTokenStore\n"
        "async def main():\n"
        f"    store = FileTokenStore({str(tmp_path)!r})\n"
        "    for i in range(200):\n"
        "        await store.save('h', 'u', sys.argv[1] * 500)\n"
        "        data = await store.load('h', 'u')\n"
        "        assert data in ('a' * 500, 'b' * 500), data[:20]\n"
        "anyio.run(main)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, c]) for c in "ab"]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]


async def test_keyring_without_backend_falls_back_to_file_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    import keyring.core

    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    fallback = FileTokenStore(tmp_path)
    store = KeyringTokenStore(fallback=fallback)
    with caplog.at_level(logging.WARNING, logger="sectigo_iot"):
        await store.save("h", "u", "tokens")
        assert await store.load("h", "u") == "tokens"
        await store.delete("h", "u")
    assert fallback.path_for("h", "u").exists() is False
    warnings = [r for r in caplog.records if "keyring" in r.getMessage()]
    assert len(warnings) == 1


async def test_keyring_store_uses_service_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    import keyring.errors
    from keyring.backend import KeyringBackend

    class DictKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            if self.items.pop((service, username), None) is None:
                raise keyring.errors.PasswordDeleteError("not found")

    backend = DictKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        store = KeyringTokenStore(fallback=MemoryTokenStore())
        await store.save("iot.sectigo.com", "alice", "x")
        assert backend.items == {("sectigo-iot:iot.sectigo.com", "alice"): "x"}
        assert await store.load("iot.sectigo.com", "alice") == "x"
        await store.delete("iot.sectigo.com", "alice")
        await store.delete("iot.sectigo.com", "alice")  # PasswordDeleteError is tolerated
        assert backend.items == {}
    finally:
        keyring.set_keyring(previous)


@pytest.mark.parametrize(
    "entry",
    [
        "not json",
        '{"v": 2}',
        '{"v": 1, "host": "evil.example", "username": "api-user", "access": "a", "refresh": "r"}',
        '{"v": 1, "host": "iot.sectigo.com", "username": "api-user", '
        '"access": "x", "refresh": "y"}',
    ],
)
async def test_corrupt_or_foreign_entries_are_discarded(
    make_client: Any, httpx_mock: Any, clock: Clock, entry: str
) -> None:
    store = MemoryTokenStore()
    await store.save("iot.sectigo.com", "api-user", entry)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", json=token_pair(clock.now))
    httpx_mock.add_response(url=DEVICES, json={"ordered": 1, "issued": 0})
    async with make_client(token_store=store) as client:
        await client.licenses.used()
    stored = await store.load("iot.sectigo.com", "api-user")
    assert stored is not None and stored != entry


async def test_a_failing_store_does_not_break_calls(
    make_client: Any, httpx_mock: Any, clock: Clock
) -> None:
    class Broken:
        async def load(self, host: str, username: str) -> str | None:
            raise OSError("disk gone")

        async def save(self, host: str, username: str, data: str) -> None:
            raise OSError("disk gone")

        async def delete(self, host: str, username: str) -> None:
            raise OSError("disk gone")

    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", json=token_pair(clock.now))
    httpx_mock.add_response(url=DEVICES, json={"ordered": 1, "issued": 0})
    async with make_client(token_store=Broken()) as client:
        assert (await client.licenses.used()).ordered == 1


def test_resolve_token_store() -> None:
    assert isinstance(resolve_token_store("memory"), MemoryTokenStore)
    assert isinstance(resolve_token_store("file"), FileTokenStore)
    with pytest.raises(ValueError, match="keyring"):
        resolve_token_store("cloud")
    with pytest.raises(ValueError, match="load, save and delete"):
        resolve_token_store(object())  # type: ignore[arg-type]


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECTIGO_USERNAME", "env-user")
    monkeypatch.setenv("SECTIGO_PASSWORD", "env-password")
    monkeypatch.setenv("SECTIGO_ENDPOINT", "http://localhost:8831")
    client = SectigoClient.from_env(token_store="memory")
    assert client.username == "env-user"
    assert client.base_url == "http://localhost:8831"
    assert "env-password" not in repr(client)


def test_default_store_is_under_the_user_cache_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert str(FileTokenStore().directory).startswith(str(tmp_path))
    assert os.fspath(FileTokenStore(tmp_path).directory) == str(tmp_path)


def _keyring_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "keyring" in r.getMessage()]


async def test_a_hung_keyring_is_abandoned_and_not_asked_again(
    hanging_keyring: HangingKeyring, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fallback = FileTokenStore(tmp_path)
    store = KeyringTokenStore(fallback=fallback, timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="sectigo_iot"), anyio.fail_after(HANG_LIMIT / 2):
        assert await store.load("h", "u") is None
        await store.save("h", "u", "tokens")
        assert await store.load("h", "u") == "tokens"
        await store.delete("h", "u")
    assert hanging_keyring.calls == 1
    assert not fallback.path_for("h", "u").exists()
    [warning] = _keyring_warnings(caplog)
    assert "did not answer within 0.2 s" in warning and str(tmp_path) in warning


async def test_a_client_with_a_hung_keyring_falls_back_to_the_file_store(
    hanging_keyring: HangingKeyring,
    make_client: Any,
    httpx_mock: Any,
    clock: Clock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fallback = FileTokenStore(tmp_path)
    store = KeyringTokenStore(fallback=fallback, timeout=0.2)
    httpx_mock.add_response(method="POST", url=f"{BASE}/auth/pwd", json=token_pair(clock.now))
    httpx_mock.add_response(url=DEVICES, json={"ordered": 1, "issued": 0}, is_reusable=True)
    with caplog.at_level(logging.WARNING, logger="sectigo_iot"), anyio.fail_after(HANG_LIMIT / 2):
        async with make_client(token_store=store) as client:
            await client.licenses.used()  # the load times out, the login's tokens go to the file
        async with make_client(token_store=store) as again:
            await again.licenses.used()  # reuses the stored tokens: no second login
    assert hanging_keyring.calls == 1
    assert await fallback.load("iot.sectigo.com", "api-user") is not None
    assert len(_keyring_warnings(caplog)) == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_hung_keyring_is_abandoned_on_each_backend(
    hanging_keyring: HangingKeyring, tmp_path: Path, backend: str
) -> None:
    async def scenario() -> str | None:
        store = KeyringTokenStore(fallback=FileTokenStore(tmp_path), timeout=0.2)
        with anyio.fail_after(HANG_LIMIT / 2):
            await store.save("h", "u", "tokens")
            return await store.load("h", "u")

    assert anyio.run(scenario, backend=backend) == "tokens"
    assert hanging_keyring.calls == 1


@pytest.mark.parametrize("umask", [0o022, 0o000], indirect=True)
async def test_folders_we_create_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine").chmod(0o755)
    store = FileTokenStore(tmp_path / "mine" / "a" / "b" / "tokens")
    await store.save("h", "u", "data")
    for level in ("a", "a/b", "a/b/tokens"):
        assert stat.S_IMODE((tmp_path / "mine" / level).stat().st_mode) == 0o700, level
    assert stat.S_IMODE(store.path_for("h", "u").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "mine").stat().st_mode) == 0o755  # not ours: left alone


def _open_entry(store: FileTokenStore, mode: int) -> Path:
    path = store.path_for("h", "u")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("stored")
    path.chmod(mode)
    return path


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
@pytest.mark.parametrize("mode", [0o644, 0o660, 0o604])
async def test_an_open_token_file_of_ours_is_made_private_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    store = FileTokenStore(tmp_path)
    path = _open_entry(store, mode)
    with caplog.at_level(logging.WARNING, logger="sectigo_iot"):
        assert await store.load("h", "u") == "stored"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.chmod(mode)
        assert await store.load("h", "u") == "stored"
    [warning] = [r.getMessage() for r in caplog.records]
    assert str(path) in warning and "now 0600" in warning


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
async def test_an_open_token_file_of_someone_else_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTokenStore(tmp_path)
    path = _open_entry(store, 0o644)
    os.chown(path, 65534, 65534)
    with caplog.at_level(logging.WARNING, logger="sectigo_iot"):
        assert await store.load("h", "u") is None
        assert await store.load("h", "u") is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not ours: left as it is
    [warning] = [r.getMessage() for r in caplog.records]
    assert "ignoring token file" in warning and "644" in warning
    await store.save("h", "u", "fresh")  # the next save replaces it with a private file
    assert path.stat().st_uid == os.geteuid()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
async def test_an_open_token_file_that_cannot_be_tightened_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileTokenStore(tmp_path)
    _open_entry(store, 0o644)

    def read_only_file_system(fd: int, mode: int) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "fchmod", read_only_file_system)
    with caplog.at_level(logging.WARNING, logger="sectigo_iot"):
        assert await store.load("h", "u") is None
    assert "ignoring token file" in caplog.records[0].getMessage()
