"""The steps of the one state machine that keeps a certificate valid, shared by the
folder lifecycle (a store of one record) and the fleet (a database of many):
make an attempt, submit it, find it again by name, fetch its certificate, revoke.

Each step talks to the API only; what is kept between steps, and where, is the
caller's. Every attempt is recorded (durably) before :func:`submit` sends it, so that
after any ambiguity the next run finds its batch by name instead of paying again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from .._logging import get_logger
from ..errors import (
    AmbiguousRequestError,
    APIError,
    InvalidArchiveError,
    InvalidInputError,
    InvalidResponseError,
    PKCS12PasswordError,
)
from ._journal import LifecycleError, PendingAttempt
from ._spec import CertificateSpec

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

    from .._client import SectigoClient
    from ..certs import CertificateBundle
    from ..models import Batch
    from ..resources import WaitProgress

__all__ = [
    "CLOCK_MARGIN",
    "Leaf",
    "Subject",
    "absence_is_proof",
    "fetch",
    "find_own",
    "leaf_of",
    "new_attempt",
    "not_own",
    "revoke_serials",
    "settled_at",
    "submit",
]

logger = get_logger("sectigo_iot.lifecycle")

#: how much earlier than the attempt (our clock) its batch may say it was created
CLOCK_MARGIN = timedelta(minutes=5)


@frozen
class Subject:
    """Whose attempt it is, for messages: a folder or a fleet record, and how a person
    closes an attempt that cannot be taken for its own."""

    name: str
    clear_hint: str


def settled_at(attempt: PendingAttempt, settle: timedelta) -> datetime:
    """From when a full listing without the attempt's batch proves its create never took
    effect (before, the batch may just not be listed yet)."""
    return attempt.attempted_at + settle


def absence_is_proof(attempt: PendingAttempt) -> bool:
    """Whether a full listing without the attempt's batch name proves its create never
    took effect (then, once settled, it may be sent again).

    DOUBT: Sectigo documents that an upload's file name "is not used", so a CSR batch may
    not carry the attempt's name (the emulator names it after the file). Until the real
    API is seen to keep it, a CSR upload whose outcome is unknown is never sent again by
    itself: a person checks the batches first.
    """
    return attempt.private_key_pem is None


def new_attempt(spec: CertificateSpec, now: datetime) -> PendingAttempt:
    """A new attempt for ``spec``: a unique batch name and, by the spec's mode, a PKCS#12
    password for the server's key or a private key of our own (CSR mode)."""
    from ..certs import generate_password
    from ..resources.batches import unique_batch_name

    key_pem = None
    if spec.key_type is not None:
        from cryptography.hazmat.primitives import serialization

        from ..certs import new_private_key

        key_pem = new_private_key(spec.key_type).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return PendingAttempt(
        batch_name=unique_batch_name(),
        pkcs12_password="" if key_pem is not None else generate_password(),
        attempted_at=now,
        spec=spec,
        private_key_pem=key_pem,
    )


async def submit(client: SectigoClient, attempt: PendingAttempt, subject: Subject) -> Batch:
    """Send the recorded attempt's create (or CSR upload); the batch it made.

    AmbiguousRequestError when the batch may exist (the attempt must be kept, and found
    again by name); any other error means no batch was made. A reply whose batch id is
    not a positive integer is looked up by name.
    """
    spec = attempt.spec
    if attempt.private_key_pem is None:
        batch = await client.batches.create(
            spec.authority_id,
            common_name=spec.common_name,
            dns_names=spec.dns_names,
            pkcs12_password=attempt.pkcs12_password,
            name=attempt.batch_name,
            params=spec.params,
        )
    else:
        profile_id = await _profile_of(client, spec.authority_id)
        batch = await client.batches.upload_csrs(
            profile_id, _csr_of(attempt), name=attempt.batch_name, params=spec.params
        )
    if _valid_id(batch.batch_id):
        return batch
    invalid = InvalidResponseError(
        f"the create of batch {attempt.batch_name!r} was answered with batch id "
        f"{batch.batch_id!r}, not a positive integer",
        path="/api/v1/batches/createSingleCertBatch",
    )
    logger.warning("%s; looking the batch up by name", invalid)
    found = await find_own(client, attempt, subject)
    if found is None:
        raise AmbiguousRequestError(
            f"{invalid}; no batch of this name is listed yet. The attempt of "
            f"{subject.name} is kept: the next run looks for it again",
            operation="create",
            batch_name=attempt.batch_name,
            attempted_at=attempt.attempted_at,
        ) from invalid
    return found


def _csr_of(attempt: PendingAttempt) -> bytes:
    """The CSR of the attempt's own key for the spec's names (the TRISA subject of
    :func:`~sectigo_iot.certs.generate_csr`; the profile's ``params`` may set its own)."""
    from ..certs import generate_csr

    spec, key_type = attempt.spec, attempt.spec.key_type
    assert attempt.private_key_pem is not None and key_type is not None
    made = generate_csr(
        spec.common_name, spec.dns_names, key_type=key_type, private_key=attempt.private_key_pem
    )
    return made.csr_pem


async def find_own(
    client: SectigoClient, attempt: PendingAttempt, subject: Subject
) -> Batch | None:
    """The batch of the attempt's create, found by name; None when none is listed.

    A batch is taken only when it can be the attempt's own: its name, a creation date
    no earlier than the attempt (less ``CLOCK_MARGIN``), one certificate, a valid id.
    Anything else is an AmbiguousRequestError naming the batch and what to check.
    """
    since = attempt.attempted_at - CLOCK_MARGIN
    found = await client.batches.find_by_name(attempt.batch_name, created_after=since)
    if found is None:
        return None
    if found.batch_name != attempt.batch_name:
        problem = f"it is called {found.batch_name!r}"
    elif found.creation_date is None:
        problem = "the server does not say when it was created"
    elif found.creation_date < since:
        problem = f"it was created on {found.creation_date.isoformat()}, before the attempt"
    elif found.size > 1:
        problem = f"it holds {found.size} certificates, not one"
    elif not _valid_id(found.batch_id):
        problem = f"its id {found.batch_id!r} is not a positive integer"
    else:
        return found
    raise not_own(subject, attempt, found, problem)


def not_own(
    subject: Subject, attempt: PendingAttempt, batch: Batch, problem: str
) -> AmbiguousRequestError:
    """The error of a batch named like the attempt that cannot be taken for it."""
    return AmbiguousRequestError(
        f"{subject.name}: batch {batch.batch_id} is named like the attempt begun on "
        f"{attempt.attempted_at.isoformat()} ({attempt.batch_name!r}), but it cannot be "
        f"taken for it: {problem}. Nothing of it was put in place. Check that batch "
        f"('sectigo batches -i {batch.batch_id}'); if the attempt's create never took "
        f"effect, {subject.clear_hint}",
        operation="create",
        batch_name=attempt.batch_name,
        attempted_at=attempt.attempted_at,
        candidates=[batch],
    )


def _valid_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


async def fetch(
    client: SectigoClient,
    attempt: PendingAttempt,
    archive: Path,
    subject: Subject,
    *,
    wait_timeout: float | None = None,
    on_progress: Callable[[WaitProgress], Any] | None = None,
) -> tuple[Batch | None, CertificateBundle]:
    """The attempt's one certificate with its key, from the download at ``archive``
    (made when missing or unreadable), and its batch as waited for (up to
    ``wait_timeout`` seconds) or read; with no ``wait_timeout`` the caller has seen it
    ready, and the batch (None) is not asked for again.

    The certificate must be for the attempt's names (and, in CSR mode, for its key);
    otherwise the download is removed and the batch is not taken (AmbiguousRequestError).
    """
    import anyio.to_thread

    from ..certs import open_batch_zip

    assert attempt.batch_id is not None
    batch_id, password = attempt.batch_id, attempt.pkcs12_password or None
    opening = functools.partial(open_batch_zip, archive, password)
    batch: Batch | None = None
    try:
        bundles = await anyio.to_thread.run_sync(opening)
        if wait_timeout is not None:
            batch = await client.batches.get(batch_id)
    except (OSError, InvalidArchiveError, InvalidInputError, PKCS12PasswordError):
        if wait_timeout is not None:
            batch = await client.batches.wait(
                batch_id, timeout=wait_timeout, on_progress=on_progress
            )
        await client.batches.download(batch_id, archive, overwrite=True)
        try:
            bundles = await anyio.to_thread.run_sync(opening)
        except PKCS12PasswordError:
            await anyio.to_thread.run_sync(_remove, archive)
            problem = "the attempt's PKCS#12 password does not open its archive"
            batch = batch or await client.batches.get(batch_id)
            raise not_own(subject, attempt, batch, problem) from None
    bundle = _own_bundle(bundles, attempt, batch_id)
    leaf, wanted = leaf_of(bundle.certificate), attempt.spec
    if not leaf.is_for(wanted):
        await anyio.to_thread.run_sync(_remove, archive)
        batch = batch or await client.batches.get(batch_id)
        raise not_own(
            subject,
            attempt,
            batch,
            f"its certificate is for {', '.join(leaf.sans)}, the attempt asked for "
            f"{', '.join(wanted.names)}",
        )
    return batch, bundle


def _remove(archive: Path) -> None:
    archive.unlink(missing_ok=True)


def _own_bundle(
    bundles: list[CertificateBundle], attempt: PendingAttempt, batch_id: int
) -> CertificateBundle:
    """The one certificate of the batch, with its key (ours, in CSR mode)."""
    if attempt.private_key_pem is None:
        keyed = [bundle for bundle in bundles if bundle.private_key is not None]
        if len(keyed) != 1:
            raise InvalidArchiveError(
                f"batch {batch_id} holds {len(keyed)} certificates with a key; expected one"
            )
        return keyed[0]
    from ..certs import load_pem_bundle

    pems = b"".join(bundle.fullchain_pem for bundle in bundles)
    bundle = load_pem_bundle(pems + attempt.private_key_pem, source=f"batch {batch_id}")
    assert bundle.private_key is not None
    if bundle.certificate.public_key() != bundle.private_key.public_key():
        raise InvalidArchiveError(f"batch {batch_id} holds no certificate for the attempt's key")
    return bundle


async def revoke_serials(
    client: SectigoClient, authority_id: int, serials: tuple[str, ...], reason: str
) -> list[str]:
    """Revoke each of ``serials``; the ones done (a serial the server already shows as
    revoked, by an earlier run whose reply was lost, counts as done). Stops at the
    first failure, after returning nothing for it (the rest are owed still)."""
    if not serials:
        return []
    profile_id = await _profile_of(client, authority_id)
    done = []
    for serial in serials:
        try:
            await client.certificates.revoke(profile_id, serial, reason)
            logger.info("revoked %s (%s)", serial, reason)
        except (APIError, AmbiguousRequestError):
            if not await client.certificates.is_revoked(serial):
                raise
            logger.info("%s was already revoked", serial)
        done.append(serial)
    return done


async def _profile_of(client: SectigoClient, authority_id: int) -> int:
    from ..resources.account import profile_of

    profile_id = profile_of(await client.authorities.list(), authority_id)
    if profile_id is None:
        raise LifecycleError(f"authority {authority_id} is not listed")
    return profile_id


@frozen
class Leaf:
    """What a decision asks of a certificate, read from it once (checks run often)."""

    sans: tuple[str, ...]
    names: frozenset[str]
    common_name: str  # lower case
    not_before: datetime
    not_after: datetime
    expiry: str  # not_after in ISO 8601
    serial: str

    def is_for(self, spec: CertificateSpec) -> bool:
        """Whether it has exactly the spec's names and common name."""
        return self.names == frozenset(spec.names) and self.common_name == spec.common_name


@functools.lru_cache(maxsize=64)
def leaf_of(certificate: Certificate) -> Leaf:
    """The facts of ``certificate`` (immutable) that decisions use."""
    from ..certs import CertificateBundle

    bundle = CertificateBundle(certificate=certificate)
    return Leaf(
        sans=bundle.sans,
        names=frozenset(bundle.sans),
        common_name=bundle.common_name.lower(),
        not_before=bundle.not_before,
        not_after=bundle.not_after,
        expiry=bundle.not_after.isoformat(),
        serial=bundle.serial_number,
    )
