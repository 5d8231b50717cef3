"""``client.batches``: create, upload, track, wait for and download batches.

A create or an upload spends a license, so neither is ever re-sent blindly. A create
always carries a unique batch name; when its outcome is unknown, the batch is looked
up by that name. An upload has no name on the wire and raises AmbiguousRequestError.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from attrs import frozen

from .._logging import get_logger, register_secret
from .._retry import outcome_unknown
from ..errors import (
    AmbiguousRequestError,
    APIConnectionError,
    BatchFailedError,
    BatchNotReadyError,
    BatchRejectedError,
    InvalidInputError,
    InvalidResponseError,
    ServerError,
    WaitTimeoutError,
)
from ..models import (
    Batch,
    BatchStatus,
    CreateSingleCertBatchRequest,
    ProcessingInfo,
    UploadCSRBatchRequest,
)
from ._base import Resource, decode, encode, positive_id

if TYPE_CHECKING:
    from ..certs import CSRInfo

__all__ = ["Batches", "WaitProgress"]

logger = get_logger("sectigo_iot.batches")

BATCH_NAME_PREFIX = "sectigo-iot"
RESERVED_PARAMS = frozenset({"commonName", "dNSName", "pkcs12Password"})
# After an ambiguous create: look the batch up by name, waiting 1, 2, 4, 8, 15 s between
# tries (about 30 s in all), before giving up with AmbiguousRequestError.
RECONCILE_WAITS = (1.0, 2.0, 4.0, 8.0, 15.0)
# Only a batch created at most this long before the attempt (on the server's clock, as
# estimated from the tokens) can be the one the attempt made: an older batch of the same
# name is someone else's.
RECONCILE_CLOCK_MARGIN = timedelta(seconds=120)
LIST_PAGE_SIZE = 50
LIST_MAX_PAGES = 10
# Polling of batches.wait: 1 s, times 1.5, capped at 20 s.
POLL_INITIAL, POLL_FACTOR, POLL_MAX = 1.0, 1.5, 20.0
_READY = frozenset({BatchStatus.READY_FOR_DOWNLOAD, BatchStatus.COLLECTED})
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@frozen(kw_only=True)
class WaitProgress:
    """What ``batches.wait`` saw on one poll, passed to its ``on_progress`` callback."""

    batch: Batch
    status: str
    info: ProcessingInfo
    elapsed: float


class Batches(Resource):
    """Certificate batches."""

    async def create(
        self,
        authority_id: int,
        *,
        common_name: str,
        dns_names: Sequence[str] = (),
        pkcs12_password: str,
        name: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Batch:
        """``PUT /api/v1/batches/createSingleCertBatch``: one certificate, key made by Sectigo.

        The common name is always the first DNS name; ``params`` adds other profile
        parameters (e.g. ``organizationName``), all strings. Without ``name`` a unique
        ``sectigo-iot-<uuid4>`` is used, so an ambiguous failure can be reconciled.
        """
        authority_id = positive_id("authority_id", authority_id)
        profile_params = _single_cert_params(common_name, dns_names, pkcs12_password, params)
        batch_name = name if name is not None else f"{BATCH_NAME_PREFIX}-{uuid.uuid4()}"
        if not isinstance(batch_name, str) or not batch_name.strip():
            raise InvalidInputError("name must be a non-empty string (or None to generate one)")
        request = CreateSingleCertBatchRequest(
            authority_id=authority_id, batch_name=batch_name, profile_params=profile_params
        )
        path = "/api/v1/batches/createSingleCertBatch"
        body = encode(request)
        attempted_at = datetime.fromtimestamp(self._session.tokens.server_now(), timezone.utc)
        try:
            data = await self._session.json("PUT", path, body=body)
        except (APIConnectionError, ServerError) as exc:
            if not outcome_unknown(exc):
                raise
            return await self._reconcile_create(batch_name, attempted_at, exc)
        return decode(data, Batch, path)

    async def upload_csrs(
        self, profile_id: int, csrs: bytes | str | os.PathLike[str], *, name: str | None = None
    ) -> Batch:
        """``POST /api/v1/batches/upload``: a batch from one or more PEM CSRs.

        ``csrs`` is PEM bytes, PEM text (a str starting with ``-----BEGIN``) or the path
        of a file holding them. Every CSR is validated before anything is sent. ``name``
        is the file name given to the uploaded part (the wire format has no batch name).
        """
        from ..certs import load_csrs

        profile_id = positive_id("profile_id", profile_id)
        infos = load_csrs(csrs)
        filename = name or _csr_filename(csrs)
        request = UploadCSRBatchRequest(
            profile_id=profile_id, batch_type="BATCH", profile_params={}
        )
        part = json.dumps(encode(request), separators=(",", ":")).encode()
        pem = b"".join(info.pem for info in infos)
        files = [
            ("csrBatchRequest", ("blob", part, "application/json")),
            ("files", (filename, pem, "application/octet-stream")),
        ]
        path = "/api/v1/batches/upload"
        attempted_at = datetime.now(timezone.utc)
        try:
            reply = await self._session.request(
                "POST", path, data={"profileId": str(profile_id)}, files=files
            )
        except (APIConnectionError, ServerError) as exc:
            if not outcome_unknown(exc):
                raise
            raise _ambiguous_upload(infos, attempted_at, exc) from exc
        return decode(reply.json(), Batch, path)

    async def get(self, batch_id: int) -> Batch:
        """``GET /api/v1/batches/{id}``."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}"
        return decode(await self._session.json("GET", path), Batch, path)

    async def status(self, batch_id: int) -> str:
        """``GET /api/v1/batches/{id}/status``: the text status, normalized
        (``Ready for download`` -> ``READY_FOR_DOWNLOAD``)."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}/status"
        reply = await self._session.request("GET", path)
        return BatchStatus.normalize(reply.text)

    async def processing_info(self, batch_id: int) -> ProcessingInfo:
        """``GET /api/v1/batches/{id}/processing_info``: active/success/failed counts."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}/processing_info"
        return decode(await self._session.json("GET", path), ProcessingInfo, path)

    async def list(self, *, page: int = 0, size: int = LIST_PAGE_SIZE) -> list[Batch]:
        """``GET /api/v1/batches``: one page of the user's batches, newest first.

        DOUBT: Sectigo lists this endpoint without documenting it. We assume Spring
        paging (``page`` from 0, ``size``) and accept either a JSON array or a Spring
        page object (``{"content": [...]}``). Correct it here once the real shape is known.
        """
        if isinstance(page, bool) or not isinstance(page, int) or page < 0:
            raise InvalidInputError(f"page must be an integer >= 0, got {page!r}")
        size = positive_id("size", size)
        path = "/api/v1/batches"
        reply = await self._session.request("GET", f"{path}?page={page}&size={size}")
        data = reply.json()
        items = data.get("content") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise InvalidResponseError("expected a list of batches", path=path)
        return decode(items, list[Batch], path)

    async def find_by_name(
        self,
        name: str,
        *,
        created_after: datetime | None = None,
        max_pages: int = LIST_MAX_PAGES,
    ) -> Batch | None:
        """The newest batch called exactly ``name`` (and created after ``created_after``,
        when given), searching ``max_pages`` pages."""
        for page in range(max_pages):
            batches = await self.list(page=page)
            for batch in batches:
                if batch.batch_name != name:
                    continue
                made = batch.creation_date
                if created_after is None or made is None or made >= created_after:
                    return batch
            if len(batches) < LIST_PAGE_SIZE:
                return None
        return None

    async def wait(
        self,
        batch_id: int,
        *,
        timeout: float = 900.0,  # noqa: ASYNC109 (a deadline for the whole wait)
        on_progress: Callable[[WaitProgress], Any] | None = None,
    ) -> Batch:
        """Poll until the batch is ready for download, and return it.

        Polls the detail and the processing counts (1 s, x1.5, at most 20 s apart); the
        text status stands in when the detail says COLLECTED or nothing. Raises
        BatchRejectedError, BatchFailedError or WaitTimeoutError (with the last state).
        """
        batch_id = positive_id("batch_id", batch_id)
        if timeout <= 0:
            raise InvalidInputError(f"timeout must be positive, got {timeout!r}")
        delay, waited = POLL_INITIAL, 0.0
        batch, status = None, ""
        with anyio.move_on_after(timeout):
            while True:
                batch = await self.get(batch_id)
                status = batch.status.strip().upper()
                if status in ("", BatchStatus.COLLECTED):
                    status = await self.status(batch_id)
                info = await self.processing_info(batch_id)
                if on_progress is not None:
                    on_progress(WaitProgress(batch=batch, status=status, info=info, elapsed=waited))
                if _is_done(batch, status, info):
                    return batch
                if waited >= timeout:
                    break
                pause = min(delay, timeout - waited)
                await self._session._sleep(pause)
                waited += pause
                delay = min(delay * POLL_FACTOR, POLL_MAX)
        raise WaitTimeoutError(
            f"batch {batch_id} was not ready after {timeout:g} s (last status: {status or 'none'})",
            status=status,
            batch=batch,
        )

    async def download(
        self, batch_id: int, dest: str | os.PathLike[str], *, overwrite: bool = False
    ) -> Path:
        """Stream the batch's ZIP to ``dest`` and return the file's path.

        ``dest`` is an existing folder (the file is ``<batchId>.zip`` in it; the name in
        the response header is never used) or a path ending in ``.zip``. The batch must
        be ready; the file appears only when complete (no partial file is ever left).
        """
        batch_id = positive_id("batch_id", batch_id)
        target = _download_target(Path(dest), batch_id, overwrite=overwrite)
        batch = await self.get(batch_id)
        status = batch.status.strip().upper()
        if status == "":
            status = await self.status(batch_id)
        if status not in _READY:
            raise BatchNotReadyError(
                f"batch {batch_id} cannot be downloaded: its status is {status or 'empty'}, "
                "not READY_FOR_DOWNLOAD; use batches.wait() first",
                batch=batch,
            )
        path = f"/api/v1/batches/{batch_id}/download"
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                async with self._session.stream(path) as response:
                    first = True
                    async for chunk in response.aiter_bytes():
                        if first and chunk:
                            _check_zip_start(chunk, path)
                            first = False
                        handle.write(chunk)
                if first:
                    raise InvalidResponseError("the download is empty", path=path)
            _publish(tmp_name, target, overwrite=overwrite)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        return target

    async def _reconcile_create(
        self, batch_name: str, attempted_at: datetime, cause: Exception
    ) -> Batch:
        """After an ambiguous create, find the batch by name or raise AmbiguousRequestError."""
        logger.warning(
            "create of batch %r had an unknown outcome (%s); looking it up", batch_name, cause
        )
        for wait in (0.0, *RECONCILE_WAITS):
            if wait:
                await self._session._sleep(wait)
            try:
                found = await self.find_by_name(
                    batch_name, created_after=attempted_at - RECONCILE_CLOCK_MARGIN
                )
            except Exception as exc:
                raise AmbiguousRequestError(
                    f"create of batch {batch_name!r} may have reached Sectigo ({cause}), and "
                    f"looking it up failed ({type(exc).__name__}); check for a batch with this "
                    "name before creating it again",
                    operation="create",
                    batch_name=batch_name,
                ) from cause
            if found is not None:
                logger.info(
                    "found batch %d for %r after an ambiguous create", found.batch_id, batch_name
                )
                return found
        raise AmbiguousRequestError(
            f"create of batch {batch_name!r} may have reached Sectigo ({cause}), but no batch "
            "with this name appeared; check again later before creating it again",
            operation="create",
            batch_name=batch_name,
        ) from cause


def _single_cert_params(
    common_name: str,
    dns_names: Sequence[str],
    pkcs12_password: str,
    params: Mapping[str, str] | None,
) -> dict[str, str]:
    """Validated ``profileParams``: all strings, the common name first in ``dNSName``."""
    from ..certs import validate_domain

    if isinstance(dns_names, str):
        raise InvalidInputError("dns_names must be a sequence of names, not a single string")
    cn = validate_domain(common_name)
    names = [cn]
    for extra in dns_names:
        normalized = validate_domain(extra)
        if normalized not in names:
            names.append(normalized)
    if not isinstance(pkcs12_password, str) or not pkcs12_password:
        raise InvalidInputError(
            "pkcs12_password is required: it encrypts the delivered PKCS#12 file "
            "(sectigo_iot.certs.generate_password() makes a strong one)"
        )
    register_secret(pkcs12_password)
    extra_params = dict(params or {})
    for key, value in extra_params.items():
        if key in RESERVED_PARAMS:
            raise InvalidInputError(
                f"params must not set {key!r}: use the common_name, dns_names and "
                "pkcs12_password arguments"
            )
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInputError(f"profile parameter {key!r} must be a string, got {value!r}")
    profile_params = {
        "commonName": cn,
        "dNSName": "\n".join(names),
        "pkcs12Password": pkcs12_password,
    }
    profile_params.update(extra_params)
    return dict(sorted(profile_params.items()))


def _csr_filename(csrs: bytes | str | os.PathLike[str]) -> str:
    if isinstance(csrs, os.PathLike) or (
        isinstance(csrs, str) and not csrs.lstrip().startswith("-----BEGIN")
    ):
        return Path(csrs).name
    return "csrs.pem"


def _ambiguous_upload(
    infos: Sequence[CSRInfo], attempted_at: datetime, cause: Exception
) -> AmbiguousRequestError:
    names = [info.common_name for info in infos]
    return AmbiguousRequestError(
        f"the CSR upload may have reached Sectigo ({cause}); it was not sent again. Check "
        f"with certificates.find(common_name=...) for {', '.join(names)} before retrying",
        operation="upload",
        common_names=names,
        attempted_at=attempted_at,
    )


def _is_done(batch: Batch, status: str, info: ProcessingInfo) -> bool:
    """True when ready; raises for rejected or failed batches; False to keep polling."""
    if status == BatchStatus.REJECTED or (batch.reject_reason and info.failed and not info.success):
        raise BatchRejectedError(
            f"batch {batch.batch_id} was rejected: {batch.reject_reason or 'no reason given'}",
            reject_reason=batch.reject_reason,
            batch=batch,
        )
    if info.active > 0:
        return False
    if status in _READY and (info.success > 0 or info.failed == 0):
        if info.failed:
            logger.warning(
                "batch %d is ready but %d certificate(s) failed", batch.batch_id, info.failed
            )
        return True
    if status in BatchStatus.FAILURES or (info.failed > 0 and info.success == 0):
        raise BatchFailedError(
            f"batch {batch.batch_id} failed with status {status or 'unknown'}", batch=batch
        )
    return False


def _download_target(dest: Path, batch_id: int, *, overwrite: bool) -> Path:
    if dest.is_dir():
        target = dest / f"{batch_id}.zip"
    elif dest.exists() and dest.suffix.lower() != ".zip":
        raise InvalidInputError(f"{dest} is a file; give a folder or a path ending in .zip")
    elif dest.suffix.lower() == ".zip":
        target = dest
        if not dest.parent.is_dir():
            raise InvalidInputError(f"folder {dest.parent} does not exist; create it first")
    else:
        raise InvalidInputError(f"folder {dest} does not exist; create it first")
    if target.is_symlink() or (target.exists() and not overwrite):
        raise InvalidInputError(f"{target} already exists; pass overwrite=True to replace it")
    return target


def _check_zip_start(chunk: bytes, path: str) -> None:
    if not chunk.startswith(_ZIP_MAGIC) and len(chunk) >= 4:
        kind = "an HTML page" if chunk.lstrip()[:1] == b"<" else "not a ZIP archive"
        raise InvalidResponseError(f"the download is {kind}", path=path)


def _publish(tmp_name: str, target: Path, *, overwrite: bool) -> None:
    """Move the finished file into place; without overwrite, never replace a file."""
    if overwrite:
        os.replace(tmp_name, target)
        return
    try:
        os.link(tmp_name, target)
    except FileExistsError:
        raise InvalidInputError(
            f"{target} already exists; pass overwrite=True to replace it"
        ) from None
    except OSError:  # no hard links on this file system: check, then rename
        if target.exists():
            raise InvalidInputError(f"{target} already exists; pass overwrite=True") from None
        os.replace(tmp_name, target)
        return
    os.unlink(tmp_name)
