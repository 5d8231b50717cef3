"""Where tokens are kept between runs: the OS keyring, a private file, or memory.

A store holds one opaque string per (host, username); the token manager decides what
goes in it. Stores never hold the password.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from .._files import make_private_dirs, write_atomic
from .._logging import get_logger

__all__ = [
    "FileTokenStore",
    "KeyringTokenStore",
    "MemoryTokenStore",
    "TokenStore",
    "default_token_dir",
    "keyring_usable",
    "resolve_token_store",
]

logger = get_logger("sectigo_iot.auth")
KEYRING_TIMEOUT = 3.0  # seconds; a locked or hung keyring must not hang the client
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_T = TypeVar("_T")


@runtime_checkable
class TokenStore(Protocol):
    """What the client needs of a token store. Any object with these methods will do."""

    async def load(self, host: str, username: str) -> str | None:
        """The stored entry, or None."""

    async def save(self, host: str, username: str, data: str) -> None:
        """Store (replace) the entry."""

    async def delete(self, host: str, username: str) -> None:
        """Forget the entry; no error when there is none."""


class MemoryTokenStore:
    """Keeps tokens for the life of the process only."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], str] = {}

    async def load(self, host: str, username: str) -> str | None:
        return self._entries.get((host, username))

    async def save(self, host: str, username: str, data: str) -> None:
        self._entries[(host, username)] = data

    async def delete(self, host: str, username: str) -> None:
        self._entries.pop((host, username), None)

    def __repr__(self) -> str:
        return f"MemoryTokenStore(entries={len(self._entries)})"


async def _in_worker_thread(function: Callable[..., _T], *args: object) -> _T:
    """``function(*args)`` in a worker thread (anyio loads on first use, not on import)."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(function, *args)


def default_token_dir() -> Path:
    """``<user cache dir>/sectigo-iot/tokens``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("sectigo-iot", appauthor=False)) / "tokens"


class FileTokenStore:
    """One 0600 file per host and user in a 0700 folder, replaced atomically.

    Concurrent writers (several processes) never leave a torn file: each write goes to
    a private temporary file that is renamed over the entry. A stored file that others
    may read is made private when it is ours, and ignored otherwise (one warning each).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_token_dir()
        self._warned: set[Path] = set()

    def path_for(self, host: str, username: str) -> Path:
        """The file holding the entry of this host and user."""
        digest = hashlib.sha256(f"{host}\0{username}".encode()).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    async def load(self, host: str, username: str) -> str | None:
        return await _in_worker_thread(self._load, self.path_for(host, username))

    async def save(self, host: str, username: str, data: str) -> None:
        await _in_worker_thread(self._save, self.path_for(host, username), data)

    async def delete(self, host: str, username: str) -> None:
        path = self.path_for(host, username)
        await _in_worker_thread(lambda: path.unlink(missing_ok=True))

    def _load(self, path: Path) -> str | None:
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, encoding="utf-8") as handle:
            if os.name == "posix" and not self._private(handle.fileno(), path):
                return None
            return handle.read()

    def _private(self, fd: int, path: Path) -> bool:
        """Whether the open file is (now) readable by its owner only."""
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if not mode & 0o077:
            return True
        if info.st_uid == os.geteuid():
            try:
                os.fchmod(fd, 0o600)
            except OSError:
                pass
            else:
                self._warn_once(path, f"token file {path} was open to other users; it is now 0600")
                return True
        self._warn_once(
            path,
            f"ignoring token file {path}: other users may read it (mode {mode:o}) and it "
            "could not be made private; remove it or make it 0600",
        )
        return False

    def _warn_once(self, path: Path, message: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            logger.warning("%s", message)

    def _save(self, path: Path, data: str) -> None:
        make_private_dirs(self.directory)
        write_atomic(path, data.encode("utf-8"), mode=0o600, overwrite=True)

    def __repr__(self) -> str:
        return f"FileTokenStore(directory={str(self.directory)!r})"


class KeyringTokenStore:
    """The OS keyring (service ``sectigo-iot:<host>``, user = login name).

    Keyring calls run in a worker thread that is abandoned after ``timeout`` seconds.
    When no usable backend exists, or once the keyring has not answered in time, the
    store uses ``fallback`` (a FileTokenStore by default) for good, with one warning.
    """

    def __init__(
        self, fallback: TokenStore | None = None, *, timeout: float = KEYRING_TIMEOUT
    ) -> None:
        self._fallback: TokenStore = fallback if fallback is not None else FileTokenStore()
        self.timeout = timeout
        self._usable: bool | None = None

    @staticmethod
    def service_name(host: str) -> str:
        """The keyring service under which a host's tokens are kept."""
        return f"sectigo-iot:{host}"

    async def _in_thread(self, function: Callable[..., _T], *args: str) -> _T | None:
        """``function(*args)`` in an abandonable thread; None (and the fallback from
        now on) when it does not return within the timeout."""
        import anyio.to_thread

        with anyio.move_on_after(self.timeout):
            return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)
        self._give_up(f"the keyring did not answer within {self.timeout:g} s")
        return None

    def _give_up(self, reason: str) -> None:
        if self._usable is not False:
            self._usable = False
            where = getattr(self._fallback, "directory", self._fallback)
            logger.warning("%s; keeping tokens in %s instead", reason, where)

    async def _backend_usable(self) -> bool:
        if self._usable is None:
            usable = await self._in_thread(keyring_usable)
            if usable:
                self._usable = True
            elif usable is not None:
                self._give_up("no usable keyring backend")
        return bool(self._usable)

    async def _call(self, name: str, *args: str) -> str | None:
        import keyring

        return await self._in_thread(getattr(keyring, name), *args)

    async def load(self, host: str, username: str) -> str | None:
        if await self._backend_usable():
            data = await self._call("get_password", self.service_name(host), username)
            if self._usable:
                return data
        return await self._fallback.load(host, username)

    async def save(self, host: str, username: str, data: str) -> None:
        if await self._backend_usable():
            await self._call("set_password", self.service_name(host), username, data)
            if self._usable:
                return
        await self._fallback.save(host, username, data)

    async def delete(self, host: str, username: str) -> None:
        if await self._backend_usable():
            import keyring.errors

            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                await self._call("delete_password", self.service_name(host), username)
            if self._usable:
                return
        await self._fallback.delete(host, username)

    def __repr__(self) -> str:
        return f"KeyringTokenStore(usable={self._usable})"


def keyring_usable() -> bool:
    """Whether the OS keyring can be used (not the fail or null backend, and it loads)."""
    try:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
    except Exception:  # any backend failure means "no keyring", never a crash
        return False
    inner = getattr(backend, "backends", None)
    candidates = inner if inner else [backend]
    return any(not isinstance(b, (fail.Keyring, null.Keyring)) for b in candidates)


def resolve_token_store(spec: str | TokenStore) -> TokenStore:
    """Turn ``"keyring"``, ``"file"`` or ``"memory"`` into a store; pass stores through."""
    if isinstance(spec, str):
        factories: dict[str, Callable[[], TokenStore]] = {
            "keyring": KeyringTokenStore,
            "file": FileTokenStore,
            "memory": MemoryTokenStore,
        }
        try:
            return factories[spec]()
        except KeyError:
            from ..errors import InvalidInputError

            raise InvalidInputError(
                f"unknown token_store {spec!r}; use 'keyring', 'file', 'memory' "
                "or an object with async load/save/delete methods"
            ) from None
    if not isinstance(spec, TokenStore):
        from ..errors import InvalidInputError

        raise InvalidInputError("token_store must have async load, save and delete methods")
    return spec
