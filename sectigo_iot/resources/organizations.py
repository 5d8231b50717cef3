"""``client.organizations``: the current user's organization."""

from __future__ import annotations

from ..models import Organization
from ._base import Resource

__all__ = ["Organizations"]


class Organizations(Resource):
    """Organization lookups."""

    async def current(self) -> Organization:
        """``GET /api/v1/organizations/user``."""
        path = "/api/v1/organizations/user"
        return await self._session.call("GET", path, cast_to=Organization)
