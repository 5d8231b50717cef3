"""lifecycle_keep_ratio: checking a certificate folder that is not due.

``ensure_certificate`` on a folder holding a valid certificate with an RSA-2048 key
(kept: nothing is sent), against reading the folder's files (the journal and the four
PEM files) and parsing the certificate, done synchronously on the event loop. The check
does its file work in one trip to a worker thread (file reads stay off the event loop),
which the baseline does not pay. Both run in the same event loop, alternating every
10 calls; the median round's ratio is reported. The note gives the ratio against the same reads
in one worker-thread trip, and the time of an empty trip.
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
#: calls of each side in a row; the sides alternate, so they share the machine's ups and downs
_CHUNK = 10


def measure_lifecycle_keep(scale: Scale, notes: dict[str, str]) -> float:
    """The median ratio of ``scale.rounds`` rounds of ``scale.calls`` checks each."""
    inline, threaded, per_check, trip = anyio.run(_measure, scale)
    notes["lifecycle_keep_ratio"] = (
        f"{per_check * 1e6:.0f} us per check; {threaded:.2f} against the same reads in "
        f"one worker-thread trip (an empty trip: {trip * 1e6:.0f} us)"
    )
    return inline


async def _measure(scale: Scale) -> tuple[float, float, float, float]:
    import anyio.to_thread
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

                def nothing() -> None:
                    pass

                async def inline_chunk(count: int) -> None:
                    for _ in range(count):
                        raw()

                async def threaded_chunk(count: int) -> None:
                    for _ in range(count):
                        await anyio.to_thread.run_sync(raw)

                async def trip_chunk(count: int) -> None:
                    for _ in range(count):
                        await anyio.to_thread.run_sync(nothing)

                async def sdk_chunk(count: int) -> None:
                    for _ in range(count):
                        await sdk()

                sides = (sdk_chunk, inline_chunk, threaded_chunk, trip_chunk)
                chunk = min(_CHUNK, scale.calls)
                rounds: list[list[float]] = []
                await sdk()  # warm: imports, caches
                for _ in range(scale.rounds):
                    spent = [0.0] * len(sides)
                    for _ in range(max(1, scale.calls // chunk)):
                        for index, side in enumerate(sides):
                            started = time.perf_counter()
                            await side(chunk)
                            spent[index] += time.perf_counter() - started
                    rounds.append(spent)
                if emulator.licenses_used != 1:
                    raise RuntimeError(f"{emulator.licenses_used} licenses spent, not 1")
    calls = max(1, scale.calls // chunk) * chunk
    inline = statistics.median(ratio(sdk, raw) for sdk, raw, _, _ in rounds)
    threaded = statistics.median(ratio(sdk, raw) for sdk, _, raw, _ in rounds)
    per_check = statistics.median(sdk / calls for sdk, _, _, _ in rounds)
    trip = statistics.median(trip / calls for _, _, _, trip in rounds)
    return inline, threaded, per_check, trip
