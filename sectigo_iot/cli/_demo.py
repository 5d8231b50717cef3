"""``sectigo demo``: the whole job, end to end, against a throwaway embedded emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._batch_flow import default_batch_name
from ._certfiles import summarize
from ._output import note, to_json
from ._progress import progress

if TYPE_CHECKING:
    from .. import Authority, Batch, SectigoClient
    from ..certs import CertificateBundle

__all__ = ["DEMO_DOMAIN", "run_demo"]

DEMO_DOMAIN = "demo.example.com"


async def run_demo(folder: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Run every step in ``folder`` and return what each produced (JSON-ready)."""
    from ..emulator import Emulator

    started = time.monotonic()
    demo = _Demo(folder, say)
    emulator = Emulator(db_path=folder / "emulator.sqlite3", processing_delay=1.0)
    try:
        async with emulator.client() as client:
            authority = await demo.authorities(client)
            batch, password = await demo.create(client, authority)
            bundle = await demo.collect(client, batch, password)
            demo.inspect(bundle)
            await demo.find_and_revoke(client, authority, bundle)
    finally:
        emulator.close()
    elapsed = time.monotonic() - started
    say(f"done in {elapsed:.1f} s. The same with the CLI, state kept between commands:")
    say(
        f"   sectigo --emulator create -a 1 -d {DEMO_DOMAIN} --download certs --pem; "
        "sectigo --emulator find -n " + DEMO_DOMAIN
    )
    demo.summary["seconds"] = round(elapsed, 2)
    return demo.summary


class _Demo:
    """The steps of the demo: each says what it does and records what it produced."""

    def __init__(self, folder: Path, say: Callable[[str], None]) -> None:
        self.folder = folder
        self.say = say
        self.summary: dict[str, Any] = {}

    async def authorities(self, client: SectigoClient) -> Authority:
        """Step 1: the authorities and their balances; returns one that can issue."""
        self.say("1. authorities: which authorities may issue, and their balances")
        authorities = await client.authorities.list()
        for authority in authorities:
            balance = await client.authorities.balance(authority.id)
            self.say(
                f"   authority {authority.id} (profile {authority.profile_id} "
                f"'{authority.profile_name}'): {balance} certificates available"
            )
        self.summary["authorities"] = to_json(authorities)
        return next(a for a in authorities if a.balance > 0)

    async def create(self, client: SectigoClient, authority: Authority) -> tuple[Batch, str]:
        """Step 2: a single-certificate batch; returns it and its PKCS#12 password."""
        from ..certs import generate_password

        self.say(f"2. create: a single-certificate batch for {DEMO_DOMAIN}")
        password = generate_password()
        note(f"pkcs12 password: {password}")
        batch = await client.batches.create(
            authority.id,
            common_name=DEMO_DOMAIN,
            dns_names=[f"www.{DEMO_DOMAIN}"],
            pkcs12_password=password,
            name=default_batch_name(DEMO_DOMAIN),
        )
        self.say(
            f"   batch {batch.batch_id} '{batch.batch_name}' is {batch.status}; the "
            "PKCS#12 password was generated and printed once on stderr"
        )
        self.summary["created"] = to_json(batch)
        return batch, password

    async def collect(
        self, client: SectigoClient, batch: Batch, password: str
    ) -> CertificateBundle:
        """Steps 3 to 5: wait, download the ZIP, write PEM files; returns the certificate."""
        from ..certs import open_batch_zip, write_pem

        self.say("3. wait: poll until Sectigo has issued it")
        with progress(f"   batch {batch.batch_id}") as on_progress:
            batch = await client.batches.wait(batch.batch_id, timeout=60, on_progress=on_progress)
        self.say(f"   batch {batch.batch_id} is {batch.status}")
        self.summary["ready"] = to_json(batch)

        self.say("4. download: the batch ZIP")
        archive = await client.batches.download(batch.batch_id, self.folder)
        self.say(f"   saved {archive} ({archive.stat().st_size} bytes)")
        self.summary["zip"] = str(archive)

        self.say("5. PEM: decrypt the PKCS#12 into PEM files")
        bundle = open_batch_zip(archive, password)[0]
        files = write_pem(bundle, self.folder / str(batch.batch_id))
        self.say("   wrote " + ", ".join(str(path) for path in files.values()))
        self.summary["pem"] = {role: str(path) for role, path in files.items()}
        return bundle

    def inspect(self, bundle: CertificateBundle) -> None:
        """Step 6: what was issued."""
        self.say("6. inspect: what was issued")
        for name, value in summarize(bundle):
            self.say(f"   {name:12} {value}")
        self.summary["certificate"] = bundle.to_dict()

    async def find_and_revoke(
        self, client: SectigoClient, authority: Authority, bundle: CertificateBundle
    ) -> None:
        """Steps 7 and 8: look the certificate up, revoke it, look again."""
        self.say(f"7. find: look the certificate up by common name ({DEMO_DOMAIN})")
        found = await client.certificates.find(common_name=DEMO_DOMAIN)
        for item in found:
            self.say(f"   serial {item.serial_number}: {item.status}")
        self.summary["found"] = to_json(found)

        serial = bundle.serial_number
        self.say(f"8. revoke: serial {serial}, reason 'superseded'")
        await client.certificates.revoke(authority.profile_id, serial, "superseded")
        after = await client.certificates.find(serial_number=serial)
        status = after[0].status if after else "not found"
        self.say(f"   serial {serial} is now {status}")
        self.summary["revoked"] = to_json(after)
