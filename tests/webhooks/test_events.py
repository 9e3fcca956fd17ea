"""The event catalogue: payloads built from the resource that recorded each event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from socialpub.models.events import EventType, event_id, with_event
from socialpub.operator.decisions import event_id as operator_event_id
from socialpub.webhooks import events

WHEN = "2026-06-01T09:30:00.123456Z"


def _recorded(obj: dict[str, Any]) -> events.RecordedEvent:
    (event,) = events.recorded_events(obj)
    return event


def _event(type_: EventType) -> dict[str, Any]:
    return {"id": event_id("uid-1", type_), "type": type_.value, "occurredAt": WHEN}


def account(state: str, type_: EventType) -> dict[str, Any]:
    return {
        "metadata": {"name": "account-7", "uid": "uid-1", "labels": {"social.softsolz.uk/id": "7"}},
        "spec": {"platform": "linkedin", "displayName": "Acme Co", "sandbox": True},
        "status": {"state": state, "lifecycleEvents": [_event(type_)]},
    }


def target(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "post-3-7", "uid": "uid-1"},
        "spec": {"postName": "post-3", "accountId": 7},
        "status": status,
    }


def test_the_catalogue_has_the_five_types() -> None:
    assert events.EVENT_TYPES == (
        "social.account_connected",
        "social.account_disconnected",
        "social.post_scheduled",
        "social.post_published",
        "social.post_failed",
    )
    assert set(events.SOURCE_KINDS) == set(EventType)


def test_event_ids_are_the_operators() -> None:
    for type_ in EventType:
        assert event_id("u", type_, "x") == operator_event_id("u", type_.value, "x")
    assert event_id("u", EventType.POST_SCHEDULED, "a") != event_id("u", EventType.POST_SCHEDULED, "b")


def test_with_event_records_once_and_keeps_the_newest() -> None:
    first = _event(EventType.POST_PUBLISHED)
    assert with_event([first], first) == [first]
    many = [{"id": f"evt_{i}", "type": "social.post_scheduled", "occurredAt": WHEN} for i in range(20)]
    assert [e["id"] for e in with_event(many, first)] == [*(f"evt_{i}" for i in range(1, 20)), first["id"]]


def test_account_connected() -> None:
    obj = account("active", EventType.ACCOUNT_CONNECTED)
    body = events.payload(_recorded(obj), obj)
    assert body == {
        "type": "social.account_connected",
        "timestamp": WHEN,
        "data": {"account_id": 7, "platform": "linkedin", "display_name": "Acme Co", "status": "active"},
    }


def test_account_disconnected_says_how() -> None:
    obj = account("revoked", EventType.ACCOUNT_DISCONNECTED)
    assert events.payload(_recorded(obj), obj)["data"]["status"] == "revoked"
    # Reconnected since: the event still says it was disconnected.
    obj["status"]["state"] = "active"
    assert events.payload(_recorded(obj), obj)["data"]["status"] == "disconnected"


def test_post_scheduled() -> None:
    post = {
        "metadata": {"name": "post-3", "labels": {"social.softsolz.uk/id": "3"}},
        "spec": {"scheduledFor": "2030-06-01T09:30:00Z"},
        "status": {
            "scheduledFor": "2030-06-01T09:30:00Z",
            "lifecycleEvents": [_event(EventType.POST_SCHEDULED)],
        },
    }
    body = events.payload(_recorded(post), post)
    assert body["data"] == {"post_id": 3, "scheduled_for": "2030-06-01T09:30:00.000000Z"}


def test_post_published() -> None:
    obj = target(
        state="published",
        platform="facebook",
        externalPostId="123_456",
        externalUrl="https://facebook.com/123_456",
        lifecycleEvents=[_event(EventType.POST_PUBLISHED)],
    )
    body = events.payload(_recorded(obj), obj, post_id=3)
    assert body == {
        "type": "social.post_published",
        "timestamp": WHEN,
        "data": {
            "post_id": 3,
            "account_id": 7,
            "platform": "facebook",
            "external_post_id": "123_456",
            "external_url": "https://facebook.com/123_456",
        },
    }


def test_post_failed_takes_the_platform_from_the_account_if_the_target_has_none() -> None:
    obj = target(
        state="dead",
        attempts=5,
        lastError={"code": "rate_limited", "message": "slow down", "class": "transient"},
        lifecycleEvents=[_event(EventType.POST_FAILED)],
    )
    body = events.payload(_recorded(obj), obj, post_id=3, account={"spec": {"platform": "instagram"}})
    assert body["data"] == {
        "post_id": 3,
        "account_id": 7,
        "platform": "instagram",
        "attempts": 5,
        "last_error": {"code": "rate_limited", "message": "slow down"},
    }


def test_malformed_entries_are_skipped() -> None:
    obj = {
        "status": {
            "lifecycleEvents": [
                {"id": "evt_1", "type": "social.unknown", "occurredAt": WHEN},
                {"id": "", "type": "social.post_failed", "occurredAt": WHEN},
                {"id": "evt_2", "type": "social.post_failed", "occurredAt": "yesterday"},
                "nonsense",
                {"id": "evt_3", "type": "social.post_failed", "occurredAt": WHEN},
            ]
        }
    }
    assert [e.id for e in events.recorded_events(obj)] == ["evt_3"]


@pytest.mark.parametrize(
    ("subscribed", "expected"),
    [([], True), (None, True), (["social.post_failed"], True), (["social.post_published"], False)],
)
def test_filter(subscribed: list[str] | None, expected: bool) -> None:
    assert events.wanted(subscribed, "social.post_failed") is expected


def test_encoding_is_compact_stable_json() -> None:
    body = {"type": "social.post_published", "timestamp": WHEN, "data": {"external_url": "https://x/é"}}
    raw = events.encode(body)
    assert raw == events.encode(json.loads(raw))
    assert b" " not in raw
    assert json.loads(raw) == body
