"""Observing the SDK: operations, typed redacted events, :class:`Hooks` and the
observer interface that hooks, OpenTelemetry and Prometheus share.

Operations
----------
Every public SDK method (``batches.create``, ``batches.get``, ``certificates.find``, ...)
is an *operation*: an :class:`Operation` held in a context variable while it runs
(:func:`current_operation`). Operations nest: ``batches.wait`` polling ``batches.get``
makes ``batches.get`` an operation of its own, a child of ``batches.wait``; events carry
the innermost. A login or a refresh is an operation too (``auth.login``,
``auth.refresh``), a child of the operation that needed it. A fleet or lifecycle step is
one (``fleet.submit``, ``fleet.deliver``; see :func:`step_span`), with the record key,
which the operations inside it inherit (as they do ``batch_id`` and ``authority_id``
when they know none of their own).

The observer interface (stable: ``sectigo_iot.metrics.Metrics`` implements it)
------------------------------------------------------------------------------
An observer is any object with these six methods; subclass :class:`Observer` (all
no-ops) and override what you need. The session calls them, in this order, for every
client the observer was given to (``SectigoClient(hooks=..., metrics=...,
tracer_provider=...)``):

``operation_started(operation: Operation) -> None``
    a public operation begins (in the task that runs it; ``operation.parent`` is the
    enclosing one, or None).
``request(event: RequestEvent) -> None | Awaitable``
    just before each physical send: every retry and the resend after a 401 included.
``response(event: ResponseEvent) -> None | Awaitable``
    once per physical send, after its body was read or the exchange failed
    (``status_code`` None then, ``error_type`` the error's class name); ``event.outcome``
    is one of ``ok``, ``http_4xx``, ``http_5xx``, ``timeout``, ``connection_error``.
``retry(event: RetryEvent) -> None | Awaitable``
    a failed attempt is to be sent again: ``attempt`` is the one that failed, ``cause``
    one of ``http_<status>``, ``timeout``, ``connection_error``, ``delay`` the pause in
    seconds before the next send.
``token_refresh(event: TokenRefreshEvent) -> None | Awaitable``
    new tokens were obtained and accepted (``grant`` is ``"password"`` or
    ``"refresh_token"``; ``operation`` is ``auth.login`` or ``auth.refresh``).
``operation_ended(operation: Operation, error: BaseException | None) -> None``
    the operation returned (``operation.result`` is its value) or raised ``error``.

The four event methods may return an awaitable (an ``async def``): it is awaited at
most ``Hooks.timeout`` seconds (5 by default) and then abandoned with a warning.
Nothing an observer raises reaches the caller: it is logged (WARNING, redacted) and the
call goes on. Observers run in the client's event loop and must not block. Events are
frozen and hold no secret: no token, password, PKCS#12 password, key or body.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from attrs import field, frozen

from ._logging import get_logger, operation_var
from .errors import InvalidInputError

__all__ = [
    "DEFAULT_HOOK_TIMEOUT",
    "Hooks",
    "Observer",
    "Observers",
    "Operation",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "TokenRefreshEvent",
    "current_operation",
    "ids_of",
    "operation",
    "operation_scope",
    "redact_url",
    "step_span",
    "url_template",
]

logger = get_logger("sectigo_iot.hooks")

P = ParamSpec("P")
R = TypeVar("R", bound="_Resource")
T = TypeVar("T")

DEFAULT_HOOK_TIMEOUT = 5.0
REDACTED_VALUE = "REDACTED"
#: query parameters whose value is never shown (``url`` of events, ``url.full`` of spans)
_SECRET_NAME = re.compile(r"(?i)pass|secret|token|key|auth|sig|credential|session|code")


class _Session(Protocol):
    @property
    def observers(self) -> Observers: ...


class _Resource(Protocol):
    """What :func:`operation` needs of a resource namespace: its session."""

    @property
    def _session(self) -> _Session: ...


class Operation:
    """One public SDK operation while it runs (see the module docstring).

    ``name`` (``"batches.create"``), ``parent`` (the enclosing operation or None),
    ``idempotent`` (False for a create or an upload), ``batch_id``, ``authority_id`` and
    ``key`` (a fleet record's) when known, ``attributes`` (a step's extra attributes,
    such as its state change), ``result`` (the value returned, once it has).
    """

    __slots__ = (
        "attributes",
        "authority_id",
        "batch_id",
        "idempotent",
        "key",
        "name",
        "parent",
        "result",
    )

    def __init__(
        self,
        name: str,
        *,
        parent: Operation | None = None,
        idempotent: bool = True,
        batch_id: int | None = None,
        authority_id: int | None = None,
        key: str | None = None,
    ) -> None:
        self.name = name
        self.parent = parent
        self.idempotent = idempotent
        self.batch_id = batch_id
        self.authority_id = authority_id
        self.key = key
        if parent is not None:  # what the enclosing operation knows and this one does not
            self.batch_id = parent.batch_id if batch_id is None else batch_id
            self.authority_id = parent.authority_id if authority_id is None else authority_id
            self.key = parent.key if key is None else key
        self.attributes: dict[str, str | int | float | bool] = {}
        self.result: object = None

    def __repr__(self) -> str:
        return f"Operation({self.name!r}, batch_id={self.batch_id}, key={self.key!r})"


_current: contextvars.ContextVar[Operation | None] = operation_var


def current_operation() -> Operation | None:
    """The innermost operation running in this context, or None."""
    return _current.get()


@frozen(kw_only=True)
class RequestEvent:
    """One physical send, about to happen. ``url`` is redacted (no user info, secret
    query values ``REDACTED``); ``attempt`` counts from 1 and includes the resend after a
    401, which ``max_attempts`` (``max_retries + 1``) does not; ``resend_count`` is
    ``attempt - 1``."""

    operation: str
    method: str
    url: str
    url_template: str
    attempt: int
    max_attempts: int
    resend_count: int
    batch_id: int | None = None
    authority_id: int | None = None


@frozen(kw_only=True)
class ResponseEvent(RequestEvent):
    """A physical send finished: ``status_code`` (None when no answer came),
    ``duration`` in seconds, ``error_type`` (the status as text from 400 up, the
    error's class name when the exchange failed, else None)."""

    status_code: int | None
    duration: float
    error_type: str | None = None

    @property
    def outcome(self) -> str:
        """``ok``, ``http_4xx``, ``http_5xx``, ``timeout`` or ``connection_error``."""
        status = self.status_code
        if status is None:
            return "timeout" if self.error_type == "APITimeoutError" else "connection_error"
        if status >= 500:
            return "http_5xx"
        return "http_4xx" if status >= 400 else "ok"


@frozen(kw_only=True)
class RetryEvent(RequestEvent):
    """The attempt ``attempt`` failed and is sent again after ``delay`` seconds;
    ``cause`` is ``http_<status>``, ``timeout`` or ``connection_error``."""

    cause: str
    delay: float
    status_code: int | None = None


@frozen(kw_only=True)
class TokenRefreshEvent:
    """New tokens were obtained: ``grant`` is ``"password"`` (a login) or
    ``"refresh_token"``; ``operation`` is ``auth.login`` or ``auth.refresh``."""

    operation: str
    grant: str


def _optional_callable(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if value is not None and not callable(value):
            raise InvalidInputError(f"Hooks({name}=...) must be a callable or None, got {value!r}")

    return check


def _check_timeout(_instance: Any, _attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidInputError(
            f"Hooks(timeout=...) must be a number of seconds > 0, got {value!r}"
        )


class Observer:
    """The observer interface (see the module docstring), every method a no-op."""

    def operation_started(self, operation: Operation) -> None:
        """A public operation begins."""

    def operation_ended(self, operation: Operation, error: BaseException | None) -> None:
        """The operation returned (``error`` None) or raised ``error``."""

    def request(self, event: RequestEvent) -> Awaitable[Any] | None:
        """A physical send is about to happen."""
        return None

    def response(self, event: ResponseEvent) -> Awaitable[Any] | None:
        """A physical send finished (answered or failed)."""
        return None

    def retry(self, event: RetryEvent) -> Awaitable[Any] | None:
        """A failed attempt is to be sent again after ``event.delay`` seconds."""
        return None

    def token_refresh(self, event: TokenRefreshEvent) -> Awaitable[Any] | None:
        """New tokens were obtained."""
        return None


@frozen(kw_only=True)
class Hooks(Observer):
    """Callables given each event of a client (``SectigoClient(hooks=Hooks(...))``).

    Each is sync or async and optional. A hook that raises is logged and does not
    break the call; an async hook gets at most ``timeout`` seconds and is then
    abandoned with a warning; a sync hook runs in the event loop and must not block.
    """

    on_request: Callable[[RequestEvent], Any] | None = field(
        default=None, validator=_optional_callable("on_request")
    )
    on_response: Callable[[ResponseEvent], Any] | None = field(
        default=None, validator=_optional_callable("on_response")
    )
    on_retry: Callable[[RetryEvent], Any] | None = field(
        default=None, validator=_optional_callable("on_retry")
    )
    on_token_refresh: Callable[[TokenRefreshEvent], Any] | None = field(
        default=None, validator=_optional_callable("on_token_refresh")
    )
    timeout: float = field(default=DEFAULT_HOOK_TIMEOUT, validator=_check_timeout)

    def request(self, event: RequestEvent) -> Any:
        return None if self.on_request is None else self.on_request(event)

    def response(self, event: ResponseEvent) -> Any:
        return None if self.on_response is None else self.on_response(event)

    def retry(self, event: RetryEvent) -> Any:
        return None if self.on_retry is None else self.on_retry(event)

    def token_refresh(self, event: TokenRefreshEvent) -> Any:
        return None if self.on_token_refresh is None else self.on_token_refresh(event)


class Observers:
    """The observers of one client, called together; false when there are none (the
    session then builds no event). Nothing an observer raises gets out."""

    __slots__ = ("_all",)

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self._all = tuple(observers)

    def __bool__(self) -> bool:
        return bool(self._all)

    def __iter__(self) -> Iterator[Observer]:
        return iter(self._all)

    def operation_started(self, operation: Operation) -> None:
        for observer in self._all:
            try:
                observer.operation_started(operation)
            except Exception as exc:
                _report(observer, "operation_started", exc)

    def operation_ended(self, operation: Operation, error: BaseException | None) -> None:
        for observer in reversed(self._all):
            try:
                observer.operation_ended(operation, error)
            except Exception as exc:
                _report(observer, "operation_ended", exc)

    async def request(self, event: RequestEvent) -> None:
        await self._emit("request", event)

    async def response(self, event: ResponseEvent) -> None:
        await self._emit("response", event)

    async def retry(self, event: RetryEvent) -> None:
        await self._emit("retry", event)

    async def token_refresh(self, event: TokenRefreshEvent) -> None:
        await self._emit("token_refresh", event)

    def emit_now(self, method: str, event: object) -> None:
        """Call ``method`` of every observer without awaiting (a cancelled call):
        whatever an observer returns to await is closed unawaited."""
        for observer in self._all:
            try:
                outcome = getattr(observer, method)(event)
            except Exception as exc:
                _report(observer, method, exc)
                continue
            if inspect.iscoroutine(outcome):
                outcome.close()

    async def _emit(self, method: str, event: object) -> None:
        for observer in self._all:
            try:
                outcome = getattr(observer, method)(event)
                if outcome is not None and inspect.isawaitable(outcome):
                    await self._bounded(observer, method, outcome)
            except Exception as exc:
                _report(observer, method, exc)

    async def _bounded(self, observer: Observer, method: str, awaitable: Awaitable[Any]) -> None:
        import anyio

        timeout = observer.timeout if isinstance(observer, Hooks) else DEFAULT_HOOK_TIMEOUT
        with anyio.move_on_after(timeout) as scope:
            await awaitable
        if scope.cancelled_caught:
            logger.warning(
                "%s did not finish within %g s: abandoned", _name_of(observer, method), timeout
            )


def _name_of(observer: object, method: str) -> str:
    """``hook on_retry`` for a Hooks' callable, ``Metrics.retry`` for another observer."""
    if isinstance(observer, Hooks):
        return f"hook on_{method}"
    return f"{type(observer).__name__}.{method}"


def _report(observer: object, method: str, exc: Exception) -> None:
    logger.warning(
        "%s raised %s: %s (the call goes on)", _name_of(observer, method), type(exc).__name__, exc
    )


class _Scope:
    """The context manager of :func:`operation_scope` (a class: cheaper than a
    generator, and entered once per SDK call)."""

    __slots__ = ("_observers", "_token", "operation")

    def __init__(self, observers: Observers | None, operation: Operation) -> None:
        self._observers = observers
        self.operation = operation

    def __enter__(self) -> Operation:
        self._token = _current.set(self.operation)
        if self._observers:
            self._observers.operation_started(self.operation)
        return self.operation

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        if self._observers:
            self._observers.operation_ended(self.operation, error)
        _current.reset(self._token)


def operation_scope(
    observers: Observers | None,
    name: str,
    *,
    idempotent: bool = True,
    batch_id: int | None = None,
    authority_id: int | None = None,
    key: str | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> AbstractContextManager[Operation]:
    """Run the enclosed code as the operation ``name`` (a child of the current one),
    told to ``observers``; yields the :class:`Operation` (set ``result`` or
    ``attributes`` on it before the end)."""
    op = Operation(
        name,
        parent=_current.get(),
        idempotent=idempotent,
        batch_id=batch_id,
        authority_id=authority_id,
        key=key,
    )
    if attributes:
        op.attributes.update(attributes)
    return _Scope(observers, op)


def step_span(
    client: object, name: str, *, key: str, **attributes: str | int | float | bool
) -> AbstractContextManager[Operation]:
    """A fleet or lifecycle step as an operation of ``client`` (a span ``sectigo
    <name>`` under OpenTelemetry), with the record ``key`` and ``attributes`` such as
    ``state_from``/``state_to`` (prefixed ``sectigo.`` on the span). Operations inside
    inherit the key; log records carry it. Costs a context variable without observers."""
    session = getattr(client, "_session", None)
    observers = getattr(session, "observers", None)
    return operation_scope(observers, name, key=key, attributes=attributes)


def operation(
    name: str, *, idempotent: bool = True
) -> Callable[
    [Callable[Concatenate[R, P], Awaitable[T]]], Callable[Concatenate[R, P], Awaitable[T]]
]:
    """Make a resource's async method the operation ``name``; its ``batch_id`` or
    ``authority_id`` argument (when an int) and, for a method returning a batch with
    ``create``/``upload`` semantics, the batch's id are the operation's."""

    def decorate(
        method: Callable[Concatenate[R, P], Awaitable[T]],
    ) -> Callable[Concatenate[R, P], Awaitable[T]]:
        parameters = list(inspect.signature(method).parameters)[1:]
        positions = {
            id_name: parameters.index(id_name)
            for id_name in ("batch_id", "authority_id")
            if id_name in parameters
        }

        @functools.wraps(method)
        async def run(self: R, *args: P.args, **kwargs: P.kwargs) -> T:
            ids: dict[str, int] = {}
            for id_name, index in positions.items():
                value = args[index] if index < len(args) else kwargs.get(id_name)
                if type(value) is int:
                    ids[id_name] = value
            op = Operation(
                name,
                parent=_current.get(),
                idempotent=idempotent,
                batch_id=ids.get("batch_id"),
                authority_id=ids.get("authority_id"),
            )
            with _Scope(self._session.observers, op):
                result = await method(self, *args, **kwargs)
                op.result = result
                batch_id = getattr(result, "batch_id", None) if not idempotent else None
                if type(batch_id) is int:
                    op.batch_id = batch_id
                return result

        return cast("Callable[Concatenate[R, P], Awaitable[T]]", run)

    return decorate


_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def url_template(path: str) -> str:
    """The route of ``path``: the query dropped, each numeric segment ``{id}``
    (``/api/v1/batches/12/status`` -> ``/api/v1/batches/{id}/status``)."""
    return _ID_SEGMENT.sub("/{id}", path.partition("?")[0])


def ids_of(path: str) -> tuple[int | None, int | None]:
    """The batch id and the authority id a request path names, if any."""
    batch_id = authority_id = None
    parts = path.partition("?")[0].split("/")
    for before, part in itertools.pairwise(parts):
        if part.isdigit():
            if before == "batches":
                batch_id = int(part)
            elif before == "authorities":
                authority_id = int(part)
    return batch_id, authority_id


def redact_url(url: str) -> str:
    """``url`` without user info, each query value whose name looks secret
    ``REDACTED`` (the fragment dropped)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED_VALUE if _SECRET_NAME.search(k) else v) for k, v in pairs], safe="{}"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
