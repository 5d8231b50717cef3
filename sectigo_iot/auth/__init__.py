"""Authentication: JWT claims, the token policy and the token stores."""

from ._manager import TokenManager
from ._stores import (
    FileTokenStore,
    KeyringTokenStore,
    MemoryTokenStore,
    TokenStore,
    default_token_dir,
    keyring_usable,
    resolve_token_store,
)
from ._tokens import TokenPair, decode_claims

__all__ = [
    "FileTokenStore",
    "KeyringTokenStore",
    "MemoryTokenStore",
    "TokenManager",
    "TokenPair",
    "TokenStore",
    "decode_claims",
    "default_token_dir",
    "keyring_usable",
    "resolve_token_store",
]
