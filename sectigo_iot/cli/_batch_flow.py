"""What follows a create or an upload: the batch name, waiting, the ZIP, PEM files."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._progress import progress

if TYPE_CHECKING:
    from .. import Batch, SectigoClient
    from ..certs import CertificateBundle

__all__ = ["Flow", "default_batch_name", "finish"]


@attrs.frozen(kw_only=True)
class Flow:
    """What to do once the batch exists: wait, download into a folder, write PEM files."""

    wait: bool = False
    download: Path | None = None
    pem: bool = False
    timeout: float


def default_batch_name(domain: str) -> str:
    """``new certs for DOMAIN (8 hex digits)``: unique, so an ambiguous create can be
    found again by name."""
    return f"new certs for {domain} ({secrets.token_hex(4)})"


async def finish(
    client: SectigoClient, batch: Batch, flow: Flow, password: str | None = None
) -> dict[str, Any]:
    """Wait for the batch, download it and write PEM files (PKCS#12 ``password``), as
    ``flow`` asks; the result holds the batch and the files written."""
    result: dict[str, Any] = {"batch": batch}
    if not (flow.wait or flow.download is not None):
        return result
    with progress(f"batch {batch.batch_id}") as on_progress:
        batch = await client.batches.wait(
            batch.batch_id, timeout=flow.timeout, on_progress=on_progress
        )
    result["batch"] = batch
    if flow.download is None:
        return result
    archive = await client.batches.download(batch.batch_id, flow.download)
    result["zip"] = str(archive)
    if flow.pem:
        from ..certs import open_batch_zip

        bundles = open_batch_zip(archive, password)
        result["pem"] = _write_bundles(bundles, flow.download / str(batch.batch_id))
    return result


def _write_bundles(bundles: list[CertificateBundle], folder: Path) -> list[dict[str, str]]:
    """Write each bundle as PEM files: in ``folder`` for one bundle, else in a
    sub-folder per certificate (named after its common name, or its position)."""
    from ..certs import write_pem

    written = []
    used: set[str] = set()
    for index, bundle in enumerate(bundles, 1):
        target = folder
        if len(bundles) > 1:
            name = _safe_name(bundle.common_name) or f"certificate-{index}"
            if name in used:
                name = f"{name}-{index}"
            used.add(name)
            target = folder / name
        paths = write_pem(bundle, target)
        written.append({role: str(path) for role, path in paths.items()})
    return written


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned[:100]
