"""``client.licenses``: ordered and issued certificate counts."""

from __future__ import annotations

from ..models import Licenses as LicensesModel
from ._base import Resource

__all__ = ["Licenses"]


class Licenses(Resource):
    """License statistics."""

    async def used(self) -> LicensesModel:
        """``GET /api/v1/devices``: ordered and issued counts."""
        path = "/api/v1/devices"
        return await self._session.call("GET", path, cast_to=LicensesModel)
