"""Models and the converter against every JSON example of spec/api.md."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sectigo_iot import InvalidResponseError, models
from sectigo_iot.models import (
    Batch,
    BatchStatus,
    CertificateItem,
    CreateSingleCertBatchRequest,
    converter,
    parse_date,
    strict_converter,
)
from sectigo_iot.resources._base import decode

EXAMPLES = json.loads((Path(__file__).parent / "data" / "api_examples.json").read_text())[
    "examples"
]


def model_type(name: str) -> Any:
    if name.startswith("list["):
        return list[getattr(models, name[5:-1])]  # type: ignore[misc]
    return getattr(models, name)


def normalize_dates(obj: Any) -> Any:
    """Dates come back in Sectigo's format; compare them as instants."""
    if isinstance(obj, dict):
        return {k: normalize_dates(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [normalize_dates(v) for v in obj]
    if isinstance(obj, str) and len(obj) > 18 and obj[4:5] == "-" and obj[10:11] == "T":
        parsed = parse_date(obj)
        assert parsed is not None
        return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
    return obj


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["model"] for e in EXAMPLES])
def test_every_spec_example_round_trips_strictly(example: dict[str, Any]) -> None:
    cls = model_type(example["model"])
    value = strict_converter.structure(example["json"], cls)
    assert normalize_dates(converter.unstructure(value)) == normalize_dates(example["json"])


def test_unknown_fields_tolerated_by_default_and_rejected_in_strict_mode() -> None:
    data = {"batchId": 1, "someNewField": True}
    assert converter.structure(data, Batch).batch_id == 1
    with pytest.raises(Exception, match="Batch"):
        strict_converter.structure(data, Batch)


def test_missing_fields_take_go_zero_values() -> None:
    assert converter.structure({}, Batch) == Batch()


@pytest.mark.parametrize("device_id", [42, "42"])
def test_device_id_int_or_string(device_id: Any) -> None:
    assert converter.structure({"deviceId": device_id}, CertificateItem).device_id == "42"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-12-10T16:35:32.805+0000", datetime(2020, 12, 10, 16, 35, 32, 805000, timezone.utc)),
        ("2024-03-01T12:00:00.123456789Z", datetime(2024, 3, 1, 12, 0, 0, 123456, timezone.utc)),
        (
            "2024-03-01T12:00:00.123456789-05:00",
            datetime(2024, 3, 1, 12, 0, 0, 123456, timezone(-timedelta(hours=5))),
        ),
        ("2024-03-01T12:00:00Z", datetime(2024, 3, 1, 12, tzinfo=timezone.utc)),
    ],
)
def test_date_formats(text: str, expected: datetime) -> None:
    assert parse_date(text) == expected


def test_empty_date_is_none_and_garbage_is_an_error() -> None:
    assert converter.structure({"creationDate": ""}, Batch).creation_date is None
    with pytest.raises(InvalidResponseError, match="unexpected response shape for Batch"):
        decode({"creationDate": "yesterday"}, Batch, "/api/v1/batches/1")


def test_status_is_open_and_known_values_are_constants() -> None:
    assert converter.structure({"status": "SOMETHING_NEW"}, Batch).status == "SOMETHING_NEW"
    assert BatchStatus.COLLECTED == "COLLECTED"
    assert BatchStatus.normalize(" Ready for download ") == BatchStatus.READY_FOR_DOWNLOAD


def test_reprs_hide_secrets() -> None:
    request = CreateSingleCertBatchRequest(
        authority_id=1, batch_name="b", profile_params={"pkcs12Password": "hunter2-secret"}
    )
    assert "hunter2-secret" not in repr(request)
    reply = models.AuthenticationReply(access_token="eyJ-access", refresh_token="eyJ-refresh")
    assert "eyJ" not in repr(reply)
    login = models.AuthenticationRequest(username="u", password="pw-secret")
    assert "pw-secret" not in repr(login)


batches = st.builds(
    Batch,
    batch_id=st.integers(0, 2**31),
    status=st.text(max_size=20),
    batch_name=st.text(max_size=40),
    creation_date=st.none()
    | st.datetimes(timezones=st.just(timezone.utc)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    active=st.booleans(),
)


@given(batches)
def test_batches_round_trip(batch: Batch) -> None:
    assert strict_converter.structure(converter.unstructure(batch), Batch) == batch


@given(st.text(max_size=60))
def test_status_normalization_is_idempotent(text: str) -> None:
    once = BatchStatus.normalize(text)
    assert BatchStatus.normalize(once) == once
    assert once == once.upper() and " " not in once


def _strategy(tp: Any) -> st.SearchStrategy[Any]:
    """A hypothesis strategy for a model field's type (JSON-representable values)."""
    import types
    import typing

    import attrs

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[_strategy(a) for a in args])
    if tp is type(None):
        return st.none()
    if origin is list:
        return st.lists(_strategy(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3)
    if attrs.has(tp):
        return model_strategy(tp)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        int: st.integers(-(2**40), 2**40),
        str: st.text(max_size=20),
        bool: st.booleans(),
        datetime: st.datetimes(timezones=st.just(timezone.utc)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
        ),
        Any: st.none() | st.integers() | st.text(max_size=10),
    }
    return simple[tp]


def model_strategy(cls: type) -> st.SearchStrategy[Any]:
    import typing

    import attrs

    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _strategy(hints[f.name]) for f in attrs.fields(cls)})


ALL_MODELS = [
    getattr(models, name) for name in models.__all__ if name[0].isupper() and name != "BatchStatus"
]


@pytest.mark.parametrize("cls", ALL_MODELS, ids=[c.__name__ for c in ALL_MODELS])
def test_every_model_round_trips(cls: type) -> None:
    from hypothesis import settings

    @settings(max_examples=40, deadline=None)
    @given(model_strategy(cls))
    def check(value: Any) -> None:
        data = json.loads(json.dumps(converter.unstructure(value)))
        assert strict_converter.structure(data, cls) == value

    check()
