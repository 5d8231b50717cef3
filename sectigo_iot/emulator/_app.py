"""The ASGI app: the routes of every API area (``api/``), over one emulator state."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp

from ._limits import BodyLimit
from ._service import Service
from .api import account, auth, batches, certificates, control
from .api._http import ERROR_HANDLERS

__all__ = ["build_app"]

#: Sectigo's API areas, then the emulator's own routes
_AREAS = (auth, account, batches, certificates, control)


def build_app(service: Service) -> ASGIApp:
    """The ASGI app of the emulated API over ``service``, request bodies capped (``_limits``)."""
    routes = [route for area in _AREAS for route in area.ROUTES]
    app = Starlette(routes=routes, exception_handlers=ERROR_HANDLERS)
    app.state.service = service
    return BodyLimit(app, clock=service.clock)
