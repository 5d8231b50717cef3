"""Keep a certificate valid in a folder: issue it, keep it, renew it when due.

Run it from cron or a systemd timer; it spends a license only when the certificate is
missing, damaged, due, or its names changed, and finishes an attempt a crash left::

    export SECTIGO_USERNAME=... SECTIGO_PASSWORD=...   # SECTIGO_ENDPOINT is optional
    python examples/renew.py api.example.com --dns-name www.api.example.com \\
        --out certs/api.example.com --renew-before-days 30 --revoke-replaced

Against an in-process emulator (no account): the first run issues, the second keeps,
and ``--then-after-days 340`` moves the emulator's clock and runs once more (renewed)::

    python examples/renew.py api.example.com --emulator --out certs/api --then-after-days 340

Servers read ``OUT/fullchain.pem`` and ``OUT/key.pem`` (links into ``OUT/live/``,
switched as a pair).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import anyio

from sectigo_iot import SectigoClient
from sectigo_iot.lifecycle import CertificateResult, CertificateSpec, ensure_certificate


def show(result: CertificateResult) -> str:
    """One line: what happened, why, and the certificate now in place."""
    bundle = result.bundle
    what = f"serial {bundle.serial_number} until {bundle.not_after:%Y-%m-%d}" if bundle else ""
    replaced = f", replaced {result.replaced_serial}" if result.replaced_serial else ""
    return f"{result.action} ({result.reason}) {what}{replaced}".strip()


def reload_servers(result: CertificateResult) -> None:
    """The on_change hook: runs after each new certificate (reload nginx here)."""
    print(f"new certificate in {result.folder}: reload the servers", file=sys.stderr)


async def first_authority_with_balance(client: SectigoClient) -> int:
    """The id of the first authority that can still issue a certificate."""
    for authority in await client.authorities.list():
        if await client.authorities.balance(authority.id) > 0:
            return authority.id
    raise SystemExit("no authority has a balance left")


async def ensure(client: SectigoClient, args: argparse.Namespace) -> CertificateResult:
    authority_id = args.authority or await first_authority_with_balance(client)
    spec = CertificateSpec(
        authority_id=authority_id, common_name=args.common_name, dns_names=args.dns_name
    )
    return await ensure_certificate(
        client,
        spec,
        args.out,
        renew_before=timedelta(days=args.renew_before_days),
        revoke_replaced=args.revoke_replaced,
        force=args.force,
        dry_run=args.dry_run,
        on_change=reload_servers,
        wait_timeout=args.timeout,
    )


async def run(args: argparse.Namespace) -> list[str]:
    if not args.emulator:
        async with SectigoClient.from_env() as client:
            return [show(await ensure(client, args))]
    from sectigo_iot.emulator import Emulator

    with Emulator(processing_delay=args.processing_delay, key_type="ec-p256") as emulator:
        async with emulator.client() as client:
            lines = [show(await ensure(client, args)), show(await ensure(client, args))]
            if args.then_after_days:
                emulator.clock.advance(args.then_after_days * 86400)
                lines.append(show(await ensure(client, args)))
            return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("common_name", help="the certificate's common name")
    parser.add_argument("--dns-name", action="append", default=[], help="another DNS name")
    parser.add_argument("--out", type=Path, required=True, help="the certificate's folder")
    parser.add_argument("--authority", type=int, help="authority id (default: first with balance)")
    parser.add_argument("--renew-before-days", type=float, default=30.0)
    parser.add_argument("--revoke-replaced", action="store_true", help="revoke the old one")
    parser.add_argument("--force", action="store_true", help="renew even if still valid")
    parser.add_argument("--dry-run", action="store_true", help="say what would be done")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait")
    parser.add_argument("--emulator", action="store_true", help="use an in-process emulator")
    parser.add_argument("--then-after-days", type=float, default=0.0, help="emulator only")
    parser.add_argument("--processing-delay", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for line in anyio.run(run, args):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
