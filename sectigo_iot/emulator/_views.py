"""The emulator's state as the records tests read (:meth:`Emulator.batches
<sectigo_iot.emulator.Emulator.batches>` and the like)."""

from __future__ import annotations

from cryptography import x509

from ._records import EmulatorBatch, EmulatorCertificate, Revocation
from ._service import Service, certificate_status, utc

__all__ = ["batch_records", "certificate_records", "revocation_records"]


def batch_records(service: Service, username: str | None) -> list[EmulatorBatch]:
    """Every batch (of one user when given), oldest first."""
    serials: dict[int, list[str]] = {}
    for cert in service.store.certificates(username=username):
        serials.setdefault(cert.batch_id, []).append(cert.serial)
    return [
        EmulatorBatch(
            batch_id=row.id,
            username=row.username,
            name=row.name,
            kind=row.kind,
            status=service.status(row),
            reject_reason=row.reject_reason,
            authority_id=row.authority_id,
            profile_id=row.profile_id,
            size=row.size,
            created=utc(row.created),
            serial_numbers=tuple(serials.get(row.id, ())),
        )
        for row in reversed(service.store.batches(username))
    ]


def certificate_records(service: Service, username: str | None) -> list[EmulatorCertificate]:
    """Every stored certificate (of one user when given)."""
    return [
        EmulatorCertificate(
            serial_number=row.serial,
            batch_id=row.batch_id,
            username=row.username,
            common_name=row.common_name,
            device_id=row.device_id,
            status=certificate_status(row),
            created=utc(row.created),
            certificate=x509.load_pem_x509_certificate(row.cert_pem),
        )
        for row in service.store.certificates(username=username)
    ]


def revocation_records(service: Service) -> list[Revocation]:
    """Every revocation, oldest first."""
    return [
        Revocation(
            serial_number=row.serial,
            username=row.username,
            common_name=row.common_name,
            reason_code=row.revocation_reason or 0,
            revoked_at=utc(row.revoked_at or 0.0),
            profile_id=row.revoked_under_profile or 0,
        )
        for row in service.store.revoked()
    ]
