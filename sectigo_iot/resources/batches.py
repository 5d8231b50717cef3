"""``client.batches``: create, upload, track, wait for and download batches.

A create or an upload spends a license, so neither is ever re-sent blindly. A create
always carries a unique batch name; when its outcome is unknown, the batch is looked
up by that name. An upload has no name on the wire and raises AmbiguousRequestError.
The workflows live beside this module: ``_batch_create`` (parameters, reconciling an
ambiguous create), ``_batch_find`` (the list walked by name), ``_batch_wait`` (polling)
and ``_batch_download`` (the file written whole).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .._checks import positive_id, profile_params
from .._hooks import operation
from .._retry import outcome_unknown
from ..errors import (
    APIConnectionError,
    BatchNotReadyError,
    InvalidInputError,
    InvalidResponseError,
    ServerError,
)
from ..models import (
    Batch,
    BatchStatus,
    CreateSingleCertBatchRequest,
    ProcessingInfo,
    UploadCSRBatchRequest,
)
from ._base import Resource
from ._batch_create import (
    ambiguous_upload,
    csr_filename,
    is_unique_batch_name,
    reconcile_create,
    single_cert_params,
    unique_batch_name,
)
from ._batch_download import ZIP_MAGIC, download_target, write_whole
from ._batch_find import named_batches
from ._batch_wait import READY, WaitProgress, is_done, look, poll_until_ready, with_display

if TYPE_CHECKING:
    from .._session import Session

__all__ = ["Batches", "WaitProgress", "is_unique_batch_name", "unique_batch_name"]

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


class Batches(Resource):
    """Certificate batches."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        #: ids of batches seen ready: a batch once ready stays so (download checks no more)
        self._seen_ready: dict[int, None] = {}

    @operation("batches.create", idempotent=False)
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
        outcome is unknown, the batch is looked up by name (see ``reconcile_create``).
        """
        authority_id = positive_id("authority_id", authority_id)
        wire_params = single_cert_params(common_name, dns_names, pkcs12_password, params)
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
            return await reconcile_create(
                self._named, self._session.sleep, batch_name, attempted_at, exc
            )

    @operation("batches.upload_csrs", idempotent=False)
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
        filename = name or csr_filename(csrs)
        request = UploadCSRBatchRequest(
            profile_id=profile_id, batch_type="BATCH", profile_params=profile_params(params)
        )
        pem = b"".join(info.pem for info in infos)
        files = [
            ("csrBatchRequest", ("blob", self._session.json_bytes(request), "application/json")),
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
            raise ambiguous_upload(infos, attempted_at, exc) from exc

    @operation("batches.get")
    async def get(self, batch_id: int) -> Batch:
        """``GET /api/v1/batches/{id}``."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}"
        return await self._session.call("GET", path, cast_to=Batch)

    @operation("batches.status")
    async def status(self, batch_id: int) -> str:
        """``GET /api/v1/batches/{id}/status``: the text status, normalized
        (``Ready for download`` -> ``READY_FOR_DOWNLOAD``)."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}/status"
        return BatchStatus.normalize(await self._session.call("GET", path, cast_to=str))

    @operation("batches.processing_info")
    async def processing_info(self, batch_id: int) -> ProcessingInfo:
        """``GET /api/v1/batches/{id}/processing_info``: active/success/failed counts."""
        path = f"/api/v1/batches/{positive_id('batch_id', batch_id)}/processing_info"
        return await self._session.call("GET", path, cast_to=ProcessingInfo)

    @operation("batches.list")
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

    @operation("batches.find_by_name")
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
        """One page of the list, and whether it is surely the last one."""
        path, listing = "/api/v1/batches", "the batch list"
        return await self._session.call_page(
            path, Batch, page=page, size=size, items="batches", listing=listing
        )

    async def _named(
        self, name: str, created_after: datetime | None, *, first_only: bool = False
    ) -> builtins.list[Batch]:
        """The batches called exactly ``name``, newest first (see ``named_batches``)."""
        return await named_batches(
            self._page,
            name,
            created_after,
            first_only=first_only,
            page_size=FIND_PAGE_SIZE,
            max_pages=FIND_MAX_PAGES,
        )

    @operation("batches.check")
    async def check(self, batch_id: int) -> Batch | None:
        """One poll of :meth:`wait`, without waiting: the batch when it is ready for
        download, None while the CA is still working on it. Raises BatchRejectedError or
        BatchFailedError as ``wait`` does."""
        batch_id = positive_id("batch_id", batch_id)
        batch, state, info = await look(
            batch_id, get=self.get, status=self.status, processing_info=self.processing_info
        )
        if not is_done(batch, state, info):
            return None
        self._remember_ready(batch_id)
        return batch

    @operation("batches.wait")
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
        batch = await poll_until_ready(
            batch_id,
            timeout=timeout,
            on_progress=with_display(on_progress) if progress else on_progress,
            get=self.get,
            status=self.status,
            processing_info=self.processing_info,
            sleep=self._session.sleep,
        )
        self._remember_ready(batch_id)
        return batch

    @operation("batches.download")
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
        target = download_target(Path(dest), batch_id, overwrite=overwrite)
        if batch_id not in self._seen_ready:
            await self._check_ready(batch_id)
        path = f"/api/v1/batches/{batch_id}/download"

        async def fill(handle: BinaryIO) -> None:
            await self._session.download(
                path, handle, limit=max_bytes, magic=ZIP_MAGIC, kind="a ZIP archive"
            )

        await write_whole(target, fill, overwrite=overwrite)
        return target

    async def _check_ready(self, batch_id: int) -> None:
        """BatchNotReadyError unless the batch's detail (or text status) says ready."""
        batch = await self.get(batch_id)
        status = BatchStatus.normalize(batch.status)
        if status == "":
            status = await self.status(batch_id)
        if status not in READY:
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
