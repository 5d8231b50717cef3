"""``client.organizations``: the current user's organization."""

from __future__ import annotations

from ..models import Organization
from ._base import Resource, decode

__all__ = ["Organizations"]


class Organizations(Resource):
    """Organization lookups."""

    async def current(self) -> Organization:
        """``GET /api/v1/organizations/user``."""
        path = "/api/v1/organizations/user"
        return decode(await self._session.json("GET", path), Organization, path)
