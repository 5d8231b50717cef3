"""``SectigoClient``: the async entry point to the Sectigo IoT Manager API."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import httpx

from . import _retry
from ._defaults import DEFAULT_BASE_URL
from ._hooks import Hooks, Observer, Observers
from ._session import Session, default_sleep
from ._settings import ClientSettings
from .auth import TokenPair, TokenStore, resolve_token_store
from .errors import InvalidInputError
from .resources import Authorities, Batches, Certificates, Licenses, Organizations, Profiles

__all__ = ["DEFAULT_BASE_URL", "SectigoClient"]

DEFAULT_TIMEOUT = 30.0


class SectigoClient:
    """An async client of one Sectigo IoT Manager account.

    Use it as ``async with SectigoClient(username, password) as client:``; it owns one
    connection pool. Tokens are obtained on the first call, renewed ahead of expiry and
    kept in ``token_store`` ("keyring", "file", "memory" or a TokenStore object).
    ``clock`` (seconds since the epoch) and ``sleep`` (every pause: retries, polling)
    are for tests that move time. Plain ``http://`` is refused for any host but this
    machine unless ``allow_insecure_http`` is set.

    The proxy comes from ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` (``NO_PROXY``
    respected), never for this machine (the emulator); ``trust_env=False`` uses none.
    ``limits`` sets the connection pool (httpx's default: 100 connections, 20 kept
    alive).

    Observing it (see the observability guide): ``hooks`` (:class:`Hooks`) are called
    with each send, response, retry and token refresh; ``tracer_provider`` and
    ``meter_provider`` make OpenTelemetry spans and the request-duration histogram (the
    global providers are used when set before the client is made; the ``[otel]``
    extra); ``metrics`` is a ``sectigo_iot.metrics.Metrics`` (or any observer, see
    ``sectigo_iot._hooks``).
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
        settings = ClientSettings(
            base_url=base_url,
            username=username or "",
            password=password or "",
            token_store=resolve_token_store(token_store),
            timeout=timeout,
            max_retries=max_retries,
            transport=transport,
            clock=clock,
            sleep=sleep,
            allow_insecure_http=allow_insecure_http,
            trust_env=trust_env,
            limits=limits,
            observers=observers_of(hooks, tracer_provider, meter_provider, metrics),
        )
        self._session = Session(settings)
        self._clock = clock
        self._timeout = timeout
        self.authorities = Authorities(self._session)
        self.licenses = Licenses(self._session)
        self.organizations = Organizations(self._session)
        self.profiles = Profiles(self._session)
        self.batches = Batches(self._session)
        self.certificates = Certificates(self._session)

    @classmethod
    def from_env(cls, **kwargs: Any) -> SectigoClient:
        """A client configured from ``SECTIGO_USERNAME``, ``SECTIGO_PASSWORD`` and
        ``SECTIGO_ENDPOINT`` (keyword arguments take precedence)."""
        kwargs.setdefault("username", os.environ.get("SECTIGO_USERNAME"))
        kwargs.setdefault("password", os.environ.get("SECTIGO_PASSWORD"))
        endpoint = os.environ.get("SECTIGO_ENDPOINT")
        if endpoint:
            kwargs.setdefault("base_url", endpoint)
        return cls(**kwargs)

    @property
    def base_url(self) -> str:
        """Scheme, host and port every request goes to."""
        return self._session.base_url

    @property
    def username(self) -> str:
        """The login name."""
        return self._session.tokens.username

    @property
    def clock(self) -> Callable[[], float]:
        """The client's clock (seconds since the epoch): "now" for tokens and renewals."""
        return self._clock

    @property
    def request_timeout(self) -> float | None:
        """The longest one request may take, in seconds (None: no limit)."""
        timeout = self._timeout
        if isinstance(timeout, (int, float)):
            return float(timeout)
        parts = [timeout.connect, timeout.read, timeout.write, timeout.pool]
        return None if None in parts else float(sum(part for part in parts if part))

    @property
    def tokens(self) -> TokenPair | None:
        """The token pair held now (its repr never shows the tokens)."""
        return self._session.tokens.tokens

    async def authenticate(self) -> TokenPair:
        """Log in with the password now, replacing any tokens held or stored."""
        return await self._session.tokens.authenticate()

    async def ensure_authenticated(self) -> TokenPair:
        """Hold a usable access token: keep it, refresh it, or log in, as needed."""
        await self._session.tokens.access_token()
        pair = self._session.tokens.tokens
        assert pair is not None
        return pair

    async def load_tokens(self) -> TokenPair | None:
        """Read the stored tokens (if any) without contacting the server."""
        return await self._session.tokens.load()

    async def logout(self) -> None:
        """Forget the tokens held and stored for this host and user."""
        await self._session.tokens.forget()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._session.aclose()

    async def __aenter__(self) -> SectigoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"SectigoClient(username={self.username!r}, base_url={self.base_url!r})"


_OBSERVER_METHODS = (
    "operation_started",
    "operation_ended",
    "request",
    "response",
    "retry",
    "token_refresh",
)


def observers_of(
    hooks: Hooks | None, tracer_provider: Any, meter_provider: Any, metrics: Observer | None
) -> Observers:
    """The observers of a client: OpenTelemetry (given or global providers), metrics,
    hooks, in the order they are told of an event. InvalidInputError for a wrong kind."""
    from ._otel import otel_observer

    if hooks is not None and not isinstance(hooks, Hooks):
        raise InvalidInputError(f"hooks must be a sectigo_iot.Hooks, got {hooks!r}")
    if metrics is not None and not all(
        callable(getattr(metrics, name, None)) for name in _OBSERVER_METHODS
    ):
        raise InvalidInputError(
            f"metrics must be a sectigo_iot.metrics.Metrics (an observer), got {metrics!r}"
        )
    found = [otel_observer(tracer_provider, meter_provider), metrics, hooks]
    return Observers([observer for observer in found if observer is not None])
