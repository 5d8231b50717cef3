"""inventory_1000_folders_seconds: listing 1,000 certificate folders (target: under 1 s).

One folder is issued through the emulator and renewed, so that it holds a certificate
and the one it superseded, with the journal ``ensure_certificate`` writes. The others
are copies of it, each given two certificates of its own (EC P-256 keys signed by a
throwaway CA, the version folders and ``live`` renamed after their serials), so that no
parse is served from a cache. ``inventory`` lists them all ``scale.rounds`` times (each
folder read once, without its lock, in one worker thread); the median is reported,
scaled to 1,000 folders when the scale lists fewer. The note gives the CPU time too:
the work is CPU-bound (about 0.4 ms a folder), so on a machine busy with other work the
wall clock is longer by the time spent waiting for a CPU.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from _report import Scale

__all__ = ["measure_inventory"]

_FOLDERS = 1000


def measure_inventory(scale: Scale, notes: dict[str, str]) -> float:
    """The median seconds of listing ``scale.inventory_folders`` folders, per 1,000."""
    with tempfile.TemporaryDirectory(prefix="sectigo-bench-") as workdir:
        folders = anyio.run(_folders, Path(workdir), scale.inventory_folders)
        rounds = anyio.run(_listings, folders, scale.rounds)
    seconds = statistics.median(wall for wall, _ in rounds)
    cpu = statistics.median(cpu for _, cpu in rounds)
    count = len(folders)
    notes["inventory_1000_folders_seconds"] = (
        f"{count:,} folders of two certificates each: median {seconds:.3f} s "
        f"({cpu:.3f} s of CPU), {seconds / count * 1e6:.0f} us per folder"
        + ("" if count == _FOLDERS else f" (scaled to {_FOLDERS:,})")
    )
    return seconds * _FOLDERS / count


async def _listings(folders: list[Path], rounds: int) -> list[tuple[float, float]]:
    """Each round's wall-clock and CPU seconds (the CPU of every thread of the process:
    on a busy machine the wall clock also counts the waits for a CPU)."""
    from sectigo_iot.inventory import inventory

    spent = []
    for _ in range(max(1, rounds)):
        started, cpu = time.perf_counter(), time.process_time()
        listing = await inventory(folders)
        spent.append((time.perf_counter() - started, time.process_time() - cpu))
        statuses = [entry.status for entry in listing]
        if statuses != ["valid", "superseded"] * len(folders):
            raise RuntimeError(f"unexpected statuses: {sorted(set(statuses))}")
    return spent


async def _folders(workdir: Path, count: int) -> list[Path]:
    """``count`` folders: the issued one and ``count - 1`` copies with their own certificates."""
    from sectigo_iot.emulator import Emulator
    from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate, read_journal

    template = workdir / "folder-0"
    spec = CertificateSpec(authority_id=1, common_name="inventory.example.com")
    with Emulator(key_type="ec-p256") as emulator:
        async with emulator.client() as client:
            await ensure_certificate(client, spec, template)
            await ensure_certificate(client, spec, template, force=True)
    journal = read_journal(template)
    if journal is None or journal.current is None or journal.previous_version is None:
        raise RuntimeError("the template folder holds no renewed certificate")
    versions = (journal.current.version, journal.previous_version)
    signer = _Signer()
    folders = [template]
    for number in range(1, count):
        folder = workdir / f"folder-{number}"
        shutil.copytree(template, folder, symlinks=True)
        _reissue(folder, versions, signer)
        folders.append(folder)
    return folders


def _reissue(folder: Path, versions: tuple[str, str], signer: _Signer) -> None:
    """Give ``folder`` (a copy of the template) two new certificates in place of its
    current and previous versions: files, version folders, ``live`` and the journal."""
    journal = (folder / "journal.json").read_text()
    renamed = []
    for old in versions:
        cert, key, chain = signer.issue()
        directory = folder / "versions" / old
        for name, data in (
            ("cert.pem", cert),
            ("chain.pem", chain),
            ("fullchain.pem", cert + chain),
            ("key.pem", key),
        ):
            (directory / name).write_bytes(data)
        new = signer.last_serial
        directory.rename(folder / "versions" / new)
        journal = journal.replace(old, new)
        renamed.append(new)
    (folder / "journal.json").write_text(journal)
    os.remove(folder / "live")
    os.symlink(f"versions/{renamed[0]}", folder / "live")


class _Signer:
    """A throwaway CA issuing EC P-256 certificates valid for 90 days from now."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self._x509, self._hashes, self._ser, self._ec = x509, hashes, serialization, ec
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bench CA")])
        ca = self._builder(self._name, self._key.public_key()).sign(self._key, hashes.SHA256())
        self.chain = ca.public_bytes(serialization.Encoding.PEM)
        self.last_serial = ""

    def _builder(self, subject: Any, public_key: Any) -> Any:
        now = dt.datetime.now(dt.timezone.utc)
        serial = self._x509.random_serial_number()
        self.last_serial = format(serial, "X")
        return (
            self._x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=90))
        )

    def issue(self) -> tuple[bytes, bytes, bytes]:
        """A new certificate, its key and the chain, as PEM."""
        x509, ser = self._x509, self._ser
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "n.example.com")])
        cert = self._builder(subject, key.public_key()).sign(self._key, self._hashes.SHA256())
        key_pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
        return cert.public_bytes(ser.Encoding.PEM), key_pem, self.chain
