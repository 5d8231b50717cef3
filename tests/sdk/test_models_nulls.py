"""Every model, found automatically: round trips, ``null`` and absent fields, unknown dates.

The real service (Spring) sends ``null`` for absent values. A field sent as ``null`` reads
as absent: its default (the Go zero value), or ``None`` where the model types it optional.
Inside a list or a map a ``null`` is the element type's zero value. Never the text "None".
"""

from __future__ import annotations

import json
import types
import typing
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sectigo_iot import BatchFailedError, SectigoClient, models
from sectigo_iot._response import decode
from sectigo_iot.models import Authority, Batch, Organization, converter, strict_converter
from tests.support import BASE

MODELS: list[type] = sorted(
    (
        obj
        for obj in (getattr(models, name) for name in models.__all__)
        if isinstance(obj, type) and attrs.has(obj)
    ),
    key=lambda cls: cls.__name__,
)
NONE = type(None)


def camel(name: str) -> str:
    """The JSON name of an attribute (``profile_id`` -> ``profileId``)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def init_fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [f for f in attrs.fields(cls) if f.init]


def hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def without_none(tp: Any) -> Any:
    """``X`` for ``X | None``; ``tp`` otherwise."""
    if is_union(tp):
        (inner,) = [a for a in typing.get_args(tp) if a is not NONE]
        return inner
    return tp


def admits_none(tp: Any) -> bool:
    return tp is Any or (is_union(tp) and NONE in typing.get_args(tp))


def default_of(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]


def zero_of(tp: Any) -> Any:
    """Go's zero value of a list element or map value type."""
    if attrs.has(tp):
        return tp()
    return {str: "", int: 0, bool: False}[tp]


def texts(max_size: int) -> st.SearchStrategy[str]:
    return st.text(max_size=max_size).filter(lambda s: s != "None")


DATES = st.datetimes(timezones=st.just(timezone.utc)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
)


def value_strategy(tp: Any) -> st.SearchStrategy[Any]:
    """Valid values of a model field's type (JSON-representable)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if is_union(tp):
        return st.one_of(*[value_strategy(a) for a in args])
    if tp is NONE:
        return st.none()
    if origin is list:
        return st.lists(value_strategy(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(texts(10), texts(10), max_size=3)
    if attrs.has(tp):
        return model_strategy(tp)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        int: st.integers(-(2**40), 2**40),
        str: texts(20),
        bool: st.booleans(),
        datetime: DATES,
        Any: st.none() | st.integers() | texts(10),
    }
    return simple[tp]


def model_strategy(cls: type) -> st.SearchStrategy[Any]:
    types_ = hints(cls)
    return st.builds(cls, **{f.name: value_strategy(types_[f.name]) for f in init_fields(cls)})


@st.composite
def with_nulls(draw: st.DrawFn, tp: Any, value: Any) -> tuple[Any, Any]:
    """JSON for ``value`` with nulls and absent fields at any depth, and what it must read as."""
    if value is None:
        return None, None
    if attrs.has(type(value)):
        cls = type(value)
        data: dict[str, Any] = {}
        expected: dict[str, Any] = {}
        for field in init_fields(cls):
            field_type = hints(cls)[field.name]
            has_default = field.default is not attrs.NOTHING
            how = draw(st.sampled_from(["keep", "null", "drop"] if has_default else ["keep"]))
            if how == "keep":
                data[camel(field.name)], expected[field.name] = draw(
                    with_nulls(field_type, getattr(value, field.name))
                )
            elif how == "null":
                data[camel(field.name)] = None
                expected[field.name] = None if admits_none(field_type) else default_of(field)
            else:
                expected[field.name] = default_of(field)
        return data, cls(**expected)
    tp = without_none(tp)
    if isinstance(value, list):
        (item_type,) = typing.get_args(tp)
        pairs = [
            (None, zero_of(item_type)) if draw(st.booleans()) else draw(with_nulls(item_type, v))
            for v in value
        ]
        return [j for j, _ in pairs], [e for _, e in pairs]
    if isinstance(value, dict):
        nulled = {k for k in value if draw(st.booleans())}
        return (
            {k: None if k in nulled else v for k, v in value.items()},
            {k: "" if k in nulled else v for k, v in value.items()},
        )
    return converter.unstructure(value), value


def strings_in(value: Any) -> list[str]:
    """Every str inside a decoded model (attributes, list items, map keys and values)."""
    if isinstance(value, str):
        return [value]
    if attrs.has(type(value)):
        return [s for f in init_fields(type(value)) for s in strings_in(getattr(value, f.name))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings_in(k) + strings_in(v)]
    return []


def test_every_exported_model_is_found() -> None:
    assert {Batch, Organization, Authority, models.ErrorBody} <= set(MODELS)
    assert models.BatchStatus not in MODELS


@pytest.mark.parametrize("cls", MODELS, ids=[c.__name__ for c in MODELS])
def test_every_model_round_trips(cls: type) -> None:
    @settings(max_examples=40, deadline=None)
    @given(model_strategy(cls))
    def check(value: Any) -> None:
        data = json.loads(json.dumps(converter.unstructure(value)))
        assert strict_converter.structure(data, cls) == value

    check()


@pytest.mark.parametrize("cls", MODELS, ids=[c.__name__ for c in MODELS])
def test_every_model_reads_null_and_absent_fields_at_any_depth(cls: type) -> None:
    @settings(max_examples=60, deadline=None)
    @given(model_strategy(cls).flatmap(lambda value: with_nulls(cls, value)))
    def check(case: tuple[dict[str, Any], Any]) -> None:
        data, expected = case
        data = json.loads(json.dumps(data))
        for conv in (converter, strict_converter):
            decoded: Any = conv.structure(data, cls)
            assert decoded == expected
            assert "None" not in strings_in(decoded)

    check()


REQUIRED = [
    (cls, field.name)
    for cls in MODELS
    for field in init_fields(cls)
    if field.default is attrs.NOTHING
]


@pytest.mark.parametrize(("cls", "name"), REQUIRED, ids=[f"{c.__name__}.{n}" for c, n in REQUIRED])
def test_a_required_field_sent_as_null_is_missing(cls: type, name: str) -> None:
    """Request bodies the emulator parses: a null required field is a 400, not "None"."""

    @settings(max_examples=10, deadline=None)
    @given(model_strategy(cls))
    def check(value: Any) -> None:
        data = converter.unstructure(value)
        for body in (
            {**data, camel(name): None},
            {k: v for k, v in data.items() if k != camel(name)},
        ):
            with pytest.raises(Exception, match=cls.__name__):
                converter.structure(body, cls)

    check()


DATED = [
    (cls, field.name)
    for cls in MODELS
    for field in init_fields(cls)
    if datetime in (hints(cls)[field.name], *typing.get_args(hints(cls)[field.name]))
]


@pytest.mark.parametrize(("cls", "name"), DATED, ids=[f"{c.__name__}.{n}" for c, n in DATED])
def test_every_date_in_an_unknown_format_reads_as_none_and_keeps_its_text(
    cls: type, name: str
) -> None:
    @settings(max_examples=20, deadline=None)
    @given(model_strategy(cls), st.sampled_from(["31/12/2021", "soon", "2021-06-02", 1.6e12]))
    def check(value: Any, raw: Any) -> None:
        data = {**converter.unstructure(value), camel(name): raw}
        decoded: Any = converter.structure(data, cls)
        assert getattr(decoded, name) is None
        assert decoded == attrs.evolve(value, **{name: None})
        assert converter.unstructure(decoded) == data

    check()


def test_dated_models_are_found() -> None:
    assert {(Batch, "creation_date"), (models.CertificateItem, "creation_date")} <= set(DATED)


SPRING_BATCH = {
    "batchId": 1187,
    "orderNumber": None,
    "creationDate": None,
    "profile": None,
    "size": None,
    "status": "CREATED",
    "active": None,
    "batchName": None,
    "rejectReason": None,
    "generatorParametersValues": None,
    "userId": None,
    "downloadable": None,
    "rejectable": None,
}


def test_a_spring_batch_with_nulls_decodes_to_zero_values() -> None:
    batch = decode(SPRING_BATCH, Batch, "/api/v1/batches/1187")
    assert batch == Batch(batch_id=1187, status="CREATED")
    assert batch.reject_reason == "" and batch.order_number == 0 and batch.user_id == 0


def test_nulls_inside_an_organization() -> None:
    data = {
        "organizationId": 1042,
        "organizationName": None,
        "authorities": [None, {"id": 423, "ecosystemName": None, "balance": None}],
        "organizationParameters": {"country": None, "state": "CA"},
        "orgStatus": None,
    }
    org = decode(data, Organization, "/api/v1/organizations/user")
    assert org.organization_id == 1042 and org.organization_name == ""
    assert org.authorities == [Authority(), Authority(id=423)]
    assert org.organization_parameters == {"country": "", "state": "CA"}
    no_lists = decode({"authorities": None, "organizationParameters": None}, Organization, "/")
    assert no_lists.authorities is None and no_lists.organization_parameters is None


async def test_wait_does_not_read_a_null_reject_reason_as_a_rejection(
    client: SectigoClient, httpx_mock: Any, login: Any
) -> None:
    """A null ``rejectReason`` once became the text "None", turning a failure into a rejection."""
    login()
    httpx_mock.add_response(
        url=f"{BASE}/api/v1/batches/1187", json={**SPRING_BATCH, "status": "ISSUE_ERROR"}
    )  # a status the detail cannot tell: the counts are asked
    httpx_mock.add_response(
        url=f"{BASE}/api/v1/batches/1187/processing_info",
        json={"active": None, "success": None, "failed": 1},
    )
    with pytest.raises(BatchFailedError) as caught:
        await client.batches.wait(1187)
    assert type(caught.value) is BatchFailedError
    assert caught.value.batch is not None and caught.value.batch.reject_reason == ""
