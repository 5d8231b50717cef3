"""The :class:`Emulator`: the emulated API, its state, and the ways to run it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
from cryptography import x509
from starlette.types import ASGIApp

from ..models import Authority
from ._app import build_app
from ._ca import CertificateAuthority, cached_ca
from ._clock import Clock
from ._config import EmulatorConfig
from ._faults import Fault, FaultMiddleware, FaultRegistry
from ._records import EmulatorBatch, EmulatorCertificate, EmulatorStats, Revocation
from ._server import is_loopback, run_in_thread, serve
from ._service import Service
from ._store import Store
from ._tokens import TokenIssuer
from ._transport import EmulatorTransport
from ._views import batch_records, certificate_records, revocation_records

if TYPE_CHECKING:
    from sectigo_iot import SectigoClient

__all__ = ["Emulator"]


class Emulator:
    """A local Sectigo IoT Manager that issues real certificates from its own test CA.

    Options are the fields of :class:`EmulatorConfig`, given as keywords or as a
    config object (keywords override it)::

        emulator = Emulator(users={"alice": "pw1", "bob": "pw2"}, processing_delay=5)
        async with httpx.AsyncClient(transport=emulator.transport(),
                                     base_url=emulator.base_url) as http:
            ...
        emulator.clock.advance(5)

    ``clock`` is the emulator's time (a running :class:`Clock` by default; one made
    with ``Clock(start=...)`` stands still until advanced).
    """

    def __init__(
        self, config: EmulatorConfig | None = None, /, *, clock: Clock | None = None, **options: Any
    ) -> None:
        self.config = (
            attrs.evolve(config, **options) if config is not None else EmulatorConfig(**options)
        )
        self.base_url = self.config.base_url
        #: the emulator's time; ``clock.advance(seconds)`` expires tokens, finishes batches
        self.clock = clock if clock is not None else Clock()
        #: login, refresh and request counters (also served at ``GET /emulator/stats``)
        self.stats = EmulatorStats()
        self._store = Store(self.config.db_path)
        self._store.ensure_authorities(self.config.initial_authorities())
        tokens = TokenIssuer(
            self._store.meta_setdefault("hmac_secret", secrets.token_bytes(32)),
            clock=self.clock,
            issuer=self.config.issuer,
            access_ttl=self.config.access_ttl,
            refresh_ttl=self.config.refresh_ttl,
        )
        self._service = Service(
            config=self.config,
            store=self._store,
            clock=self.clock,
            ca=self._load_ca(),
            tokens=tokens,
            stats=self.stats,
        )
        self._faults = FaultRegistry()
        #: the ASGI application (Starlette, wrapped by the fault middleware)
        self.app: ASGIApp = FaultMiddleware(
            build_app(self._service),
            self._faults,
            clock=self.clock,
            on_request=self.stats.record_request,
        )

    def _load_ca(self) -> CertificateAuthority:
        if self.config.ca is not None:
            return self.config.ca
        if self.config.db_path is None:
            return cached_ca(self.config.ca_key_type)
        fresh = CertificateAuthority.generate(self.config.ca_key_type, intermediate=True)
        cert_pem = self._store.meta_setdefault("ca_certificate", fresh.certificate_pem)
        key_pem = self._store.meta_setdefault("ca_private_key", fresh.private_key_pem())
        return CertificateAuthority.from_pem(cert_pem, key_pem)

    def __repr__(self) -> str:
        where = self.config.db_path or ":memory:"
        return f"<Emulator users={sorted(self.config.users)} db={where!s}>"

    def close(self) -> None:
        """Close the database (state in a ``db_path`` file stays for the next run)."""
        self._store.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- ways to talk to it ------------------------------------------------------------

    def transport(self) -> EmulatorTransport:
        """An httpx transport that runs the emulator in process."""
        return EmulatorTransport(self.app)

    def client(
        self, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> SectigoClient:
        """A ``SectigoClient`` wired to this emulator (first configured user by default).

        The client shares the emulator's clock unless ``clock`` is given, so moving
        ``emulator.clock`` ages the client's tokens too.
        """
        from sectigo_iot import SectigoClient

        kwargs.setdefault("clock", self.clock)
        kwargs.setdefault("token_store", "memory")
        kwargs.setdefault("allow_insecure_http", True)  # in process: nothing travels
        if username is None:
            username = next(iter(self.config.users))
        if password is None:
            password = self.config.users.get(username, "")
        return SectigoClient(
            username=username,
            password=password,
            base_url=self.base_url,
            transport=self.transport(),
            **kwargs,
        )

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8831,
        *,
        allow_remote: bool = False,
        on_ready: Callable[[str], None] | None = None,
        log_level: str = "warning",
    ) -> None:
        """Serve over HTTP with uvicorn until interrupted (loopback only by default).
        Certificates issued meanwhile name the served address in their CRL
        distribution point (``/emulator/crl/<issuer key id>.crl``)."""
        if not allow_remote and not is_loopback(host):
            raise ValueError(f"refusing to listen on non-loopback host {host!r}")

        def ready(url: str) -> None:
            self._service.url = url  # the CRL distribution point of what it issues
            if on_ready is not None:
                on_ready(url)

        try:
            await serve(self.app, host, port, on_ready=ready, log_level=log_level)
        finally:
            self._service.url = self.base_url.rstrip("/")

    @contextmanager
    def run_in_thread(
        self, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning"
    ) -> Iterator[str]:
        """Serve over HTTP in a background thread during the block; yields the base URL,
        which certificates issued meanwhile name in their CRL distribution point."""
        if not is_loopback(host):
            raise ValueError(f"refusing to listen on non-loopback host {host!r}")
        with run_in_thread(self.app, host, port, log_level) as url:
            self._service.url = url  # the CRL distribution point of what it issues
            try:
                yield url
            finally:
                self._service.url = self.base_url.rstrip("/")

    # -- fault injection ---------------------------------------------------------------

    def inject(
        self,
        method: str,
        path: str,
        fault: str,
        times: int = 1,
        *,
        seconds: float | None = None,
        status: int = 500,
        retry_after: int = 1,
        message: str = "Injected fault",
        keep_bytes: int | None = None,
        inflate_to: int | None = None,
        probability: float = 1.0,
        seed: int | None = None,
    ) -> Fault:
        """Make the next ``times`` matching requests fail.

        ``path`` is literal or a pattern where ``{name}`` matches one path segment and
        ``*`` anything; ``method`` may be ``"*"``. ``fault`` is one of:

        * ``"delay"``: sleep ``seconds`` (default 1), then serve;
        * ``"delay_after"``: serve (the work is committed), then hold the answer
          ``seconds`` (default 1) before sending it;
        * ``"error"``: answer ``status`` with a Sectigo error body, do nothing;
        * ``"error_after"``: do the work, then answer as ``"error"`` (the reply is lost);
        * ``"rate_limit"``: answer 429 with ``Retry-After: retry_after``, do nothing;
        * ``"drop_before"``: hang up without doing anything;
        * ``"drop_after"``: do the work, then hang up without answering;
        * ``"truncate"``: do the work, send the status, the headers (Content-Length of
          the whole body) and ``keep_bytes`` of the body (default half), then hang up;
        * ``"stall"``: the same, but instead of hanging up wait ``seconds`` (default
          300, or until the client leaves), then send the rest;
        * ``"gzip"``: send the real answer gzip-compressed (``Content-Encoding: gzip``);
          with ``inflate_to`` the body is first padded to that many bytes (spaces for
          JSON and text, zero bytes otherwise): a decompression bomb.

        A truncate or stall always holds back at least one byte; an empty body goes out
        whole. They and the drops are faithful in process and under ``serve`` or
        ``run_in_thread``.

        With ``probability`` below 1 the fault applies to each matching request only
        with that chance, drawn from a generator seeded with ``seed`` (the same
        requests, the same choices); a request it passes over is not counted in
        ``times`` and goes on to the next fault injected.
        """
        return self._faults.add(
            Fault(
                method,
                path,
                fault,
                times,
                seconds=seconds,
                status=status,
                retry_after=retry_after,
                message=message,
                keep_bytes=keep_bytes,
                inflate_to=inflate_to,
                probability=probability,
                seed=seed,
            )
        )

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    # -- batch outcomes ----------------------------------------------------------------

    def set_next_outcome(self, outcome: str, *, reason: str | None = None, times: int = 1) -> None:
        """Make the next ``times`` valid batches end as ``outcome`` instead of the config's.

        ``outcome`` is ``"ready"``, ``"rejected"`` (detail ``REJECTED`` with
        ``rejectReason`` = ``reason``, text ``Rejected``), ``"failed"`` (``FAILED``,
        text ``Failed``) or ``"not_acceptable"`` (``NOT_ACCEPTABLE``, text ``Not
        Acceptable. Status: <reason>``). A batch that does not end ready issues no
        certificate and spends no license; its processing info counts every
        certificate as failed. An invalid request still ends ``REJECTED`` and does not
        use up the outcome. ``reason`` defaults to ``"Rejected by the emulator"`` and
        ``"Error"``.
        """
        self._service.set_next_outcome(outcome, reason, times)

    # -- state for tests ---------------------------------------------------------------

    @property
    def ca(self) -> CertificateAuthority:
        """The test CA that signs every certificate, with its chain up to the root."""
        return self._service.ca

    @property
    def ca_certificate(self) -> x509.Certificate:
        """The CA certificate that signs the leaves: by default an intermediate under
        :attr:`root_certificate` (``leaf.verify_directly_issued_by(ca_certificate)``)."""
        return self._service.ca.certificate

    @property
    def root_certificate(self) -> x509.Certificate:
        """The self-signed root: the trust anchor, as Sectigo's root is in production."""
        return self._service.ca.root

    @property
    def ca_pem(self) -> bytes:
        """:attr:`ca_certificate` then the chain up to the root, in PEM (also served at
        ``GET /emulator/ca.pem``): a CA file that verifies a bare leaf. To check that a
        client sends the intermediate, as production requires, trust only
        :attr:`root_certificate`."""
        return self._service.ca.certificate_pem

    @property
    def authorities(self) -> list[Authority]:
        """The authorities with their current balances."""
        return self._service.authorities()

    @property
    def balance(self) -> int:
        """The balance left, summed over all authorities."""
        return sum(a.balance for a in self._service.authorities())

    def set_balance(self, balance: int, authority_id: int | None = None) -> None:
        """Set the balance of one authority (the first one by default)."""
        if authority_id is None:
            authority_id = self._service.authorities()[0].id
        self._store.set_balance(authority_id, balance)

    @property
    def licenses_used(self) -> int:
        """Licenses spent: certificates ordered, issued or still processing."""
        return self._store.count_certificates()

    @property
    def issued_count(self) -> int:
        """Certificates issued (in batches that finished processing)."""
        return self._service.issued_count()

    def batches(self, username: str | None = None) -> list[EmulatorBatch]:
        """Every batch, oldest first (of one user when given)."""
        return batch_records(self._service, username)

    def certificates(self, username: str | None = None) -> list[EmulatorCertificate]:
        """Every certificate, oldest first (of one user when given)."""
        return certificate_records(self._service, username)

    def revocations(self) -> list[Revocation]:
        """Every revocation, oldest first."""
        return revocation_records(self._service)
