"""``sectigo demo``: the whole job, end to end, against a throwaway embedded emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._output import note, progress

__all__ = ["DEMO_DOMAIN", "run_demo"]

DEMO_DOMAIN = "demo.example.com"


async def run_demo(folder: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Run every step in ``folder`` and return what each produced (JSON-ready)."""
    from ..certs import generate_password, open_batch_zip, write_pem
    from ..emulator import Emulator
    from ._commands_batches import default_batch_name
    from ._commands_certs import summarize
    from ._output import to_json

    started = time.monotonic()
    summary: dict[str, Any] = {}
    emulator = Emulator(db_path=folder / "emulator.sqlite3", processing_delay=1.0)
    try:
        async with emulator.client() as client:
            say("1. authorities: which authorities may issue, and their balances")
            authorities = await client.authorities.list()
            for authority in authorities:
                balance = await client.authorities.balance(authority.id)
                say(
                    f"   authority {authority.id} (profile {authority.profile_id} "
                    f"'{authority.profile_name}'): {balance} certificates available"
                )
            summary["authorities"] = to_json(authorities)
            authority = next(a for a in authorities if a.balance > 0)

            say(f"2. create: a single-certificate batch for {DEMO_DOMAIN}")
            password = generate_password()
            note(f"pkcs12 password: {password}")
            batch = await client.batches.create(
                authority.id,
                common_name=DEMO_DOMAIN,
                dns_names=[f"www.{DEMO_DOMAIN}"],
                pkcs12_password=password,
                name=default_batch_name(DEMO_DOMAIN),
            )
            say(
                f"   batch {batch.batch_id} '{batch.batch_name}' is {batch.status}; the "
                "PKCS#12 password was generated and printed once on stderr"
            )
            summary["created"] = to_json(batch)

            say("3. wait: poll until Sectigo has issued it")
            with progress(f"   batch {batch.batch_id}") as on_progress:
                batch = await client.batches.wait(
                    batch.batch_id, timeout=60, on_progress=on_progress
                )
            say(f"   batch {batch.batch_id} is {batch.status}")
            summary["ready"] = to_json(batch)

            say("4. download: the batch ZIP")
            archive = await client.batches.download(batch.batch_id, folder)
            say(f"   saved {archive} ({archive.stat().st_size} bytes)")
            summary["zip"] = str(archive)

            say("5. PEM: decrypt the PKCS#12 into PEM files")
            bundle = open_batch_zip(archive, password)[0]
            files = write_pem(bundle, folder / str(batch.batch_id))
            say("   wrote " + ", ".join(str(path) for path in files.values()))
            summary["pem"] = {role: str(path) for role, path in files.items()}

            say("6. inspect: what was issued")
            for name, value in summarize(bundle):
                say(f"   {name:12} {value}")
            summary["certificate"] = bundle.to_dict()

            say(f"7. find: look the certificate up by common name ({DEMO_DOMAIN})")
            found = await client.certificates.find(common_name=DEMO_DOMAIN)
            for item in found:
                say(f"   serial {item.serial_number}: {item.status}")
            summary["found"] = to_json(found)

            serial = bundle.serial_number
            say(f"8. revoke: serial {serial}, reason 'superseded'")
            await client.certificates.revoke(authority.profile_id, serial, "superseded")
            after = await client.certificates.find(serial_number=serial)
            status = after[0].status if after else "not found"
            say(f"   serial {serial} is now {status}")
            summary["revoked"] = to_json(after)
    finally:
        emulator.close()
    elapsed = time.monotonic() - started
    say(f"done in {elapsed:.1f} s. The same with the CLI, state kept between commands:")
    say(
        f"   sectigo --emulator create -a 1 -d {DEMO_DOMAIN} --download certs --pem; "
        "sectigo --emulator find -n " + DEMO_DOMAIN
    )
    summary["seconds"] = round(elapsed, 2)
    return summary
