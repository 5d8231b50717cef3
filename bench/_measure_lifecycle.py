"""lifecycle_keep_ratio: checking a certificate folder that is not due.

``ensure_certificate`` on a folder holding a valid certificate with an RSA-2048 key
(kept: nothing is sent), against the least such a check can do: read the folder's
files (the journal and the four PEM files) and parse the certificate. Both run in the
same event loop, in interleaved rounds; the median round's ratio is reported.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import anyio
from _report import Scale, ratio

__all__ = ["measure_lifecycle_keep"]

_FILES = ("journal.json", "cert.pem", "chain.pem", "fullchain.pem", "key.pem")


def measure_lifecycle_keep(scale: Scale) -> float:
    """The median ratio of ``scale.rounds`` rounds of ``scale.calls`` checks each."""
    return anyio.run(_measure, scale)


async def _measure(scale: Scale) -> float:
    from cryptography import x509

    from sectigo_iot.emulator import Emulator
    from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate

    spec = CertificateSpec(authority_id=1, common_name="keep.example.com")
    with tempfile.TemporaryDirectory(prefix="sectigo-bench-") as workdir:
        folder = Path(workdir) / "keep"
        with Emulator(key_type="rsa2048") as emulator:
            async with emulator.client() as client:
                issued = await ensure_certificate(client, spec, folder)
                if issued.action != "issued":
                    raise RuntimeError(f"the folder was {issued.action}, not issued")

                async def sdk() -> None:
                    result = await ensure_certificate(client, spec, folder)
                    if result.action != "kept":
                        raise RuntimeError(f"the folder was {result.action}, not kept")

                def raw() -> None:
                    pem = [(folder / name).read_bytes() for name in _FILES]
                    x509.load_pem_x509_certificate(pem[1]).not_valid_after_utc  # noqa: B018

                ratios = []
                await sdk()  # warm: imports, caches
                for _ in range(scale.rounds):
                    started = time.perf_counter()
                    for _ in range(scale.calls):
                        await sdk()
                    sdk_time = time.perf_counter() - started
                    started = time.perf_counter()
                    for _ in range(scale.calls):
                        raw()
                    ratios.append(ratio(sdk_time, time.perf_counter() - started))
                if emulator.licenses_used != 1:
                    raise RuntimeError(f"{emulator.licenses_used} licenses spent, not 1")
    return statistics.median(ratios)
