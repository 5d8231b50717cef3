"""The renewal policy's numbers, property-tested: the renewal point inside its window,
stable for a key and certificate, spread uniformly over a fleet; the backoff doubling and
capped, the emergency override and a changed spec."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sectigo_iot.errors import InvalidInputError
from sectigo_iot.lifecycle import RenewalPolicy

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(timezone.utc)
)
lifetimes = st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=3650))
keys = st.text(min_size=1, max_size=200)


@given(not_before=moments, lifetime=lifetimes, key=keys)
def test_the_default_point_is_inside_two_thirds_give_or_take_five_percent(
    not_before: datetime, lifetime: timedelta, key: str
) -> None:
    policy = RenewalPolicy()
    when = policy.renewal_time(not_before, not_before + lifetime, key)
    assert not_before + lifetime * (2 / 3 - 0.05) <= when <= not_before + lifetime * (2 / 3 + 0.05)
    assert when == policy.renewal_time(not_before, not_before + lifetime, key)  # stable


@given(not_before=moments, key=keys, days=st.integers(min_value=1, max_value=60))
def test_renew_before_is_spread_an_hour_either_way(
    not_before: datetime, key: str, days: int
) -> None:
    not_after = not_before + timedelta(days=90)
    policy = RenewalPolicy(renew_before=timedelta(days=days))
    when = policy.renewal_time(not_before, not_after, key)
    assert abs(when - (not_after - timedelta(days=days))) <= timedelta(hours=1)


def test_a_fleet_issued_in_one_hour_renews_spread_evenly_over_its_window() -> None:
    policy = RenewalPolicy()
    lifetime = timedelta(days=90)
    window = lifetime * policy.spread
    start = START + lifetime * (policy.at - policy.spread / 2)
    bins = [0] * 10
    for number in range(10_000):
        issued = START + timedelta(seconds=number % 3600)  # all within the same hour
        when = policy.renewal_time(issued, issued + lifetime, f"vasp-{number}")
        bins[min(int((when - start) / window * 10), 9)] += 1
    assert all(800 <= count <= 1200 for count in bins), bins  # 1,000 expected in each
    other = RenewalPolicy().renewal_time(START, START + lifetime, "vasp-1")
    assert other != RenewalPolicy().renewal_time(START, START + lifetime, "vasp-2")


@given(failures=st.integers(min_value=1, max_value=10_000))
def test_the_backoff_doubles_from_the_first_and_is_capped(failures: int) -> None:
    policy = RenewalPolicy()
    delay = policy.retry_delay(failures)
    assert delay == min(timedelta(hours=1) * 2 ** min(failures - 1, 10), timedelta(hours=32))
    assert policy.retry_delay(failures + 1) >= delay


@settings(max_examples=200)
@given(lifetime=lifetimes, failures=st.integers(min_value=1, max_value=50), left=st.floats(0, 1))
def test_little_lifetime_left_overrides_the_backoff(
    lifetime: timedelta, failures: int, left: float
) -> None:
    policy = RenewalPolicy()
    not_after = START + lifetime
    now = not_after - lifetime * left
    delay = policy.retry_delay(failures, not_before=START, not_after=not_after, now=now)
    if left < policy.emergency:
        assert delay <= policy.min_interval
    else:
        assert delay == policy.retry_delay(failures)


def test_a_changed_spec_is_retried_at_once() -> None:
    assert RenewalPolicy().retry_delay(7, spec_changed=True) == timedelta(0)


@pytest.mark.parametrize(
    "options",
    [
        {"at": 1.5},
        {"at": True},
        {"spread": -0.1},
        {"at": 0.98, "spread": 0.1},
        {"renew_before": -timedelta(days=1)},
        {"renew_before": 30},
        {"backoff": (timedelta(hours=2), timedelta(hours=1))},
        {"backoff": (timedelta(0), timedelta(hours=1))},
        {"min_interval": "1h"},
        {"milestones": (30, -1)},
        {"milestones": "30"},
    ],
)
def test_bad_numbers_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        RenewalPolicy(**options)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        RenewalPolicy().retry_delay(0)


def test_milestones_are_kept_once_each_largest_first() -> None:
    assert RenewalPolicy(milestones=[7, 30, 7, 0, 10]).milestones == (30, 10, 7, 0)
