"""``check_revocation`` (blocking) against hostile CRL servers: a CRL that is not the
issuer's, stale, huge, malformed, behind a redirect or never answered is never believed
(``unknown`` with why, never ``good``); a believed one is cached until its nextUpdate."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from cryptography import x509

from sectigo_iot.certs import (
    CRLCache,
    RevocationReason,
    RevocationStatus,
    check_revocation,
    new_private_key,
)
from sectigo_iot.certs._revocation import MAX_CRL_BYTES
from sectigo_iot.emulator import CertificateAuthority
from sectigo_iot.errors import InvalidInputError

URL = "http://crl.example.test/ca.crl"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.generate("ec-p256", common_name="CRL Test CA")


@pytest.fixture(scope="module")
def impostor() -> CertificateAuthority:
    """Another CA of the same name: its CRL is signed by the wrong key."""
    return CertificateAuthority.generate("ec-p256", common_name="CRL Test CA")


def leaf(ca: CertificateAuthority, crl_url: str | None = URL) -> x509.Certificate:
    key = new_private_key("ec-p256")
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "leaf.example.com")])
    return ca.issue(
        key.public_key(), subject, ["leaf.example.com"], now=NOW, validity=DAY, crl_url=crl_url
    )


@pytest.fixture(scope="module")
def cert(ca: CertificateAuthority) -> x509.Certificate:
    return leaf(ca)


def crl_of(
    ca: CertificateAuthority,
    *revoked: tuple[x509.Certificate, int],
    issued: datetime = NOW,
    interval: timedelta = DAY,
) -> bytes:
    entries = [(c.serial_number, issued - timedelta(hours=1), code) for c, code in revoked]
    return ca.crl(entries, now=issued, interval=interval)


def check(cert: x509.Certificate, ca: CertificateAuthority, **kwargs: Any) -> RevocationStatus:
    return check_revocation(cert, ca.certificate, **kwargs)


def test_a_listed_certificate_is_revoked_with_reason_and_date(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    httpx_mock.add_response(url=URL, content=crl_of(ca, (cert, 1)))
    status = check(cert, ca)
    assert status == RevocationStatus(
        status="revoked",
        reason=RevocationReason.KEY_COMPROMISE,
        revoked_at=NOW - timedelta(hours=1),
    )
    [request] = httpx_mock.get_requests()
    assert request.method == "GET" and "authorization" not in request.headers


def test_an_unlisted_certificate_is_good(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    other = leaf(ca)
    httpx_mock.add_response(url=URL, content=crl_of(ca, (other, 4)))
    assert check(cert, ca) == RevocationStatus(status="good")


def test_no_credential_of_the_callers_client_is_sent(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    httpx_mock.add_response(url=URL, content=crl_of(ca))
    with httpx.Client(
        headers={"Authorization": "Bearer s3cret"}, auth=("user", "pw"), cookies={"sid": "x"}
    ) as http:
        http.cookies.set("sid", "x", domain="crl.example.test")
        assert check(cert, ca, http=http).status == "good"
    [request] = httpx_mock.get_requests()
    assert "authorization" not in request.headers and "cookie" not in request.headers


def unknown(status: RevocationStatus, *words: str) -> None:
    assert status.status == "unknown" and status.reason is None, status
    for word in words:
        assert word in status.detail, status.detail


def test_a_crl_signed_by_another_key_is_not_believed(
    httpx_mock: Any,
    ca: CertificateAuthority,
    impostor: CertificateAuthority,
    cert: x509.Certificate,
) -> None:
    httpx_mock.add_response(url=URL, content=crl_of(impostor))  # same name, wrong key
    unknown(check(cert, ca), "signature")


def test_a_crl_of_another_issuer_is_not_believed(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    other = CertificateAuthority.generate("ec-p256", common_name="Another CA")
    httpx_mock.add_response(url=URL, content=crl_of(other))
    unknown(check(cert, ca), "Another CA")


def test_a_stale_crl_is_not_believed(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    stale = crl_of(ca, issued=NOW - 3 * DAY, interval=DAY)  # nextUpdate two days ago
    httpx_mock.add_response(url=URL, content=stale)
    unknown(check(cert, ca), "stale", "nextUpdate")


def test_the_callers_clock_judges_staleness(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    httpx_mock.add_response(url=URL, content=crl_of(ca, (cert, 1)), is_reusable=True)
    assert check(cert, ca, now=NOW + DAY - timedelta(seconds=1)).status == "revoked"
    unknown(check(cert, ca, now=NOW + DAY + timedelta(seconds=1)), "stale")


def test_a_malformed_crl_is_not_believed(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    good = crl_of(ca)
    httpx_mock.add_response(url=URL, content=good[:-20])
    unknown(check(cert, ca), "malformed")
    httpx_mock.add_response(url=URL, content=b"<html>not a CRL</html>")
    unknown(check(cert, ca), "malformed")


def test_a_huge_crl_is_not_read_whole(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        chunk = b"\0" * 65536
        while sent < 50 * MAX_CRL_BYTES:
            sent += len(chunk)
            yield chunk

    httpx_mock.add_response(url=URL, stream=_Stream(endless()))
    unknown(check(cert, ca), "larger than")
    assert sent <= MAX_CRL_BYTES + 2 * 65536  # stopped at the cap, not read whole


def test_a_crl_announced_too_big_is_not_read(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    httpx_mock.add_response(
        url=URL, content=crl_of(ca), headers={"Content-Length": str(MAX_CRL_BYTES + 1)}
    )
    unknown(check(cert, ca), "larger than")


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


def test_a_redirect_is_not_followed(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    elsewhere = "http://evil.example.test/ca.crl"
    httpx_mock.add_response(url=URL, status_code=302, headers={"Location": elsewhere})
    unknown(check(cert, ca), "redirect", elsewhere)
    assert [str(r.url) for r in httpx_mock.get_requests()] == [URL]  # never went there


def test_an_error_status_is_unknown(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    httpx_mock.add_response(url=URL, status_code=503, content=crl_of(ca))
    unknown(check(cert, ca), "503")


def test_a_timeout_is_unknown(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("no answer"), url=URL)
    unknown(check(cert, ca), "timed out")


def test_a_distribution_point_that_never_answers(ca: CertificateAuthority) -> None:
    """A real server that accepts the connection and says nothing: the client's timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        silent = leaf(ca, f"http://127.0.0.1:{port}/ca.crl")
        with httpx.Client(timeout=0.2) as http:
            unknown(check(silent, ca, http=http), "timed out")


def test_no_distribution_point_is_unknown(ca: CertificateAuthority) -> None:
    unknown(check(leaf(ca, None), ca), "no CRL distribution point")
    unknown(check(leaf(ca, "ldap://dir.example.test/cn=ca"), ca), "no http or https")


def test_bad_input_is_a_typed_error(
    ca: CertificateAuthority, impostor: CertificateAuthority, cert: x509.Certificate
) -> None:
    with pytest.raises(InvalidInputError, match=r"x509\.Certificate"):
        check_revocation(b"PEM", ca.certificate)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="did not issue"):
        check_revocation(cert, impostor.certificate)
    with pytest.raises(InvalidInputError, match="aware"):
        check_revocation(cert, ca.certificate, now=datetime(2030, 1, 1))


def test_a_cache_fetches_once_until_next_update(
    httpx_mock: Any, ca: CertificateAuthority, cert: x509.Certificate
) -> None:
    httpx_mock.add_response(url=URL, content=crl_of(ca, (cert, 1)), is_reusable=True)
    cache = CRLCache()
    first = check(cert, ca, cache=cache)
    second = check(leaf(ca), ca, cache=cache)
    assert (first.status, second.status) == ("revoked", "good")
    assert len(httpx_mock.get_requests()) == 1 and len(cache) == 1
    check(cert, ca, cache=cache, now=NOW + DAY + timedelta(seconds=1))  # past nextUpdate
    assert len(httpx_mock.get_requests()) == 2  # fetched again
    assert check(cert, ca).status == "revoked" and len(httpx_mock.get_requests()) == 3


def test_a_cached_crl_is_checked_against_the_issuer_again(
    httpx_mock: Any,
    ca: CertificateAuthority,
    impostor: CertificateAuthority,
    cert: x509.Certificate,
) -> None:
    httpx_mock.add_response(url=URL, content=crl_of(ca))
    cache = CRLCache()
    assert check(cert, ca, cache=cache).status == "good"
    forged = leaf(impostor)  # the same distribution point, another key
    unknown(check_revocation(forged, impostor.certificate, cache=cache), "signature")
