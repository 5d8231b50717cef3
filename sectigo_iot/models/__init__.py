"""Typed models of the API's bodies and the converter that maps them to JSON."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._converter import (
        converter,
        format_date,
        make_converter,
        parse_date,
        strict_converter,
    )

from ._models import (
    AuthenticationReply,
    AuthenticationRequest,
    Authority,
    Batch,
    BatchStatus,
    CertificateItem,
    CreateSingleCertBatchRequest,
    ErrorBody,
    FindCertificateRequest,
    FindCertificateResponse,
    Licenses,
    Organization,
    ProcessingInfo,
    Profile,
    ProfileDetail,
    ProfileParameter,
    RevokeCertificateRequest,
    UploadCSRBatchRequest,
)

_CONVERTER_NAMES = frozenset(
    {"converter", "format_date", "make_converter", "parse_date", "strict_converter"}
)


def __getattr__(name: str) -> Any:
    """The converter and its helpers load on first use: cattrs is slow to import."""
    if name in _CONVERTER_NAMES:
        from . import _converter

        return getattr(_converter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuthenticationReply",
    "AuthenticationRequest",
    "Authority",
    "Batch",
    "BatchStatus",
    "CertificateItem",
    "CreateSingleCertBatchRequest",
    "ErrorBody",
    "FindCertificateRequest",
    "FindCertificateResponse",
    "Licenses",
    "Organization",
    "ProcessingInfo",
    "Profile",
    "ProfileDetail",
    "ProfileParameter",
    "RevokeCertificateRequest",
    "UploadCSRBatchRequest",
    "converter",
    "format_date",
    "make_converter",
    "parse_date",
    "strict_converter",
]
