"""Resource namespaces: one per API area, each a thin layer over the session."""

from .authorities import Authorities
from .batches import Batches, WaitProgress
from .certificates import Certificates
from .licenses import Licenses
from .organizations import Organizations
from .profiles import Profiles

__all__ = [
    "Authorities",
    "Batches",
    "Certificates",
    "Licenses",
    "Organizations",
    "Profiles",
    "WaitProgress",
]
