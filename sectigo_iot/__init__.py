"""sectigo-iot: an async client of the Sectigo IoT Manager API.

    async with SectigoClient.from_env() as client:
        authorities = await client.authorities.list()

    with SyncSectigoClient.from_env() as client:  # the same, blocking
        authorities = client.authorities.list()

``import sectigo_iot`` stays cheap: the certificate toolkit (cryptography), the keyring,
the CLI and the emulator load only where they are used.
"""

from ._client import DEFAULT_BASE_URL, SectigoClient
from ._sync import SyncSectigoClient
from ._version import __version__
from .auth import FileTokenStore, KeyringTokenStore, MemoryTokenStore, TokenPair, TokenStore
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
    "SectigoClient",
    "SectigoError",
    "ServerError",
    "SyncSectigoClient",
    "TLSClientAuthRequiredError",
    "TokenError",
    "TokenPair",
    "TokenStore",
    "UnsupportedPKCS12Error",
    "WaitProgress",
    "WaitTimeoutError",
    "__version__",
]
