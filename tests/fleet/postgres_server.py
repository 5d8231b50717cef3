"""A throwaway PostgreSQL for the fleet's tests: made in a temporary folder, listening on a
free loopback port, trust authentication on 127.0.0.1 (and a password for one role);
stopped and removed at the end. PostgreSQL refuses to run as root: as root, ``initdb``,
``pg_ctl`` and ``pg_dump`` run as the ``postgres`` user (``runuser``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

#: where Debian puts PostgreSQL 15 (``.ci/run`` installs it there when missing)
DEBIAN_BINDIR = Path("/usr/lib/postgresql/15/bin")
#: a role that must log in with its password (the other roles are trusted on 127.0.0.1)
PASSWORD_ROLE = "fleet_password_role"
_HBA = f"""\
local all all trust
host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's PostgreSQL 15, else
    ``pg_config --bindir``; None when PostgreSQL is not installed."""
    candidates = [DEBIAN_BINDIR]
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; ``start()``, ``stop()``, ``restart()``
    keep its port and data, ``remove()`` stops it and deletes everything."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = Path(tempfile.mkdtemp(prefix="sectigo-fleet-pg-"))
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.running = False
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip
        (self.data / "pg_hba.conf").write_text(_HBA)  # keeps the file's owner and mode
        self._run("mkdir", "-p", str(self.sockets), program=False)

    def _run(self, name: str, *args: str, program: bool = True) -> str:
        command = [str(self.bindir / name) if program else name, *args]
        done = subprocess.run(
            [*self._as_postgres, *command], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{name} failed: {done.stdout}{done.stderr}{log}")
        return done.stdout

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip
        self.running = True

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, as when a server restarts."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        try:
            if self.running:
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", user: str = "postgres", password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, params: Sequence[object] = (), database: str = "postgres") -> None:
        """One statement, outside any transaction (``CREATE DATABASE`` needs that)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            connection.execute(sql, params or None)  # type: ignore[arg-type]

    def dump(self, database: str, schema: str) -> str:
        """``pg_dump`` of ``schema`` in ``database``: everything it holds, as SQL text
        (without the random key of its ``\\restrict`` lines, so that dumps compare)."""
        dump = self._run("pg_dump", "-h", str(self.sockets), "-p", str(self.port), "-U",
                         "postgres", "-n", schema, database)  # fmt: skip
        lines = dump.splitlines()
        return "\n".join(
            line for line in lines if not line.startswith(("\\restrict", "\\unrestrict"))
        )
