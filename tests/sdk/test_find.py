"""``certificates.find``: a name searched as ``create`` sends it (IDNA), end to end."""

from __future__ import annotations

import pytest

from sectigo_iot import InvalidInputError
from sectigo_iot.emulator import Emulator

P12 = "find-test-p12-pass"


async def issue(emulator: Emulator, common_name: str) -> str:
    """Issue a certificate for ``common_name``; its serial number."""
    async with emulator.client() as client:
        batch = await client.batches.create(1, common_name=common_name, pkcs12_password=P12)
        await client.batches.wait(batch.batch_id)
    (certificate,) = [c for c in emulator.certificates() if c.batch_id == batch.batch_id]
    return certificate.serial_number


@pytest.mark.parametrize("searched", ["bücher.example", "BÜCHER.Example.", "xn--bcher-kva.example"])
async def test_a_unicode_name_finds_what_create_issued_in_idna(
    sectigo_emulator: Emulator, searched: str
) -> None:
    serial = await issue(sectigo_emulator, "bücher.example")
    async with sectigo_emulator.client() as client:
        found = await client.certificates.find(common_name=searched)
    assert [c.serial_number for c in found] == [serial]
    assert found[0].common_name == "xn--bcher-kva.example" and found.total_count == 1


async def test_a_name_in_normal_form_is_one_request(sectigo_emulator: Emulator) -> None:
    await issue(sectigo_emulator, "plain.example.com")
    async with sectigo_emulator.client() as client:
        assert len(await client.certificates.find(common_name="plain.example.com")) == 1
        assert len(await client.certificates.find(common_name="Device 7 (not a domain)")) == 0
    assert sectigo_emulator.stats.requests["POST /api/v1/certificates/find"] == 2


async def test_a_certificate_found_by_both_searches_is_listed_once(
    sectigo_emulator: Emulator,
) -> None:
    serial = await issue(sectigo_emulator, "straße.example")
    async with sectigo_emulator.client() as client:
        found = await client.certificates.find(common_name="straße.example", serial_number=serial)
    assert [c.serial_number for c in found] == [serial] and found.total_count == 1
    assert sectigo_emulator.stats.requests["POST /api/v1/certificates/find"] == 2


async def test_a_common_name_that_is_not_text_is_refused(sectigo_emulator: Emulator) -> None:
    async with sectigo_emulator.client() as client:
        with pytest.raises(InvalidInputError, match="common_name"):
            await client.certificates.find(common_name=b"x.example")  # type: ignore[arg-type]
    assert sum(sectigo_emulator.stats.requests.values()) == 0
