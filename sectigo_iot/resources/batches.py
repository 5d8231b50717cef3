"""``client.batches``: create, upload, track, wait for and download batches.

A create or an upload spends a license, so neither is ever re-sent blindly. A create
always carries a unique batch name; when its outcome is unknown, the batch is looked
up by that name. An upload has no name on the wire and raises AmbiguousRequestError.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from .._checks import domain_names, positive_id, profile_params
from .._files import make_private_dirs, publish, sync_folder
from .._html import table_html
from .._logging import MIN_SECRET_LENGTH, get_logger
from .._retry import outcome_unknown
from .._session import decode, encode
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
from ._base import Resource

if TYPE_CHECKING:
    from .._session import Session
    from ..certs import CSRInfo

__all__ = ["Batches", "WaitProgress", "is_unique_batch_name", "unique_batch_name"]

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
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024  # a batch ZIP holds PKCS#12 files of a few KB each
LIST_PAGE_SIZE = 50
# DOUBT: the real list endpoint's largest page is unknown. Spring Data's default cap is
# 2000 (larger sizes are silently cut to it; the emulator refuses them), so 1000 is safe
# either way: a cut page is never taken for the end of the list (see ``_page``).
FIND_PAGE_SIZE = 1000
# A walk of the list gives up (with an error, never "not found") after this many pages:
# a server that never ends its list must not keep the client for ever.
FIND_MAX_PAGES = 10_000
# Batch ids seen ready that ``download`` need not check again (the most recent ones).
READY_MEMORY = 1024
# Polling of batches.wait: 1 s, times 1.5, capped at 20 s.
POLL_INITIAL, POLL_FACTOR, POLL_MAX = 1.0, 1.5, 20.0
_READY = frozenset({BatchStatus.READY_FOR_DOWNLOAD, BatchStatus.COLLECTED})
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive


@frozen(kw_only=True)
class WaitProgress:
    """What ``batches.wait`` saw on one poll, passed to its ``on_progress`` callback.

    ``info`` holds the certificates counted by state: as the batch detail tells them
    (its ``size``, ``active`` flag and status), or from ``processing_info`` when the
    status could not tell.
    """

    batch: Batch
    status: str
    info: ProcessingInfo
    elapsed: float

    def __str__(self) -> str:
        info = self.info
        return (
            f"batch {self.batch.batch_id}: {self.status or 'no status'} after {self.elapsed:.1f} s "
            f"(active {info.active}, success {info.success}, failed {info.failed})"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("batch", self.batch.batch_id),
            ("name", self.batch.batch_name),
            ("status", self.status),
            ("active", self.info.active),
            ("success", self.info.success),
            ("failed", self.info.failed),
            ("elapsed", f"{self.elapsed:.1f} s"),
        ]
        return table_html("WaitProgress", ("field", "value"), rows)


class Batches(Resource):
    """Certificate batches."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        #: ids of batches seen ready: a batch once ready stays so (download checks no more)
        self._seen_ready: dict[int, None] = {}

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
        ``sectigo-iot-<uuid4>`` is used; a name of your own is sent as it is. When the
        outcome is unknown, the batch is looked up by name (see ``_reconcile_create``).
        """
        authority_id = positive_id("authority_id", authority_id)
        wire_params = _single_cert_params(common_name, dns_names, pkcs12_password, params)
        self._session.secrets.add(pkcs12_password)
        batch_name = name if name is not None else unique_batch_name()
        if not isinstance(batch_name, str) or not batch_name.strip():
            raise InvalidInputError("name must be a non-empty string (or None to generate one)")
        request = CreateSingleCertBatchRequest(
            authority_id=authority_id, batch_name=batch_name, profile_params=wire_params
        )
        path = "/api/v1/batches/createSingleCertBatch"
        attempted_at = await self._session.server_now()  # after logging in: the server's clock
        try:
            return await self._session.call("PUT", path, json_body=request, cast_to=Batch)
        except (APIConnectionError, ServerError, InvalidResponseError) as exc:
            if not outcome_unknown(exc):
                raise
            return await self._reconcile_create(batch_name, attempted_at, exc)

    async def upload_csrs(
        self,
        profile_id: int,
        csrs: bytes | str | os.PathLike[str],
        *,
        name: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Batch:
        """``POST /api/v1/batches/upload``: a batch from one or more PEM CSRs.

        ``csrs`` is PEM bytes, PEM text (a str starting with ``-----BEGIN``) or the path
        of a file holding them. Every CSR is validated before anything is sent. ``name``
        is the file name given to the uploaded part (the wire format has no batch name);
        ``params`` are the profile's other parameters (e.g. ``organizationName``).
        """
        from ..certs import load_csrs

        profile_id = positive_id("profile_id", profile_id)
        infos = load_csrs(csrs)
        filename = name or _csr_filename(csrs)
        request = UploadCSRBatchRequest(
            profile_id=profile_id, batch_type="BATCH", profile_params=profile_params(params)
        )
        part = json.dumps(encode(request), separators=(",", ":")).encode()
        pem = b"".join(info.pem for info in infos)
        files = [
            ("csrBatchRequest", ("blob", part, "application/json")),
            ("files", (filename, pem, "application/octet-stream")),
        ]
        path = "/api/v1/batches/upload"
        attempted_at = await self._session.server_now()
        try:
            return await self._session.call(
                "POST", path, data={"profileId": str(profile_id)}, files=files, cast_to=Batch
            )
        except (APIConnectionError, ServerError, InvalidResponseError) as exc:
            if not outcome_unknown(exc):
                raise
            raise _ambiguous_upload(infos, attempted_at, exc) from exc

    async def get(self, batch_id: int) -> Batch:
        """``GET /api/v1/batches/{id}``."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}"
        return await self._session.call("GET", path, cast_to=Batch)

    async def status(self, batch_id: int) -> str:
        """``GET /api/v1/batches/{id}/status``: the text status, normalized
        (``Ready for download`` -> ``READY_FOR_DOWNLOAD``)."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}/status"
        return BatchStatus.normalize(await self._session.call("GET", path, cast_to=str))

    async def processing_info(self, batch_id: int) -> ProcessingInfo:
        """``GET /api/v1/batches/{id}/processing_info``: active/success/failed counts."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}/processing_info"
        return await self._session.call("GET", path, cast_to=ProcessingInfo)

    async def list(self, *, page: int = 0, size: int = LIST_PAGE_SIZE) -> list[Batch]:
        """``GET /api/v1/batches``: one page of the user's batches, newest first.

        DOUBT: Sectigo lists this endpoint without documenting it. We assume Spring
        paging (``page`` from 0, ``size``) and accept either a JSON array or a Spring
        page object (``{"content": [...]}``). Correct it here once the real shape is known.
        """
        if isinstance(page, bool) or not isinstance(page, int) or page < 0:
            raise InvalidInputError(f"page must be an integer >= 0, got {page!r}")
        batches, _ = await self._page(page, positive_id("size", size))
        return batches

    async def find_by_name(
        self, name: str, *, created_after: datetime | None = None
    ) -> Batch | None:
        """The newest batch called exactly ``name`` (and, with ``created_after``, not
        created before it), or None when there is none.

        Reads the list newest first, in large pages, and stops at the first page that
        holds the name. Proving that there is none reads back to the end of the list,
        or with ``created_after`` to a page of batches all created before it.
        """
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"name must be a non-empty string, got {name!r}")
        named = await self._named(name, created_after, first_only=True)
        return named[0] if named else None

    async def _page(self, page: int, size: int) -> tuple[builtins.list[Batch], bool]:
        """One page of the list, and whether it is surely the last one.

        Only an empty page, or a Spring page object saying so (``last``, or ``number``
        and ``totalPages``), ends the list: a short page may only mean that the server
        cut the size we asked for.
        """
        path = "/api/v1/batches"
        data = await self._session.call("GET", f"{path}?page={page}&size={size}", cast_to=object)
        items = data.get("content") if isinstance(data, dict) else data
        if not isinstance(items, builtins.list):
            raise InvalidResponseError("expected a list of batches", path=path)
        batches: builtins.list[Batch] = decode(items, builtins.list[Batch], path)
        last = not batches
        if isinstance(data, dict):
            number, total_pages = data.get("number"), data.get("totalPages")
            if isinstance(number, int) and number != page:
                raise InvalidResponseError(
                    f"asked for page {page} of the batch list, got page {number}", path=path
                )
            if data.get("last") is True or (
                isinstance(total_pages, int) and page >= total_pages - 1
            ):
                last = True
        return batches, last

    async def _named(
        self, name: str, created_after: datetime | None, *, first_only: bool = False
    ) -> builtins.list[Batch]:
        """The batches called exactly ``name`` (created after ``created_after``, or of
        unknown date), newest first.

        Pages are read newest first until the list ends, or a page holds only batches
        created before ``created_after``; with ``first_only``, until the first page
        holding one; else also until a page that holds one and reaches back before
        ``created_after`` (the window since then is complete). DOUBT: a batch without a
        creation date cannot be placed in time, so it never ends the walk early.
        """
        found: builtins.list[Batch] = []
        for page in range(FIND_MAX_PAGES):
            batches, last = await self._page(page, FIND_PAGE_SIZE)
            found += [
                batch
                for batch in batches
                if batch.batch_name == name
                and (
                    created_after is None
                    or batch.creation_date is None
                    or batch.creation_date >= created_after
                )
            ]
            older = (
                []
                if created_after is None
                else [
                    batch
                    for batch in batches
                    if batch.creation_date is not None and batch.creation_date < created_after
                ]
            )
            if last or len(older) == len(batches) or (found and (first_only or older)):
                return found
        raise InvalidResponseError(
            f"the batch list did not end after {FIND_MAX_PAGES} pages of {FIND_PAGE_SIZE}",
            path="/api/v1/batches",
        )

    async def wait(
        self,
        batch_id: int,
        *,
        timeout: float = 900.0,
        on_progress: Callable[[WaitProgress], Any] | None = None,
        progress: bool = False,
    ) -> Batch:
        """Poll until the batch is ready for download, and return it.

        Polls the batch detail (1 s, x1.5, at most 20 s apart): one request per poll.
        The text status stands in when the detail says COLLECTED or nothing, and the
        processing counts are asked only when the status cannot tell whether the batch
        is ready, still processing or failed. Each poll goes
        to ``on_progress``; ``progress=True`` also shows it (a display updated in place
        under IPython, else a line on stderr). Raises BatchRejectedError,
        BatchFailedError or WaitTimeoutError (with the last state).
        """
        batch_id = positive_id("batch_id", batch_id)
        on_progress = _with_display(on_progress) if progress else on_progress
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise InvalidInputError(
                f"timeout must be a finite number of seconds > 0, got {timeout!r}"
            )
        import anyio  # on first use: it is a large import

        delay, waited = POLL_INITIAL, 0.0
        batch, status = None, ""
        with anyio.move_on_after(timeout):
            while True:
                batch = await self.get(batch_id)
                status = BatchStatus.normalize(batch.status)
                if status in ("", BatchStatus.COLLECTED):
                    status = await self.status(batch_id)
                info = _counts_told_by(batch, status) or await self.processing_info(batch_id)
                if on_progress is not None:
                    on_progress(WaitProgress(batch=batch, status=status, info=info, elapsed=waited))
                if _is_done(batch, status, info):
                    self._remember_ready(batch_id)
                    return batch
                if waited >= timeout:
                    break
                pause = min(delay, timeout - waited)
                await self._session.sleep(pause)
                waited += pause
                delay = min(delay * POLL_FACTOR, POLL_MAX)
        raise WaitTimeoutError(
            f"batch {batch_id} was not ready after {timeout:g} s (last status: {status or 'none'})",
            status=status,
            batch=batch,
        )

    async def download(
        self,
        batch_id: int,
        dest: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> Path:
        """Stream the batch's ZIP to ``dest`` and return the file's path.

        ``dest`` is a folder (the file is ``<batchId>.zip`` in it; the name in the
        response header is never used) or a path ending in ``.zip``; a missing folder
        is created, private (0700). The batch must be ready: its detail is checked
        unless this client has seen it ready (``wait`` returned it). The file appears
        only when complete: a body cut short, larger than ``max_bytes`` (counted after
        decompression) or not a ZIP leaves no file.
        """
        batch_id = positive_id("batch_id", batch_id)
        max_bytes = positive_id("max_bytes", max_bytes)
        target = _download_target(Path(dest), batch_id, overwrite=overwrite)
        if batch_id not in self._seen_ready:
            await self._check_ready(batch_id)
        make_private_dirs(target.parent)
        path = f"/api/v1/batches/{batch_id}/download"
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
        try:
            with os.fdopen(fd, "w+b") as handle:
                await self._session.download(
                    path, handle, limit=max_bytes, magic=_ZIP_MAGIC, kind="a ZIP archive"
                )
                os.fsync(handle.fileno())
            publish(tmp_name, target, overwrite=overwrite)
            sync_folder(target.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        return target

    async def _check_ready(self, batch_id: int) -> None:
        """BatchNotReadyError unless the batch's detail (or text status) says ready."""
        batch = await self.get(batch_id)
        status = BatchStatus.normalize(batch.status)
        if status == "":
            status = await self.status(batch_id)
        if status not in _READY:
            raise BatchNotReadyError(
                f"batch {batch_id} cannot be downloaded: its status is {status or 'empty'}, "
                "not READY_FOR_DOWNLOAD; use batches.wait() first",
                batch=batch,
            )
        self._remember_ready(batch_id)

    def _remember_ready(self, batch_id: int) -> None:
        self._seen_ready[batch_id] = None
        while len(self._seen_ready) > READY_MEMORY:
            del self._seen_ready[next(iter(self._seen_ready))]

    async def _reconcile_create(
        self, batch_name: str, attempted_at: datetime, cause: Exception
    ) -> Batch:
        """After an ambiguous create, find the batch it made, or raise AmbiguousRequestError.

        A batch is accepted only when it can only be this attempt's: called
        ``batch_name``, created after the attempt began (on the server's clock, less
        ``RECONCILE_CLOCK_MARGIN``), and the only such batch. A batch whose creation
        date is unknown counts only under a name this client made unique.
        """
        logger.warning(
            "create of batch %r had an unknown outcome (%s); looking it up", batch_name, cause
        )
        since = attempted_at - RECONCILE_CLOCK_MARGIN
        for wait in (0.0, *RECONCILE_WAITS):
            if wait:
                await self._session.sleep(wait)
            try:
                named = await self._named(batch_name, since)
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


def unique_batch_name(label: str = BATCH_NAME_PREFIX) -> str:
    """``label`` with a unique suffix (``<label>-<uuid4>``): a name an ambiguous create
    can be found by without mistaking another batch for it."""
    import uuid  # on first use: it is not needed to import the package

    return f"{label}-{uuid.uuid4()}"


def is_unique_batch_name(name: str) -> bool:
    """Whether ``name`` ends with the suffix :func:`unique_batch_name` adds."""
    return _UNIQUE_SUFFIX.search(name) is not None


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


def _single_cert_params(
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


def _with_display(
    on_progress: Callable[[WaitProgress], Any] | None,
) -> Callable[[WaitProgress], Any]:
    """``on_progress`` preceded by a progress display: one display updated in place
    under IPython (loaded only here, and optional), else a line on stderr per poll."""
    display: Any = None
    with contextlib.suppress(ImportError):
        ipython = importlib.import_module("IPython")
        if ipython.get_ipython() is not None:
            display = importlib.import_module("IPython.display").display
    handle: Any = None

    def show(update: WaitProgress) -> None:
        nonlocal handle
        if display is None:
            print(update, file=sys.stderr, flush=True)
        elif handle is None:
            handle = display(update, display_id=True)
        else:
            handle.update(update)
        if on_progress is not None:
            on_progress(update)

    return show


def _counts_told_by(batch: Batch, status: str) -> ProcessingInfo | None:
    """The processing counts as the detail tells them (its ``size``, ``active`` flag and
    status), or None when only ``processing_info`` can tell (an unknown status)."""
    size = max(batch.size, 1)
    if batch.active or status in (BatchStatus.CREATED, BatchStatus.PROCESSING):
        return ProcessingInfo(active=size)
    if status in _READY:
        return ProcessingInfo(success=size)
    if status in BatchStatus.FAILURES:
        return ProcessingInfo(failed=size)
    return None


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
    """Where the archive goes: ``dest`` when it ends in ``.zip`` and is no folder, else
    ``<batchId>.zip`` in the folder ``dest`` (made by ``download`` when missing)."""
    if dest.suffix.lower() == ".zip" and not dest.is_dir():
        target = dest
    elif dest.exists() and not dest.is_dir():
        raise InvalidInputError(f"{dest} is a file; give a folder or a path ending in .zip")
    else:
        target = dest / f"{batch_id}.zip"
    for folder in (target.parent, *target.parent.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise InvalidInputError(f"{folder} is not a folder; give another destination")
            break
    if target.is_symlink() or (target.exists() and not overwrite):
        raise InvalidInputError(f"{target} already exists; pass overwrite=True to replace it")
    return target
