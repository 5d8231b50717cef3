"""The built-in sinks: a folder per key, and a webhook.

A sink is an object with a ``name`` (stable across processes and free of secrets: the
fleet records by it which sinks have a certificate) and ``async deliver(delivery)``,
which returns once the certificate is durably delivered, raises on failure, and may be
called again with the same ``delivery_id`` after a crash.
"""

from __future__ import annotations

import json
import os
import re
import stat
import string
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import anyio
import anyio.to_thread
import httpx

from .._checks import seconds
from .._files import PRIVATE_DIR_MODE, make_private_dirs
from .._logging import get_logger
from .._net import is_loopback
from .._session import USER_AGENT, network_options
from ..errors import InvalidInputError, SectigoError
from ..lifecycle import LifecycleError
from ..lifecycle._folder import (
    folder_lock,
    load_live,
    publish_version,
    remove_leftovers,
    switch_live,
)
from ._store import check_key

if TYPE_CHECKING:
    from ..certs import CertificateBundle
    from ._model import Delivery

__all__ = ["DeliveryError", "FolderSink", "WebhookSink"]

logger = get_logger("sectigo_iot.fleet")

#: a key used as its folder's name as it is
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: the characters an encoded key keeps; every other byte of its UTF-8 becomes %XX
_KEPT = frozenset(string.ascii_letters + string.digits + "_-")
#: characters of one folder name of a long encoded key (a name has at most 255 bytes);
#: every name but the last ends with "+", which no encoded key holds
_SEGMENT = 250
_MORE = "+"
DEFAULT_FOLDER_LOCK_TIMEOUT = 60.0
DEFAULT_WEBHOOK_TIMEOUT = 10.0
_HOST = re.compile(r"[a-z0-9.:_-]{1,253}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class DeliveryError(SectigoError):
    """A sink did not take a certificate: the receiver refused it or could not be
    reached. The fleet tries again later; the message never holds a secret."""

    sink: str
    """The failing sink's name."""
    status_code: int | None
    """The HTTP status of a webhook's answer, or None when there was none."""

    def __init__(self, message: str, *, sink: str, status_code: int | None = None) -> None:
        self.sink = sink
        self.status_code = status_code
        super().__init__(f"{sink}: {message}")


# -- the folder sink -------------------------------------------------------------------


class FolderSink:
    """Each key's certificate in its own folder under ``root``, laid out as the folder
    lifecycle lays it out (``live`` -> ``versions/<SERIAL>``, top-level links, key.pem
    0600, folders 0700), by the same code and under the same lock.

    A key that is a safe file name (``[A-Za-z0-9][A-Za-z0-9._-]*``) is its folder's
    name; any other is percent-encoded (``a/b`` -> ``a%2Fb``; see :meth:`folder_for`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        lock_timeout: float = DEFAULT_FOLDER_LOCK_TIMEOUT,
    ) -> None:
        if not isinstance(root, (str, os.PathLike)) or not os.fspath(root) or "\x00" in str(root):
            raise InvalidInputError(f"root must be a folder path, got {root!r}")
        self.root = Path(os.path.abspath(root))
        self.lock_timeout = seconds("lock_timeout", lock_timeout, zero=True)
        self.name = f"folder:{self.root}"

    def __repr__(self) -> str:
        return f"FolderSink({str(self.root)!r})"

    def folder_for(self, key: str) -> Path:
        """The folder of ``key``: ``root/<key>`` for a safe file name, else
        ``root/<encoded>``, where every UTF-8 byte but letters, digits, ``_`` and ``-``
        (and a first ``-`` or ``_``) is ``%XX``. An encoded name longer than 250
        characters is split into nested folders, all but the last ending in ``+``.
        Never outside ``root``; distinct keys never share a folder (:meth:`key_for`
        reverses it). InvalidInputError for a key the fleet refuses."""
        return self.root.joinpath(*_folder_names(check_key(key)))

    def key_for(self, folder: str | os.PathLike[str]) -> str:
        """The key whose folder is ``folder`` (a path under ``root``, or relative to it).
        InvalidInputError when no key has that folder."""
        path = Path(folder)
        if path.is_absolute():
            path = path.relative_to(self.root) if path.is_relative_to(self.root) else Path()
        key = _key_of(path.parts)
        if key is None:
            raise InvalidInputError(f"{folder} is not the folder of a key in {self.root}")
        return key

    async def deliver(self, delivery: Delivery) -> None:
        """Publish the delivery's certificate and key as the live version of its key's
        folder, keeping the version it replaces; a no-op when it is live already.

        The folder's lock is held meanwhile (a concurrent ``ensure_certificate`` or
        another process waits, up to ``lock_timeout``: FolderLockedError). LifecycleError
        when the folder's layout is not the lifecycle's (a symlink or a file where a
        folder should be); nothing is written outside ``root``.
        """
        bundle = delivery.bundle
        if bundle.private_key is None:
            raise InvalidInputError(
                f"the certificate of {delivery.key!r} has no private key; a folder needs one"
            )
        folder = self.folder_for(delivery.key)
        await anyio.to_thread.run_sync(self._make_folder, folder)
        async with folder_lock(folder, lambda: None, wait=self.lock_timeout):
            installed = await anyio.to_thread.run_sync(_install, folder, bundle)
        if installed:
            logger.info("%s: serial %s live in %s", self.name, bundle.serial_number, folder)

    def _make_folder(self, folder: Path) -> None:
        """Make ``folder`` and the folders between it and ``root`` (0700), each checked
        to be a real folder (no symlink), so the lock file is made inside ``root``."""
        if os.path.lexists(self.root) and not self.root.is_dir():
            raise LifecycleError(f"{self.root} is not a folder; move it away or pick another root")
        path = self.root
        try:
            make_private_dirs(self.root)
            for name in folder.relative_to(self.root).parts:
                path = path / name
                try:
                    path.mkdir(mode=PRIVATE_DIR_MODE)
                    path.chmod(PRIVATE_DIR_MODE)  # mkdir's mode is reduced by the umask
                except FileExistsError:
                    pass
                _check_real_folder(path)
        except OSError as exc:
            raise LifecycleError(f"cannot make {path}: {exc.strerror}") from None


def _check_real_folder(path: Path) -> None:
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise LifecycleError(
            f"{path} is not a folder inside its root (a symlink or a file); move it away"
        )


def _install(folder: Path, bundle: CertificateBundle) -> bool:
    """Make ``bundle`` the live version of ``folder`` (its lock held) as the lifecycle
    does; False when it is live and intact already. The version it replaces is kept,
    older ones removed."""
    _check_real_folder(folder)
    live = load_live(folder)
    if live.bundle is not None and live.bundle.certificate == bundle.certificate:
        return False
    version = publish_version(folder, bundle)
    switch_live(folder, version)
    if live.version is not None and live.version != version:
        remove_leftovers(folder, {version, live.version})
    return True


def _folder_names(key: str) -> list[str]:
    """The folder names (one, or several nested) that hold ``key``'s folder."""
    if _SAFE_KEY.fullmatch(key):
        return [key]
    encoded = "".join(
        char
        if char in _KEPT and (index or char.isalnum())
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for index, char in enumerate(key)
    )
    pieces = [encoded[start : start + _SEGMENT] for start in range(0, len(encoded), _SEGMENT)]
    return [piece + _MORE for piece in pieces[:-1]] + pieces[-1:]


def _key_of(names: tuple[str, ...]) -> str | None:
    """The key whose folder names are ``names``, or None when there is none."""
    if not names or not all(name.endswith(_MORE) for name in names[:-1]):
        return None
    joined = "".join(name.removesuffix(_MORE) for name in names[:-1]) + names[-1]
    try:
        key = unquote(joined, errors="strict")
        return key if _folder_names(check_key(key)) == list(names) else None
    except (UnicodeDecodeError, InvalidInputError):
        return None


# -- the webhook sink ------------------------------------------------------------------


class WebhookSink:
    """POSTs each delivery as JSON (:meth:`Delivery.to_json`: the PEMs, the private key
    included) to ``url``, with ``Idempotency-Key: <delivery_id>``.

    Any 2xx answer is an acknowledgement; anything else, a redirect (never followed), a
    connection failure or going past ``timeout`` seconds for the whole exchange is a
    DeliveryError. ``url`` must be https (plain http only to this machine: localhost,
    127.0.0.0/8, ::1); a user and password in it are sent as basic authentication.
    ``headers`` (a bearer token, say) are added to each request. Neither those, the
    password nor the URL's query ever appear in the sink's name, repr or errors; the
    name shows scheme, host, port and path, so keep secrets out of the path. The sink
    uses ``client`` if given, else its own, closed by :meth:`aclose`.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_WEBHOOK_TIMEOUT,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        parts, shown = _webhook_url(url)
        timeout = seconds("timeout", timeout)
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise InvalidInputError(f"client must be an httpx.AsyncClient, got {client!r}")
        self.name = f"webhook:{shown}"
        self.timeout = float(timeout)
        self._url = urlunsplit((parts.scheme, _netloc(parts), parts.path or "/", parts.query, ""))
        self._auth = (
            httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
            if parts.username is not None or parts.password is not None
            else None
        )
        self._headers = {
            **_checked_headers(headers),
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
        if client is None:
            origin = urlunsplit((parts.scheme, _netloc(parts), "", "", ""))
            options = network_options(origin, None, trust_env=True)
            client = httpx.AsyncClient(follow_redirects=False, **options)
            self._own_client: httpx.AsyncClient | None = client
        else:
            self._own_client = None
        self._client = client

    def __repr__(self) -> str:
        return f"WebhookSink({self.name!r}, headers={sorted(self._headers)!r})"

    async def aclose(self) -> None:
        """Close the sink's own HTTP client (a given ``client`` is left open)."""
        if self._own_client is not None:
            await self._own_client.aclose()

    async def __aenter__(self) -> WebhookSink:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """Send ``body``; the answer's status and ``Location``. The answer's body is
        never read: an error's may echo what was sent, and may be of any size."""
        async with self._client.stream(
            "POST",
            self._url,
            content=body,
            headers=headers,
            auth=self._auth or httpx.USE_CLIENT_DEFAULT,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
        ) as response:
            return response.status_code, response.headers.get("Location", "")

    async def deliver(self, delivery: Delivery) -> None:
        """POST the delivery; return on a 2xx answer, else raise DeliveryError."""
        body = json.dumps(delivery.to_json()).encode()
        headers = {**self._headers, "Idempotency-Key": delivery.delivery_id}
        try:
            with anyio.fail_after(self.timeout):
                status, location = await self._post(body, headers)
        except TimeoutError:
            raise DeliveryError(
                f"no answer within {self.timeout:g} s (timeout); it is tried again later",
                sink=self.name,
            ) from None
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"timed out ({type(exc).__name__}); it is tried again later", sink=self.name
            ) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"connection failed ({type(exc).__name__}); it is tried again later",
                sink=self.name,
            ) from None
        if 200 <= status < 300:
            logger.info(
                "%s: delivered %s (serial %s)", self.name, delivery.key, delivery.serial_number
            )
            return
        if 300 <= status < 400:
            raise DeliveryError(
                f"answered {status}, a redirect to {_host_of(location)}, which is not followed; "
                "configure the webhook's final URL",
                sink=self.name,
                status_code=status,
            )
        raise DeliveryError(
            f"answered {status} {_reason(status)}(body not shown: it may echo the delivery); "
            "it is tried again later",
            sink=self.name,
            status_code=status,
        )


def _webhook_url(url: object) -> tuple[Any, str]:
    """The parts of a webhook URL and how it is shown (no user, password or query).
    InvalidInputError naming only the scheme and host when it cannot be used."""
    if not isinstance(url, str):
        raise InvalidInputError(f"a webhook URL must be a str, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (checked now)
    except ValueError:
        raise InvalidInputError(
            "the webhook URL is not a valid URL (its port or host cannot be read)"
        ) from None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if any(char.isspace() or not char.isprintable() for char in url):
        raise InvalidInputError(
            f"the webhook URL ({scheme}://{host}) holds spaces or control characters"
        )
    if scheme not in ("http", "https") or not host:
        raise InvalidInputError(
            f"a webhook URL must be https://host/path, got one with scheme {scheme!r} and "
            f"host {host!r}"
        )
    if scheme == "http" and not is_loopback(host):
        raise InvalidInputError(
            f"the webhook URL is plain http to {host}, which is not this machine: the "
            "certificate's private key would travel in clear; use https://"
        )
    shown = urlunsplit((scheme, _netloc(parts), parts.path or "/", "", ""))
    return parts, shown


def _netloc(parts: Any) -> str:
    """Host and port, without the user and password."""
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return host + (f":{parts.port}" if parts.port is not None else "")


def _checked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """``headers`` as a dict, refused (naming the header, never its value) when a name
    or value is not one a request can carry."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidInputError(f"headers must be a mapping, got {type(headers).__name__}")
    checked = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidInputError(f"header name {name!r} is not a valid HTTP header name")
        if not isinstance(value, str) or any(
            not char.isprintable() or ord(char) > 0x7E for char in value
        ):
            raise InvalidInputError(
                f"the value of header {name!r} must be printable ASCII text (value not shown)"
            )
        if name.lower() in ("idempotency-key", "content-type", "content-length", "host"):
            raise InvalidInputError(f"header {name!r} is set by the webhook sink itself")
        checked[name] = value
    return checked


def _host_of(location: str) -> str:
    """The host a ``Location`` header names (not its path or query: they may hold
    secrets), or a description when it names none."""
    try:
        host = urlsplit(location).hostname
    except ValueError:
        host = None
    if host and _HOST.fullmatch(host):
        return f"host {host}"
    return "the same host" if location.startswith("/") else "an unreadable location"


def _reason(status: int) -> str:
    phrase = httpx.codes.get_reason_phrase(status)
    return f"({phrase}) " if phrase else ""
