"""What the emulated API does, independent of HTTP: auth, batches, issuance, search."""

from __future__ import annotations

import hmac
import logging
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone

import anyio.to_thread
from attrs import define, field
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .._version import __version__
from ..models import (
    AuthenticationReply,
    Authority,
    Batch,
    BatchStatus,
    CertificateItem,
    CreateSingleCertBatchRequest,
    FindCertificateRequest,
    FindCertificateResponse,
    Licenses,
    Organization,
    ProcessingInfo,
    Profile,
    ProfileDetail,
    ProfileParameter,
    RevokeCertificateRequest,
    UploadCSRBatchRequest,
)
from ._ca import (
    CertificateAuthority,
    build_zip,
    entry_name,
    is_dns_name,
    new_private_key,
    subject_from_params,
)
from ._clock import Clock
from ._config import BATCH_OUTCOMES, EmulatorConfig, organization, profile_parameters
from ._csr import CheckedCSR, UploadError, check_csr, extract_csrs
from ._pkcs12 import pkcs12_bytes
from ._records import EmulatorBatch, EmulatorCertificate, EmulatorStats, Revocation
from ._responses import ApiError, ErrorCode
from ._store import BalanceError, BatchRow, CertificateRow, NewBatch, NewCertificate, Store
from ._tokens import ACCESS_SCOPE, REFRESH_SCOPE, TokenError, TokenIssuer

__all__ = ["ApiError", "Service"]

logger = logging.getLogger("sectigo_iot.emulator")

#: the human phrases of the text status endpoint; a COLLECTED batch still reads
#: "Ready for download" there, as on the real service (NOT_ACCEPTABLE adds its reason)
_STATUS_TEXT = {
    BatchStatus.CREATED: "Created",
    BatchStatus.PROCESSING: "Processing",
    BatchStatus.READY_FOR_DOWNLOAD: "Ready for download",
    BatchStatus.COLLECTED: "Ready for download",
    BatchStatus.REJECTED: "Rejected",
    BatchStatus.FAILED: "Failed",
}
#: the final status of each batch outcome, and the reason it gets unless told
_OUTCOMES = {
    "ready": (BatchStatus.READY_FOR_DOWNLOAD, ""),
    "rejected": (BatchStatus.REJECTED, "Rejected by the emulator"),
    "failed": (BatchStatus.FAILED, ""),
    "not_acceptable": (BatchStatus.NOT_ACCEPTABLE, "Error"),
}
_FAILURES = (BatchStatus.REJECTED, BatchStatus.FAILED, BatchStatus.NOT_ACCEPTABLE)
_KEY_ALGORITHMS = {"rsa2048": "RSA 2048", "rsa4096": "RSA 4096", "ec-p256": "EC P-256"}
_DOWNLOADABLE = (BatchStatus.READY_FOR_DOWNLOAD, BatchStatus.COLLECTED)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def _serial(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "X")


def _normalize_serial(text: str) -> str:
    cleaned = text.replace(":", "").replace(" ", "").upper().lstrip("0")
    return cleaned or ("0" if text.strip() else "")


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def go_duration(seconds: float) -> str:
    """A duration as Go's ``time.Duration`` prints it (``1h2m3.5s``, ``12.5ms``, ``0s``)."""
    nanoseconds = max(0, round(seconds * 1e9))
    if nanoseconds < 1000:
        return f"{nanoseconds}ns" if nanoseconds else "0s"
    for unit, name in ((1000, "µs"), (1_000_000, "ms")):
        if nanoseconds < unit * 1000:
            return _decimal(nanoseconds, unit) + name
    hours, rest = divmod(nanoseconds, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _decimal(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    return f"{hours}h{text}" if hours else text


def _decimal(value: int, unit: int) -> str:
    """``value / unit`` with the fraction's trailing zeros dropped, as Go writes it."""
    whole, fraction = divmod(value, unit)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


@define(kw_only=True, eq=False)
class Service:
    """The emulated Sectigo IoT Manager, one method per API operation."""

    config: EmulatorConfig
    store: Store
    clock: Clock
    ca: CertificateAuthority
    tokens: TokenIssuer
    stats: EmulatorStats
    user_ids: dict[str, int] = field(init=False)
    ordered: int = field(init=False)
    started: float = field(init=False)
    _next_outcomes: deque[tuple[str, str | None]] = field(init=False, factory=deque)
    _outcomes_lock: threading.Lock = field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self.user_ids = self.store.ensure_users(list(self.config.users))
        self.ordered = sum(a.balance for a in self.config.initial_authorities())
        self.started = self.clock()

    def __repr__(self) -> str:
        return f"<Service users={sorted(self.config.users)}>"

    def heartbeat(self) -> dict[str, str]:
        """The body of ``GET /status``, as the original emulator answers it."""
        uptime = go_duration(self.clock() - self.started)
        return {"status": "ok", "version": __version__, "uptime": uptime}

    # -- authentication ----------------------------------------------------------------

    def login(self, username: str, password: str) -> AuthenticationReply:
        """Check a username and password; answer a fresh token pair."""
        expected = self.config.users.get(username)
        matches = hmac.compare_digest(
            (expected if expected is not None else "\0" + password).encode(), password.encode()
        )
        if expected is None or not matches:
            self.stats.record_failed_login()
            logger.info("login refused for %r", username)
            raise ApiError(401, "Invalid username or password", ErrorCode.AUTHENTICATION)
        self.stats.record_login(username)
        access, refresh = self.tokens.issue_pair(username)
        return AuthenticationReply(access_token=access, refresh_token=refresh)

    def refresh(self, body: bytes) -> AuthenticationReply:
        """Exchange a refresh token (the raw request body) for a fresh pair."""
        username = self._verify(body.decode("latin-1"), REFRESH_SCOPE)
        self.stats.record_refresh(username)
        access, refresh = self.tokens.issue_pair(username)
        return AuthenticationReply(access_token=access, refresh_token=refresh)

    def authenticate(self, authorization: str | None) -> str:
        """The user of a ``Bearer`` access token, or a 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "Full authentication is required to access this resource",
                ErrorCode.AUTHENTICATION,
            )
        return self._verify(token, ACCESS_SCOPE)

    def _verify(self, token: str, scope: str) -> str:
        try:
            username = self.tokens.verify(token, scope)
        except TokenError as exc:
            logger.info("token refused: %s", exc)
            raise ApiError(401, "Invalid or expired token", ErrorCode.AUTHENTICATION) from None
        if username not in self.config.users:
            raise ApiError(401, "Invalid or expired token", ErrorCode.AUTHENTICATION)
        return username

    # -- account, authorities and profiles ---------------------------------------------

    def authorities(self) -> list[Authority]:
        """The authorities with their current balances."""
        return self.store.authorities()

    def balance(self, authority_id: int) -> int:
        """The balance left on one authority."""
        for authority in self.store.authorities():
            if authority.id == authority_id:
                return authority.balance
        raise ApiError(404, f"Authority {authority_id} not found", ErrorCode.NOT_FOUND)

    def licenses(self) -> Licenses:
        """Ordered and issued certificate counts."""
        return Licenses(ordered=self.ordered, issued=self.issued_count())

    def issued_count(self) -> int:
        """Certificates in batches that have finished processing."""
        return self.store.count_certificates(issued_by=self.clock())

    def organization(self) -> Organization:
        """The user's organization."""
        return organization(self.store.authorities())

    def _profiles(self) -> dict[int, str]:
        return {a.profile_id: a.profile_name for a in reversed(self.store.authorities())}

    def profiles(self) -> list[Profile]:
        """Every profile of the configured authorities."""
        return [
            Profile(profile_id=pid, algorithms=["RSA2048", "RSA4096", "EC256"], ca="Sectigo")
            for pid in sorted(self._profiles())
        ]

    def profile(self, profile_id: int) -> ProfileDetail:
        """One profile's detail."""
        name = self._profile_name(profile_id)
        raw = "\n".join(
            f"{p.name}: {'required' if p.required else 'optional'}" for p in profile_parameters()
        )
        return ProfileDetail(
            profile_name=name,
            profile_id=profile_id,
            raw_profile_config=f"# emulated profile {profile_id}\n{raw}\n",
            name=name,
            key_algorithm_info=_KEY_ALGORITHMS[self.config.key_type],
        )

    def parameters(self, profile_id: int) -> list[ProfileParameter]:
        """The parameters a profile takes."""
        self._profile_name(profile_id)
        return profile_parameters()

    def _profile_name(self, profile_id: int) -> str:
        try:
            return self._profiles()[profile_id]
        except KeyError:
            raise ApiError(404, f"Profile {profile_id} not found", ErrorCode.NOT_FOUND) from None

    def _resolve_authority(self, value: int) -> Authority | None:
        """The authority meant by a create's ``authorityId`` or an upload's ``profileId``.

        The API documentation calls ``authorityId`` an authority id and the directory
        service sends ``authorities[i].id``, while the original CLI's README says its
        ``-a`` flag "should be a profile id". Real Sectigo's answer is unknown, so the
        emulator accepts both: an authority ``id`` first, else an authority whose
        ``profileId`` matches. This is the only place that decides it.
        """
        authorities = self.store.authorities()
        by_id = (a for a in authorities if a.id == value)
        by_profile = (a for a in authorities if a.profile_id == value)
        return next(by_id, None) or next(by_profile, None)

    # -- batches -----------------------------------------------------------------------

    async def create_single(self, username: str, request: CreateSingleCertBatchRequest) -> Batch:
        """Create a one-certificate batch with a server-generated key."""
        authority = self._resolve_authority(request.authority_id)
        if authority is None or not authority.enabled:
            raise ApiError(400, f"Unknown or disabled authority {request.authority_id}")
        params = request.profile_params
        parameters = profile_parameters()
        allowed = {p.name for p in parameters}
        for name in sorted(params):
            if name not in allowed:
                raise ApiError(400, f"Unknown profile parameter {name}")
        # what the parameters endpoint lists as required is required, and nothing else
        for parameter in parameters:
            if parameter.required and not params.get(parameter.name, "").strip():
                raise ApiError(400, f"Profile parameter {parameter.name} is required")
        self._check_balance(authority, 1)
        common_name = params["commonName"]
        # the SAN holds every dNSName line, and the common name
        dns_names = [line.strip() for line in params.get("dNSName", "").split("\n")]
        dns_names = list(dict.fromkeys([common_name, *filter(None, dns_names)]))
        certificates = []
        try:
            subject = subject_from_params(params)
            bad = [name for name in dns_names if not is_dns_name(name)]
            if bad:
                raise ValueError(
                    f"Cert subject name error: dNSName value {bad[0]!r} is not a valid DNS name"
                )
        except ValueError as exc:
            outcome, reason = BatchStatus.REJECTED, str(exc)
        else:
            outcome, reason = self._take_outcome()
            if outcome == BatchStatus.READY_FOR_DOWNLOAD:
                key = await anyio.to_thread.run_sync(new_private_key, self.config.key_type)
                certificate = self._issue(key.public_key(), subject, dns_names)
                key_pem = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                certificates.append(self._new_certificate(certificate, common_name, key_pem))
        row = self._store_batch(
            username,
            name=request.batch_name,
            kind="single",
            authority=authority,
            size=1,
            outcome=outcome,
            reason=reason,
            params=params,
            certificates=certificates,
        )
        return self._batch_model(row, created=True)

    async def upload(
        self,
        username: str,
        profile_id: int,
        request: UploadCSRBatchRequest,
        files: Sequence[tuple[str, bytes]],
    ) -> Batch:
        """Create a batch that signs the uploaded CSRs."""
        if request.profile_id != profile_id:
            raise ApiError(400, "profileId differs between the form field and csrBatchRequest")
        authority = self._resolve_authority(profile_id)
        if authority is None or not authority.enabled:
            raise ApiError(400, f"Unknown or disabled profile {profile_id}")
        try:
            blocks = extract_csrs(data for _, data in files)
        except UploadError as exc:
            raise ApiError(400, str(exc)) from None
        self._check_balance(authority, len(blocks))
        checked = await anyio.to_thread.run_sync(lambda: [check_csr(block) for block in blocks])
        problems = [
            f"CSR #{index}: {csr.problem}" if len(checked) > 1 else csr.problem
            for index, csr in enumerate(checked, 1)
            if csr.problem
        ]
        # a batch is all or nothing: one bad CSR rejects it
        outcome, reason = (
            (BatchStatus.REJECTED, "; ".join(problems)) if problems else self._take_outcome()
        )
        certificates = []
        if outcome == BatchStatus.READY_FOR_DOWNLOAD:
            certificates = await anyio.to_thread.run_sync(self._sign_csrs, checked)
        row = self._store_batch(
            username,
            name=files[0][0] if files else "",
            kind="csr",
            authority=authority,
            size=len(blocks),
            outcome=outcome,
            reason=reason,
            params=request.profile_params or {},
            certificates=certificates,
        )
        return self._batch_model(row, created=True)

    def _sign_csrs(self, checked: Sequence[CheckedCSR]) -> list[NewCertificate]:
        """Sign every checked CSR."""
        certificates = []
        for csr in checked:
            assert csr.public_key is not None and csr.subject is not None
            certificate = self._issue(csr.public_key, csr.subject, csr.dns_names)
            certificates.append(self._new_certificate(certificate, csr.common_name, None))
        return certificates

    def set_next_outcome(self, outcome: str, reason: str | None, times: int) -> None:
        """Make the next ``times`` valid batches end as ``outcome``."""
        if outcome not in BATCH_OUTCOMES:
            raise ValueError(
                f"unknown batch outcome {outcome!r}; expected one of {', '.join(BATCH_OUTCOMES)}"
            )
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._outcomes_lock:
            self._next_outcomes.extend([(outcome, reason)] * times)

    def _take_outcome(self) -> tuple[str, str]:
        """The final status and reason of the batch being created."""
        with self._outcomes_lock:
            outcome, reason = (
                self._next_outcomes.popleft()
                if self._next_outcomes
                else (self.config.batch_outcome, None)
            )
        status, default_reason = _OUTCOMES[outcome]
        return status, default_reason if reason is None else reason

    def _check_balance(self, authority: Authority, needed: int) -> None:
        if authority.balance < needed:
            raise ApiError(
                400,
                f"Not enough balance on authority {authority.id}: "
                f"{authority.balance} left, {needed} needed",
                ErrorCode.BALANCE,
            )

    def _issue(
        self,
        public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
        subject: x509.Name,
        dns_names: Sequence[str],
    ) -> x509.Certificate:
        return self.ca.issue(
            public_key,
            subject,
            dns_names,
            now=self.clock.datetime() + timedelta(seconds=self.config.processing_delay),
            validity=timedelta(days=self.config.validity_days),
        )

    def _new_certificate(
        self, certificate: x509.Certificate, common_name: str, key_pem: bytes | None
    ) -> NewCertificate:
        return NewCertificate(
            serial=_serial(certificate),
            device_id=str(uuid.uuid4()),
            common_name=common_name,
            cert_pem=_pem(certificate),
            key_pem=key_pem,
        )

    def _store_batch(
        self,
        username: str,
        *,
        name: str,
        kind: str,
        authority: Authority,
        size: int,
        outcome: str,
        reason: str,
        params: Mapping[str, str],
        certificates: Sequence[NewCertificate],
    ) -> BatchRow:
        now = self.clock()
        batch = NewBatch(
            username=username,
            name=name,
            kind=kind,
            authority_id=authority.id,
            profile_id=authority.profile_id,
            profile_name=authority.profile_name,
            size=size,
            created=now,
            ready_at=now + self.config.processing_delay,
            outcome=outcome,
            reject_reason=reason,
            params=params,
        )
        try:
            row = self.store.add_batch(
                batch, certificates, first_batch_id=self.config.first_batch_id
            )
        except BalanceError:
            raise ApiError(
                400, f"Not enough balance on authority {authority.id}", ErrorCode.BALANCE
            ) from None
        logger.info("batch %d created for %r (%s)", row.id, username, kind)
        return row

    def status(self, row: BatchRow) -> str:
        """The status a stored batch shows now."""
        if self.clock() < row.ready_at:
            return BatchStatus.PROCESSING
        if row.outcome == BatchStatus.READY_FOR_DOWNLOAD and row.collected:
            return BatchStatus.COLLECTED
        return row.outcome

    def _batch_model(self, row: BatchRow, *, created: bool = False) -> Batch:
        status = BatchStatus.CREATED if created else self.status(row)
        in_progress = status in (BatchStatus.CREATED, BatchStatus.PROCESSING)
        return Batch(
            batch_id=row.id,
            order_number=row.order_number,
            creation_date=_utc(row.created),
            profile=row.profile_name,
            size=row.size,
            status=status,
            active=in_progress,
            batch_name=row.name,
            reject_reason=row.reject_reason if status == BatchStatus.REJECTED else "",
            generator_parameters_values=None,
            user_id=self.user_ids.get(row.username, 0),
            downloadable=status in _DOWNLOADABLE,
            rejectable=in_progress,
        )

    def _row(self, username: str, batch_id: int) -> BatchRow:
        row = self.store.batch(batch_id, username)
        if row is None:
            raise ApiError(404, f"Batch {batch_id} not found", ErrorCode.NOT_FOUND)
        return row

    def batch(self, username: str, batch_id: int) -> Batch:
        """One of the user's batches."""
        return self._batch_model(self._row(username, batch_id))

    def status_text(self, username: str, batch_id: int) -> str:
        """The human phrase of a batch's status (``Ready for download``...)."""
        row = self._row(username, batch_id)
        status = self.status(row)
        if status == BatchStatus.NOT_ACCEPTABLE:
            return f"Not Acceptable. Status: {row.reject_reason}"
        return _STATUS_TEXT.get(status, status)

    def processing_info(self, username: str, batch_id: int) -> ProcessingInfo:
        """A batch's certificates counted as active, issued and failed."""
        row = self._row(username, batch_id)
        status = self.status(row)
        if status == BatchStatus.PROCESSING:
            return ProcessingInfo(active=row.size)
        if status in _FAILURES:
            return ProcessingInfo(failed=row.size)
        return ProcessingInfo(success=row.size)

    def batch_page(self, username: str, page: int, size: int) -> tuple[list[Batch], int]:
        """One page of the user's batches, newest first, and the total count."""
        rows = self.store.batches(username, offset=page * size, limit=size)
        return [self._batch_model(row) for row in rows], self.store.count_batches(username)

    def download(self, username: str, batch_id: int) -> tuple[str, bytes]:
        """The batch ZIP: the same bytes on every download (built once, then stored)."""
        row = self._row(username, batch_id)
        if self.status(row) not in _DOWNLOADABLE:
            raise ApiError(400, f"Batch {batch_id} is not ready for download")
        data = self.store.archive(batch_id)
        if data is None:
            data = self.store.keep_archive(batch_id, self._archive(row))
        return f"{batch_id}.zip", data

    def _archive(self, row: BatchRow) -> bytes:
        """A ``<cn>.p12`` per generated key, a ``<cn>.pem`` per CSR, dated at creation."""
        ca_pem = self.ca.certificate_pem
        password = self.store.batch_params(row.id).get("pkcs12Password", "")
        entries = []
        for cert in self.store.batch_certificates(row.id):
            if cert.key_pem is None:
                entries.append((entry_name(cert.common_name, ".pem"), cert.cert_pem + ca_pem))
                continue
            key = serialization.load_pem_private_key(cert.key_pem, password=None)
            assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
            leaf = x509.load_pem_x509_certificate(cert.cert_pem)
            p12 = pkcs12_bytes(
                key,
                [leaf, *self.ca.certificates],
                password,
                self.config.pkcs12_format,
            )
            entries.append((entry_name(cert.common_name, ".p12"), p12))
        return build_zip(entries, _utc(row.created))

    # -- certificates ------------------------------------------------------------------

    def find(self, username: str, request: FindCertificateRequest) -> FindCertificateResponse:
        """The user's issued certificates with that exact CN, or that serial number."""
        serial = _normalize_serial(request.serial_number or "")
        if not request.common_name and not serial:
            raise ApiError(400, "Specify a common name or a serial number")
        rows = self.store.find(
            username,
            common_name=request.common_name or None,
            serial=serial or None,
            issued_by=self.clock(),
        )
        items = [
            CertificateItem(
                device_id=row.device_id,
                common_name=row.common_name,
                serial_number=row.serial,
                creation_date=_utc(row.created),
                status=self._certificate_status(row),
            )
            for row in rows
        ]
        return FindCertificateResponse(total_count=len(items), items=items)

    def revoke(self, username: str, profile_id: int, request: RevokeCertificateRequest) -> None:
        """Revoke one of the user's certificates issued under ``profile_id``."""
        if not 0 <= request.reason_code <= 10 or request.reason_code == 7:
            raise ApiError(400, f"Invalid revocation reason code {request.reason_code}")
        serial = _normalize_serial(request.serial_number)
        if not serial:
            raise ApiError(400, "Serial number is required")
        rows = self.store.find(username, common_name=None, serial=serial, issued_by=self.clock())
        if not rows:
            raise ApiError(404, f"Certificate {serial} not found", ErrorCode.NOT_FOUND)
        cert = rows[0]
        authority = self._resolve_authority(profile_id)
        batch = self._row(username, cert.batch_id)
        if authority is None or authority.id != batch.authority_id:
            raise ApiError(400, f"Certificate {serial} was not issued under profile {profile_id}")
        if cert.revoked_at is not None:
            raise ApiError(400, f"Certificate {serial} is already revoked")
        self.store.revoke(
            serial, reason=request.reason_code, when=self.clock(), profile_id=profile_id
        )
        logger.info("certificate %s revoked by %r", serial, username)

    @staticmethod
    def _certificate_status(row: CertificateRow) -> str:
        return BatchStatus.REVOKED if row.revoked_at is not None else BatchStatus.READY_FOR_DOWNLOAD

    # -- views for tests ---------------------------------------------------------------

    def batch_records(self, username: str | None) -> list[EmulatorBatch]:
        """Every batch (of one user when given), oldest first."""
        serials: dict[int, list[str]] = {}
        for cert in self.store.certificates(username=username):
            serials.setdefault(cert.batch_id, []).append(cert.serial)
        return [
            EmulatorBatch(
                batch_id=row.id,
                username=row.username,
                name=row.name,
                kind=row.kind,
                status=self.status(row),
                reject_reason=row.reject_reason,
                authority_id=row.authority_id,
                profile_id=row.profile_id,
                size=row.size,
                created=_utc(row.created),
                serial_numbers=tuple(serials.get(row.id, ())),
            )
            for row in reversed(self.store.batches(username))
        ]

    def certificate_records(self, username: str | None) -> list[EmulatorCertificate]:
        """Every stored certificate (of one user when given)."""
        return [
            EmulatorCertificate(
                serial_number=row.serial,
                batch_id=row.batch_id,
                username=row.username,
                common_name=row.common_name,
                device_id=row.device_id,
                status=self._certificate_status(row),
                created=_utc(row.created),
                certificate=x509.load_pem_x509_certificate(row.cert_pem),
            )
            for row in self.store.certificates(username=username)
        ]

    def revocation_records(self) -> list[Revocation]:
        """Every revocation, oldest first."""
        return [
            Revocation(
                serial_number=row.serial,
                username=row.username,
                common_name=row.common_name,
                reason_code=row.revocation_reason or 0,
                revoked_at=_utc(row.revoked_at or 0.0),
                profile_id=row.revoked_under_profile or 0,
            )
            for row in self.store.revoked()
        ]
