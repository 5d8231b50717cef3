"""The global options: resolved, checked, and found again from any command's context."""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs
import typer

from .._defaults import DEFAULT_BASE_URL
from ._errors import CLIError

__all__ = ["Settings", "check_environment", "settings_of"]

ENVIRONMENTS = ("production", "staging", "docker", "testing")
PROFILES = ("CipherTrace EE", "17", "CipherTrace End Entity Certificate", "85")
END_ENTITY_PROFILES = frozenset({"CipherTrace End Entity Certificate", "85"})
# the upstream mock's credentials, filled in for the "testing" environment (auth.md §7)
TESTING_USERNAME = "tester"
TESTING_PASSWORD = "supersecretsquirrel"  # noqa: S105 - a published test password


@attrs.define(kw_only=True)
class Settings:
    """The global options, resolved (flags over environment variables)."""

    username: str = ""
    password: str = attrs.field(default="", repr=False)
    endpoint: str = ""
    profile: str = ""
    environment: str = ""
    emulator: bool = False
    json: bool | None = None  # None: JSON when stdout is not a terminal
    verbose: bool = False

    def __attrs_post_init__(self) -> None:
        self.environment = self.environment.strip().lower()
        if self.environment and self.environment not in ENVIRONMENTS:
            raise CLIError(
                f'"{self.environment}" is not a valid environment, specify production, '
                "staging, docker or testing"
            )
        if self.profile and self.profile not in PROFILES:
            raise CLIError(
                f'"{self.profile}" is not a valid Sectigo profile name, specify one of '
                + ", ".join(PROFILES)
            )
        if self.environment == "testing":
            self.username = self.username or TESTING_USERNAME
            self.password = self.password or TESTING_PASSWORD

    @property
    def end_entity(self) -> bool:
        """Whether the global profile is the End Entity one (it takes subject params)."""
        return self.profile in END_ENTITY_PROFILES

    @property
    def base_url(self) -> str:
        """The API's base URL in effect."""
        return self.endpoint or DEFAULT_BASE_URL


def settings_of(ctx: typer.Context) -> Settings:
    """The global settings stored by the root callback."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):  # pragma: no cover - only without the callback
        raise CLIError("internal error: global options were not parsed")
    return settings


def check_environment(environment: str, base_url: str) -> None:
    """The environment guard of the original tool (spec auth.md §7)."""
    if not environment:
        return
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if environment == "production":
        if parts.scheme != "https":
            raise CLIError(f"must use https in production, not {parts.scheme or 'no scheme'}")
        if host != "iot.sectigo.com":
            raise CLIError(f"cannot connect to {host or base_url} in production")
    elif environment in ("staging", "docker"):
        if host.endswith("sectigo.com"):
            raise CLIError(f"cannot connect to {host} in {environment}")
    elif environment == "testing" and host not in ("localhost", "127.0.0.1"):
        raise CLIError("sectigo hostname must be set to localhost in testing mode")
