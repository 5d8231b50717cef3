"""Fixtures every test folder shares (the SDK's clients are in sdk/conftest.py)."""

from __future__ import annotations

import pytest

from tests.certs.helpers import make_csr


@pytest.fixture(scope="session")
def csr_pem() -> bytes:
    """A valid CSR (EC P-256) for api.example.com with a SAN, made with cryptography."""
    return make_csr("api.example.com")
