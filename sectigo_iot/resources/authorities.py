"""``client.authorities``: the authorities the user may issue under, and balances."""

from __future__ import annotations

from .._checks import positive_id
from ..models import Authority
from ._base import Resource

__all__ = ["Authorities"]


class Authorities(Resource):
    """Authorities and their available balances."""

    async def list(self) -> list[Authority]:
        """``GET /api/v1/authorities/allowed``."""
        path = "/api/v1/authorities/allowed"
        return await self._session.call("GET", path, cast_to=list[Authority])

    async def balance(self, authority_id: int) -> int:
        """``GET /api/v1/authorities/{id}/balanceavailable``: a bare integer."""
        path = f"/api/v1/authorities/{positive_id('authority_id', authority_id)}/balanceavailable"
        return await self._session.call("GET", path, cast_to=int)
