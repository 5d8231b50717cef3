"""Toolkit fixtures: test PKIs made once per session by the tests' own builder
(``tests.certs.helpers.make_pki``), independent of the code under test."""

from __future__ import annotations

import pytest

from tests.certs.helpers import PKI, make_pki


@pytest.fixture(scope="session")
def pki() -> PKI:
    """Root, intermediate and an EC leaf for api.example.com (serial 00ABCDEF0123)."""
    return make_pki("api.example.com", serial=0x00AB_CDEF_0123)


@pytest.fixture(scope="session")
def other_pki() -> PKI:
    """A second, unrelated chain, for mismatched keys and certificates."""
    return make_pki("other.example.com")
