"""The SDK and the in-process emulator under both anyio backends; cancellation safety."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sectigo_iot import SectigoClient, TokenError
from sectigo_iot.auth import TokenPair, decode_claims
from sectigo_iot.certs import open_batch_zip
from sectigo_iot.emulator import Emulator

P12 = "backend-P12-pw"


async def main_flow(emulator: Emulator, folder: Path) -> str:
    async with emulator.client() as client:
        [authority] = await client.authorities.list()
        batch = await client.batches.create(
            authority.id, common_name="trio.example.com", pkcs12_password=P12
        )
        await client.batches.wait(batch.batch_id, timeout=10)
        archive = await client.batches.download(batch.batch_id, folder)
        [bundle] = open_batch_zip(archive, P12)
        await client.certificates.revoke(authority.profile_id, bundle.serial_number, "superseded")
        [item] = await client.certificates.find(serial_number=bundle.serial_number)
        return item.status


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_main_flow_on_each_backend(tmp_path: Path, backend: str) -> None:
    with Emulator() as emulator:
        status = anyio.run(main_flow, emulator, tmp_path, backend=backend)
    assert status == "REVOKED"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cancelled_download_leaves_no_file_and_a_usable_client(
    tmp_path: Path, backend: str
) -> None:
    async def scenario(emulator: Emulator) -> None:
        async with emulator.client() as client:
            batch = await client.batches.create(
                1, common_name="cancel.example.com", pkcs12_password=P12
            )
            await client.batches.wait(batch.batch_id, timeout=10)
            emulator.inject("GET", "/api/v1/batches/{id}/download", "delay", seconds=5)
            with anyio.move_on_after(0.3) as scope:
                await client.batches.download(batch.batch_id, tmp_path)
            assert scope.cancelled_caught
            assert list(tmp_path.iterdir()) == []  # no partial file, no temporary
            path = await client.batches.download(batch.batch_id, tmp_path)  # still usable
            assert path.name == f"{batch.batch_id}.zip"

    with Emulator() as emulator:
        anyio.run(scenario, emulator, backend=backend)


@pytest.mark.sectigo_emulator(processing_delay=600)
async def test_wait_has_an_overall_deadline(sectigo_emulator: Emulator) -> None:
    from sectigo_iot import WaitTimeoutError

    async with sectigo_emulator.client() as client:
        sectigo_emulator.inject("GET", "/api/v1/batches/{id}", "delay", times=100, seconds=0.3)
        batch = await client.batches.create(1, common_name="slow.example.com", pkcs12_password=P12)
        started = anyio.current_time()
        with anyio.fail_after(3), pytest.raises(WaitTimeoutError) as caught:
            await client.batches.wait(batch.batch_id, timeout=0.5)
        assert anyio.current_time() - started < 1.5
        assert caught.value.status == "PROCESSING"


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_but_token_error(text: str) -> None:
    with contextlib.suppress(TokenError):
        decode_claims(text)


@given(
    st.lists(
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=",
            max_size=60,
        ),
        min_size=1,
        max_size=4,
    ).map(".".join),
    st.text(max_size=40),
)
def test_malformed_pairs_only_raise_token_error(access: str, refresh: str) -> None:
    with contextlib.suppress(TokenError):
        TokenPair.parse(access, refresh, now=0)


def test_client_constructor_needs_no_event_loop() -> None:
    """Built in plain sync code (no loop running), then used in a loop started later."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    client = SectigoClient("u", "p", token_store="memory")
    assert client.base_url == "https://iot.sectigo.com"

    async def use() -> None:
        async with client:
            assert await client.load_tokens() is None

    anyio.run(use)  # the loop starts only now
