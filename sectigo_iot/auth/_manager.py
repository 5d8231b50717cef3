"""The token policy: refresh ahead of expiry, one refresh for any number of callers,
fall back from refresh to login, back off when the login endpoint is throttled."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from attrs import define, field

from .._hooks import Observers, TokenRefreshEvent, operation_scope
from .._logging import SecretRegistry, get_logger
from ..errors import (
    CredentialsError,
    InvalidResponseError,
    RateLimitError,
    SectigoError,
    TokenError,
)
from ._stores import TokenStore
from ._tokens import TokenPair

if TYPE_CHECKING:
    import anyio

__all__ = ["TokenManager"]

logger = get_logger("sectigo_iot.auth")

#: POST an unauthenticated auth request: (path, body bytes) -> parsed JSON reply
AuthSender = Callable[[str, bytes], Awaitable[Any]]

LOGIN_PATH = "/auth/pwd"
REFRESH_PATH = "/auth/refresh"
DEFAULT_LOGIN_BACKOFF = 5.0  # seconds to wait after a 429 without Retry-After
MAX_LOGIN_BACKOFF = 3600.0


def _new_lock() -> anyio.Lock:
    import anyio  # on first use: it is a large import

    return anyio.Lock()


@define(kw_only=True, eq=False, repr=False)
class TokenManager:
    """Holds the token pair of one (host, username) and keeps it usable.

    The password and every token are redacted through ``secrets``, the client's
    registry (a registry of the manager's own by default).
    """

    host: str
    username: str
    _password: str
    _store: TokenStore
    _send: AuthSender
    _clock: Callable[[], float]
    _secrets: SecretRegistry = field(factory=SecretRegistry)
    #: told of each login and refresh (operations ``auth.login``, ``auth.refresh``)
    _observers: Observers = field(factory=Observers)
    _pair: TokenPair | None = field(default=None, init=False)
    _loaded: bool = field(default=False, init=False)
    _lock: anyio.Lock = field(factory=_new_lock, init=False)
    _blocked_until: float = field(default=0.0, init=False)

    def __attrs_post_init__(self) -> None:
        self._secrets.set_password(self._password)

    def __repr__(self) -> str:
        return f"TokenManager(host={self.host!r}, username={self.username!r})"

    @property
    def tokens(self) -> TokenPair | None:
        """The pair held now (None before the first call or after logout)."""
        return self._pair

    async def access_token(self) -> str:
        """A usable access token, renewing it first when it is expired or about to be."""
        pair = self._pair
        if pair is not None and pair.access_fresh(self._clock()):
            return pair.access_token
        async with self._lock:
            if not self._loaded:
                await self._load()
            pair = self._pair
            if pair is not None and pair.access_fresh(self._clock()):
                return pair.access_token
            return (await self._renew(pair)).access_token

    def server_now(self) -> float:
        """The server's time as far as the last tokens tell (our clock otherwise)."""
        pair = self._pair
        now = self._clock()
        return pair.server_now(now) if pair is not None else now

    def invalidate(self, access_token: str) -> None:
        """The server refused this access token: renew it on the next call."""
        pair = self._pair
        if pair is not None and pair.access_token == access_token:
            self._pair = pair.expired_access()

    async def authenticate(self) -> TokenPair:
        """Log in with the password now, replacing any tokens held."""
        async with self._lock:
            self._loaded = True
            return await self._login()

    async def load(self) -> TokenPair | None:
        """Read the stored pair (if any) without contacting the server."""
        async with self._lock:
            if not self._loaded:
                await self._load()
            return self._pair

    async def forget(self) -> None:
        """Drop the tokens held and the stored entry."""
        async with self._lock:
            self._pair = None
            self._loaded = True
            await self._store.delete(self.host, self.username)

    async def _load(self) -> None:
        self._loaded = True
        try:
            data = await self._store.load(self.host, self.username)
        except Exception as exc:  # a broken store must not break the client
            logger.warning("could not read stored tokens (%s); logging in", type(exc).__name__)
            return
        if data is None:
            return
        try:
            pair = TokenPair.from_json(
                data, host=self.host, username=self.username, now=self._clock()
            )
        except TokenError as exc:
            logger.warning("discarding stored tokens: %s", exc)
            await self._delete_stored()
            return
        self._remember(pair)

    async def _renew(self, pair: TokenPair | None) -> TokenPair:
        if pair is not None and pair.refreshable(self._clock()):
            try:
                return await self._refresh(pair)
            except SectigoError as exc:  # "the refresh endpoint may not be working"
                logger.info("token refresh failed (%s); logging in again", type(exc).__name__)
        return await self._login()

    async def _refresh(self, pair: TokenPair) -> TokenPair:
        with operation_scope(self._observers, "auth.refresh"):
            logger.debug("refreshing the access token")
            reply = await self._send(REFRESH_PATH, pair.refresh_token.encode())
            access, refresh = _tokens_of(reply, REFRESH_PATH)
            return await self._accept(access, refresh or pair.refresh_token, "refresh_token")

    async def _login(self) -> TokenPair:
        with operation_scope(self._observers, "auth.login"):
            return await self._login_now()

    async def _login_now(self) -> TokenPair:
        if not self.username or not self._password:
            raise CredentialsError(
                "no username and password to log in with: pass them to SectigoClient "
                "or set SECTIGO_USERNAME and SECTIGO_PASSWORD"
            )
        now = self._clock()
        if now < self._blocked_until:
            raise RateLimitError(
                "login is rate limited; wait before trying again",
                retry_after=self._blocked_until - now,
                status_code=429,
                method="POST",
                path=LOGIN_PATH,
            )
        logger.debug("logging in as %s", self.username)
        body = json.dumps({"username": self.username, "password": self._password})
        try:
            reply = await self._send(LOGIN_PATH, body.encode())
        except RateLimitError as exc:
            wait = exc.retry_after if exc.retry_after is not None else DEFAULT_LOGIN_BACKOFF
            self._blocked_until = now + min(MAX_LOGIN_BACKOFF, wait)
            raise
        access, refresh = _tokens_of(reply, LOGIN_PATH)
        return await self._accept(access, refresh, "password")

    async def _accept(self, access: str, refresh: str, grant: str) -> TokenPair:
        pair = TokenPair.parse(access, refresh, now=self._clock())
        self._remember(pair)
        if self._observers:
            operation = "auth.login" if grant == "password" else "auth.refresh"
            await self._observers.token_refresh(TokenRefreshEvent(operation=operation, grant=grant))
        try:
            await self._store.save(
                self.host, self.username, pair.to_json(host=self.host, username=self.username)
            )
        except Exception as exc:  # tokens still work in memory
            logger.warning("could not store tokens (%s)", type(exc).__name__)
        return pair

    def _remember(self, pair: TokenPair) -> None:
        self._secrets.add(pair.access_token)
        self._secrets.add(pair.refresh_token)
        self._pair = pair

    async def _delete_stored(self) -> None:
        try:
            await self._store.delete(self.host, self.username)
        except Exception as exc:
            logger.warning("could not delete stored tokens (%s)", type(exc).__name__)


def _tokens_of(reply: Any, path: str) -> tuple[str, str]:
    if not isinstance(reply, dict):
        raise InvalidResponseError("expected a JSON object with tokens", path=path)
    access, refresh = reply.get("accessToken"), reply.get("refreshToken") or ""
    if not isinstance(access, str) or not access or not isinstance(refresh, str):
        raise InvalidResponseError("the reply holds no access token", path=path)
    return access, refresh
