"""The retry schedule (Standard Webhooks), its scaling, and delivery names."""

from __future__ import annotations

import random

import pytest

from socialpub.webhooks.schedule import (
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    delivery_name,
    parse_retry_after,
    retry_delay,
)


def test_the_schedule_is_the_specifications() -> None:
    hours = 3600
    expected = (0, 5, 300, 1800, 2 * hours, 5 * hours, 10 * hours, 14 * hours, 20 * hours, 24 * hours)
    assert expected == RETRY_SCHEDULE
    assert MAX_ATTEMPTS == 10
    assert sum(RETRY_SCHEDULE) == 75 * hours + 35 * 60 + 5


def test_delays_follow_the_schedule_with_at_most_ten_percent_jitter() -> None:
    rng = random.Random(1)
    for failed in range(1, MAX_ATTEMPTS):
        delay = retry_delay(failed, rng=rng)
        assert delay is not None
        assert RETRY_SCHEDULE[failed] <= delay <= RETRY_SCHEDULE[failed] * 1.1
    assert retry_delay(MAX_ATTEMPTS) is None
    assert retry_delay(0) == 0


def test_the_base_scales_the_whole_schedule() -> None:
    rng = random.Random(2)
    for failed in range(1, MAX_ATTEMPTS):
        delay = retry_delay(failed, base=0.05, rng=rng)
        assert delay is not None
        assert RETRY_SCHEDULE[failed] / 100 <= delay <= RETRY_SCHEDULE[failed] / 100 * 1.1


def test_retry_after_only_ever_lengthens_a_delay() -> None:
    assert retry_delay(1, retry_after=60, rng=random.Random(0)) == 60
    delay = retry_delay(2, retry_after=60, rng=random.Random(0))
    assert delay is not None
    assert delay >= 300
    assert retry_delay(1, retry_after=10**9, rng=random.Random(0)) == 86400


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), ("", None), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0)],
)
def test_retry_after_header(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1445412480.0) == expected


def test_delivery_names_are_deterministic_and_distinct() -> None:
    name = delivery_name("webhook-1", "uid-a", "evt_1")
    assert name == delivery_name("webhook-1", "uid-a", "evt_1")
    assert name.startswith("webhook-1-")
    assert (
        len(
            {name, delivery_name("webhook-1", "uid-b", "evt_1"), delivery_name("webhook-1", "uid-a", "evt_2")}
        )
        == 3
    )
    long = delivery_name("a" * 253, "uid", "evt")
    assert len(long) <= 253
