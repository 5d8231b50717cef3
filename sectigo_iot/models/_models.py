"""attrs models of every request and response body in the Sectigo IoT Manager API.

Attribute names are the snake_case of the JSON names; the converter in ``_converter``
does the mapping. Every field has the zero value Go would decode a missing field to.
In Jupyter every model shows as an HTML table of the fields its repr shows.
A model with a date field also has ``_unparsed_dates``: the converter keeps there the
API's text of dates it could not parse (the attribute is then ``None``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import repeat
from types import MemberDescriptorType
from typing import Any, TypeVar, cast

import attrs
from attrs import field, frozen

from .._html import fields_html, shown_fields

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
    "from_columns",
]

_SECRET_PARAMS = frozenset({"pkcs12Password"})


def _masked_params(params: dict[str, str] | None) -> str:
    if params is None:
        return "None"
    shown = {k: ("***" if k in _SECRET_PARAMS else v) for k, v in params.items()}
    return repr(shown)


class _Model:
    """What every model shares: attrs' repr, eq and hash, written once here rather than
    generated for each class (which would double this module's import time), and an
    HTML table for Jupyter showing the fields the repr shows."""

    __slots__ = ()

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={text}" for name, text in shown_fields(self, repr))
        return f"{type(self).__qualname__}({shown})"

    def _repr_html_(self) -> str:
        return fields_html(self)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _compared(self) == _compared(other)

    def __hash__(self) -> int:
        return hash((type(self), _compared(self)))


def _compared(model: Any) -> tuple[Any, ...]:
    """The values of the fields that take part in eq, in order."""
    return tuple(getattr(model, a.name) for a in attrs.fields(type(model)) if a.eq)


M = TypeVar("M", bound=_Model)


def from_columns(cls: type[M], count: int, **columns: Sequence[Any]) -> list[M]:
    """``count`` models ``cls``, the i-th made of the i-th value of each column (one
    per init field; a field without a column takes its default): what ``cls(**row)``
    makes of each row, in C-level passes of one field each (several times faster for
    thousands of models). TypeError for a model with validators, converters or hooks,
    which these passes would skip, and for a column of the wrong length."""
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} has init hooks: build it with its __init__")
    fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(cls)  # type: ignore[arg-type]
    unknown = columns.keys() - {a.name for a in fields if a.init}
    if unknown:
        raise TypeError(f"{cls.__name__} has no init field {sorted(unknown)}")
    slots = {n for k in cls.__mro__ for n, v in vars(k).items() if type(v) is MemberDescriptorType}
    if slots - {a.name for a in fields}:  # attrs' cached hash, for one: the init sets it
        raise TypeError(f"{cls.__name__} has slots that are not fields: build it with its __init__")
    made = list(map(object.__new__, repeat(cls, count)))
    for a in fields:
        slot, default = getattr(cls, a.name, None), cast(Any, a.default)
        if a.validator or a.converter or type(slot) is not MemberDescriptorType:
            raise TypeError(f"{cls.__name__}.{a.name} cannot be set column-wise")
        values: Iterable[Any]
        if a.name in columns:
            column = columns[a.name]
            if len(column) != count:
                raise TypeError(f"the {a.name} column has {len(column)} values, not {count}")
            values = column
        elif isinstance(default, attrs.Factory):  # type: ignore[arg-type]  # a class at runtime
            if default.takes_self:
                raise TypeError(f"{cls.__name__}.{a.name} has a default that takes self")
            values = [default.factory() for _ in made]
        elif default is attrs.NOTHING:
            raise TypeError(f"{cls.__name__}() needs {a.name}")
        else:
            values = repeat(default, count)
        deque(map(slot.__set__, made, values), maxlen=0)
    return made


class BatchStatus:
    """Known batch statuses. ``Batch.status`` is an open string: others may appear."""

    CREATED = "CREATED"
    PROCESSING = "PROCESSING"
    READY_FOR_DOWNLOAD = "READY_FOR_DOWNLOAD"
    COLLECTED = "COLLECTED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    BROKEN = "BROKEN"
    REVOKED = "REVOKED"
    REMOVED_AFTER_EXPIRATION = "REMOVED_AFTER_EXPIRATION"

    #: statuses after which a batch will never become ready
    FAILURES = frozenset(
        {REJECTED, FAILED, NOT_ACCEPTABLE, BROKEN, REVOKED, REMOVED_AFTER_EXPIRATION}
    )

    @staticmethod
    def normalize(text: str) -> str:
        """Normalize the text status (``Ready for download`` -> ``READY_FOR_DOWNLOAD``).

        The real service's ``Not Acceptable. Status: <detail>`` becomes
        ``NOT_ACCEPTABLE`` (the Go client turned it into a string matching no constant).
        """
        head = text.strip().split(". Status:", 1)[0]
        return head.strip().upper().replace(" ", "_")


@frozen(kw_only=True, repr=False, eq=False)
class AuthenticationRequest(_Model):
    """Body of ``POST /auth/pwd``."""

    username: str
    password: str = field(repr=False)


@frozen(kw_only=True, repr=False, eq=False)
class AuthenticationReply(_Model):
    """Tokens returned by login and refresh."""

    access_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)


@frozen(kw_only=True, repr=False, eq=False)
class CreateSingleCertBatchRequest(_Model):
    """Body of ``PUT /api/v1/batches/createSingleCertBatch``."""

    authority_id: int
    batch_name: str
    profile_params: dict[str, str] = field(factory=dict, repr=_masked_params)


@frozen(kw_only=True, repr=False, eq=False)
class UploadCSRBatchRequest(_Model):
    """The ``csrBatchRequest`` part of a CSR upload."""

    profile_id: int
    batch_type: str = "BATCH"
    profile_params: dict[str, str] | None = field(factory=dict, repr=_masked_params)


@frozen(kw_only=True, repr=False, eq=False)
class Batch(_Model):
    """A batch, as returned by create, upload and batch detail."""

    batch_id: int = 0
    order_number: int = 0
    creation_date: datetime | None = None
    profile: str = ""
    size: int = 0
    status: str = ""
    active: bool = False
    batch_name: str = ""
    reject_reason: str = ""
    generator_parameters_values: Any = None
    user_id: int = 0
    downloadable: bool = False
    rejectable: bool = False
    _unparsed_dates: dict[str, Any] | None = field(default=None, init=False, eq=False, repr=False)


@frozen(kw_only=True, repr=False, eq=False)
class ProcessingInfo(_Model):
    """Certificates of a batch counted by state."""

    active: int = 0
    success: int = 0
    failed: int = 0


@frozen(kw_only=True, repr=False, eq=False)
class Licenses(_Model):
    """Ordered and issued certificate counts (``/api/v1/devices``)."""

    ordered: int = 0
    issued: int = 0


@frozen(kw_only=True, repr=False, eq=False)
class Authority(_Model):
    """An authority the user may issue under."""

    id: int = 0
    ecosystem_id: int = 0
    signer_certificate_id: int = 0
    ecosystem_name: str = ""
    balance: int = 0
    enabled: bool = False
    profile_id: int = 0
    profile_name: str = ""


@frozen(kw_only=True, repr=False, eq=False)
class Profile(_Model):
    """An entry of the profile list."""

    profile_id: int = 0
    algorithms: list[str] | None = None
    ca: str = ""


@frozen(kw_only=True, repr=False, eq=False)
class ProfileParameter(_Model):
    """One parameter a profile takes in ``profileParams``."""

    name: str = ""
    input_type: str = ""
    required: bool = False
    placeholder: Any = None
    validation_pattern: str = ""
    message: str = ""
    value: Any = None
    title: str = ""
    scopes: list[str] | None = None
    dynamic: bool = False


@frozen(kw_only=True, repr=False, eq=False)
class ProfileDetail(_Model):
    """A profile's detail; ``raw_profile_config`` is opaque text."""

    profile_name: str = ""
    profile_id: int = 0
    raw_profile_config: str = ""
    name: str = ""
    key_algorithm_info: str = ""


@frozen(kw_only=True, repr=False, eq=False)
class Organization(_Model):
    """The organization of the current user."""

    organization_id: int = 0
    organization_name: str = ""
    address: str = ""
    primary_contact_name: str = ""
    primary_contact_email: str = ""
    primary_contact_phone: str = ""
    manufacture_id: str = ""
    logo: str = ""
    authorities: list[Authority] | None = None
    ecosystem_id: int = 0
    organization_parameters: dict[str, str] | None = None
    org_status: str = ""


@frozen(kw_only=True, repr=False, eq=False)
class FindCertificateRequest(_Model):
    """Body of ``POST /api/v1/certificates/find``; empty fields are omitted."""

    common_name: str | None = None
    serial_number: str | None = None


@frozen(kw_only=True, repr=False, eq=False)
class CertificateItem(_Model):
    """A certificate found by ``certificates.find``. ``device_id`` may be int or str."""

    device_id: str = ""
    common_name: str = ""
    serial_number: str = ""
    creation_date: datetime | None = None
    status: str = ""
    _unparsed_dates: dict[str, Any] | None = field(default=None, init=False, eq=False, repr=False)


@frozen(kw_only=True, repr=False, eq=False)
class FindCertificateResponse(_Model):
    """The find result: a count and the items."""

    total_count: int = 0
    items: list[CertificateItem] | None = None


@frozen(kw_only=True, repr=False, eq=False)
class RevokeCertificateRequest(_Model):
    """Body of ``POST /api/v1/certificates/{profileId}/revoke``."""

    reason_code: int
    serial_number: str


@frozen(kw_only=True, repr=False, eq=False)
class ErrorBody(_Model):
    """Sectigo's error body ``{status, message, errorCode, timestamp}``."""

    status: int = 0
    message: str = ""
    error_code: int = 0
    timestamp: int = 0
