"""A directory service's certificate manager: keep certificates for many members.

This is the loop the TRISA directory service runs (spec/README.md §3), on top of one
shared SectigoClient, with the hard parts left to ``sectigo_iot.lifecycle``. Every tick
it handles all open requests concurrently, at most ``--concurrency`` at a time: it picks
the first authority whose balance is > 0 (balance failures count as 0) and calls
``ensure_certificate`` for the member's folder, which creates the batch (journaled
first, so a crash never buys a second certificate), waits, downloads, decrypts and puts
the PEM files in place. A rejected batch ends the request as CR_REJECTED, a failed one
as CR_ERRORED; any other failure leaves it to be retried on the next tick. Run again
later, the same call keeps each certificate, or renews it when due.

Run it against an in-process emulator with ten members::

    python examples/directory_service.py --emulator --members 10

or against Sectigo, for the members given (each costs a license)::

    SECTIGO_USERNAME=... SECTIGO_PASSWORD=... python examples/directory_service.py \\
        alice.example.com bob.example.com
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import anyio

from sectigo_iot import BatchFailedError, BatchRejectedError, SectigoClient, SectigoError
from sectigo_iot.lifecycle import CertificateSpec, ensure_certificate

logger = logging.getLogger("directory_service")

READY_TO_SUBMIT, COMPLETED = "READY_TO_SUBMIT", "COMPLETED"
CR_REJECTED, CR_ERRORED = "CR_REJECTED", "CR_ERRORED"
FINAL = frozenset({COMPLETED, CR_REJECTED, CR_ERRORED})


@dataclass
class CertificateRequest:
    """One member's request, as the directory service keeps it."""

    common_name: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    state: str = READY_TO_SUBMIT
    authority_id: int = 0
    batch_id: int = 0
    serial_number: str = ""
    not_after: datetime | None = None
    folder: Path | None = None
    error: str = ""


class CertificateManager:
    """Submits and polls certificate requests with bounded concurrency."""

    def __init__(
        self,
        client: SectigoClient,
        storage: Path,
        *,
        directory_id: str = "trisa.directory",
        concurrency: int = 5,
    ) -> None:
        self.client = client
        self.storage = storage
        self.directory_id = directory_id
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.requests: list[CertificateRequest] = []

    def add(self, common_name: str) -> CertificateRequest:
        request = CertificateRequest(common_name=common_name)
        self.requests.append(request)
        return request

    async def pick_authority(self) -> int:
        """The first authority, in list order, whose available balance is > 0."""
        authorities = await self.client.authorities.list()
        for authority in authorities:
            try:
                balance = await self.client.authorities.balance(authority.id)
            except SectigoError as exc:
                logger.warning("balance of authority %d unknown: %s", authority.id, exc)
                balance = 0
            if balance > 0:
                return authority.id
        raise RuntimeError(
            "could not find authority with available balance out of "
            f"{len(authorities)} available authorities"
        )

    async def issue(self, request: CertificateRequest) -> None:
        """Ensure the member's certificate: issued (or kept) in its own folder."""
        try:
            spec = CertificateSpec(
                authority_id=await self.pick_authority(), common_name=request.common_name
            )
            result = await ensure_certificate(self.client, spec, self.storage / request.common_name)
        except BatchRejectedError as exc:
            request.state, request.error = CR_REJECTED, exc.reject_reason or str(exc)
            return
        except BatchFailedError as exc:
            request.state, request.error = CR_ERRORED, str(exc)
            return
        except (SectigoError, RuntimeError) as exc:
            # stays READY_TO_SUBMIT: retried on the next tick
            logger.warning("could not issue for %s: %s", request.common_name, exc)
            request.error = str(exc)
            return
        request.authority_id = spec.authority_id
        request.batch_id = result.batch.batch_id if result.batch else 0
        bundle = result.bundle
        assert bundle is not None  # not a dry run: the folder holds a certificate
        request.serial_number, request.not_after = bundle.serial_number, bundle.not_after
        request.folder, request.state, request.error = result.folder, COMPLETED, ""
        logger.info("%s for %s: %s", result.action, request.common_name, request.serial_number)

    async def handle(self, request: CertificateRequest) -> None:
        async with self.limiter:
            await self.issue(request)

    async def tick(self) -> None:
        """Handle every open request once, concurrently."""
        async with anyio.create_task_group() as group:
            for request in self.requests:
                if request.state not in FINAL:
                    group.start_soon(self.handle, request)

    async def run(self, interval: float, *, max_ticks: int = 1000) -> None:
        """Tick until every request is final (or ``max_ticks``)."""
        for _ in range(max_ticks):
            await self.tick()
            if all(request.state in FINAL for request in self.requests):
                return
            await anyio.sleep(interval)


async def run(args: argparse.Namespace, storage: Path) -> list[CertificateRequest]:
    names = list(args.domains) or [
        f"member-{number:02d}.example.com" for number in range(1, args.members + 1)
    ]
    if args.emulator:
        from sectigo_iot.emulator import Emulator

        with Emulator(balance=len(names), processing_delay=args.processing_delay) as emulator:
            async with emulator.client() as client:
                return await manage(client, storage, names, args)
    if not args.domains:
        raise SystemExit("give the members' domain names (each costs a license)")
    async with SectigoClient.from_env() as client:
        return await manage(client, storage, names, args)


async def manage(
    client: SectigoClient, storage: Path, names: list[str], args: argparse.Namespace
) -> list[CertificateRequest]:
    """Keep a certificate for each member name until every request is final."""
    manager = CertificateManager(client, storage, concurrency=args.concurrency)
    for name in names:
        manager.add(name)
    await manager.run(args.interval)
    return manager.requests


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domains", nargs="*", help="members' common names")
    parser.add_argument("--emulator", action="store_true", help="use an in-process emulator")
    parser.add_argument("--members", type=int, default=10, help="members (with --emulator)")
    parser.add_argument("--concurrency", type=int, default=5, help="requests at a time")
    parser.add_argument("--interval", type=float, default=None, help="seconds between ticks")
    parser.add_argument("--out", type=Path, default=None, help="keep the certificates here")
    parser.add_argument("--processing-delay", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.interval is None:
        args.interval = 0.5 if args.emulator else 600.0  # upstream: every 10 minutes
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="directory-") as temp:
        storage = args.out or Path(temp)
        requests = anyio.run(run, args, storage)
        for request in requests:
            detail = (
                f"serial {request.serial_number}, valid until {request.not_after:%Y-%m-%d}"
                if request.state == COMPLETED and request.not_after
                else request.error
            )
            print(f"{request.common_name:28} {request.state:10} batch {request.batch_id} {detail}")
    return 0 if all(request.state == COMPLETED for request in requests) else 1


if __name__ == "__main__":
    sys.exit(main())
