"""Fixtures of the fleet's tests: one real PostgreSQL for the whole session (skipped with a
reason where it is not installed, a failure in CI), and a fresh schema for each test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.fleet.postgres_server import PostgresServer, find_bindir
from tests.support import skip_outside_ci

#: the database the fleet's tests use on the session's server
DATABASE = "fleet"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 started for the session (stopped and removed at its end); tests
    may ``restart()`` it, and must leave it running."""
    bindir = find_bindir()
    if bindir is None:
        skip_outside_ci(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/15/bin nor in "
            "pg_config --bindir): apt-get install postgresql"
        )
    assert bindir is not None  # skip_outside_ci raised otherwise
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        skip_outside_ci("psycopg is not installed: pip install 'sectigo-iot[postgres]'")
    server = PostgresServer(bindir)
    try:
        server.start()
        server.execute(f"CREATE DATABASE {DATABASE}")
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of the session's test database (trust authentication on 127.0.0.1)."""
    return postgres_server.url(DATABASE)


@pytest.fixture
def postgres_schema() -> str:
    """A schema name no other test uses, so each test starts from empty tables."""
    return f"t_{uuid.uuid4().hex[:16]}"
