"""The account area: ``client.authorities`` (the authorities the user may issue under,
and balances), ``client.profiles`` (certificate profiles and the parameters they
require), ``client.licenses`` (ordered and issued counts) and ``client.organizations``
(the current user's organization)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable

from .._checks import positive_id
from .._hooks import operation
from ..models import Authority, Organization, Profile, ProfileDetail, ProfileParameter
from ..models import Licenses as LicensesModel
from ._base import Resource

__all__ = ["Authorities", "Licenses", "Organizations", "Profiles", "profile_of"]


def profile_of(authorities: Iterable[Authority], authority_id: int | None = None) -> int | None:
    """The profile certificates are revoked (or CSRs uploaded) under: that of the
    authority ``authority_id``, else the one profile all of ``authorities`` share; None
    when it cannot be told (no such authority, or several profiles)."""
    profiles = [a.profile_id for a in authorities if authority_id in (None, a.id)]
    if not profiles or (authority_id is None and len(set(profiles)) > 1):
        return None
    return profiles[0]


class Authorities(Resource):
    """Authorities and their available balances."""

    @operation("authorities.list")
    async def list(self) -> list[Authority]:
        """``GET /api/v1/authorities/allowed``."""
        path = "/api/v1/authorities/allowed"
        return await self._session.call("GET", path, cast_to=list[Authority])

    @operation("authorities.balance")
    async def balance(self, authority_id: int) -> int:
        """``GET /api/v1/authorities/{id}/balanceavailable``: a bare integer."""
        path = f"/api/v1/authorities/{positive_id('authority_id', authority_id)}/balanceavailable"
        return await self._session.call("GET", path, cast_to=int)


class Profiles(Resource):
    """Profile list, detail and parameters."""

    @operation("profiles.list")
    async def list(self) -> list[Profile]:
        """``GET /api/v1/profiles``."""
        path = "/api/v1/profiles"
        return await self._session.call("GET", path, cast_to=list[Profile])

    @operation("profiles.get")
    async def get(self, profile_id: int) -> ProfileDetail:
        """``GET /api/v1/profiles/{id}``."""
        path = f"/api/v1/profiles/{positive_id('profile_id', profile_id)}"
        return await self._session.call("GET", path, cast_to=ProfileDetail)

    @operation("profiles.parameters")
    async def parameters(self, profile_id: int) -> builtins.list[ProfileParameter]:
        """``GET /api/v1/profiles/{id}/parameters``."""
        path = f"/api/v1/profiles/{positive_id('profile_id', profile_id)}/parameters"
        return await self._session.call("GET", path, cast_to=list[ProfileParameter])


class Licenses(Resource):
    """License statistics."""

    @operation("licenses.used")
    async def used(self) -> LicensesModel:
        """``GET /api/v1/devices``: ordered and issued counts."""
        path = "/api/v1/devices"
        return await self._session.call("GET", path, cast_to=LicensesModel)


class Organizations(Resource):
    """Organization lookups."""

    @operation("organizations.current")
    async def current(self) -> Organization:
        """``GET /api/v1/organizations/user``."""
        path = "/api/v1/organizations/user"
        return await self._session.call("GET", path, cast_to=Organization)
