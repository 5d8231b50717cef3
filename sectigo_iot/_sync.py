"""``SyncSectigoClient``: the async client, blocking, driven from one background loop.

Each client owns a daemon thread running an event loop with an anyio blocking portal;
the async client lives in that loop and every blocking call is a portal call, so any
number of threads may share one client. The namespaces name each async method once, by
reference, through :func:`blocking`, which keeps its signature and types.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import types
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import anyio
from anyio.from_thread import BlockingPortal

from . import _retry
from ._client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, SectigoClient
from ._session import default_sleep
from .errors import SectigoError
from .resources import Authorities, Batches, Certificates, Licenses, Organizations, Profiles

if TYPE_CHECKING:
    import httpx

    from ._hooks import Hooks, Observer
    from .auth import TokenPair, TokenStore

__all__ = [
    "SyncAuthorities",
    "SyncBatches",
    "SyncCertificates",
    "SyncLicenses",
    "SyncOrganizations",
    "SyncProfiles",
    "SyncSectigoClient",
    "blocking",
]

S = TypeVar("S")
P = ParamSpec("P")
T = TypeVar("T")

#: Seconds ``close()`` waits for the connection pool to close and the loop to end.
CLOSE_TIMEOUT = 10.0


class _Loop:
    """An event loop in a daemon thread, reached through a blocking portal.

    It belongs to the process that made it: after ``os.fork()`` the child has no such
    thread, so every call there is a SectigoError at once (never a wait for ever).
    """

    def __init__(self) -> None:
        started: Future[BlockingPortal] = Future()

        async def serve() -> None:
            async with BlockingPortal() as portal:
                started.set_result(portal)
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                anyio.run(serve)
            except BaseException as exc:
                if started.done():
                    raise
                started.set_exception(exc)

        self.closed = False
        self.pid = os.getpid()
        # a daemon thread: a client never closed does not keep the interpreter alive
        self.thread = threading.Thread(target=run, name="sectigo-iot-sync", daemon=True)
        self.thread.start()
        self.portal = started.result()

    def call(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run ``function`` in the loop and wait for its result (or exception).

        An interrupt (Ctrl-C) while waiting cancels the call in the loop too. A call
        the client's ``close()`` cancels raises SectigoError.
        """
        if os.getpid() != self.pid:
            raise SectigoError(
                f"this SyncSectigoClient was made in process {self.pid}, before os.fork(); "
                "its event loop does not exist in this process: make a new client here"
            )
        try:
            if self.closed:
                raise RuntimeError("closed")
            future = self.portal.start_task_soon(function)
        except RuntimeError:  # closed, or the portal stopped meanwhile
            raise SectigoError("this SyncSectigoClient is closed") from None
        try:
            return future.result()
        except CancelledError:
            if self.closed:
                raise SectigoError(
                    "the SyncSectigoClient was closed (by close() in another thread) "
                    "while this call was running"
                ) from None
            raise
        except BaseException:
            future.cancel()  # no effect once done; else anyio cancels the task
            raise

    def stop(self, aclose: Callable[[], Awaitable[object]] | None = None) -> None:
        """Cancel the calls still running, await ``aclose``, and end the thread (in a
        forked child there is no thread: the client is only marked closed)."""
        self.closed = True
        if os.getpid() != self.pid:
            return

        async def finish() -> None:
            with anyio.CancelScope(shield=True):
                await self.portal.stop(cancel_remaining=True)
                if aclose is not None:
                    await aclose()

        self.portal.start_task_soon(finish).result(timeout=CLOSE_TIMEOUT)
        self.thread.join(CLOSE_TIMEOUT)


class _Wrapper(Generic[S]):
    """An async object and the loop it lives in: what :func:`blocking` methods call.

    ``owner`` (the client of a namespace) is kept alive as long as the wrapper is, so
    that ``SyncSectigoClient(...).authorities.list()`` does not close it mid-call.
    """

    _target: S
    _loop: _Loop

    def __init__(self, target: S, loop: _Loop, owner: object = None) -> None:
        self._target = target
        self._loop = loop
        self._owner = owner


class _BlockingMethod(Generic[S, P, T]):
    """A descriptor: the async method of ``S``, called on the wrapped object, blocking."""

    def __init__(self, method: Callable[..., Awaitable[T]]) -> None:
        self._method = method

    @overload
    def __get__(self, wrapper: None, owner: type[Any]) -> _BlockingMethod[S, P, T]: ...

    @overload
    def __get__(self, wrapper: _Wrapper[S], owner: type[Any]) -> Callable[P, T]: ...

    def __get__(
        self, wrapper: _Wrapper[S] | None, owner: type[Any]
    ) -> _BlockingMethod[S, P, T] | Callable[P, T]:
        if wrapper is None:
            return self
        method = self._method

        @functools.wraps(types.MethodType(method, wrapper._target))  # the signature without self
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            # through ``wrapper``: the bound method keeps it (and its client) alive
            return wrapper._loop.call(functools.partial(method, wrapper._target, *args, **kwargs))

        return call


def blocking(method: Callable[Concatenate[S, P], Awaitable[T]]) -> _BlockingMethod[S, P, T]:
    """Declare ``method`` (an async method of ``S``) as a blocking method of a wrapper
    of ``S``: same parameters, same result type, same errors."""
    return _BlockingMethod(method)


class SyncAuthorities(_Wrapper[Authorities]):
    """``client.authorities``, blocking."""

    list = blocking(Authorities.list)
    balance = blocking(Authorities.balance)


class SyncLicenses(_Wrapper[Licenses]):
    """``client.licenses``, blocking."""

    used = blocking(Licenses.used)


class SyncOrganizations(_Wrapper[Organizations]):
    """``client.organizations``, blocking."""

    current = blocking(Organizations.current)


class SyncProfiles(_Wrapper[Profiles]):
    """``client.profiles``, blocking."""

    list = blocking(Profiles.list)
    get = blocking(Profiles.get)
    parameters = blocking(Profiles.parameters)


class SyncBatches(_Wrapper[Batches]):
    """``client.batches``, blocking."""

    create = blocking(Batches.create)
    upload_csrs = blocking(Batches.upload_csrs)
    get = blocking(Batches.get)
    status = blocking(Batches.status)
    processing_info = blocking(Batches.processing_info)
    list = blocking(Batches.list)
    find_by_name = blocking(Batches.find_by_name)
    check = blocking(Batches.check)
    wait = blocking(Batches.wait)
    download = blocking(Batches.download)


class SyncCertificates(_Wrapper[Certificates]):
    """``client.certificates``, blocking."""

    find = blocking(Certificates.find)
    revoke = blocking(Certificates.revoke)
    is_revoked = blocking(Certificates.is_revoked)
    revoke_all = blocking(Certificates.revoke_all)
    check_revocation = blocking(Certificates.check_revocation)


class SyncSectigoClient(_Wrapper[SectigoClient]):
    """A blocking client of one Sectigo IoT Manager account: :class:`SectigoClient`'s
    arguments, namespaces, methods, results and errors, without ``await``.

    Use it as ``with SyncSectigoClient(username, password) as client:``, or call
    :meth:`close`. One client may be shared by the threads of a process; ``close()``
    cancels the calls still running. ``transport`` and ``sleep`` stay async: they run
    in the client's loop, as do callbacks (``on_progress``) and ``hooks``, which must
    not call the client. A client never closed ends with the interpreter.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token_store: str | TokenStore = "keyring",  # noqa: S107
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = _retry.DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = default_sleep,
        allow_insecure_http: bool = False,
        trust_env: bool = True,
        limits: httpx.Limits | None = None,
        hooks: Hooks | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        metrics: Observer | None = None,
    ) -> None:
        self._start(
            functools.partial(
                SectigoClient,
                username,
                password,
                base_url=base_url,
                token_store=token_store,
                timeout=timeout,
                max_retries=max_retries,
                transport=transport,
                clock=clock,
                sleep=sleep,
                allow_insecure_http=allow_insecure_http,
                trust_env=trust_env,
                limits=limits,
                hooks=hooks,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                metrics=metrics,
            )
        )

    def _start(self, make_client: Callable[[], SectigoClient]) -> None:
        async def make() -> SectigoClient:
            return make_client()  # made in its loop: its locks belong there

        loop = _Loop()
        try:
            target = loop.call(make)
        except BaseException:
            loop.stop()
            raise
        super().__init__(target, loop)
        self._finalizer = weakref.finalize(self, loop.stop, target.aclose)
        self.authorities = SyncAuthorities(target.authorities, loop, self)
        self.licenses = SyncLicenses(target.licenses, loop, self)
        self.organizations = SyncOrganizations(target.organizations, loop, self)
        self.profiles = SyncProfiles(target.profiles, loop, self)
        self.batches = SyncBatches(target.batches, loop, self)
        self.certificates = SyncCertificates(target.certificates, loop, self)

    @classmethod
    def from_env(cls, **kwargs: Any) -> SyncSectigoClient:
        """A client configured like :meth:`SectigoClient.from_env`."""
        client = cls.__new__(cls)
        client._start(functools.partial(SectigoClient.from_env, **kwargs))
        return client

    @property
    def base_url(self) -> str:
        """Scheme, host and port every request goes to."""
        return self._target.base_url

    @property
    def username(self) -> str:
        """The login name."""
        return self._target.username

    @property
    def clock(self) -> Callable[[], float]:
        """The client's clock (seconds since the epoch)."""
        return self._target.clock

    @property
    def request_timeout(self) -> float | None:
        """The longest one request may take, in seconds (None: no limit)."""
        return self._target.request_timeout

    @property
    def tokens(self) -> TokenPair | None:
        """The token pair held now (its repr never shows the tokens)."""
        return self._target.tokens

    authenticate = blocking(SectigoClient.authenticate)
    """Log in with the password now, replacing any tokens held or stored (blocking)."""
    ensure_authenticated = blocking(SectigoClient.ensure_authenticated)
    """Hold a usable access token: keep it, refresh it, or log in, as needed (blocking)."""
    load_tokens = blocking(SectigoClient.load_tokens)
    """Read the stored tokens (if any) without contacting the server (blocking)."""
    logout = blocking(SectigoClient.logout)
    """Forget the tokens held and stored for this host and user (blocking)."""

    def run(
        self,
        function: Callable[Concatenate[SectigoClient, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``await function(async_client, *args, **kwargs)`` in the client's loop, for
        async helpers taking a client: ``client.run(ensure_certificate, spec, folder)``."""
        return self._loop.call(functools.partial(function, self._target, *args, **kwargs))

    def close(self) -> None:
        """Cancel the calls still running, close the connection pool, end the thread."""
        self._finalizer()

    def __enter__(self) -> SyncSectigoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncSectigoClient(username={self.username!r}, base_url={self.base_url!r})"
