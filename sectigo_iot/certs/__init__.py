"""Certificate toolkit: CSRs, PKCS#12, batch archives, PEM files, reasons, passwords, CRLs.

Everything here works without the network but the revocation check, which fetches a
CRL. This package imports ``cryptography``; ``import sectigo_iot`` alone does not.
"""

from ._archive import open_batch_zip
from ._bundle import CertificateBundle
from ._csr import AbbreviatedStateWarning, CSRResult, generate_csr, leaf_extensions
from ._csr_load import CSRInfo, load_csrs
from ._domains import validate_domain
from ._keys import KEY_TYPES, new_private_key
from ._passwords import generate_password
from ._pem import load_der_bundle, load_pem_bundle, load_pkcs7_bundle, write_pem
from ._pkcs12 import load_pkcs12
from ._reasons import RevocationReason
from ._revocation import (
    CRLCache,
    RevocationStatus,
    check_revocation,
    check_revocation_async,
)
from ._serials import normalize_serial

__all__ = [
    "KEY_TYPES",
    "AbbreviatedStateWarning",
    "CRLCache",
    "CSRInfo",
    "CSRResult",
    "CertificateBundle",
    "RevocationReason",
    "RevocationStatus",
    "check_revocation",
    "check_revocation_async",
    "generate_csr",
    "generate_password",
    "leaf_extensions",
    "load_csrs",
    "load_der_bundle",
    "load_pem_bundle",
    "load_pkcs7_bundle",
    "load_pkcs12",
    "new_private_key",
    "normalize_serial",
    "open_batch_zip",
    "validate_domain",
    "write_pem",
]
