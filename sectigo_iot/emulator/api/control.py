"""The emulator's own routes, not Sectigo's: the heartbeat of the original emulator
(``GET /status``), the CA certificate, its CRL and the request counters."""

from __future__ import annotations

import json
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..._version import __version__
from .._ca import crl_path
from .._responses import GIN_JSON_TYPE, ApiError, ErrorCode, json_response
from .._service import Service, utc
from ._http import state

__all__ = ["ROUTES", "crl", "go_duration", "heartbeat"]


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


def heartbeat(service: Service) -> dict[str, str]:
    """The body of ``GET /status``, as the original emulator answers it."""
    uptime = go_duration(service.clock() - service.started)
    return {"status": "ok", "version": __version__, "uptime": uptime}


async def handle_heartbeat(request: Request) -> Response:
    body = json.dumps(heartbeat(state(request)), separators=(",", ":"))
    return Response(body, media_type=GIN_JSON_TYPE)


async def handle_ca_pem(request: Request) -> Response:
    return Response(state(request).ca.certificate_pem, media_type="application/x-pem-file")


def crl(service: Service) -> bytes:
    """The CA's DER CRL: every revoked serial with its date and reason, issued now (on
    the emulator's clock) and next updated ``config.crl_interval`` later."""
    revoked = [
        (int(row.serial, 16), utc(row.revoked_at or 0.0), row.revocation_reason or 0)
        for row in service.store.revoked()
    ]
    interval = timedelta(seconds=service.config.crl_interval)
    return service.ca.crl(revoked, now=service.clock.datetime(), interval=interval)


async def handle_crl(request: Request) -> Response:
    service = state(request)
    if request.url.path != crl_path(service.ca.key_id):
        raise ApiError(404, "no CRL of that issuer here", ErrorCode.NOT_FOUND)
    return Response(crl(service), media_type="application/pkix-crl")


async def handle_stats(request: Request) -> Response:
    return json_response(state(request).stats.snapshot())


ROUTES = [
    Route("/status", handle_heartbeat, methods=["GET"]),
    Route("/emulator/ca.pem", handle_ca_pem, methods=["GET"]),
    Route("/emulator/stats", handle_stats, methods=["GET"]),
    Route("/emulator/crl/{issuer}.crl", handle_crl, methods=["GET"]),
]
