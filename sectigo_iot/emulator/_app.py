"""The Starlette routes: parse the wire format with the shared models, call the service."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ..models import (
    AuthenticationRequest,
    CreateSingleCertBatchRequest,
    FindCertificateRequest,
    RevokeCertificateRequest,
    UploadCSRBatchRequest,
    converter,
)
from ._csr import MAX_CSRS
from ._limits import BodyLimit, decode_json
from ._responses import GIN_JSON_TYPE, TEXT_TYPE, ErrorCode, error_response, json_response
from ._service import ApiError, Service

__all__ = ["build_app"]

T = TypeVar("T")
_MAX_PAGE_SIZE = 2000
_MAX_ID = 2**63 - 1


class _IdConvertor(Convertor[str]):
    """A path id: digits, kept as text until :func:`_path_id` checks its size."""

    regex = "[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sectigo_id", _IdConvertor())


def _path_id(request: Request, name: str, what: str) -> int:
    """A path id as an int; one beyond 64 bits names nothing, so it is a 404."""
    text: str = request.path_params[name]
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(_MAX_ID)) or int(digits) > _MAX_ID:
        raise ApiError(404, f"{what} {text} not found", ErrorCode.NOT_FOUND)
    return int(digits)


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


def _structure(data: bytes | str, model: type[T], what: str) -> T:
    """A JSON document as ``model``; a 400 naming ``what`` when it is not one."""
    value = decode_json(data, what)
    try:
        return converter.structure(value, model)
    except Exception:
        raise ApiError(400, f"Invalid {what}") from None


async def _parse(request: Request, model: type[T]) -> T:
    return _structure(await request.body(), model, f"{model.__name__} body")


def _int_param(request: Request, name: str, default: int, lowest: int, highest: int) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise ApiError(400, f"Query parameter {name} must be an integer") from None
    if not lowest <= value <= highest:
        raise ApiError(400, f"Query parameter {name} must be between {lowest} and {highest}")
    return value


def build_app(service: Service) -> ASGIApp:
    """The ASGI app of the emulated API, request bodies capped (``_limits``)."""
    create_status = service.config.create_status

    def user(request: Request) -> str:
        return service.authenticate(request.headers.get("authorization"))

    def json_get(path: str, view: Callable[[str, Request], object]) -> Route:
        """A GET route: check the bearer token, answer ``view(username, request)`` as JSON."""

        async def endpoint(request: Request) -> Response:
            return json_response(view(user(request), request))

        return Route(path, endpoint, methods=["GET"])

    async def heartbeat(request: Request) -> Response:
        body = json.dumps(service.heartbeat(), separators=(",", ":"))
        return Response(body, media_type=GIN_JSON_TYPE)

    async def login(request: Request) -> Response:
        body = await _parse(request, AuthenticationRequest)
        return json_response(service.login(body.username, body.password))

    async def refresh(request: Request) -> Response:
        return json_response(service.refresh(await request.body()))

    async def batch_list(request: Request) -> Response:
        username = user(request)
        page = _int_param(request, "page", 0, 0, 1_000_000)
        size = _int_param(request, "size", 20, 1, _MAX_PAGE_SIZE)
        content, total = service.batch_page(username, page, size)
        return json_response(_spring_page(content, total, page, size))

    async def create(request: Request) -> Response:
        username = user(request)
        body = await _parse(request, CreateSingleCertBatchRequest)
        return json_response(await service.create_single(username, body), create_status)

    async def upload(request: Request) -> Response:
        username = user(request)
        async with request.form(max_files=MAX_CSRS + 1) as form:
            try:
                profile_id = int(str(form.get("profileId", "")))
            except ValueError:
                raise ApiError(400, "Form field profileId is required") from None
            part = form.get("csrBatchRequest")
            if part is None:
                raise ApiError(400, "Form part csrBatchRequest is required")
            text = await part.read() if isinstance(part, UploadFile) else part
            batch_request = _structure(text, UploadCSRBatchRequest, "csrBatchRequest part")
            files = []
            for item in form.getlist("files"):
                if isinstance(item, UploadFile):
                    files.append((item.filename or "", await item.read()))
                else:
                    files.append(("", item.encode()))
        if not files:
            raise ApiError(400, "Form part files is required")
        batch = await service.upload(username, profile_id, batch_request, files)
        return json_response(batch, create_status)

    async def status(request: Request) -> Response:
        username = user(request)
        text = service.status_text(username, _path_id(request, "batch_id", "Batch"))
        return Response(text, media_type=TEXT_TYPE)

    async def download(request: Request) -> Response:
        username = user(request)
        filename, data = service.download(username, _path_id(request, "batch_id", "Batch"))
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def find(request: Request) -> Response:
        username = user(request)
        body = await _parse(request, FindCertificateRequest)
        return json_response(service.find(username, body))

    async def revoke(request: Request) -> Response:
        username = user(request)
        profile_id = _path_id(request, "profile_id", "Profile")
        body = await _parse(request, RevokeCertificateRequest)
        service.revoke(username, profile_id, body)
        return Response(status_code=200)

    async def ca_pem(request: Request) -> Response:
        return Response(service.ca.certificate_pem, media_type="application/x-pem-file")

    async def stats(request: Request) -> Response:
        return json_response(service.stats.snapshot())

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(
            exc.status, exc.message, now=service.clock(), error_code=exc.error_code
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.GENERIC
        return error_response(
            exc.status_code, exc.detail, now=service.clock(), error_code=code, headers=exc.headers
        )

    api = "/api/v1"
    routes = [
        Route("/status", heartbeat, methods=["GET"]),
        Route("/auth/pwd", login, methods=["POST"]),
        Route("/auth/refresh", refresh, methods=["POST"]),
        json_get(f"{api}/authorities/allowed", lambda *_: service.authorities()),
        json_get(
            f"{api}/authorities/{{authority_id:sectigo_id}}/balanceavailable",
            lambda _, r: service.balance(_path_id(r, "authority_id", "Authority")),
        ),
        json_get(f"{api}/devices", lambda *_: service.licenses()),
        json_get(f"{api}/organizations/user", lambda *_: service.organization()),
        json_get(f"{api}/profiles", lambda *_: service.profiles()),
        json_get(
            f"{api}/profiles/{{profile_id:sectigo_id}}",
            lambda _, r: service.profile(_path_id(r, "profile_id", "Profile")),
        ),
        json_get(
            f"{api}/profiles/{{profile_id:sectigo_id}}/parameters",
            lambda _, r: service.parameters(_path_id(r, "profile_id", "Profile")),
        ),
        Route(f"{api}/batches", batch_list, methods=["GET"]),
        Route(f"{api}/batches/createSingleCertBatch", create, methods=["PUT"]),
        Route(f"{api}/batches/upload", upload, methods=["POST"]),
        json_get(
            f"{api}/batches/{{batch_id:sectigo_id}}",
            lambda username, r: service.batch(username, _path_id(r, "batch_id", "Batch")),
        ),
        Route(f"{api}/batches/{{batch_id:sectigo_id}}/status", status, methods=["GET"]),
        json_get(
            f"{api}/batches/{{batch_id:sectigo_id}}/processing_info",
            lambda username, r: service.processing_info(username, _path_id(r, "batch_id", "Batch")),
        ),
        Route(f"{api}/batches/{{batch_id:sectigo_id}}/download", download, methods=["GET"]),
        Route(f"{api}/certificates/find", find, methods=["POST"]),
        Route(f"{api}/certificates/{{profile_id:sectigo_id}}/revoke", revoke, methods=["POST"]),
        Route("/emulator/ca.pem", ca_pem, methods=["GET"]),
        Route("/emulator/stats", stats, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, exception_handlers={ApiError: api_error, HTTPException: http_error}
    )
    return BodyLimit(app, clock=service.clock)
