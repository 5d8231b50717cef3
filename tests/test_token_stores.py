"""Token stores: file permissions and atomicity, keyring fallback, foreign entries."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import BASE, Clock, token_pair

from sectigo_iot import FileTokenStore, KeyringTokenStore, MemoryTokenStore, SectigoClient
from sectigo_iot.auth import resolve_token_store

DEVICES = f"{BASE}/api/v1/devices"


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
