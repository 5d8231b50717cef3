"""Certificates: find the user's issued ones by common name or serial, revoke one."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...models import (
    CertificateItem,
    FindCertificateRequest,
    FindCertificateResponse,
    RevokeCertificateRequest,
)
from .._responses import ApiError, ErrorCode, json_response
from .._service import Service, certificate_status, utc
from ._http import API, parse, path_id, state, user

__all__ = ["ROUTES", "find", "revoke"]

logger = logging.getLogger("sectigo_iot.emulator")


def _normalize_serial(text: str) -> str:
    cleaned = text.replace(":", "").replace(" ", "").upper().lstrip("0")
    return cleaned or ("0" if text.strip() else "")


def find(
    service: Service, username: str, request: FindCertificateRequest
) -> FindCertificateResponse:
    """The user's issued certificates with that exact CN, or that serial number."""
    serial = _normalize_serial(request.serial_number or "")
    if not request.common_name and not serial:
        raise ApiError(400, "Specify a common name or a serial number")
    rows = service.store.find(
        username,
        common_name=request.common_name or None,
        serial=serial or None,
        issued_by=service.clock(),
    )
    items = [
        CertificateItem(
            device_id=row.device_id,
            common_name=row.common_name,
            serial_number=row.serial,
            creation_date=utc(row.created),
            status=certificate_status(row),
        )
        for row in rows
    ]
    return FindCertificateResponse(total_count=len(items), items=items)


def revoke(
    service: Service, username: str, profile_id: int, request: RevokeCertificateRequest
) -> None:
    """Revoke one of the user's certificates issued under ``profile_id``."""
    if not 0 <= request.reason_code <= 10 or request.reason_code == 7:
        raise ApiError(400, f"Invalid revocation reason code {request.reason_code}")
    serial = _normalize_serial(request.serial_number)
    if not serial:
        raise ApiError(400, "Serial number is required")
    rows = service.store.find(username, common_name=None, serial=serial, issued_by=service.clock())
    if not rows:
        raise ApiError(404, f"Certificate {serial} not found", ErrorCode.NOT_FOUND)
    cert = rows[0]
    authority = service.resolve_authority(profile_id)
    batch = service.batch_row(username, cert.batch_id)
    if authority is None or authority.id != batch.authority_id:
        raise ApiError(400, f"Certificate {serial} was not issued under profile {profile_id}")
    if cert.revoked_at is not None:
        raise ApiError(400, f"Certificate {serial} is already revoked")
    service.store.revoke(
        serial, reason=request.reason_code, when=service.clock(), profile_id=profile_id
    )
    logger.info("certificate %s revoked by %r", serial, username)


async def handle_find(request: Request) -> Response:
    username = user(request)
    body = await parse(request, FindCertificateRequest)
    return json_response(find(state(request), username, body))


async def handle_revoke(request: Request) -> Response:
    username = user(request)
    profile_id = path_id(request, "profile_id", "Profile")
    body = await parse(request, RevokeCertificateRequest)
    revoke(state(request), username, profile_id, body)
    return Response(status_code=200)


ROUTES = [
    Route(f"{API}/certificates/find", handle_find, methods=["POST"]),
    Route(f"{API}/certificates/{{profile_id:sectigo_id}}/revoke", handle_revoke, methods=["POST"]),
]
