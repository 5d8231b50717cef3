"""``python -m sectigo_iot.emulator``: serve the emulator over HTTP on loopback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

from ._ca import KEY_TYPES
from ._config import DEFAULT_PASSWORD, DEFAULT_USERNAME
from ._emulator import Emulator
from ._server import is_loopback


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sectigo_iot.emulator",
        description="Serve a local Sectigo IoT Manager emulator with its own test CA.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8831, help="port (0 picks a free one)")
    parser.add_argument("--db", metavar="FILE", help="SQLite file that keeps state across runs")
    parser.add_argument("--username", default=DEFAULT_USERNAME)
    parser.add_argument("--password", help=f"password (default: {DEFAULT_PASSWORD})")
    parser.add_argument("--processing-delay", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--balance", type=int, default=10, help="licenses available")
    parser.add_argument("--key-type", choices=KEY_TYPES, default="rsa2048")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a host other than loopback"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until interrupted."""
    args = _parser().parse_args(argv)
    if not args.allow_remote and not is_loopback(args.host):
        print(f"refusing to listen on {args.host}: use --allow-remote", file=sys.stderr)
        return 2
    password = args.password if args.password is not None else DEFAULT_PASSWORD
    emulator = Emulator(
        users={args.username: password},
        db_path=args.db,
        processing_delay=args.processing_delay,
        balance=args.balance,
        key_type=args.key_type,
    )

    def ready(url: str) -> None:
        shown = "<the --password given>" if args.password is not None else password
        print(f"Sectigo IoT emulator listening on {url}", flush=True)
        print(f"  SECTIGO_ENDPOINT={url}", flush=True)
        print(f"  SECTIGO_USERNAME={args.username}", flush=True)
        print(f"  SECTIGO_PASSWORD={shown}", flush=True)
        print(f"  CA certificate: {url}/emulator/ca.pem", flush=True)

    try:
        anyio.run(
            lambda: emulator.serve(
                args.host,
                args.port,
                allow_remote=args.allow_remote,
                on_ready=ready,
                log_level=args.log_level,
            )
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # e.g. the port is in use: one line, as `sectigo serve` says it
        print(
            f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
