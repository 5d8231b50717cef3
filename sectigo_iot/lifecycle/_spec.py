"""What certificate a folder should hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from ..errors import InvalidInputError

__all__ = ["CertificateSpec"]

_RESERVED = frozenset({"commonName", "dNSName", "pkcs12Password"})


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidInputError("dns_names must be a sequence of names, not a single string")
    return tuple(value)


def _params(value: Mapping[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"params must be a mapping of strings, got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or not key or not isinstance(item, str):
            raise InvalidInputError(f"profile parameter {key!r} must be a string, got {item!r}")
        if key in _RESERVED:
            raise InvalidInputError(
                f"params must not set {key!r}: use common_name and dns_names (the PKCS#12 "
                "password is made for each attempt)"
            )
    return dict(sorted(value.items()))


@frozen(kw_only=True)
class CertificateSpec:
    """The certificate wanted: authority, names and other profile parameters.

    Names are validated and normalized (lower case, IDNA) on creation; ``names`` is the
    common name followed by the other DNS names, without repeats.
    """

    authority_id: int
    common_name: str
    dns_names: tuple[str, ...] = field(default=(), converter=_names)
    params: Mapping[str, str] = field(factory=dict, converter=_params, hash=False)

    def __attrs_post_init__(self) -> None:
        from ..certs import validate_domain

        if (
            isinstance(self.authority_id, bool)
            or not isinstance(self.authority_id, int)
            or self.authority_id <= 0
        ):
            raise InvalidInputError(
                f"authority_id must be a positive integer, got {self.authority_id!r}"
            )
        object.__setattr__(self, "common_name", validate_domain(self.common_name))
        others = tuple(validate_domain(name) for name in self.dns_names)
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
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"not a certificate spec ({type(exc).__name__})") from None
