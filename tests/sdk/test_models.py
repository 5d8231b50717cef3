"""Models and the converter against every JSON example of spec/api.md."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sectigo_iot import InvalidResponseError, models
from sectigo_iot._response import decode
from sectigo_iot.models import (
    Batch,
    BatchStatus,
    CertificateItem,
    CreateSingleCertBatchRequest,
    converter,
    parse_date,
    strict_converter,
)

EXAMPLES = json.loads((Path(__file__).parent.parent / "data" / "api_examples.json").read_text())[
    "examples"
]


def model_type(name: str) -> Any:
    if name.startswith("list["):
        return list[getattr(models, name[5:-1])]  # type: ignore[misc]
    return getattr(models, name)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["model"] for e in EXAMPLES])
def test_every_spec_example_round_trips_exactly(example: dict[str, Any]) -> None:
    cls = model_type(example["model"])
    value = strict_converter.structure(example["json"], cls)
    assert converter.unstructure(value) == example["json"]  # dates keep the API's text


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


@pytest.mark.parametrize(
    "text",
    [
        "2020-12-10T16:35:32.805+0000",
        "2024-03-01T12:00:00.123456789-05:00",
        "2024-03-01T12:05:02.52710041Z",
        "2024-03-01 12:00:00",
    ],
)
def test_a_parsed_date_unstructures_to_the_api_text(text: str) -> None:
    batch = decode({"batchId": 1, "creationDate": text}, Batch, "/api/v1/batches/1")
    assert batch.creation_date == parse_date(text)
    assert converter.unstructure(batch)["creationDate"] == text


def test_a_changed_date_is_formatted_anew() -> None:
    batch = converter.structure({"creationDate": "2020-12-10T16:35:32.805+00:00"}, Batch)
    assert batch.creation_date is not None
    later = attrs.evolve(batch, creation_date=batch.creation_date + timedelta(hours=1))
    assert converter.unstructure(later)["creationDate"] == "2020-12-10T17:35:32.805+0000"
    plain = attrs.evolve(batch, creation_date=datetime(2021, 1, 2, tzinfo=timezone.utc))
    assert converter.unstructure(plain)["creationDate"] == "2021-01-02T00:00:00.000+0000"


def test_a_parsed_date_is_a_plain_looking_datetime() -> None:
    batch = converter.structure({"creationDate": "2020-12-10T16:35:32.805+0000"}, Batch)
    expected = datetime(2020, 12, 10, 16, 35, 32, 805000, timezone.utc)
    assert isinstance(batch.creation_date, datetime)
    assert batch.creation_date == expected and hash(batch.creation_date) == hash(expected)
    assert repr(batch.creation_date) == repr(expected)
    assert batch == Batch(creation_date=expected)


def test_empty_date_is_none_and_keeps_its_text() -> None:
    batch = converter.structure({"creationDate": ""}, Batch)
    assert batch.creation_date is None
    assert converter.unstructure(batch)["creationDate"] == ""
    assert converter.unstructure(Batch())["creationDate"] is None


@pytest.mark.parametrize(
    "raw", ["02/06/2021 09:14", "yesterday", "2021-06-02", "2021-13-45T99:00:00Z", 1622625247512]
)
def test_an_unknown_date_format_does_not_fail_the_reply(raw: Any) -> None:
    data = {"batchId": 7, "status": "CREATED", "creationDate": raw}
    batch = decode(data, Batch, "/api/v1/batches/7")
    assert batch.creation_date is None
    assert (batch.batch_id, batch.status) == (7, "CREATED")
    assert batch == Batch(batch_id=7, status="CREATED")
    assert hash(batch) == hash(Batch(batch_id=7, status="CREATED"))
    assert converter.unstructure(batch)["creationDate"] == raw  # the API's text, unchanged


def test_an_unknown_date_format_is_logged_once_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sectigo_iot.models")
    for text in ("Wed Jun 02 09:14:07 UTC 2021", "Wed Jun 02 10:15:08 UTC 2021"):
        converter.structure({"creationDate": text}, Batch)
    converter.structure({"creationDate": "Thu Jun 03 09:14:07 UTC 2021"}, Batch)
    records = [r for r in caplog.records if r.name == "sectigo_iot.models"]
    assert [r.levelno for r in records] == [logging.DEBUG, logging.DEBUG]
    assert "Wed Jun 02 09:14:07" in records[0].getMessage()
    assert "Thu Jun 03" in records[1].getMessage()


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (Batch, {"batchId": "abc"}),
        (Batch, {"batchId": True}),
        (Batch, {"size": 1.5}),
        (Batch, {"orderNumber": [1]}),
        (Batch, {"batchName": {"a": 1}}),
        (Batch, {"rejectReason": ["x"]}),
        (Batch, {"active": "false"}),
        (Batch, {"creationDate": ["2021-06-02"]}),
        (Batch, {"creationDate": True}),
        (models.Organization, {"authorities": {"id": 1}}),
        (models.Organization, {"authorities": ["abc"]}),
        (models.Organization, {"organizationParameters": ["a"]}),
        (models.Profile, {"algorithms": "RSA2048"}),
        (models.FindCertificateResponse, {"items": [[1, 2]]}),
    ],
)
def test_values_of_the_wrong_type_still_fail(cls: type, data: dict[str, Any]) -> None:
    with pytest.raises(InvalidResponseError, match=f"unexpected response shape for {cls.__name__}"):
        decode(data, cls, "/api/v1/x")


def test_numbers_sent_as_text_or_float_are_read_as_ints() -> None:
    batch = converter.structure({"orderNumber": "90231", "size": 3.0, "userId": -2}, Batch)
    assert (batch.order_number, batch.size, batch.user_id) == (90231, 3, -2)


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


MODEL_CLASSES = [cls for cls in map(models.__dict__.get, models.__all__) if attrs.has(cls)]


def _attrs_twin(cls: type) -> type:
    """The same fields in a class whose repr, eq and hash attrs generates."""
    fields = {
        a.name: attrs.field(default=a.default, repr=a.repr, eq=a.eq, init=a.init)
        for a in attrs.fields(cls)
    }
    return attrs.make_class(cls.__name__, fields, kw_only=True, frozen=True)


def _required(cls: type, **given: Any) -> dict[str, Any]:
    """Values for the fields without a default (an int or a str, by annotation)."""
    samples = {"int": 7, "str": "pw-secret-value"}
    required = [a for a in attrs.fields(cls) if a.init and a.default is attrs.NOTHING]
    return {a.alias: samples[_type_name(a)] for a in required} | given


def _type_name(field: attrs.Attribute[Any]) -> str:
    """``str``, ``int``, ...: the annotation, whether still text or resolved."""
    return field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")


def _hash_or_error(obj: object) -> object:
    try:
        return hash(obj) is not None
    except TypeError as exc:  # a dict field: unhashable, as attrs' own hash would be
        return str(exc)


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_shared_repr_eq_and_hash_match_what_attrs_generates(cls: type) -> None:
    twin = _attrs_twin(cls)
    values = _required(cls)
    changed = next(a for a in attrs.fields(cls) if a.init and a.eq)
    other = values | {changed.alias: {"int": 8}.get(_type_name(changed), "x")}
    assert repr(cls(**values)) == repr(twin(**values))
    assert repr(cls(**other)) == repr(twin(**other))
    assert cls(**values) == cls(**values) and cls(**values) != twin(**values)
    assert (cls(**values) == cls(**other)) is (twin(**values) == twin(**other)) is False
    assert _hash_or_error(cls(**values)) == _hash_or_error(twin(**values))
    if _hash_or_error(cls(**values)) is True:
        assert hash(cls(**values)) == hash(cls(**values))


def test_a_field_left_out_of_eq_does_not_change_equality() -> None:
    data = {"batchId": 7, "creationDate": "yesterday"}
    assert decode(data, Batch, "/api/v1/batches/7") == Batch(batch_id=7)
    masked = CreateSingleCertBatchRequest(
        authority_id=1, batch_name="b", profile_params={"pkcs12Password": "hunter2-secret"}
    )
    assert repr(masked) == repr(
        _attrs_twin(CreateSingleCertBatchRequest)(
            authority_id=1, batch_name="b", profile_params={"pkcs12Password": "hunter2-secret"}
        )
    )


# -- thousands at once: parse_dates and from_columns give what one at a time gives -------

_DATE_FORMS: list[Callable[[datetime], str]] = [
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000",  # Sectigo
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",  # RFC 3339, nanoseconds
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + "-05:30",
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f"),  # no offset: read as UTC
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S"),  # the pattern only
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f") + " +0000",  # the pattern only, 3.11+ too
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f") + "z",
    lambda d: d.strftime("%d/%m/%Y %H:%M"),  # no date we read: ValueError
    lambda d: "",
]


def _parsed(parse: Any, texts: list[str]) -> object:
    """What ``parse`` makes of ``texts``, compared as exactly as a caller can tell."""
    try:
        dates = parse(texts)
    except ValueError as exc:
        return str(exc)
    return [(d, type(d), getattr(d, "text", None), d and d.utcoffset()) for d in dates]


@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)),
            st.sampled_from(range(len(_DATE_FORMS))),
        ).map(lambda pair: _DATE_FORMS[pair[1]](pair[0])),
        max_size=6,
    )
)
def test_parse_dates_gives_what_parse_date_gives_each_text(texts: list[str]) -> None:
    expected = _parsed(lambda all_texts: [parse_date(t) for t in all_texts], texts)
    assert _parsed(models.parse_dates, texts) == expected


def test_parse_dates_of_thousands_in_the_service_format() -> None:
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    moments = [start + timedelta(seconds=37 * i, milliseconds=i % 1000) for i in range(5000)]
    texts = [_DATE_FORMS[0](moment) for moment in moments]
    dates = models.parse_dates(texts)
    assert dates == moments
    assert [(type(d), getattr(d, "text", None)) for d in dates] == [
        (type(parse_date(t)), t) for t in texts
    ]


_FACTORY: type = type(attrs.Factory(dict))


def _state(model: object) -> dict[str, Any]:
    """Every slot of ``model`` (AttributeError for one never set), and its eq, hash, repr."""
    slots = [s for k in type(model).__mro__ for s in getattr(k, "__slots__", ()) if s[:2] != "__"]
    return {slot: getattr(model, slot) for slot in slots} | {
        "eq": model == model,
        "hash": _hash_or_error(model),
        "repr": repr(model),
    }


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_from_columns_builds_what_the_init_builds(cls: type) -> None:
    fields = [a for a in attrs.fields(cls) if a.init]
    changed = next((a for a in fields if a.default is not attrs.NOTHING), fields[0])
    value = {"k": "changed"} if isinstance(changed.default, _FACTORY) else "changed"
    rows = [_required(cls), _required(cls) | {changed.alias: value}]
    columns = {a.name: [getattr(cls(**row), a.name) for row in rows] for a in fields}
    made: list[Any] = models.from_columns(cls, 2, **columns)
    assert [_state(m) for m in made] == [_state(cls(**row)) for row in rows]
    assert [type(m) for m in made] == [cls, cls]


def test_from_columns_gives_each_model_a_fresh_default() -> None:
    made = models.from_columns(
        CreateSingleCertBatchRequest, 2, authority_id=[1, 2], batch_name=["a", "b"]
    )
    assert made == [
        CreateSingleCertBatchRequest(authority_id=1, batch_name="a"),
        CreateSingleCertBatchRequest(authority_id=2, batch_name="b"),
    ]
    assert made[0].profile_params == {} and made[0].profile_params is not made[1].profile_params


def test_from_columns_builds_ten_thousand_certificate_items() -> None:
    texts = [f"{i:08X}" for i in range(10_000)]
    made = models.from_columns(
        CertificateItem, 10_000, serial_number=texts, status=["REVOKED"] * 10_000
    )
    assert made == [CertificateItem(serial_number=t, status="REVOKED") for t in texts]
    assert all(m._unparsed_dates is None for m in made)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made[0].status = "READY"  # type: ignore[misc]


@attrs.frozen
class _Checked:
    size: int = attrs.field(default=0, validator=attrs.validators.ge(0))


@attrs.frozen
class _Converted:
    size: int = attrs.field(default=0, converter=int)


@attrs.frozen
class _Hooked:
    size: int = 0

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "size", self.size * 2)


@attrs.define(slots=False, frozen=True)
class _Unslotted:
    size: int = 0


@attrs.frozen(cache_hash=True)
class _CachedHash:
    size: int = 0


@pytest.mark.parametrize(
    ("cls", "columns", "problem"),
    [
        (_CachedHash, {"size": [1]}, "slots that are not fields"),
        (_Checked, {"size": [-1]}, "cannot be set column-wise"),
        (_Converted, {"size": ["1"]}, "cannot be set column-wise"),
        (_Hooked, {"size": [1]}, "init hooks"),
        (_Unslotted, {"size": [1]}, "cannot be set column-wise"),
        (CertificateItem, {"status": ["a", "b"]}, "2 values, not 1"),
        (CertificateItem, {"colour": ["red"]}, "no init field"),
        (CertificateItem, {"_unparsed_dates": [{}]}, "no init field"),
        (CreateSingleCertBatchRequest, {"batch_name": ["b"]}, "needs authority_id"),
    ],
)
def test_from_columns_refuses_what_it_would_build_otherwise_than_the_init(
    cls: type, columns: dict[str, list[Any]], problem: str
) -> None:
    with pytest.raises(TypeError, match=problem):
        models.from_columns(cls, 1, **columns)
