"""sectigo-iot: an async client of the Sectigo IoT Manager API.

    async with SectigoClient.from_env() as client:
        authorities = await client.authorities.list()

    with SyncSectigoClient.from_env() as client:  # the same, blocking
        authorities = client.authorities.list()

``import sectigo_iot`` stays cheap: the client and the models load on first use, and the
certificate toolkit (cryptography), the keyring, the CLI and the emulator only where
they are used.
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    AmbiguousRequestError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchError,
    BatchFailedError,
    BatchNotReadyError,
    BatchRejectedError,
    ConflictError,
    CredentialsError,
    InvalidArchiveError,
    InvalidCSRError,
    InvalidInputError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    PKCS12PasswordError,
    RateLimitError,
    SectigoError,
    ServerError,
    TLSClientAuthRequiredError,
    TokenError,
    UnsupportedPKCS12Error,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    from ._client import DEFAULT_BASE_URL, SectigoClient
    from ._hooks import Hooks, RequestEvent, ResponseEvent, RetryEvent, TokenRefreshEvent
    from ._sync import SyncSectigoClient
    from .auth import (
        FileTokenStore,
        KeyringTokenStore,
        MemoryTokenStore,
        TokenPair,
        TokenStore,
    )
    from .models import (
        Authority,
        Batch,
        BatchStatus,
        CertificateItem,
        Licenses,
        Organization,
        ProcessingInfo,
        Profile,
        ProfileDetail,
        ProfileParameter,
    )
    from .resources import WaitProgress

# Where each name not imported above lives (the models: every other name of __all__):
# it is imported on first use, so that the command line's --help and the errors do not
# pay for httpx, attrs and the models.
_LAZY = {
    "DEFAULT_BASE_URL": "._client",
    "SectigoClient": "._client",
    "SyncSectigoClient": "._sync",
    **dict.fromkeys(
        ("FileTokenStore", "KeyringTokenStore", "MemoryTokenStore", "TokenPair", "TokenStore"),
        ".auth",
    ),
    "WaitProgress": ".resources",
    **dict.fromkeys(
        ("Hooks", "RequestEvent", "ResponseEvent", "RetryEvent", "TokenRefreshEvent"), "._hooks"
    ),
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_LAZY.get(name, ".models"), __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AmbiguousRequestError",
    "AuthenticationError",
    "Authority",
    "BadRequestError",
    "Batch",
    "BatchError",
    "BatchFailedError",
    "BatchNotReadyError",
    "BatchRejectedError",
    "BatchStatus",
    "CertificateItem",
    "ConflictError",
    "CredentialsError",
    "FileTokenStore",
    "Hooks",
    "InvalidArchiveError",
    "InvalidCSRError",
    "InvalidInputError",
    "InvalidResponseError",
    "KeyringTokenStore",
    "Licenses",
    "MemoryTokenStore",
    "NotFoundError",
    "Organization",
    "PKCS12PasswordError",
    "PermissionDeniedError",
    "ProcessingInfo",
    "Profile",
    "ProfileDetail",
    "ProfileParameter",
    "RateLimitError",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "SectigoClient",
    "SectigoError",
    "ServerError",
    "SyncSectigoClient",
    "TLSClientAuthRequiredError",
    "TokenError",
    "TokenPair",
    "TokenRefreshEvent",
    "TokenStore",
    "UnsupportedPKCS12Error",
    "WaitProgress",
    "WaitTimeoutError",
    "__version__",
]
