"""``client.authorities``: the authorities the user may issue under, and balances."""

from __future__ import annotations

from ..errors import InvalidResponseError
from ..models import Authority
from ._base import Resource, decode, positive_id

__all__ = ["Authorities"]


class Authorities(Resource):
    """Authorities and their available balances."""

    async def list(self) -> list[Authority]:
        """``GET /api/v1/authorities/allowed``."""
        path = "/api/v1/authorities/allowed"
        return decode(await self._session.json("GET", path), list[Authority], path)

    async def balance(self, authority_id: int) -> int:
        """``GET /api/v1/authorities/{id}/balanceavailable``: a bare integer."""
        path = f"/api/v1/authorities/{positive_id('authority_id', authority_id)}/balanceavailable"
        value = await self._session.json("GET", path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidResponseError(f"expected an integer balance, got {value!r}", path=path)
        return value
