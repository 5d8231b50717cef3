"""The account: authorities and their balances, licenses, the organization, profiles."""

from __future__ import annotations

from ...models import Licenses, Organization, Profile, ProfileDetail, ProfileParameter
from .._config import organization, profile_parameters
from .._responses import ApiError, ErrorCode
from .._service import Service
from ._http import API, json_get, path_id

__all__ = [
    "ROUTES",
    "balance",
    "licenses",
    "parameters",
    "profile",
    "profiles",
    "user_organization",
]

_KEY_ALGORITHMS = {"rsa2048": "RSA 2048", "rsa4096": "RSA 4096", "ec-p256": "EC P-256"}


def balance(service: Service, authority_id: int) -> int:
    """The balance left on one authority."""
    for authority in service.authorities():
        if authority.id == authority_id:
            return authority.balance
    raise ApiError(404, f"Authority {authority_id} not found", ErrorCode.NOT_FOUND)


def licenses(service: Service) -> Licenses:
    """Ordered and issued certificate counts."""
    return Licenses(ordered=service.ordered, issued=service.issued_count())


def user_organization(service: Service) -> Organization:
    """The user's organization."""
    return organization(service.authorities())


def _profile_names(service: Service) -> dict[int, str]:
    return {a.profile_id: a.profile_name for a in reversed(service.authorities())}


def _profile_name(service: Service, profile_id: int) -> str:
    try:
        return _profile_names(service)[profile_id]
    except KeyError:
        raise ApiError(404, f"Profile {profile_id} not found", ErrorCode.NOT_FOUND) from None


def profiles(service: Service) -> list[Profile]:
    """Every profile of the configured authorities."""
    return [
        Profile(profile_id=pid, algorithms=["RSA2048", "RSA4096", "EC256"], ca="Sectigo")
        for pid in sorted(_profile_names(service))
    ]


def profile(service: Service, profile_id: int) -> ProfileDetail:
    """One profile's detail."""
    name = _profile_name(service, profile_id)
    raw = "\n".join(
        f"{p.name}: {'required' if p.required else 'optional'}" for p in profile_parameters()
    )
    return ProfileDetail(
        profile_name=name,
        profile_id=profile_id,
        raw_profile_config=f"# emulated profile {profile_id}\n{raw}\n",
        name=name,
        key_algorithm_info=_KEY_ALGORITHMS[service.config.key_type],
    )


def parameters(service: Service, profile_id: int) -> list[ProfileParameter]:
    """The parameters a profile takes."""
    _profile_name(service, profile_id)
    return profile_parameters()


ROUTES = [
    json_get(f"{API}/authorities/allowed", lambda service, *_: service.authorities()),
    json_get(
        f"{API}/authorities/{{authority_id:sectigo_id}}/balanceavailable",
        lambda service, _, r: balance(service, path_id(r, "authority_id", "Authority")),
    ),
    json_get(f"{API}/devices", lambda service, *_: licenses(service)),
    json_get(f"{API}/organizations/user", lambda service, *_: user_organization(service)),
    json_get(f"{API}/profiles", lambda service, *_: profiles(service)),
    json_get(
        f"{API}/profiles/{{profile_id:sectigo_id}}",
        lambda service, _, r: profile(service, path_id(r, "profile_id", "Profile")),
    ),
    json_get(
        f"{API}/profiles/{{profile_id:sectigo_id}}/parameters",
        lambda service, _, r: parameters(service, path_id(r, "profile_id", "Profile")),
    ),
]
