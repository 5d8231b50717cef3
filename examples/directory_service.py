"""A directory service's certificate manager on ``sectigo_iot.fleet``: the registry says
what it wants (a certificate once a member is verified, none once deregistered); the
fleet's workers (any number of replicas) do the rest: one batch per certificate, delivery
to a folder and a webhook, renewal, revocation. ``--emulator`` runs all of it in process;
without it, this is a worker for SECTIGO_USERNAME / SECTIGO_PASSWORD's account.
"""

import argparse
import json
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio

from sectigo_iot import SectigoClient
from sectigo_iot.certs import load_pem_bundle
from sectigo_iot.emulator import Emulator
from sectigo_iot.fleet import Fleet, FleetRecord, FolderSink, WebhookSink, open_store
from sectigo_iot.lifecycle import CertificateSpec

MEMBERS = {"vasp-01": "alice.example.com", "vasp-02": "bob.example.com"}


class Registry:
    """The registry's two events, as calls on the fleet (both return at once)."""

    def __init__(self, fleet: Fleet, authority: int) -> None:
        self.fleet, self.authority = fleet, authority

    async def verified(self, member_id: str, domain: str) -> None:
        spec = CertificateSpec(authority_id=self.authority, common_name=domain)
        await self.fleet.want(member_id, spec)  # the same again changes nothing

    async def deregistered(self, member_id: str) -> None:
        await self.fleet.revoke(member_id, "cessation of operation")


async def first_authority_with_licenses(client: SectigoClient) -> int:
    for authority in await client.authorities.list():
        if authority.enabled and await client.authorities.balance(authority.id) > 0:
            return authority.id
    raise SystemExit("no enabled authority has a license left")


@contextmanager
def webhook_receiver(received: dict[str, dict[str, str]]) -> Iterator[str]:
    """A loopback receiver keeping each delivery once, by its idempotency key."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received[self.headers["Idempotency-Key"]] = body
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/certificates"
    finally:
        server.shutdown()


async def work_until(fleet: Fleet, done: Callable[[FleetRecord], bool]) -> dict[str, FleetRecord]:
    """Passes of a worker (a service runs ``fleet.run()``) until every record is done."""
    with anyio.fail_after(60):
        while not all(map(done, (records := {r.key: r for r in await fleet.list()}).values())):
            await fleet.run_once()
            await anyio.sleep(0.1)  # the emulator's CA takes 0.5 s a batch
    return records


async def demo(args: argparse.Namespace) -> None:
    """The whole job against an in-process emulator and a loopback webhook receiver."""
    deliveries: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as folder, webhook_receiver(deliveries) as url:
        with Emulator(processing_delay=0.5) as emulator:
            async with emulator.client() as client, WebhookSink(url) as webhook:
                sinks = [FolderSink(f"{folder}/certs"), webhook]
                async with Fleet(client, open_store(f"{folder}/fleet.db"), sinks=sinks) as fleet:
                    registry = Registry(fleet, await first_authority_with_licenses(client))
                    for member_id, domain in MEMBERS.items():
                        await registry.verified(member_id, domain)
                    issued = await work_until(fleet, lambda r: r.state == "VALID")
                    first_of = {key: record.serial_number for key, record in issued.items()}
                    emulator.clock.advance(timedelta(days=340).total_seconds())  # renewals due
                    renewed = await work_until(fleet, lambda r: r.serial_number != first_of[r.key])
                    await registry.deregistered("vasp-02")
                    final = await work_until(fleet, lambda r: r.state in ("VALID", "REVOKED"))
            revoked = [revocation.serial_number for revocation in emulator.revocations()]
        for key, record in final.items():
            served = await anyio.Path(folder, "certs", key, "cert.pem").read_bytes()
            assert load_pem_bundle(served).serial_number == renewed[key].serial_number
            print(f"{key}: {record.state}, {first_of[key]} then {renewed[key].serial_number}")
    assert revoked == [renewed["vasp-02"].serial_number]
    sent = {delivery["serial_number"] for delivery in deliveries.values()}
    assert sent == {*first_of.values(), *(record.serial_number for record in renewed.values())}
    print(f"webhook: {len(deliveries)} deliveries, one per certificate; revoked: {revoked[0]}")


async def serve(args: argparse.Namespace) -> None:
    sinks = [FolderSink(args.certs), *([WebhookSink(args.webhook)] if args.webhook else [])]
    store = open_store(args.store)
    async with SectigoClient.from_env() as client, Fleet(client, store, sinks=sinks) as fleet:
        await fleet.run()  # until stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", action="store_true", help="the whole job, in process")
    parser.add_argument("--store", default="fleet.sqlite3", help="a file or postgresql:// URL")
    parser.add_argument("--certs", type=Path, default=Path("certs"), help="a folder per member")
    parser.add_argument("--webhook", help="where the registry receives each certificate")
    args = parser.parse_args(argv)
    anyio.run(demo if args.emulator else serve, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
