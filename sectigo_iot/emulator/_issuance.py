"""Creating a batch: check the request, issue its certificates, store it.

A batch is all or nothing: an invalid request or one bad CSR stores it ``REJECTED``
with no certificate; a valid one ends as the next queued outcome
(:meth:`Service.take_outcome <sectigo_iot.emulator._service.Service.take_outcome>`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta

import anyio.to_thread
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..models import (
    Authority,
    BatchStatus,
    CreateSingleCertBatchRequest,
    UploadCSRBatchRequest,
)
from ._ca import crl_path, is_dns_name, new_private_key, subject_from_params
from ._config import profile_parameters
from ._csr import CheckedCSR, UploadError, check_csr, extract_csrs
from ._responses import ApiError, ErrorCode
from ._service import Service
from ._store import BalanceError, BatchRow, NewBatch, NewCertificate

__all__ = ["create_single", "upload_csrs"]

logger = logging.getLogger("sectigo_iot.emulator")


async def create_single(
    service: Service, username: str, request: CreateSingleCertBatchRequest
) -> BatchRow:
    """Store a one-certificate batch with a server-generated key."""
    authority = service.resolve_authority(request.authority_id)
    if authority is None or not authority.enabled:
        raise ApiError(400, f"Unknown or disabled authority {request.authority_id}")
    params = request.profile_params
    _check_params(params)
    _check_balance(authority, 1)
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
        outcome, reason = service.take_outcome()
        if outcome == BatchStatus.READY_FOR_DOWNLOAD:
            certificates.append(await _generated(service, subject, dns_names, common_name))
    return _store_batch(
        service,
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


def _check_params(params: Mapping[str, str]) -> None:
    """Every parameter known; what the parameters endpoint lists as required, given."""
    parameters = profile_parameters()
    allowed = {p.name for p in parameters}
    for name in sorted(params):
        if name not in allowed:
            raise ApiError(400, f"Unknown profile parameter {name}")
    for parameter in parameters:
        if parameter.required and not params.get(parameter.name, "").strip():
            raise ApiError(400, f"Profile parameter {parameter.name} is required")


async def _generated(
    service: Service, subject: x509.Name, dns_names: Sequence[str], common_name: str
) -> NewCertificate:
    """A certificate for a fresh key of the configured type, stored with its key."""
    key = await anyio.to_thread.run_sync(new_private_key, service.config.key_type)
    certificate = _issue(service, key.public_key(), subject, dns_names)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _new_certificate(certificate, common_name, key_pem)


async def upload_csrs(
    service: Service,
    username: str,
    profile_id: int,
    request: UploadCSRBatchRequest,
    files: Sequence[tuple[str, bytes]],
) -> BatchRow:
    """Store a batch that signs the uploaded CSRs."""
    if request.profile_id != profile_id:
        raise ApiError(400, "profileId differs between the form field and csrBatchRequest")
    authority = service.resolve_authority(profile_id)
    if authority is None or not authority.enabled:
        raise ApiError(400, f"Unknown or disabled profile {profile_id}")
    try:
        blocks = extract_csrs(data for _, data in files)
    except UploadError as exc:
        raise ApiError(400, str(exc)) from None
    _check_balance(authority, len(blocks))
    checked = await anyio.to_thread.run_sync(lambda: [check_csr(block) for block in blocks])
    problems = [
        f"CSR #{index}: {csr.problem}" if len(checked) > 1 else csr.problem
        for index, csr in enumerate(checked, 1)
        if csr.problem
    ]
    # a batch is all or nothing: one bad CSR rejects it
    outcome, reason = (
        (BatchStatus.REJECTED, "; ".join(problems)) if problems else service.take_outcome()
    )
    certificates = []
    if outcome == BatchStatus.READY_FOR_DOWNLOAD:
        certificates = await anyio.to_thread.run_sync(_sign_csrs, service, checked)
    return _store_batch(
        service,
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


def _sign_csrs(service: Service, checked: Sequence[CheckedCSR]) -> list[NewCertificate]:
    """Sign every checked CSR."""
    certificates = []
    for csr in checked:
        assert csr.public_key is not None and csr.subject is not None
        certificate = _issue(service, csr.public_key, csr.subject, csr.dns_names)
        certificates.append(_new_certificate(certificate, csr.common_name, None))
    return certificates


def _check_balance(authority: Authority, needed: int) -> None:
    if authority.balance < needed:
        raise ApiError(
            400,
            f"Not enough balance on authority {authority.id}: "
            f"{authority.balance} left, {needed} needed",
            ErrorCode.BALANCE,
        )


def _issue(
    service: Service,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    subject: x509.Name,
    dns_names: Sequence[str],
) -> x509.Certificate:
    """A leaf from the CA, valid from when the batch finishes processing."""
    return service.ca.issue(
        public_key,
        subject,
        dns_names,
        now=service.clock.datetime() + timedelta(seconds=service.config.processing_delay),
        validity=timedelta(days=service.config.validity_days),
        crl_url=service.url + crl_path(service.ca.key_id),
    )


def _new_certificate(
    certificate: x509.Certificate, common_name: str, key_pem: bytes | None
) -> NewCertificate:
    return NewCertificate(
        serial=format(certificate.serial_number, "X"),
        device_id=str(uuid.uuid4()),
        common_name=common_name,
        cert_pem=certificate.public_bytes(serialization.Encoding.PEM),
        key_pem=key_pem,
    )


def _store_batch(
    service: Service,
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
    now = service.clock()
    batch = NewBatch(
        username=username,
        name=name,
        kind=kind,
        authority_id=authority.id,
        profile_id=authority.profile_id,
        profile_name=authority.profile_name,
        size=size,
        created=now,
        ready_at=now + service.config.processing_delay,
        outcome=outcome,
        reject_reason=reason,
        params=params,
    )
    try:
        row = service.store.add_batch(
            batch, certificates, first_batch_id=service.config.first_batch_id
        )
    except BalanceError:
        raise ApiError(
            400, f"Not enough balance on authority {authority.id}", ErrorCode.BALANCE
        ) from None
    logger.info("batch %d created for %r (%s)", row.id, username, kind)
    return row
