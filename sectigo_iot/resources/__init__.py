"""Resource namespaces, one module per API area (``account``, ``batches``,
``certificates``), each a thin layer over the session."""

from .account import Authorities, Licenses, Organizations, Profiles
from .batches import Batches, WaitProgress
from .certificates import Certificates

__all__ = [
    "Authorities",
    "Batches",
    "Certificates",
    "Licenses",
    "Organizations",
    "Profiles",
    "WaitProgress",
]
