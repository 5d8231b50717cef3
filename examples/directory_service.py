"""A directory service's certificate manager: issue certificates for many members.

This is the loop the TRISA directory service runs (spec/README.md §3), on top of one
shared SectigoClient. Every tick it handles all open requests concurrently, at most
``--concurrency`` at a time:

* READY_TO_SUBMIT: pick the first authority whose balance is > 0 (balance failures
  count as 0), create a single-certificate batch named
  ``<directory id>-certreq-<request uuid>`` with the member's own PKCS#12 password;
  on failure the request stays and is retried on the next tick.
* PROCESSING: read the batch (the text status stands in for COLLECTED or an empty
  status) and its processing counts; keep waiting while certificates are active;
  a failure with no success ends the request as CR_REJECTED or CR_ERRORED; a batch
  ready for download is downloaded, its ZIP (exactly one PKCS#12) decrypted with the
  member's password, the certificate recorded, and the request COMPLETED.

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

from sectigo_iot import BatchStatus, SectigoClient, SectigoError
from sectigo_iot.certs import generate_password, open_batch_zip, write_pem

logger = logging.getLogger("directory_service")

READY_TO_SUBMIT, PROCESSING, COMPLETED = "READY_TO_SUBMIT", "PROCESSING", "COMPLETED"
CR_REJECTED, CR_ERRORED = "CR_REJECTED", "CR_ERRORED"
FINAL = frozenset({COMPLETED, CR_REJECTED, CR_ERRORED})


@dataclass
class CertificateRequest:
    """One member's request, as the directory service keeps it."""

    common_name: str
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    state: str = READY_TO_SUBMIT
    # 16 letters and digits from a CSPRNG, kept in the secret manager upstream
    password: str = field(default_factory=lambda: generate_password(16), repr=False)
    authority_id: int = 0
    batch_id: int = 0
    batch_name: str = ""
    serial_number: str = ""
    not_after: datetime | None = None
    files: dict[str, Path] = field(default_factory=dict)
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

    async def submit(self, request: CertificateRequest) -> None:
        try:
            authority_id = await self.pick_authority()
            batch = await self.client.batches.create(
                authority_id,
                common_name=request.common_name,
                pkcs12_password=request.password,
                name=f"{self.directory_id}-certreq-{request.id}",
            )
        except (SectigoError, RuntimeError) as exc:
            # stays READY_TO_SUBMIT: retried on the next tick
            logger.warning("could not submit %s: %s", request.common_name, exc)
            request.error = str(exc)
            return
        request.authority_id, request.batch_id = authority_id, batch.batch_id
        request.batch_name, request.state, request.error = batch.batch_name, PROCESSING, ""
        logger.info("submitted %s as batch %d", request.common_name, batch.batch_id)

    async def poll(self, request: CertificateRequest) -> None:
        batches = self.client.batches
        try:
            batch = await batches.get(request.batch_id)
            status = batch.status.strip().upper()
            if status in ("", BatchStatus.COLLECTED):
                status = await batches.status(request.batch_id)
            info = await batches.processing_info(request.batch_id)
        except SectigoError as exc:
            logger.warning("could not fetch batch %d: %s", request.batch_id, exc)
            return
        if info.active > 0:
            return
        if info.failed > 0 and not (info.success > 0 or status == BatchStatus.READY_FOR_DOWNLOAD):
            rejected = batch.reject_reason or status == BatchStatus.REJECTED
            request.state = CR_REJECTED if rejected else CR_ERRORED
            request.error = batch.reject_reason or status
            return
        if info.success == 0 or status != BatchStatus.READY_FOR_DOWNLOAD:
            logger.critical("unhandled sectigo state %s for batch %d", status, request.batch_id)
            return
        await self.collect(request)

    async def collect(self, request: CertificateRequest) -> None:
        folder = self.storage / request.common_name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            archive = await self.client.batches.download(request.batch_id, folder, overwrite=True)
            bundles = open_batch_zip(archive, request.password)
        except SectigoError as exc:
            logger.warning("could not collect batch %d: %s", request.batch_id, exc)
            return
        if len(bundles) != 1:
            request.state, request.error = CR_ERRORED, f"{len(bundles)} certificates in the ZIP"
            return
        (bundle,) = bundles
        request.files = write_pem(bundle, folder, overwrite=True)
        request.serial_number, request.not_after = bundle.serial_number, bundle.not_after
        request.state = COMPLETED

    async def handle(self, request: CertificateRequest) -> None:
        async with self.limiter:
            if request.state == READY_TO_SUBMIT:
                await self.submit(request)
            elif request.state == PROCESSING:
                await self.poll(request)

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
                manager = CertificateManager(client, storage, concurrency=args.concurrency)
                for name in names:
                    manager.add(name)
                await manager.run(args.interval)
                return manager.requests
    if not args.domains:
        raise SystemExit("give the members' domain names (each costs a license)")
    async with SectigoClient.from_env() as client:
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
