"""Emulator settings and its default data (authority, profile, organization)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen, validators

from ..models import Authority, Organization, ProfileParameter, converter
from ._ca import KEY_TYPES, CertificateAuthority
from ._pkcs12 import PKCS12_FORMATS

__all__ = [
    "BATCH_OUTCOMES",
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "EmulatorConfig",
    "default_authority",
    "organization",
    "profile_parameters",
]

#: the upstream mock's test credentials, so the original docs' commands work verbatim
DEFAULT_USERNAME = "tester"
DEFAULT_PASSWORD = "supersecretsquirrel"  # noqa: S105 - a well-known test password
#: how a batch whose request is valid ends (``EmulatorConfig.batch_outcome``)
BATCH_OUTCOMES = ("ready", "rejected", "failed", "not_acceptable")


def default_authority(balance: int) -> Authority:
    """The one authority an emulator has unless told otherwise."""
    return Authority(
        id=1,
        ecosystem_id=100,
        signer_certificate_id=0,
        ecosystem_name="TRISA",
        balance=balance,
        enabled=True,
        profile_id=42,
        profile_name="TRISA Profile",
    )


def _users(value: Mapping[str, str] | None) -> dict[str, str]:
    return {DEFAULT_USERNAME: DEFAULT_PASSWORD} if value is None else dict(value)


def _authorities(value: Iterable[Authority | Mapping[str, Any]] | None) -> tuple[Authority, ...]:
    if value is None:
        return ()
    return tuple(
        a if isinstance(a, Authority) else converter.structure(a, Authority) for a in value
    )


def _usernames(users: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{name!r}: '***'" for name in users) + "}"


@frozen(kw_only=True)
class EmulatorConfig:
    """Everything an :class:`~sectigo_iot.emulator.Emulator` can be told.

    ``authorities`` (``Authority`` models or their JSON objects) replaces the default
    authority, whose starting balance is ``balance``. ``create_status`` is the HTTP
    status of a successful create or upload (the real one is unknown).
    ``batch_outcome`` is how every valid batch ends (one of :data:`BATCH_OUTCOMES`:
    ``READY_FOR_DOWNLOAD``, ``REJECTED``, ``FAILED`` or ``NOT_ACCEPTABLE``);
    ``Emulator.set_next_outcome`` overrides it for the next batches.
    ``pkcs12_format`` is how downloaded ``.p12`` files are encrypted: ``"legacy"`` as
    Sectigo does (RC2-40 certificates, 3DES key, SHA-1 MAC; OpenSSL 3 needs
    ``-legacy``) or ``"modern"`` (3DES throughout, read without ``-legacy``).
    ``crl_interval`` is the seconds between a served CRL's ``thisUpdate`` and
    ``nextUpdate`` (a day by default).
    """

    users: dict[str, str] = field(factory=lambda: _users(None), converter=_users, repr=_usernames)
    db_path: str | os.PathLike[str] | None = None
    processing_delay: float = field(default=0.0, validator=validators.ge(0))
    access_ttl: int = field(default=600, validator=validators.gt(0))
    refresh_ttl: int = field(default=7200, validator=validators.gt(0))
    balance: int = field(default=10, validator=validators.ge(0))
    authorities: tuple[Authority, ...] = field(default=(), converter=_authorities)
    key_type: str = field(default="rsa2048", validator=validators.in_(KEY_TYPES))
    ca_key_type: str = field(default="ec-p256", validator=validators.in_(KEY_TYPES))
    ca: CertificateAuthority | None = None
    create_status: int = field(default=200, validator=validators.in_((200, 201, 202)))
    issuer: str = "https://emulator.sectigo-iot.invalid/"
    first_batch_id: int = field(default=10001, validator=validators.gt(0))
    validity_days: int = field(default=365, validator=validators.gt(0))
    base_url: str = "http://emulator.local"
    batch_outcome: str = field(default="ready", validator=validators.in_(BATCH_OUTCOMES))
    pkcs12_format: str = field(default="legacy", validator=validators.in_(PKCS12_FORMATS))
    crl_interval: float = field(default=86400.0, validator=validators.gt(0))

    def __attrs_post_init__(self) -> None:
        if not self.users:
            raise ValueError("the emulator needs at least one user")

    def initial_authorities(self) -> tuple[Authority, ...]:
        """The configured authorities, or the default one."""
        return self.authorities or (default_authority(self.balance),)


def profile_parameters() -> list[ProfileParameter]:
    """The parameters every emulated profile takes in ``profileParams``."""
    table = (
        ("commonName", "Common Name", "TEXT", True, ""),
        ("dNSName", "DNS Names (one per line)", "TEXTAREA", True, ""),
        ("pkcs12Password", "PKCS#12 Password", "PASSWORD", True, ""),
        ("organizationName", "Organization", "TEXT", False, ""),
        ("localityName", "Locality", "TEXT", False, ""),
        ("stateOrProvinceName", "State or Province", "TEXT", False, ""),
        ("countryName", "Country", "TEXT", False, "^[A-Za-z]{2}$"),
    )
    return [
        ProfileParameter(
            name=name,
            input_type=input_type,
            required=required,
            validation_pattern=pattern,
            title=title,
            scopes=[],
        )
        for name, title, input_type, required, pattern in table
    ]


def organization(authorities: list[Authority]) -> Organization:
    """The fixed organization of every emulated user."""
    return Organization(
        organization_id=42,
        organization_name="Sectigo IoT Emulator",
        address="1 Loopback Lane, Localhost",
        primary_contact_name="Emulator Admin",
        primary_contact_email="admin@emulator.invalid",
        primary_contact_phone="555-0100",
        manufacture_id="",
        logo="",
        authorities=authorities,
        ecosystem_id=authorities[0].ecosystem_id if authorities else 0,
        organization_parameters={"Organization": "Sectigo IoT Emulator"},
        org_status="ACTIVE",
    )
