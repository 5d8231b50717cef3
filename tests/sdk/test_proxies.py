"""Environment proxies: never for this machine, off with ``trust_env=False``, and a
proxy that cannot be used is a typed error at construction. The pool's ``limits``."""

from __future__ import annotations

import importlib.util
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sectigo_iot import (
    APIConnectionError,
    InvalidInputError,
    SectigoClient,
    SyncSectigoClient,
)
from sectigo_iot.emulator import Emulator

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


class RecordingProxy(socketserver.ThreadingTCPServer):
    """A "proxy" that records every byte it receives and answers nothing."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.received = bytearray()
        self.lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(2)
                try:
                    while chunk := self.request.recv(65536):
                        with proxy.lock:
                            proxy.received += chunk
                except OSError:
                    pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingProxy]:
    """A recording proxy set in every proxy variable; NO_PROXY unset."""
    server = RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, server.url)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def served() -> Iterator[tuple[Emulator, str]]:
    with Emulator() as emulator, emulator.run_in_thread() as url:
        yield emulator, url


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_emulator_on_this_machine_is_never_proxied(
    proxy: RecordingProxy, served: tuple[Emulator, str], host: str
) -> None:
    emulator, url = served
    user, password = next(iter(emulator.config.users.items()))
    url = url.replace("127.0.0.1", host)
    async with SectigoClient(user, password, base_url=url, token_store="memory") as client:
        assert await client.authorities.list()
    assert emulator.stats.logins == 1
    assert bytes(proxy.received) == b""  # the password never went through it


def test_the_sync_client_is_not_proxied_either(
    proxy: RecordingProxy, served: tuple[Emulator, str]
) -> None:
    emulator, url = served
    user, password = next(iter(emulator.config.users.items()))
    with SyncSectigoClient(user, password, base_url=url, token_store="memory") as client:
        assert client.authorities.list()
    assert bytes(proxy.received) == b""


def remote_client(**options: Any) -> SectigoClient:
    """A client of a remote host that does not exist (``.invalid``): only a proxy answers."""
    return SectigoClient(
        "user",
        "proxy-test-password",
        base_url="http://sectigo.invalid",
        allow_insecure_http=True,
        token_store="memory",
        max_retries=0,
        timeout=5,
        **options,
    )


async def test_another_host_goes_through_the_proxy(proxy: RecordingProxy) -> None:
    """The recording proxy works: a remote host's request reaches it."""
    async with remote_client() as client:
        with pytest.raises(APIConnectionError):
            await client.authenticate()
    assert b"POST http://sectigo.invalid/auth/pwd" in bytes(proxy.received)


async def test_trust_env_false_uses_no_proxy(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with remote_client(trust_env=False) as client:
        with pytest.raises(APIConnectionError):
            await client.authenticate()  # the name does not resolve: no proxy asked
    assert bytes(proxy.received) == b""


async def test_no_proxy_is_respected(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "example.org, .invalid")
    async with remote_client() as client:
        with pytest.raises(APIConnectionError):
            await client.authenticate()
    assert bytes(proxy.received) == b""


# The SOCKS cases test the error for a missing optional package: the project never
# installs socksio (CI runs them); with it installed they have nothing to test.
NO_SOCKSIO = importlib.util.find_spec("socksio") is None
needs_no_socksio = pytest.mark.skipif(not NO_SOCKSIO, reason="socksio is installed")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param(
            "HTTPS_PROXY",
            "socks5://user:secret-pw@proxy.example:1080",
            "socksio",
            marks=needs_no_socksio,
        ),
        ("https_proxy", "ftp://user:secret-pw@proxy.example:21", "cannot be used"),
        pytest.param(
            "ALL_PROXY", "socks5h://proxy.example:1080", "socksio", marks=needs_no_socksio
        ),
    ],
)
def test_an_unusable_proxy_is_a_typed_error_at_construction(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    for name in (*PROXY_VARIABLES, "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    for make in (SectigoClient, SyncSectigoClient):
        with pytest.raises(InvalidInputError, match=message) as caught:
            make("user", "pw-123456789", token_store="memory")
        assert variable in str(caught.value) and "secret-pw" not in str(caught.value)
    # turned off, the same environment is no error
    SyncSectigoClient("user", "pw-123456789", token_store="memory", trust_env=False).close()


def test_an_unusable_proxy_does_not_stop_the_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALL_PROXY", "ftp://proxy.example:21")
    SectigoClient("user", "pw-123456789", base_url="http://127.0.0.1:8831", token_store="memory")


def test_limits_set_the_pool() -> None:
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=100)
    client = SectigoClient("user", "pw-123456789", token_store="memory", limits=limits)
    pool = client._session._http._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 300 and pool._max_keepalive_connections == 100
    with pytest.raises(InvalidInputError, match=r"httpx\.Limits"):
        SectigoClient("user", "pw-123456789", token_store="memory", limits=300)  # type: ignore[arg-type]
