"""The operator's decisions as pure functions of a resource's state and the time.

Nothing here performs I/O, so every rule — when to publish, when to retry, when to give up,
what a post's phase is — is unit-tested without Kubernetes or a network.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_ATTEMPTS",
    "TARGET_STATES",
    "TargetPlan",
    "backoff_delay",
    "call_budget",
    "claim_until",
    "event_id",
    "failure_status",
    "format_time",
    "parse_time",
    "plan_target",
    "post_phase",
    "resolve_delay",
    "set_condition",
    "target_counts",
    "with_event",
]

MAX_ATTEMPTS = 5
"""The fifth failed attempt dead-letters a target."""
TARGET_STATES = ("pending", "publishing", "published", "failed", "dead", "unknown")
"""``unknown``: the platform cannot tell whether an interrupted attempt landed. It needs a person
(never re-sent automatically), and the post counts it neither as published nor as dead."""


def format_time(moment: float) -> str:
    """RFC 3339 UTC with microseconds (what the REST API shows, and what lateness is measured in)."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 string (``None`` for absent or unparseable values)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def backoff_delay(
    attempts: int, *, base: float, rng: random.Random, factor: float = 2.0, cap: float = 3600.0
) -> float:
    """Exponential backoff with full jitter after ``attempts`` failed attempts.

    Full jitter (uniform between 0 and the exponential ceiling) spreads retries of many targets
    that failed together, so a platform outage does not end in a synchronized retry storm.
    """
    ceiling = min(cap, base * factor ** min(max(0, attempts - 1), 64))
    return rng.uniform(0, ceiling)


def failure_status(
    *,
    attempts_before: int,
    classification: str,
    code: str,
    message: str,
    now: float,
    base: float,
    rng: random.Random,
    retry_after: float | None = None,
    not_before: float | None = None,
) -> dict[str, Any]:
    """The target status after a failed attempt: ``failed`` with a next attempt, or ``dead``.

    Only a ``transient`` error is retried: ``permanent`` (the content is refused) and ``reconnect``
    (the account's authorization is gone; a person must reconnect it) dead-letter at once.
    ``not_before`` (an ambiguous failure: the attempt's ``leaseUntil``) is a floor for the next
    attempt: the platform may still commit the failed call until then, and a lookup made
    earlier would miss it and send again.
    """
    attempts = attempts_before + 1
    error = {"code": code, "message": message[:2000], "class": classification}
    if classification != "transient" or attempts >= MAX_ATTEMPTS:
        return {"state": "dead", "attempts": attempts, "lastError": error, "nextAttemptAt": None}
    delay = backoff_delay(attempts, base=base, rng=rng)
    if retry_after is not None:
        delay = max(delay, retry_after)
    due = now + delay
    if not_before is not None:
        due = max(due, not_before)
    return {
        "state": "failed",
        "attempts": attempts,
        "lastError": error,
        "nextAttemptAt": format_time(due),
    }


@dataclass(frozen=True)
class TargetPlan:
    """What to do with a target now: ``deliver``, ``resolve`` (outcome unknown), ``wait`` or ``nothing``."""

    action: str
    until: float | None = None


def claim_until(*, claimed_at: float, call_seconds: float, settle_seconds: float) -> float:
    """Until when a ``publishing`` claim is its owner's (``status.leaseUntil``).

    A platform call sent just before its owner died can still land until the call's worst-case
    duration has passed, and the platform may need a moment more before a lookup shows it; a
    "did it land?" check made earlier could miss a post that is about to appear and send it again.
    """
    return claimed_at + max(0.0, call_seconds) + max(0.0, settle_seconds)


def call_budget(*, lease_until: float, settle_seconds: float, now: float) -> float:
    """How long the platform call may still run once its claim is stored: the claim's lease
    minus the settle margin minus the time already spent (the claim write itself). Measured
    after the claim write returns, so a slow write shortens the call, never the settle margin."""
    return lease_until - max(0.0, settle_seconds) - now


def resolve_delay(
    status: Mapping[str, Any], *, identity: str, first_seen: float | None, now_monotonic: float
) -> float:
    """Seconds this process must still wait, on its own monotonic clock, before resolving a claim.

    ``leaseUntil`` is the claimer's wall clock; read by another machine whose clock is behind by
    more than the settle margin it would let a resolve run while the create may still land. So a
    claim another process made is also not resolved before the claim's own duration
    (``leaseUntil - lastAttemptAt``: the call budget plus the settle margin, a difference of two
    readings of one clock) has passed on *this* process's monotonic clock since it first saw the
    claim. ``first_seen`` is that moment (``None``: not seen yet, so the whole duration is left).
    Our own claims and claims without ``leaseUntil`` (from before it existed) wait for nothing here.
    """
    if status.get("claimedBy") == identity:
        return 0.0
    until = parse_time(status.get("leaseUntil"))
    started = parse_time(status.get("lastAttemptAt"))
    if until is None or started is None:
        return 0.0
    duration = max(0.0, until - started)
    if first_seen is None:
        return duration
    return max(0.0, first_seen + duration - now_monotonic)


def plan_target(status: Mapping[str, Any], *, released: bool, in_flight: bool, now: float) -> TargetPlan:
    """Decide a target's next step from its status.

    ``publishing`` that this process is not working on means an attempt was interrupted (a crash,
    a restart, a call that overran its budget). It is resolved by asking the platform before
    anything is retried, but only once its ``leaseUntil`` has passed: until then the attempt may
    still land, so its owner's claim stands and the target waits (a claim without ``leaseUntil``
    predates it and is resolved at once, as before). ``unknown`` waits for a person.
    """
    if not released:
        return TargetPlan("nothing")
    state = status.get("state") or "pending"
    if state == "pending":
        return TargetPlan("deliver")
    if state == "publishing":
        if in_flight:
            return TargetPlan("nothing")
        until = parse_time(status.get("leaseUntil"))
        if until is not None and until > now:
            return TargetPlan("wait", until)
        return TargetPlan("resolve")
    if state == "failed":
        due = parse_time(status.get("nextAttemptAt"))
        if due is None or due <= now:
            return TargetPlan("deliver")
        return TargetPlan("wait", due)
    return TargetPlan("nothing")


def target_counts(states: Iterable[str]) -> dict[str, int]:
    counts = Counter(states)
    result = {state: counts.get(state, 0) for state in TARGET_STATES}
    result["total"] = sum(counts.values())
    return result


def post_phase(*, draft: bool, released: bool, due: float | None, now: float, states: Sequence[str]) -> str:
    """The post's phase, following its targets once it is released.

    Once released a post is never a draft again, whatever ``draft`` says. A target whose outcome
    is ``unknown`` keeps the post ``publishing``: it is neither published nor failed until a
    person has checked the account (the ``NeedsAttention`` condition says so).
    """
    if not released:
        if draft:
            return "draft"
        return "scheduled" if due is not None and due > now else "publishing"
    if not states or any(s in ("pending", "publishing", "failed", "unknown") for s in states):
        return "publishing"
    published = sum(1 for s in states if s == "published")
    if published == len(states):
        return "published"
    return "partially_published" if published else "failed"


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """``conditions`` with ``type`` set; ``lastTransitionTime`` moves only when ``status`` flips."""
    result: list[dict[str, Any]] = []
    found = False
    for condition in conditions:
        if condition.get("type") != type:
            result.append(dict(condition))
            continue
        found = True
        changed = condition.get("status") != status
        result.append(
            {
                "type": type,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": now if changed else condition.get("lastTransitionTime", now),
            }
        )
    if not found:
        result.append(
            {
                "type": type,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": now,
            }
        )
    return result


def event_id(uid: str, event_type: str, discriminator: str = "") -> str:
    """A stable lifecycle event id: the same transition always yields the same id (and webhook-id)."""
    digest = hashlib.sha256(f"{uid}|{event_type}|{discriminator}".encode()).hexdigest()[:24]
    return f"evt_{digest}"


def with_event(
    events: Sequence[Mapping[str, Any]], event: Mapping[str, Any], *, keep: int = 20
) -> list[dict[str, Any]]:
    """``events`` plus ``event`` (once: ids are stable), keeping the newest ``keep``."""
    existing = [dict(e) for e in events]
    if any(e.get("id") == event["id"] for e in existing):
        return existing
    return [*existing, dict(event)][-keep:]
