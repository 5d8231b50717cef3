"""``client.profiles``: certificate profiles and the parameters they require."""

from __future__ import annotations

import builtins

from .._checks import positive_id
from ..models import Profile, ProfileDetail, ProfileParameter
from ._base import Resource

__all__ = ["Profiles"]


class Profiles(Resource):
    """Profile list, detail and parameters."""

    async def list(self) -> list[Profile]:
        """``GET /api/v1/profiles``."""
        path = "/api/v1/profiles"
        return await self._session.call("GET", path, cast_to=list[Profile])

    async def get(self, profile_id: int) -> ProfileDetail:
        """``GET /api/v1/profiles/{id}``."""
        path = f"/api/v1/profiles/{positive_id('profile_id', profile_id)}"
        return await self._session.call("GET", path, cast_to=ProfileDetail)

    async def parameters(self, profile_id: int) -> builtins.list[ProfileParameter]:
        """``GET /api/v1/profiles/{id}/parameters``."""
        path = f"/api/v1/profiles/{positive_id('profile_id', profile_id)}/parameters"
        return await self._session.call("GET", path, cast_to=list[ProfileParameter])
