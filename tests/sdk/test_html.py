"""HTML reprs for Jupyter: every value escaped, secrets never shown; and the progress
display of ``batches.wait(progress=True)``."""

from __future__ import annotations

import sys
import types
import typing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

from sectigo_iot import Batch, ProcessingInfo, SectigoClient, WaitProgress, models
from sectigo_iot.certs._bundle import make_bundle
from sectigo_iot.emulator import Emulator
from sectigo_iot.models import CertificateItem, CreateSingleCertBatchRequest
from sectigo_iot.resources.certificates import FoundCertificates
from tests.certs.helpers import make_pki

PAYLOAD = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
SECRET = "s3cret-Value-never-shown"


def sample(hint: Any, text: str) -> Any:
    """A value of type ``hint`` carrying ``text`` wherever a string can go."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return [sample(args[0], text)]
    if origin is dict:
        return {sample(args[0], text): sample(args[1], text)}
    if attrs.has(hint):
        return hostile(hint, text)
    samples: dict[Any, Any] = {
        int: 7,
        bool: True,
        datetime: datetime(2030, 1, 2, tzinfo=timezone.utc),
        str: text,
        Any: text,
    }
    return samples[hint]


def hostile(cls: type[Any], text: str = PAYLOAD) -> Any:
    """An instance of the model ``cls`` with ``text`` in every string, and ``SECRET`` in
    every field its repr hides."""
    hints = typing.get_type_hints(cls)
    values = {
        field.alias: sample(hints[field.name], SECRET if field.repr is False else text)
        for field in attrs.fields(cls)
        if field.init
    }
    return cls(**values)


def assert_safe(html: str) -> None:
    assert "<script>" not in html and SECRET not in html
    assert ESCAPED in html


MODELS = [
    getattr(models, name)
    for name in models.__all__
    if isinstance(getattr(models, name), type) and attrs.has(getattr(models, name))
]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_model_escapes_values_and_hides_secrets(model: type[Any]) -> None:
    instance = hostile(model)
    html = instance._repr_html_()
    assert html.startswith(f"<table><caption>{model.__name__}</caption>")
    assert "<script>" not in html and SECRET not in html
    if PAYLOAD in repr(instance):  # a string field is shown: escaped
        assert ESCAPED in html
    shown = [field.name for field in attrs.fields(model) if field.repr is not False]
    assert html.count("<tr>") == len(shown) + 1  # a header row, then one row a field


def test_secret_profile_parameters_are_masked() -> None:
    request = CreateSingleCertBatchRequest(
        authority_id=1, batch_name="b", profile_params={"pkcs12Password": SECRET, "x": PAYLOAD}
    )
    html = request._repr_html_()
    assert_safe(html)
    assert "***" in html


def test_found_certificates() -> None:
    found = FoundCertificates([hostile(CertificateItem), hostile(CertificateItem)], total_count=9)
    html = found._repr_html_()
    assert_safe(html)
    assert html.count("<tr>") == 3 and "2 of 9 certificate(s)" in html


def test_wait_progress() -> None:
    progress = WaitProgress(
        batch=hostile(Batch), status=PAYLOAD, info=ProcessingInfo(active=1), elapsed=2.5
    )
    assert_safe(progress._repr_html_())
    assert "2.5 s" in progress._repr_html_()


def test_certificate_bundle_never_shows_the_key() -> None:
    pki = make_pki(cn=PAYLOAD)
    bundle = make_bundle([pki.leaf, pki.intermediate, pki.root], pki.leaf_key, PAYLOAD)
    html = bundle._repr_html_()
    assert "<script>" not in html and ESCAPED in html
    assert "PRIVATE KEY" not in html and "has_private_key" in html
    key_text = bundle.private_key_pem().decode()
    body = "".join(key_text.splitlines()[1:-1])
    assert body[:40] not in html
    assert html.count("chain[") == 2


async def test_a_value_from_the_server_is_escaped(sectigo_emulator: Emulator) -> None:
    async with sectigo_emulator.client() as client:
        batch = await client.batches.create(
            1, common_name="a.example.com", pkcs12_password=SECRET, name=PAYLOAD
        )
        assert batch.batch_name == PAYLOAD
        assert_safe(batch._repr_html_())


# -- the progress display of batches.wait ---------------------------------------------


def moving_sleep(emulator: Emulator) -> Any:
    """A client pause that moves the emulator's clock instead of waiting."""

    async def sleep(seconds: float) -> None:
        emulator.clock.advance(seconds)
        await anyio.lowlevel.checkpoint()

    return sleep


async def wait_with_progress(emulator: Emulator, seen: list[WaitProgress]) -> Batch:
    async with emulator.client(sleep=moving_sleep(emulator)) as client:
        batch = await client.batches.create(
            1, common_name="slow.example.com", pkcs12_password=SECRET
        )
        return await client.batches.wait(batch.batch_id, progress=True, on_progress=seen.append)


@pytest.mark.sectigo_emulator(processing_delay=2)
async def test_progress_without_ipython_is_a_line_on_stderr(
    sectigo_emulator: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "IPython", None)  # not importable
    seen: list[WaitProgress] = []
    batch = await wait_with_progress(sectigo_emulator, seen)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(seen) == 3
    assert (
        lines[0]
        == f"batch {batch.batch_id}: PROCESSING after 0.0 s (active 1, success 0, failed 0)"
    )
    assert lines[-1].startswith(f"batch {batch.batch_id}: READY_FOR_DOWNLOAD after 2.5 s")


class FakeDisplay:
    """The part of ``IPython.display`` that ``wait`` uses, recording what it is shown."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, object]] = []

    def display(self, obj: object, *, display_id: bool) -> FakeDisplay:
        assert display_id is True
        self.shown.append(("display", obj))
        return self

    def update(self, obj: object) -> None:
        self.shown.append(("update", obj))


@pytest.mark.sectigo_emulator(processing_delay=2)
async def test_progress_under_ipython_updates_one_display(
    sectigo_emulator: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeDisplay()
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: object()  # type: ignore[attr-defined]
    display = types.ModuleType("IPython.display")
    display.display = fake.display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    seen: list[WaitProgress] = []
    await wait_with_progress(sectigo_emulator, seen)
    assert [kind for kind, _ in fake.shown] == ["display", "update", "update"]
    assert [obj for _, obj in fake.shown] == seen
    assert capsys.readouterr().err == ""


async def test_no_progress_unless_asked(
    sectigo_client: SectigoClient, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    batch = await sectigo_client.batches.create(
        1, common_name="quiet.example.com", pkcs12_password=SECRET
    )
    await sectigo_client.batches.wait(batch.batch_id)
    assert capsys.readouterr().err == ""
