"""The operator's pure decisions: no Kubernetes, no network, no clock but the one passed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from socialpub.operator import decisions
from socialpub.operator.decisions import (
    MAX_ATTEMPTS,
    TargetPlan,
    backoff_delay,
    claim_until,
    event_id,
    failure_status,
    format_time,
    parse_time,
    plan_target,
    post_phase,
    set_condition,
    target_counts,
    with_event,
)

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC).timestamp()


# Time.


def test_format_and_parse_round_trip_to_the_microsecond() -> None:
    moment = NOW + 0.123456
    text = format_time(moment)
    assert text == "2026-06-10T09:00:00.123456Z"
    assert parse_time(text) == pytest.approx(moment, abs=1e-6)


@pytest.mark.parametrize("value", [None, "", "soon", 12, "2026-13-01T00:00:00Z"])
def test_parse_time_of_nonsense_is_none(value: object) -> None:
    assert parse_time(value) is None


def test_parse_time_without_offset_is_utc() -> None:
    assert parse_time("2026-06-10T09:00:00") == NOW


# Backoff.


@pytest.mark.parametrize(
    ("attempts", "ceiling"), [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (8, 3600), (40, 3600)]
)
def test_backoff_is_full_jitter_under_an_exponential_ceiling(attempts: int, ceiling: float) -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempts, base=30, rng=rng) for _ in range(2000)]
    assert all(0 <= d <= ceiling for d in delays)
    # Full jitter: the whole range is used, not a band near the ceiling.
    assert min(delays) < ceiling * 0.05
    assert max(delays) > ceiling * 0.95
    assert sum(delays) / len(delays) == pytest.approx(ceiling / 2, rel=0.1)


def test_backoff_is_reproducible_with_a_seeded_random() -> None:
    first = [backoff_delay(a, base=30, rng=random.Random(42)) for a in range(1, 6)]
    again = [backoff_delay(a, base=30, rng=random.Random(42)) for a in range(1, 6)]
    assert first == again


def test_backoff_factor_and_cap_are_settings() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert backoff_delay(3, base=1, rng=Top(), factor=3) == 9
    assert backoff_delay(4, base=1, rng=Top(), cap=5) == 5  # 1 * 2**3 = 8, capped
    assert backoff_delay(10_000, base=30, rng=Top()) == 3600  # no overflow for absurd counts


# Failures.


def _failure(attempts_before: int, classification: str = "transient", **kw: object) -> dict:
    return failure_status(
        attempts_before=attempts_before,
        classification=classification,
        code="boom",
        message="it broke",
        now=NOW,
        base=30,
        rng=random.Random(1),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("attempts_before", [0, 1, 2, 3])
def test_a_transient_failure_before_the_fifth_is_retried(attempts_before: int) -> None:
    status = _failure(attempts_before)
    assert status["state"] == "failed"
    assert status["attempts"] == attempts_before + 1
    assert status["lastError"] == {"code": "boom", "message": "it broke", "class": "transient"}
    due = parse_time(status["nextAttemptAt"])
    assert due is not None
    assert NOW <= due <= NOW + 30 * 2**attempts_before


def test_the_fifth_failure_is_dead() -> None:
    status = _failure(MAX_ATTEMPTS - 1)
    assert status == {
        "state": "dead",
        "attempts": 5,
        "lastError": {"code": "boom", "message": "it broke", "class": "transient"},
        "nextAttemptAt": None,
    }


@pytest.mark.parametrize("classification", ["permanent", "reconnect"])
def test_a_permanent_or_reconnect_failure_is_dead_at_once(classification: str) -> None:
    status = _failure(0, classification)
    assert status["state"] == "dead"
    assert status["attempts"] == 1
    assert status["lastError"]["class"] == classification
    assert status["nextAttemptAt"] is None


def test_retry_after_is_a_floor_on_the_delay() -> None:
    status = _failure(0, retry_after=900)
    assert parse_time(status["nextAttemptAt"]) == pytest.approx(NOW + 900)


def test_an_ambiguous_failure_is_not_retried_before_the_attempts_lease() -> None:
    """The failed call may still be committed by the platform until the claim's ``leaseUntil``: a
    retry (and its lookup) before then could miss it and send again (full jitter can be ~0 s)."""
    lease_until = NOW + 150
    for seed in range(50):
        status = failure_status(
            attempts_before=0,
            classification="transient",
            code="linkedin_timeout",
            message="read timed out",
            now=NOW,
            base=30,
            rng=random.Random(seed),
            not_before=lease_until,
        )
        assert status["state"] == "failed"
        assert parse_time(status["nextAttemptAt"]) >= lease_until
    later = _failure(3, not_before=NOW + 1)  # a backoff longer than the lease is kept
    assert parse_time(later["nextAttemptAt"]) >= NOW + 1


def test_a_long_error_message_is_truncated() -> None:
    status = failure_status(
        attempts_before=0,
        classification="transient",
        code="x",
        message="y" * 5000,
        now=NOW,
        base=30,
        rng=random.Random(1),
    )
    assert len(status["lastError"]["message"]) == 2000


# The next step of a target.


def test_nothing_happens_before_release() -> None:
    for state in (None, *decisions.TARGET_STATES):
        assert plan_target({"state": state}, released=False, in_flight=False, now=NOW) == TargetPlan(
            "nothing"
        )


@pytest.mark.parametrize(
    ("status", "in_flight", "plan"),
    [
        ({}, False, TargetPlan("deliver")),
        ({"state": "pending"}, False, TargetPlan("deliver")),
        ({"state": "publishing"}, True, TargetPlan("nothing")),
        ({"state": "publishing"}, False, TargetPlan("resolve")),
        ({"state": "failed", "nextAttemptAt": format_time(NOW - 1)}, False, TargetPlan("deliver")),
        ({"state": "failed", "nextAttemptAt": format_time(NOW)}, False, TargetPlan("deliver")),
        ({"state": "failed"}, False, TargetPlan("deliver")),
        ({"state": "failed", "nextAttemptAt": format_time(NOW + 60)}, False, TargetPlan("wait", NOW + 60)),
        ({"state": "published"}, False, TargetPlan("nothing")),
        ({"state": "dead"}, False, TargetPlan("nothing")),
        ({"state": "unknown"}, False, TargetPlan("nothing")),
        # A claim is its owner's until leaseUntil: the attempt may still land until then.
        ({"state": "publishing", "leaseUntil": format_time(NOW + 30)}, False, TargetPlan("wait", NOW + 30)),
        ({"state": "publishing", "leaseUntil": format_time(NOW + 30)}, True, TargetPlan("nothing")),
        ({"state": "publishing", "leaseUntil": format_time(NOW)}, False, TargetPlan("resolve")),
        ({"state": "publishing", "leaseUntil": format_time(NOW - 1)}, False, TargetPlan("resolve")),
    ],
)
def test_plan_target(status: dict, in_flight: bool, plan: TargetPlan) -> None:
    assert plan_target(status, released=True, in_flight=in_flight, now=NOW) == plan


def test_an_unexpired_claim_is_never_resolved_however_often_it_is_looked_at() -> None:
    status = {"state": "publishing", "claimedBy": "other", "leaseUntil": format_time(NOW + 90)}
    for now in (NOW, NOW + 30, NOW + 89.999):
        assert plan_target(status, released=True, in_flight=False, now=now).action == "wait"
    assert plan_target(status, released=True, in_flight=False, now=NOW + 90).action == "resolve"


def test_a_claim_made_elsewhere_waits_its_whole_duration_on_our_own_clock() -> None:
    """``leaseUntil`` is the claimer's wall clock: with ours 60 s ahead it has "passed" at once,
    but a claim first seen now is not resolved before its own duration (budget + settle) has run
    on this process's monotonic clock."""
    claim = {
        "state": "publishing",
        "claimedBy": "other-operator",
        "lastAttemptAt": format_time(NOW - 60),
        "leaseUntil": format_time(NOW - 60 + 150),
    }
    skewed_now = NOW + 100  # our wall clock: past leaseUntil already
    assert plan_target(claim, released=True, in_flight=False, now=skewed_now).action == "resolve"
    assert decisions.resolve_delay(claim, identity="me", first_seen=None, now_monotonic=5.0) == 150
    assert decisions.resolve_delay(claim, identity="me", first_seen=5.0, now_monotonic=5.0) == 150
    assert decisions.resolve_delay(claim, identity="me", first_seen=5.0, now_monotonic=100.0) == 55
    assert decisions.resolve_delay(claim, identity="me", first_seen=5.0, now_monotonic=155.0) == 0
    # Our own claims (same clock) and claims from before leaseUntil existed wait for nothing more.
    assert decisions.resolve_delay(claim, identity="other-operator", first_seen=None, now_monotonic=0) == 0
    legacy = {"state": "publishing", "lastAttemptAt": format_time(NOW)}
    assert decisions.resolve_delay(legacy, identity="me", first_seen=None, now_monotonic=0) == 0


def test_the_call_budget_is_what_the_claim_write_left_of_the_lease() -> None:
    """Measured after the claim write returns: a slow write shortens the call, not the settle margin."""
    lease_until = claim_until(claimed_at=NOW, call_seconds=120, settle_seconds=30)
    assert decisions.call_budget(lease_until=lease_until, settle_seconds=30, now=NOW) == 120
    assert decisions.call_budget(lease_until=lease_until, settle_seconds=30, now=NOW + 50) == 70
    assert decisions.call_budget(lease_until=lease_until, settle_seconds=30, now=NOW + 130) == -10


def test_a_claim_covers_the_worst_case_call_and_a_settle_margin() -> None:
    assert claim_until(claimed_at=NOW, call_seconds=120, settle_seconds=30) == NOW + 150
    assert claim_until(claimed_at=NOW, call_seconds=-1, settle_seconds=-1) == NOW


# The post's phase.


@pytest.mark.parametrize(
    ("draft", "due", "phase"),
    [
        (True, None, "draft"),
        (True, NOW + 60, "draft"),
        (True, NOW - 60, "draft"),
        (False, NOW + 60, "scheduled"),
        (False, NOW, "publishing"),
        (False, NOW - 60, "publishing"),
        (False, None, "publishing"),
    ],
)
def test_phase_before_release(draft: bool, due: float | None, phase: str) -> None:
    assert post_phase(draft=draft, released=False, due=due, now=NOW, states=["pending"]) == phase


@pytest.mark.parametrize(
    ("states", "phase"),
    [
        ([], "publishing"),
        (["pending"], "publishing"),
        (["publishing", "published"], "publishing"),
        (["failed", "published"], "publishing"),
        (["failed", "dead"], "publishing"),
        (["pending", "dead"], "publishing"),
        (["published"], "published"),
        (["published", "published", "published"], "published"),
        (["published", "dead"], "partially_published"),
        (["dead", "published", "dead"], "partially_published"),
        (["dead"], "failed"),
        (["dead", "dead"], "failed"),
        # unknown is neither published nor dead: the post waits for a person.
        (["unknown"], "publishing"),
        (["published", "unknown"], "publishing"),
        (["dead", "unknown"], "publishing"),
    ],
)
def test_phase_after_release_follows_the_targets(states: list[str], phase: str) -> None:
    # Once released, draft and due no longer matter.
    for draft in (True, False):
        assert post_phase(draft=draft, released=True, due=NOW + 60, now=NOW, states=states) == phase


def test_target_counts() -> None:
    assert target_counts(["published", "dead", "published", "failed", "unknown"]) == {
        "pending": 0, "publishing": 0, "published": 2, "failed": 1, "dead": 1, "unknown": 1, "total": 5,
    }  # fmt: skip
    assert target_counts([]) == dict.fromkeys(
        ("pending", "publishing", "published", "failed", "dead", "unknown", "total"), 0
    )


# Conditions.


def _ready(
    conditions: list[dict], status: str, now: str, reason: str = "R", generation: int = 1
) -> list[dict]:
    return set_condition(
        conditions,
        type="Ready",
        status=status,
        reason=reason,
        message=f"m {reason}",
        generation=generation,
        now=now,
    )


def test_set_condition_adds_then_updates_in_place() -> None:
    first = _ready([], "False", "t1")
    assert first == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "R",
            "message": "m R",
            "observedGeneration": 1,
            "lastTransitionTime": "t1",
        }
    ]
    other = set_condition(
        first, type="Scheduled", status="True", reason="S", message="", generation=1, now="t1"
    )
    assert [c["type"] for c in other] == ["Ready", "Scheduled"]


def test_last_transition_time_moves_only_when_the_status_flips() -> None:
    conditions = _ready([], "False", "t1")
    same = _ready(conditions, "False", "t2", reason="Other", generation=2)
    assert same[0]["lastTransitionTime"] == "t1"
    assert (same[0]["reason"], same[0]["observedGeneration"]) == ("Other", 2)
    flipped = _ready(same, "True", "t3")
    assert flipped[0]["lastTransitionTime"] == "t3"
    again = _ready(flipped, "True", "t4")
    assert again[0]["lastTransitionTime"] == "t3"


def test_set_condition_does_not_mutate_its_input() -> None:
    conditions = _ready([], "False", "t1")
    snapshot = [dict(c) for c in conditions]
    _ready(conditions, "True", "t2")
    assert conditions == snapshot


# Lifecycle events.


def test_event_ids_are_stable_and_distinct() -> None:
    assert event_id("uid-1", "social.post_published") == event_id("uid-1", "social.post_published")
    ids = {
        event_id("uid-1", "social.post_published"),
        event_id("uid-2", "social.post_published"),
        event_id("uid-1", "social.post_failed"),
        event_id("uid-1", "social.post_scheduled", "2026-06-10T09:00:00Z"),
        event_id("uid-1", "social.post_scheduled", "2026-06-10T10:00:00Z"),
    }
    assert len(ids) == 5
    assert all(i.startswith("evt_") and len(i) <= 64 for i in ids)


def test_with_event_records_each_event_once() -> None:
    event = {"id": "evt_1", "type": "social.post_published", "occurredAt": "t1"}
    once = with_event([], event)
    assert once == [event]
    assert with_event(once, {**event, "occurredAt": "t2"}) == [event]  # the first record stands


def test_with_event_keeps_the_newest() -> None:
    events: list[dict] = []
    for i in range(30):
        events = with_event(events, {"id": f"evt_{i}", "type": "social.post_scheduled", "occurredAt": str(i)})
    assert [e["id"] for e in events] == [f"evt_{i}" for i in range(10, 30)]
    assert len(with_event(events, {"id": "evt_x", "type": "t", "occurredAt": "x"}, keep=3)) == 3
