"""Batches: create one (a generated key, or uploaded CSRs), list them, read one's
detail, status and processing info, and download its ZIP."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ...models import (
    Batch,
    BatchStatus,
    CreateSingleCertBatchRequest,
    ProcessingInfo,
    UploadCSRBatchRequest,
)
from .._ca import build_zip, entry_name
from .._csr import MAX_CSRS
from .._issuance import create_single, upload_csrs
from .._pkcs12 import pkcs12_bytes
from .._responses import TEXT_TYPE, ApiError, json_response
from .._service import Service, utc
from .._store import BatchRow
from ._http import API, int_param, json_get, parse, path_id, state, structure, user

__all__ = [
    "ROUTES",
    "batch",
    "batch_model",
    "batch_page",
    "download",
    "processing_info",
    "status_text",
]

_MAX_PAGE_SIZE = 2000
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
_FAILURES = (BatchStatus.REJECTED, BatchStatus.FAILED, BatchStatus.NOT_ACCEPTABLE)
_DOWNLOADABLE = (BatchStatus.READY_FOR_DOWNLOAD, BatchStatus.COLLECTED)


def batch_model(service: Service, row: BatchRow, *, created: bool = False) -> Batch:
    """A stored batch as the API answers it (``CREATED`` in the create's answer)."""
    status = BatchStatus.CREATED if created else service.status(row)
    in_progress = status in (BatchStatus.CREATED, BatchStatus.PROCESSING)
    return Batch(
        batch_id=row.id,
        order_number=row.order_number,
        creation_date=utc(row.created),
        profile=row.profile_name,
        size=row.size,
        status=status,
        active=in_progress,
        batch_name=row.name,
        reject_reason=row.reject_reason if status == BatchStatus.REJECTED else "",
        generator_parameters_values=None,
        user_id=service.user_ids.get(row.username, 0),
        downloadable=status in _DOWNLOADABLE,
        rejectable=in_progress,
    )


def batch(service: Service, username: str, batch_id: int) -> Batch:
    """One of the user's batches."""
    return batch_model(service, service.batch_row(username, batch_id))


def status_text(service: Service, username: str, batch_id: int) -> str:
    """The human phrase of a batch's status (``Ready for download``...)."""
    row = service.batch_row(username, batch_id)
    status = service.status(row)
    if status == BatchStatus.NOT_ACCEPTABLE:
        return f"Not Acceptable. Status: {row.reject_reason}"
    return _STATUS_TEXT.get(status, status)


def processing_info(service: Service, username: str, batch_id: int) -> ProcessingInfo:
    """A batch's certificates counted as active, issued and failed."""
    row = service.batch_row(username, batch_id)
    status = service.status(row)
    if status == BatchStatus.PROCESSING:
        return ProcessingInfo(active=row.size)
    if status in _FAILURES:
        return ProcessingInfo(failed=row.size)
    return ProcessingInfo(success=row.size)


def batch_page(service: Service, username: str, page: int, size: int) -> tuple[list[Batch], int]:
    """One page of the user's batches, newest first, and the total count."""
    rows = service.store.batches(username, offset=page * size, limit=size)
    return [batch_model(service, row) for row in rows], service.store.count_batches(username)


def download(service: Service, username: str, batch_id: int) -> tuple[str, bytes]:
    """The batch ZIP: the same bytes on every download (built once, then stored)."""
    row = service.batch_row(username, batch_id)
    if service.status(row) not in _DOWNLOADABLE:
        raise ApiError(400, f"Batch {batch_id} is not ready for download")
    data = service.store.archive(batch_id)
    if data is None:
        data = service.store.keep_archive(batch_id, _archive(service, row))
    return f"{batch_id}.zip", data


def _archive(service: Service, row: BatchRow) -> bytes:
    """A ``<cn>.p12`` per generated key, a ``<cn>.pem`` per CSR, dated at creation."""
    ca_pem = service.ca.certificate_pem
    password = service.store.batch_params(row.id).get("pkcs12Password", "")
    entries = []
    for cert in service.store.batch_certificates(row.id):
        if cert.key_pem is None:
            entries.append((entry_name(cert.common_name, ".pem"), cert.cert_pem + ca_pem))
            continue
        key = serialization.load_pem_private_key(cert.key_pem, password=None)
        assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
        leaf = x509.load_pem_x509_certificate(cert.cert_pem)
        p12 = pkcs12_bytes(
            key,
            [leaf, *service.ca.certificates],
            password,
            service.config.pkcs12_format,
        )
        entries.append((entry_name(cert.common_name, ".p12"), p12))
    return build_zip(entries, utc(row.created))


def _spring_page(content: list[Any], total: int, page: int, size: int) -> dict[str, Any]:
    """The batch list body.

    Sectigo's list endpoint is undocumented; it is a Spring Data endpoint, so the
    emulator answers Spring's page object with the fields clients need. This is the
    only place that defines that shape.
    """
    return {
        "content": content,  # unstructured once, with the page, by json_response
        "totalElements": total,
        "totalPages": -(-total // size),
        "number": page,
        "size": size,
    }


async def _upload_form(
    request: Request,
) -> tuple[int, UploadCSRBatchRequest, list[tuple[str, bytes]]]:
    """The upload's ``profileId`` field, ``csrBatchRequest`` part and ``files`` parts."""
    async with request.form(max_files=MAX_CSRS + 1) as form:
        try:
            profile_id = int(str(form.get("profileId", "")))
        except ValueError:
            raise ApiError(400, "Form field profileId is required") from None
        part = form.get("csrBatchRequest")
        if part is None:
            raise ApiError(400, "Form part csrBatchRequest is required")
        text = await part.read() if isinstance(part, UploadFile) else part
        batch_request = structure(text, UploadCSRBatchRequest, "csrBatchRequest part")
        files: list[tuple[str, bytes]] = []
        for item in form.getlist("files"):
            if isinstance(item, UploadFile):
                files.append((item.filename or "", await item.read()))
            else:
                files.append(("", item.encode()))
    if not files:
        raise ApiError(400, "Form part files is required")
    return profile_id, batch_request, files


def _batch_id(request: Request) -> int:
    return path_id(request, "batch_id", "Batch")


async def handle_list(request: Request) -> Response:
    username = user(request)
    page = int_param(request, "page", 0, 0, 1_000_000)
    size = int_param(request, "size", 20, 1, _MAX_PAGE_SIZE)
    content, total = batch_page(state(request), username, page, size)
    return json_response(_spring_page(content, total, page, size))


async def handle_create(request: Request) -> Response:
    service, username = state(request), user(request)
    body = await parse(request, CreateSingleCertBatchRequest)
    row = await create_single(service, username, body)
    return json_response(batch_model(service, row, created=True), service.config.create_status)


async def handle_upload(request: Request) -> Response:
    service, username = state(request), user(request)
    profile_id, batch_request, files = await _upload_form(request)
    row = await upload_csrs(service, username, profile_id, batch_request, files)
    return json_response(batch_model(service, row, created=True), service.config.create_status)


async def handle_status(request: Request) -> Response:
    username = user(request)
    text = status_text(state(request), username, _batch_id(request))
    return Response(text, media_type=TEXT_TYPE)


async def handle_download(request: Request) -> Response:
    username = user(request)
    filename, data = download(state(request), username, _batch_id(request))
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


_BATCH = f"{API}/batches/{{batch_id:sectigo_id}}"
ROUTES = [
    Route(f"{API}/batches", handle_list, methods=["GET"]),
    Route(f"{API}/batches/createSingleCertBatch", handle_create, methods=["PUT"]),
    Route(f"{API}/batches/upload", handle_upload, methods=["POST"]),
    json_get(_BATCH, lambda service, username, r: batch(service, username, _batch_id(r))),
    Route(f"{_BATCH}/status", handle_status, methods=["GET"]),
    json_get(
        f"{_BATCH}/processing_info",
        lambda service, username, r: processing_info(service, username, _batch_id(r)),
    ),
    Route(f"{_BATCH}/download", handle_download, methods=["GET"]),
]
