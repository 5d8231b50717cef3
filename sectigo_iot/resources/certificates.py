"""``client.certificates``: find certificates, revoke them, check their CRL (the
search's name forms, merging and fast structuring are in ``_certificate_find``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._checks import positive_id
from .._hooks import operation
from .._html import shown_fields, table_html
from .._logging import get_logger
from .._retry import outcome_unknown
from ..errors import (
    AmbiguousRequestError,
    APIConnectionError,
    InvalidInputError,
    InvalidResponseError,
    ServerError,
)
from ..models import (
    CertificateItem,
    FindCertificateRequest,
    FindCertificateResponse,
    RevokeCertificateRequest,
)
from ._base import Resource
from ._certificate_find import merge_found, name_forms, plain_items

if TYPE_CHECKING:
    from cryptography import x509

    from ..certs import CRLCache, RevocationReason, RevocationStatus

__all__ = ["Certificates", "FoundCertificates"]

logger = get_logger("sectigo_iot.certificates")


def _serial(serial_number: str) -> str:
    from ..certs import normalize_serial  # the offline toolkit loads on first use

    return normalize_serial(serial_number)


class FoundCertificates(list[CertificateItem]):
    """The certificates a search found: a list, plus the server's ``total_count``
    (which may exceed the items returned)."""

    def __init__(self, items: Iterable[CertificateItem] = (), *, total_count: int = 0) -> None:
        super().__init__(items)
        self.total_count = total_count

    def __repr__(self) -> str:
        return f"FoundCertificates({list.__repr__(self)}, total_count={self.total_count})"

    def _repr_html_(self) -> str:
        rows = [[value for _, value in shown_fields(item)] for item in self]
        header = [name for name, _ in shown_fields(CertificateItem())]
        footer = f"{len(self)} of {self.total_count} certificate(s)"
        return table_html("FoundCertificates", header, rows, footer=footer)


class Certificates(Resource):
    """Certificate search and revocation."""

    #: the CRLs :meth:`check_revocation` believed, made on first use
    _crls: CRLCache | None = None

    @operation("certificates.find")
    async def find(
        self, common_name: str | None = None, serial_number: str | None = None
    ) -> FoundCertificates:
        """``POST /api/v1/certificates/find`` by common name and/or serial number.

        A common name that is a domain name is also searched in the form ``create``
        sends (``"bücher.example"`` -> ``"xn--bcher-kva.example"``, lower case), when
        that differs from the name given: a second request, the results merged.
        """
        if not common_name and not serial_number:
            raise InvalidInputError("give a common_name or a serial_number to search for")
        if common_name is not None and not isinstance(common_name, str):
            raise InvalidInputError(f"common_name must be a string, got {common_name!r}")
        serial = _serial(serial_number) if serial_number else None
        parts = [await self._find(name, serial) for name in name_forms(common_name or "")]
        items, total = merge_found(parts)
        return FoundCertificates(items, total_count=total)

    async def _find(
        self, common_name: str | None, serial: str | None
    ) -> tuple[list[CertificateItem], int]:
        """One search: the items found and the server's total count."""
        path = "/api/v1/certificates/find"
        request = FindCertificateRequest(common_name=common_name or None, serial_number=serial)
        data = await self._session.call("POST", path, json_body=request, cast_to=object)
        fast = plain_items(data)
        if fast is not None:
            return fast
        found = self._session.decode(data, FindCertificateResponse, path)
        return found.items or [], found.total_count

    @operation("certificates.revoke")
    async def revoke(
        self,
        profile_id: int,
        serial_number: str,
        reason: str | int | RevocationReason = "unspecified",
    ) -> None:
        """``POST /api/v1/certificates/{profileId}/revoke`` with an RFC 5280 reason.

        ``reason`` is a name (case and spaces ignored), a code or a RevocationReason.
        When the outcome is unknown (the connection broke after sending, or a 5xx), the
        certificate's status is checked instead of sending the request again.
        """
        from ..certs import RevocationReason

        code = RevocationReason.parse(reason)
        serial = _serial(serial_number)
        path = f"/api/v1/certificates/{positive_id('profile_id', profile_id)}/revoke"
        request = RevokeCertificateRequest(reason_code=int(code), serial_number=serial)
        try:
            await self._session.call("POST", path, json_body=request)
        except (APIConnectionError, ServerError, InvalidResponseError) as exc:
            if not outcome_unknown(exc):
                raise
            if not await self.is_revoked(serial):
                raise AmbiguousRequestError(
                    f"revocation of {serial} may not have reached Sectigo ({exc}); "
                    "the certificate is not shown as revoked yet: check with "
                    "certificates.find(serial_number=...) before trying again",
                    operation="revoke",
                ) from exc
            logger.info("revocation of %s confirmed after an ambiguous failure", serial)

    @operation("certificates.revoke_all")
    async def revoke_all(
        self,
        common_name: str,
        reason: str | int | RevocationReason,
        *,
        except_serials: Iterable[str] = (),
        dry_run: bool = False,
        profile_id: int | None = None,
    ) -> list[tuple[str, str]]:
        """Revoke every certificate of ``common_name`` not revoked yet: one search
        (:meth:`find`), then a :meth:`revoke` for each.

        Returns ``(serial_number, outcome)`` for each certificate found, the outcome
        ``"revoked"``, ``"already revoked"``, ``"kept"`` (its serial is in
        ``except_serials``) or ``"would revoke"`` (``dry_run``: nothing is revoked).
        Run again, it sends no revoke; after a failure or a cancellation half way it
        revokes only what is left (the server's status says what is done). When the
        server reports more certificates than it returned, nothing is revoked
        (InvalidResponseError). ``profile_id`` is the profile that issued them; by
        default the one profile of the user's authorities.
        """
        from ..certs import RevocationReason

        if not isinstance(common_name, str) or not common_name.strip():
            raise InvalidInputError(f"common_name must be a non-empty string, got {common_name!r}")
        code = RevocationReason.parse(reason)
        if isinstance(except_serials, str):
            raise InvalidInputError("except_serials must be a sequence of serials, not a string")
        kept = frozenset(map(_serial, except_serials))
        if not isinstance(dry_run, bool):
            raise InvalidInputError(f"dry_run must be True or False, got {dry_run!r}")
        if profile_id is not None:
            positive_id("profile_id", profile_id)
        plan = _revocation_plan(common_name, await self.find(common_name=common_name), kept)
        if dry_run or _WOULD not in plan.values():
            return list(plan.items())
        profile = profile_id or await self._revocation_profile()
        for serial, outcome in plan.items():
            if outcome == _WOULD:
                await self.revoke(profile, serial, code)
                logger.info("revoked %s (%s)", serial, code.display)
                plan[serial] = "revoked"
        return list(plan.items())

    async def _revocation_profile(self) -> int:
        """The one profile of the user's authorities (``profile_of``)."""
        from .account import Authorities, profile_of

        authorities = await Authorities(self._session).list()
        profile = profile_of(authorities)
        if profile is None:
            profiles = sorted({a.profile_id for a in authorities})
            raise InvalidInputError(
                f"your authorities have the profiles {profiles}: give the profile_id "
                "that issued the certificates (nothing was revoked)"
            )
        return profile

    @operation("certificates.check_revocation")
    async def check_revocation(
        self, certificate: x509.Certificate, issuer: x509.Certificate
    ) -> RevocationStatus:
        """Whether ``certificate`` is revoked, from the CRL of its ``issuer``
        (:func:`sectigo_iot.certs.check_revocation`, over this client's transport and
        judged on its clock, never with its token).

        A believed CRL is kept in this client until its ``nextUpdate``; a new client
        starts with none.
        """
        from datetime import datetime, timezone

        from ..certs import CRLCache, check_revocation_async

        if self._crls is None:
            self._crls = CRLCache()
        return await check_revocation_async(
            certificate,
            issuer,
            http=self._session.plain_http,
            cache=self._crls,
            now=datetime.fromtimestamp(self._session.clock(), timezone.utc),
        )

    @operation("certificates.is_revoked")
    async def is_revoked(self, serial_number: str) -> bool:
        """Whether the server lists the certificate as revoked (False when it cannot be
        told: not found, or the search itself failed)."""
        serial = _serial(serial_number)
        try:
            items = await self.find(serial_number=serial)
        except Exception:  # the check itself failing leaves the outcome unknown
            return False
        return any(
            i.serial_number.upper() == serial and i.status.upper() == "REVOKED" for i in items
        )


#: the outcome of a certificate a dry run would revoke (and a real run is about to)
_WOULD = "would revoke"


def _revocation_plan(
    common_name: str, found: FoundCertificates, kept: frozenset[str]
) -> dict[str, str]:
    """Each certificate found, by normalized serial, with what ``revoke_all`` makes of
    it; InvalidResponseError (nothing revoked) when the answer is not the whole set."""
    path = "/api/v1/certificates/find"
    if found.total_count > len(found):
        raise InvalidResponseError(
            f"the search for {common_name!r} returned {len(found)} of {found.total_count} "
            "certificates: nothing was revoked (revoke them one by one by serial number)",
            path=path,
        )
    plan: dict[str, str] = {}
    for item in found:
        try:
            serial = _serial(item.serial_number)
        except InvalidInputError:
            raise InvalidResponseError(
                f"a certificate found for {common_name!r} has no usable serial number "
                f"({item.serial_number!r}): nothing was revoked",
                path=path,
            ) from None
        if item.status.upper() == "REVOKED" or plan.get(serial) == "already revoked":
            plan[serial] = "already revoked"
        else:
            plan[serial] = "kept" if serial in kept else _WOULD
    return plan
