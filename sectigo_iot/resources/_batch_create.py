"""Creating batches: the request's parameters, unique batch names, and what is done
when a create's or an upload's outcome is unknown (a create is looked up by its name;
an upload, which has no name on the wire, is reported ambiguous)."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._checks import domain_names, profile_params
from .._logging import MIN_SECRET_LENGTH, get_logger
from ..errors import AmbiguousRequestError, InvalidInputError
from ..models import Batch

if TYPE_CHECKING:
    from ..certs import CSRInfo

__all__ = [
    "ambiguous_upload",
    "csr_filename",
    "is_unique_batch_name",
    "reconcile_create",
    "single_cert_params",
    "unique_batch_name",
]

logger = get_logger("sectigo_iot.batches")

BATCH_NAME_PREFIX = "sectigo-iot"
# After an ambiguous create: look the batch up by name, waiting 1, 2, 4, 8, 15 s between
# tries (about 30 s in all), before giving up with AmbiguousRequestError.
RECONCILE_WAITS = (1.0, 2.0, 4.0, 8.0, 15.0)
# The attempt's start is taken on the server's clock as estimated from the tokens' ``iat``
# (whole seconds, plus the latency of the login): a batch created more than this before
# it is someone else's.
RECONCILE_CLOCK_MARGIN = timedelta(seconds=5)
_UNIQUE_SUFFIX = re.compile(
    r"-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)


def unique_batch_name(label: str = BATCH_NAME_PREFIX) -> str:
    """``label`` with a unique suffix (``<label>-<uuid4>``): a name an ambiguous create
    can be found by without mistaking another batch for it."""
    import uuid  # on first use: it is not needed to import the package

    return f"{label}-{uuid.uuid4()}"


def is_unique_batch_name(name: str) -> bool:
    """Whether ``name`` ends with the suffix :func:`unique_batch_name` adds."""
    return _UNIQUE_SUFFIX.search(name) is not None


def single_cert_params(
    common_name: str,
    dns_names: Sequence[str],
    pkcs12_password: str,
    params: Mapping[str, str] | None,
) -> dict[str, str]:
    """Validated ``profileParams``: all strings, the common name first in ``dNSName``."""
    names = domain_names(common_name, dns_names)
    if not isinstance(pkcs12_password, str) or not pkcs12_password:
        raise InvalidInputError(
            "pkcs12_password is required: it encrypts the delivered PKCS#12 file "
            "(sectigo_iot.certs.generate_password() makes a strong one)"
        )
    if len(pkcs12_password) < MIN_SECRET_LENGTH:
        raise InvalidInputError(
            f"pkcs12_password must have at least {MIN_SECRET_LENGTH} characters, so that it "
            "can be redacted safely; sectigo_iot.certs.generate_password() makes a strong one"
        )
    hint = "use the common_name, dns_names and pkcs12_password arguments"
    wire_params = {
        "commonName": names[0],
        "dNSName": "\n".join(names),
        "pkcs12Password": pkcs12_password,
        **profile_params(params, reserved_hint=hint),
    }
    return dict(sorted(wire_params.items()))


async def reconcile_create(
    find: Callable[[str, datetime], Awaitable[list[Batch]]],
    sleep: Callable[[float], Awaitable[Any]],
    batch_name: str,
    attempted_at: datetime,
    cause: Exception,
) -> Batch:
    """After an ambiguous create, find the batch it made, or raise AmbiguousRequestError.

    ``find(name, since)`` lists the batches of that name created since then. A batch is
    accepted only when it can only be this attempt's: called ``batch_name``, created
    after the attempt began (on the server's clock, less ``RECONCILE_CLOCK_MARGIN``), and
    the only such batch. A batch whose creation date is unknown counts only under a name
    this client made unique.
    """
    logger.warning(
        "create of batch %r had an unknown outcome (%s); looking it up", batch_name, cause
    )
    since = attempted_at - RECONCILE_CLOCK_MARGIN
    for wait in (0.0, *RECONCILE_WAITS):
        if wait:
            await sleep(wait)
        try:
            named = await find(batch_name, since)
        except Exception as exc:
            raise _ambiguous_create(
                batch_name, cause, f"looking it up failed ({type(exc).__name__})"
            ) from cause
        if not is_unique_batch_name(batch_name):
            named = [batch for batch in named if batch.creation_date is not None]
        if len(named) > 1:
            ids = ", ".join(str(batch.batch_id) for batch in named)
            raise _ambiguous_create(
                batch_name,
                cause,
                f"{len(named)} batches of this name were created since (ids {ids}), "
                "so which one this attempt made cannot be told",
                candidates=named,
            ) from cause
        if named:
            logger.info(
                "found batch %d for %r after an ambiguous create", named[0].batch_id, batch_name
            )
            return named[0]
    raise _ambiguous_create(
        batch_name, cause, "no batch with this name appeared; check again later"
    ) from cause


def _ambiguous_create(
    batch_name: str, cause: Exception, why: str, *, candidates: Sequence[Batch] = ()
) -> AmbiguousRequestError:
    return AmbiguousRequestError(
        f"create of batch {batch_name!r} may have reached Sectigo ({cause}), but {why}; "
        "check for a batch with this name before creating it again",
        operation="create",
        batch_name=batch_name,
        candidates=list(candidates),
    )


def csr_filename(csrs: bytes | str | os.PathLike[str]) -> str:
    """The file name of the uploaded part: the CSR file's own, else ``csrs.pem``."""
    if isinstance(csrs, os.PathLike) or (
        isinstance(csrs, str) and not csrs.lstrip().startswith("-----BEGIN")
    ):
        return Path(csrs).name
    return "csrs.pem"


def ambiguous_upload(
    infos: Sequence[CSRInfo], attempted_at: datetime, cause: Exception
) -> AmbiguousRequestError:
    """The error of an upload whose outcome is unknown: it is never sent again."""
    names = [info.common_name for info in infos]
    return AmbiguousRequestError(
        f"the CSR upload may have reached Sectigo ({cause}); it was not sent again. Check "
        f"with certificates.find(common_name=...) for {', '.join(names)} before retrying",
        operation="upload",
        common_names=names,
        attempted_at=attempted_at,
    )
