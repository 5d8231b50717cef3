"""What certificate a folder should hold."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from .._checks import name_sequence, positive_id, profile_params
from ..errors import InvalidInputError

__all__ = ["CertificateSpec"]

_PARAMS_HINT = "use common_name and dns_names (the PKCS#12 password is made for each attempt)"


def _params(value: Mapping[str, str] | None) -> dict[str, str]:
    return dict(sorted(profile_params(value, reserved_hint=_PARAMS_HINT).items()))


def _domain(name: str) -> str:
    """``validate_domain``, remembered for text: a journal's spec is read at every check."""
    from ..certs import validate_domain

    return _known_domain(name) if isinstance(name, str) else validate_domain(name)


@functools.lru_cache(maxsize=256)
def _known_domain(name: str) -> str:
    from ..certs import validate_domain

    return validate_domain(name)


@frozen(kw_only=True)
class CertificateSpec:
    """The certificate wanted: authority, names and other profile parameters.

    Names are validated and normalized (lower case, IDNA) on creation; ``names`` is the
    common name followed by the other DNS names, without repeats. With ``key_type``
    (``"ec-p256"``, ``"rsa2048"``... as :func:`sectigo_iot.certs.generate_csr`) the key
    is made here and a CSR uploaded: the private key is never sent. Without it the
    server makes the key and sends it in a PKCS#12 file.
    """

    authority_id: int
    common_name: str
    dns_names: tuple[str, ...] = field(default=(), converter=name_sequence)
    params: Mapping[str, str] = field(factory=dict, converter=_params, hash=False)
    key_type: str | None = None

    def __attrs_post_init__(self) -> None:
        positive_id("authority_id", self.authority_id)
        if self.key_type is not None:
            from ..certs import KEY_TYPES  # only then: cryptography is a large import

            if self.key_type not in KEY_TYPES:
                raise InvalidInputError(
                    f"unknown key_type {self.key_type!r}; use one of: {', '.join(KEY_TYPES)}"
                )
        object.__setattr__(self, "common_name", _domain(self.common_name))
        others = tuple(_domain(name) for name in self.dns_names)
        object.__setattr__(self, "dns_names", others)

    @property
    def names(self) -> tuple[str, ...]:
        """The common name, then the other DNS names, each once."""
        return tuple(dict.fromkeys((self.common_name, *self.dns_names)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (as stored in the journal)."""
        return {
            "authority_id": self.authority_id,
            "common_name": self.common_name,
            "dns_names": list(self.dns_names),
            "params": dict(self.params),
            **({} if self.key_type is None else {"key_type": self.key_type}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CertificateSpec:
        """The spec :meth:`to_dict` wrote (InvalidInputError when it does not fit)."""
        try:
            return cls(
                authority_id=data["authority_id"],
                common_name=data["common_name"],
                dns_names=tuple(data.get("dns_names", ())),
                params=data.get("params", {}),
                key_type=data.get("key_type"),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"not a certificate spec ({type(exc).__name__})") from None
