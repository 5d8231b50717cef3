"""Where the CLI keeps tokens: the keyring, a private file, or beside the emulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._emulated import emulator_db_path, emulator_token_dir
from ._settings import Settings

if TYPE_CHECKING:
    from ..auth import TokenStore

__all__ = ["describe_store", "token_store"]


def token_store(settings: Settings) -> TokenStore:
    """The keyring when it works, else the 0600 file store (no warning either way)."""
    from ..auth import FileTokenStore, KeyringTokenStore, keyring_usable

    if settings.emulator:
        return FileTokenStore(emulator_token_dir(emulator_db_path()))
    if keyring_usable():
        return KeyringTokenStore()
    return FileTokenStore()


def describe_store(store: TokenStore, host: str, username: str) -> tuple[str, str, bool]:
    """(kind, location, exists) of the entry of ``host``/``username`` in ``store``."""
    from ..auth import FileTokenStore, KeyringTokenStore

    if isinstance(store, KeyringTokenStore):
        return "keyring", f"service {store.service_name(host)!r}, user {username!r}", True
    if isinstance(store, FileTokenStore):
        path = store.path_for(host, username)
        return "file", str(path), path.is_file()
    return "memory", "process memory", False
