"""What follows a create or an upload: the batch name, waiting, the ZIP, PEM files.

Once the batch exists a license is spent, so nothing the flow finds on disk makes it
drop the batch: a ZIP or a PEM folder already at the target is kept and the new files
go beside it (``<id>-2.zip``, ``<id>-2/``), and any failure or a Ctrl-C says how to
fetch the batch later.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import typer

from ..errors import BatchFailedError, BatchRejectedError
from ._errors import ExitCode, with_hint
from ._output import note
from ._progress import progress
from ._run import set_resume_hint

if TYPE_CHECKING:
    from .. import Batch, SectigoClient
    from ..certs import CertificateBundle

__all__ = ["Flow", "default_batch_name", "end_if_aside", "finish", "taken", "written_lines"]

T = TypeVar("T")

#: how many other names are tried beside a target that is taken
_MAX_ASIDE = 100


@attrs.frozen(kw_only=True)
class Flow:
    """What to do once the batch exists: wait, download into a folder, write PEM files."""

    #: wait until the batch is ready (before a download too: ``download`` needs it)
    wait: bool = False
    download: Path | None = None
    pem: bool = False
    timeout: float
    #: replace existing files (``download --force``) rather than writing beside them
    force: bool = False
    #: the PKCS#12 password is needed to write PEM files (batches made by ``create``)
    encrypted: bool = False

    def resume_command(self, batch_id: int, *, force: bool = False) -> str:
        """The command that finishes this flow for ``batch_id`` in a later run (with
        ``--force``: replacing what this run wrote)."""
        if self.download is None:
            return f"sectigo batches -i {batch_id} --wait"
        command = f"sectigo download -i {batch_id} -o {_quoted(self.download)} --wait"
        if self.pem:
            command += " --pem -p PASSWORD" if self.encrypted else " --pem"
        return command + (" --force" if force else "")


def _quoted(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def default_batch_name(domain: str) -> str:
    """``new certs for DOMAIN (8 hex digits)``: unique, so an ambiguous create can be
    found again by name."""
    return f"new certs for {domain} ({secrets.token_hex(4)})"


async def finish(
    client: SectigoClient,
    batch_id: int,
    flow: Flow,
    password: str | None = None,
    *,
    batch: Batch | None = None,
) -> dict[str, Any]:
    """Wait for the batch, download it and write PEM files (PKCS#12 ``password``), as
    ``flow`` asks; the result holds the batch (``batch`` when not waited for) and the
    files written (``aside``: the targets that were taken, and where the files went).

    A failure (or Ctrl-C) from here on says how to resume: the batch exists.
    """
    result: dict[str, Any] = {"batch": batch}
    if not (flow.wait or flow.download is not None):
        return result
    set_resume_hint(_finish_with(flow, batch_id, result))
    try:
        await _finish(client, batch_id, flow, password, result)
    except (BatchRejectedError, BatchFailedError):  # nothing to fetch later
        raise
    except Exception as exc:
        raise with_hint(exc, _finish_with(flow, batch_id, result)) from exc
    set_resume_hint(None)
    return result


def _finish_with(flow: Flow, batch_id: int, result: dict[str, Any]) -> str:
    """How to finish the flow after a failure, given what ``result`` holds so far."""
    saved = result.get("zip")
    if saved is None:
        return f"batch {batch_id} exists; finish with `{flow.resume_command(batch_id)}`"
    folder = flow.download
    if (
        folder is not None
        and Path(saved) == folder / f"{batch_id}.zip"
        and not (flow.pem and taken(folder / str(batch_id)))
    ):
        command = flow.resume_command(batch_id, force=True)  # replaces only its own ZIP
        return f"batch {batch_id} exists, its ZIP is {saved}; finish with `{command}`"
    return f"batch {batch_id} exists, its ZIP is {saved}"


async def _finish(
    client: SectigoClient,
    batch_id: int,
    flow: Flow,
    password: str | None,
    result: dict[str, Any],
) -> None:
    if flow.wait:
        with progress(f"batch {batch_id}") as on_progress:
            result["batch"] = await client.batches.wait(
                batch_id, timeout=flow.timeout, on_progress=on_progress
            )
    if flow.download is None:
        return
    aside: list[dict[str, str]] = []
    folder = flow.download

    async def save_zip(target: Path) -> tuple[Path, Path]:
        archive = await client.batches.download(batch_id, target, overwrite=flow.force)
        return archive, archive

    archive = await _beside(folder / f"{batch_id}.zip", flow.force, _exists, save_zip, aside)
    result["zip"] = str(archive)
    set_resume_hint(_finish_with(flow, batch_id, result))
    if flow.pem:
        from ..certs import open_batch_zip

        bundles = open_batch_zip(archive, password)

        async def write_pem(target: Path) -> tuple[Path, list[dict[str, str]]]:
            return target, _write_into(bundles, target, overwrite=flow.force)

        result["pem"] = await _beside(folder / str(batch_id), flow.force, taken, write_pem, aside)
    if aside:
        result["aside"] = aside


async def _beside(
    wanted: Path,
    force: bool,
    is_taken: Callable[[Path], bool],
    write: Callable[[Path], Awaitable[tuple[Path, T]]],
    aside: list[dict[str, str]],
) -> T:
    """``write`` to ``wanted``, else (unless ``force``) to the first name beside it that
    is not taken (``stem-2``, ``stem-3``...; recorded in ``aside``). ``write`` returns
    the path it wrote and its result; a name taken meanwhile passes on to the next."""
    from ..errors import InvalidInputError

    for target in _candidates(wanted, force):
        if not force and is_taken(target):
            continue
        try:
            written, value = await write(target)
        except InvalidInputError:
            if force or not is_taken(target):
                raise
            continue  # appeared meanwhile: the next name
        if target != wanted:
            aside.append({"taken": str(wanted), "written": str(written)})
        return value
    raise InvalidInputError(f"{wanted} and {_MAX_ASIDE - 2} names beside it are taken")


def _candidates(wanted: Path, force: bool) -> list[Path]:
    """``wanted``, then (unless ``force``) ``stem-2``, ``stem-3``... beside it."""
    if force:
        return [wanted]
    return [wanted] + [
        wanted.with_name(f"{wanted.stem}-{n}{wanted.suffix}") for n in range(2, _MAX_ASIDE)
    ]


def _exists(path: Path) -> bool:
    """Whether anything is at ``path`` (a dangling symlink too)."""
    return path.exists() or path.is_symlink()


def taken(path: Path) -> bool:
    """Whether ``path`` is anything but missing or an empty directory."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        return True
    return path.is_dir() and any(path.iterdir())


def _write_into(
    bundles: list[CertificateBundle], folder: Path, *, overwrite: bool
) -> list[dict[str, str]]:
    """Each bundle's PEM files in ``folder`` for one bundle, else in a sub-folder per
    certificate (named after its common name, or its position)."""
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
        paths = write_pem(bundle, target, overwrite=overwrite)
        written.append({role: str(path) for role, path in paths.items()})
    return written


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned[:100]


def written_lines(result: dict[str, Any]) -> list[str]:
    """``wrote FILES`` for each certificate's PEM files."""
    return [
        "wrote " + ", ".join(files[role] for role in sorted(files))
        for files in result.get("pem", [])
    ]


def end_if_aside(result: dict[str, Any]) -> None:
    """Warn about each file written beside a target that was taken, then end with
    :attr:`ExitCode.KEPT_ASIDE` (after the result is printed)."""
    for entry in result.get("aside", []):
        note(
            f"warning: {entry['taken']} was already there and is kept; "
            f"the new files went to {entry['written']}"
        )
    if result.get("aside"):
        raise typer.Exit(ExitCode.KEPT_ASIDE)
