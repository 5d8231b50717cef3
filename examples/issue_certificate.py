"""Issue one certificate end to end: create a batch, wait, download, write PEM files.

Against Sectigo (credentials and endpoint from the environment)::

    export SECTIGO_USERNAME=... SECTIGO_PASSWORD=...   # SECTIGO_ENDPOINT is optional
    python examples/issue_certificate.py example.com --out certs

Against an in-process emulator (no account, no server, a few seconds)::

    python examples/issue_certificate.py example.com --emulator --out certs

The PKCS#12 password is generated here and used only to decrypt the download; the
files left in ``OUT/<batchId>/`` are cert.pem, chain.pem, fullchain.pem and key.pem
(mode 0600).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from sectigo_iot import SectigoClient, WaitProgress
from sectigo_iot.certs import generate_password, open_batch_zip, write_pem


async def first_authority_with_balance(client: SectigoClient) -> int:
    """The id of the first authority that can still issue a certificate."""
    for authority in await client.authorities.list():
        if await client.authorities.balance(authority.id) > 0:
            return authority.id
    raise SystemExit("no authority has a balance left")


async def issue(
    client: SectigoClient,
    common_name: str,
    out: Path,
    *,
    dns_names: Sequence[str] = (),
    authority_id: int | None = None,
    wait_timeout: float = 900.0,
) -> dict[str, Path]:
    """Create, wait, download and decrypt; return the PEM files by role."""
    if authority_id is None:
        authority_id = await first_authority_with_balance(client)
    password = generate_password()
    batch = await client.batches.create(
        authority_id, common_name=common_name, dns_names=dns_names, pkcs12_password=password
    )
    print(f"created batch {batch.batch_id} ({batch.batch_name})", file=sys.stderr)

    def show(progress: WaitProgress) -> None:
        info = progress.info
        print(
            f"  {progress.status}: active {info.active}, success {info.success}, "
            f"failed {info.failed} ({progress.elapsed:.0f} s)",
            file=sys.stderr,
        )

    batch = await client.batches.wait(batch.batch_id, timeout=wait_timeout, on_progress=show)
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    archive = await client.batches.download(batch.batch_id, out)
    print(f"downloaded {archive}", file=sys.stderr)
    (bundle,) = open_batch_zip(archive, password)
    return write_pem(bundle, out / str(batch.batch_id))


async def run(args: argparse.Namespace) -> dict[str, Path]:
    if args.emulator:
        from sectigo_iot.emulator import Emulator

        with Emulator(processing_delay=args.processing_delay) as emulator:
            async with emulator.client() as client:
                return await issue(client, args.common_name, args.out, dns_names=args.dns_name)
    async with SectigoClient.from_env() as client:
        return await issue(
            client, args.common_name, args.out, dns_names=args.dns_name, wait_timeout=args.timeout
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("common_name", help="the certificate's common name")
    parser.add_argument("--dns-name", action="append", default=[], help="another DNS name")
    parser.add_argument("--out", type=Path, default=Path("certs"), help="output folder")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait")
    parser.add_argument("--emulator", action="store_true", help="use an in-process emulator")
    parser.add_argument("--processing-delay", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    files = anyio.run(run, args)
    for role, path in files.items():
        print(f"{role}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
