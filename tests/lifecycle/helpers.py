"""Helpers the lifecycle tests share: the certificate they keep, reading its journal,
what a managed folder's links point at, another process holding a folder's lock, and
the lock waits a call reports."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sectigo_iot.certs import CertificateBundle, load_pem_bundle
from sectigo_iot.lifecycle import CertificateSpec, Journal, LockHolder, read_journal

#: the certificate most lifecycle tests keep
SPEC = CertificateSpec(authority_id=1, common_name="node.example.com")
CREATE = "/api/v1/batches/createSingleCertBatch"
DAY = 24 * 3600


def journal_of(folder: Path) -> Journal:
    """The journal of ``folder``, which must have one."""
    journal = read_journal(folder)
    assert journal is not None
    return journal


def key_matches(bundle: CertificateBundle) -> bool:
    """Whether the bundle's private key is the certificate's."""
    assert bundle.private_key is not None
    der = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    key = bundle.private_key.public_key().public_bytes(*der)
    return key == bundle.certificate.public_key().public_bytes(*der)


def live_pair(folder: Path, via: str = "live/") -> tuple[str, bool]:
    """The serial at the stable paths, and whether the key there matches it."""
    bundle = load_pem_bundle(
        (folder / f"{via}cert.pem").read_bytes() + (folder / f"{via}key.pem").read_bytes()
    )
    return bundle.serial_number, key_matches(bundle)


#: a program that holds the lock of the folder it is given until its stdin closes
_HOLDER = """
import sys, anyio
from pathlib import Path
from sectigo_iot.lifecycle._folder import folder_lock

async def main(folder):
    async with folder_lock(Path(folder), lambda: None, wait=5):
        print("locked", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)  # held until stdin closes

anyio.run(main, sys.argv[1])
"""


@contextlib.contextmanager
def held_lock(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``folder``'s lock during the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)


class LockWaits(list[tuple[Path, LockHolder]]):
    """An ``on_lock_wait`` callback that keeps each (folder, holder) it is told."""

    def __call__(self, folder: Path, holder: LockHolder) -> None:
        self.append((folder, holder))
