"""Is a certificate revoked? Its issuer's CRL says, when it can be believed.

The CRL comes from the certificate's distribution point (http or https) without any
credential, without following a redirect and capped in size; it is believed only when
the issuer signed it and its ``nextUpdate`` has not passed. Anything else is
``"unknown"``, never ``"good"``. One place for both the blocking
:func:`check_revocation` and the async :func:`check_revocation_async` (which
``client.certificates.check_revocation`` uses over the client's own transport).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Literal

import httpx
from attrs import frozen
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ..errors import InvalidInputError
from ._reasons import RevocationReason

__all__ = [
    "CRL_TIMEOUT",
    "MAX_CRL_BYTES",
    "CRLCache",
    "RevocationStatus",
    "check_revocation",
    "check_revocation_async",
]

#: the largest CRL read (decoded bytes); a bigger one is not believed
MAX_CRL_BYTES = 10 * 1024 * 1024
#: seconds to connect, and between bytes, when fetching a CRL with a client made here
CRL_TIMEOUT = 10.0
#: how far a CRL's thisUpdate may lie ahead of our clock (clocks differ a little)
_SKEW = timedelta(minutes=5)
#: request headers that would carry a credential: never sent for a CRL
_CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")


@frozen(kw_only=True)
class RevocationStatus:
    """What a certificate's CRL says about it.

    ``status`` is ``"good"`` (a believable CRL does not list it), ``"revoked"`` (it does,
    with ``reason`` and ``revoked_at``) or ``"unknown"`` (no believable CRL: ``detail``
    says why).
    """

    status: Literal["good", "revoked", "unknown"]
    reason: RevocationReason | None = None
    revoked_at: datetime | None = None
    detail: str = ""


class CRLCache:
    """Verified CRLs by distribution point, each kept until its ``nextUpdate``.

    Pass one as ``cache=`` to :func:`check_revocation` to fetch a CRL once for many
    certificates; it is safe to share between threads.
    """

    def __init__(self) -> None:
        self._crls: dict[str, x509.CertificateRevocationList] = {}
        self._lock = threading.Lock()

    def get(self, url: str, now: datetime) -> x509.CertificateRevocationList | None:
        """The CRL of ``url`` if one is cached and its ``nextUpdate`` is still ahead."""
        with self._lock:
            crl = self._crls.get(url)
            if crl is not None and (crl.next_update_utc is None or crl.next_update_utc < now):
                del self._crls[url]
                return None
            return crl

    def put(self, url: str, crl: x509.CertificateRevocationList) -> None:
        """Keep ``crl`` (already verified) for ``url``."""
        with self._lock:
            self._crls[url] = crl

    def __len__(self) -> int:
        with self._lock:
            return len(self._crls)

    def __repr__(self) -> str:
        return f"<CRLCache of {len(self)} CRL(s)>"


class _Unknown(Exception):
    """Why no believable CRL answers (becomes ``RevocationStatus.detail``)."""


def check_revocation(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    http: httpx.Client | None = None,
    cache: CRLCache | None = None,
    now: datetime | None = None,
) -> RevocationStatus:
    """The revocation status of ``certificate`` from the CRL of its ``issuer`` (blocking).

    The CRL is fetched from the certificate's CRL distribution point with ``http`` (an
    ``httpx.Client``; one is made and closed here when None, with a
    :data:`CRL_TIMEOUT` timeout), never with a credential, never through a redirect,
    at most :data:`MAX_CRL_BYTES`. It is believed only when ``issuer`` signed it and
    its ``nextUpdate`` is not past ``now`` (the wall clock by default). With ``cache``
    a believed CRL is reused until its ``nextUpdate``.

    Raises:
        InvalidInputError: ``certificate`` or ``issuer`` is not a certificate, or
            ``issuer`` did not issue ``certificate``.
    """
    moment = _checked(certificate, issuer, now)
    try:
        url = _distribution_point(certificate)
        crl = cache.get(url, moment) if cache is not None else None
        if crl is None:
            if http is None:
                with httpx.Client(timeout=CRL_TIMEOUT) as own:
                    der = _fetch(own, url)
            else:
                der = _fetch(http, url)
            crl = _remember(der, url, issuer, moment, cache)
        return _verdict(certificate, _believed(crl, issuer, moment))
    except _Unknown as exc:
        return RevocationStatus(status="unknown", detail=str(exc))


async def check_revocation_async(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    http: httpx.AsyncClient,
    cache: CRLCache | None = None,
    now: datetime | None = None,
) -> RevocationStatus:
    """:func:`check_revocation` with an ``httpx.AsyncClient`` (its own timeouts)."""
    moment = _checked(certificate, issuer, now)
    try:
        url = _distribution_point(certificate)
        crl = cache.get(url, moment) if cache is not None else None
        if crl is None:
            crl = _remember(await _fetch_async(http, url), url, issuer, moment, cache)
        return _verdict(certificate, _believed(crl, issuer, moment))
    except _Unknown as exc:
        return RevocationStatus(status="unknown", detail=str(exc))


def _remember(
    der: bytes, url: str, issuer: x509.Certificate, now: datetime, cache: CRLCache | None
) -> x509.CertificateRevocationList:
    """The fetched CRL once believed, kept in ``cache`` when there is one."""
    crl = _believed(_parsed(der), issuer, now)
    if cache is not None:
        cache.put(url, crl)
    return crl


def _checked(certificate: object, issuer: object, now: datetime | None) -> datetime:
    """The time to judge by; a typed error for input that is not a certificate pair."""
    for name, value in (("certificate", certificate), ("issuer", issuer)):
        if not isinstance(value, x509.Certificate):
            raise InvalidInputError(
                f"{name} must be a cryptography x509.Certificate, got {type(value).__name__}; "
                "load it with x509.load_pem_x509_certificate"
            )
    assert isinstance(certificate, x509.Certificate) and isinstance(issuer, x509.Certificate)
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise InvalidInputError(
            f"the issuer given ({issuer.subject.rfc4514_string()}) did not issue the "
            f"certificate ({exc.__class__.__name__}); pass the CA certificate that signed it"
        ) from None
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise InvalidInputError("now must be an aware datetime (e.g. in timezone.utc)")
    return now


def _distribution_point(certificate: x509.Certificate) -> str:
    """The first http or https URI of the certificate's CRL distribution points."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        raise _Unknown("the certificate names no CRL distribution point") from None
    for point in points.value:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.lower().startswith(
                ("http://", "https://")
            ):
                return name.value
    raise _Unknown("the certificate names no http or https CRL distribution point")


def _request(http: httpx.Client | httpx.AsyncClient, url: str) -> httpx.Request:
    """A GET of ``url`` that carries no credential, whatever the client's defaults."""
    try:
        request = http.build_request("GET", url, headers={"Accept": "application/pkix-crl"})
    except httpx.InvalidURL as exc:
        raise _Unknown(f"the CRL distribution point {url!r} is not a valid URL: {exc}") from None
    for header in _CREDENTIAL_HEADERS:
        request.headers.pop(header, None)
    return request


def _check_answer(response: httpx.Response, url: str) -> None:
    """Refuse a redirect, an error status, and a body announced too big."""
    if response.is_redirect:
        where = response.headers.get("location", "")
        raise _Unknown(f"the CRL at {url} redirects to {where!r}; a redirect is not followed")
    if response.status_code != 200:
        raise _Unknown(f"the CRL at {url} answered HTTP {response.status_code}")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_CRL_BYTES:
        raise _Unknown(_too_big(url))


def _too_big(url: str) -> str:
    return f"the CRL at {url} is larger than {MAX_CRL_BYTES} bytes; it is not read"


def _collect(body: bytearray, chunk: bytes, url: str) -> None:
    """Add ``chunk``; stop reading once past the cap (a huge CRL is never read whole)."""
    body.extend(chunk)
    if len(body) > MAX_CRL_BYTES:
        raise _Unknown(_too_big(url))


def _fetch(http: httpx.Client, url: str) -> bytes:
    body = bytearray()
    request = _request(http, url)
    try:
        response = http.send(request, stream=True, auth=None, follow_redirects=False)
        try:
            _check_answer(response, url)
            for chunk in response.iter_bytes():
                _collect(body, chunk, url)
        finally:
            response.close()
    except httpx.HTTPError as exc:
        raise _Unknown(_failed(url, exc)) from None
    return bytes(body)


async def _fetch_async(http: httpx.AsyncClient, url: str) -> bytes:
    body = bytearray()
    request = _request(http, url)
    try:
        response = await http.send(request, stream=True, auth=None, follow_redirects=False)
        try:
            _check_answer(response, url)
            async for chunk in response.aiter_bytes():
                _collect(body, chunk, url)
        finally:
            await response.aclose()
    except httpx.HTTPError as exc:
        raise _Unknown(_failed(url, exc)) from None
    return bytes(body)


def _failed(url: str, exc: httpx.HTTPError) -> str:
    what = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return f"fetching the CRL at {url} {what} ({type(exc).__name__})"


def _parsed(der: bytes) -> x509.CertificateRevocationList:
    """A DER CRL (PEM accepted too), or why it is not one."""
    try:
        if der.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(der)
        return x509.load_der_x509_crl(der)
    except ValueError as exc:
        raise _Unknown(f"the CRL is malformed ({exc})") from None


def _believed(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate, now: datetime
) -> x509.CertificateRevocationList:
    """``crl`` if ``issuer`` signed it and it is current at ``now``; else why not
    (checked again on every use, cached or not)."""
    try:
        return _current(crl, issuer, now)
    except ValueError as exc:  # a part parsed only now is malformed
        raise _Unknown(f"the CRL is malformed ({exc})") from None


def _current(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate, now: datetime
) -> x509.CertificateRevocationList:
    if crl.issuer != issuer.subject:
        raise _Unknown(
            f"the CRL is issued by {crl.issuer.rfc4514_string()}, not by the issuer "
            f"{issuer.subject.rfc4514_string()}"
        )
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        signed = False
    if not signed:
        raise _Unknown("the CRL's signature does not verify with the issuer's key")
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        pass
    else:
        raise _Unknown("the CRL is a delta CRL; a complete CRL is needed")
    next_update = crl.next_update_utc
    if next_update is None:
        raise _Unknown("the CRL has no nextUpdate: how current it is cannot be told")
    if next_update < now:
        raise _Unknown(f"the CRL is stale: its nextUpdate {next_update.isoformat()} has passed")
    if crl.last_update_utc > now + _SKEW:
        raise _Unknown(f"the CRL is not valid yet (thisUpdate {crl.last_update_utc.isoformat()})")
    return crl


def _verdict(
    certificate: x509.Certificate, crl: x509.CertificateRevocationList
) -> RevocationStatus:
    try:
        entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is None:
            return RevocationStatus(status="good")
        try:
            flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            reason = RevocationReason.parse(flag.value)
        except x509.ExtensionNotFound:
            reason = RevocationReason.UNSPECIFIED
    except ValueError as exc:
        raise _Unknown(f"the CRL's entry for the certificate is malformed ({exc})") from None
    return RevocationStatus(status="revoked", reason=reason, revoked_at=entry.revocation_date_utc)
