"""The event catalogue: which events exist, what their payloads hold, and how they are encoded — pure.

Every event is recorded by the operator (or the CLI) in ``status.lifecycleEvents`` of the resource
whose transition caused it:

=============================== ============== ===================================================
type                            recorded on    ``data``
=============================== ============== ===================================================
``social.account_connected``    SocialAccount  ``account_id``, ``platform``, ``display_name``, ``status``
``social.account_disconnected`` SocialAccount  ``account_id``, ``platform``, ``display_name``, ``status``
``social.post_scheduled``       SocialPost     ``post_id``, ``scheduled_for``
``social.post_published``       SocialTarget   ``post_id``, ``account_id``, ``platform``,
                                               ``external_post_id``, ``external_url``
``social.post_failed``          SocialTarget   ``post_id``, ``account_id``, ``platform``, ``attempts``,
                                               ``last_error`` (``{"code", "message"}``)
=============================== ============== ===================================================

A payload is ``{"type", "timestamp", "data"}`` (Standard Webhooks), ``timestamp`` being when the
event occurred (RFC 3339, UTC, microseconds), and the field names those of the REST API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from socialpub.models.events import EventType

__all__ = [
    "EVENT_TYPES",
    "SOURCE_KINDS",
    "RecordedEvent",
    "encode",
    "format_time",
    "parse_time",
    "payload",
    "recorded_events",
    "wanted",
]

EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)

SOURCE_KINDS: dict[EventType, str] = {
    EventType.ACCOUNT_CONNECTED: "SocialAccount",
    EventType.ACCOUNT_DISCONNECTED: "SocialAccount",
    EventType.POST_SCHEDULED: "SocialPost",
    EventType.POST_PUBLISHED: "SocialTarget",
    EventType.POST_FAILED: "SocialTarget",
}
"""The kind of resource that records each event (and whose state its payload is built from)."""

_ID_LABEL = "social.softsolz.uk/id"


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 string; ``None`` if absent or unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def format_time(moment: float) -> str:
    """RFC 3339, UTC, microseconds, ``Z`` — the REST API's time format."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RecordedEvent:
    """One entry of ``status.lifecycleEvents``."""

    id: str
    type: EventType
    occurred_at: float


def recorded_events(obj: Mapping[str, Any]) -> list[RecordedEvent]:
    """The well-formed lifecycle events recorded in ``obj``'s status, oldest first."""
    result = []
    for entry in (obj.get("status") or {}).get("lifecycleEvents") or []:
        if not isinstance(entry, Mapping):
            continue
        occurred = parse_time(entry.get("occurredAt"))
        type_ = entry.get("type")
        id_ = entry.get("id")
        if occurred is None or type_ not in EVENT_TYPES or not isinstance(id_, str) or not id_:
            continue
        result.append(RecordedEvent(id_, EventType(type_), occurred))
    return result


def wanted(events_filter: Sequence[str] | None, event_type: str) -> bool:
    """Does an endpoint with ``spec.events`` = ``events_filter`` receive ``event_type``? (empty: all)"""
    return not events_filter or event_type in events_filter


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _object_id(obj: Mapping[str, Any] | None) -> int | None:
    return _int((((obj or {}).get("metadata") or {}).get("labels") or {}).get(_ID_LABEL))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def payload(
    event: RecordedEvent,
    source: Mapping[str, Any],
    *,
    post_id: int | None = None,
    account: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of ``event``, built from the resource that recorded it.

    ``source`` is that resource. For target events, ``post_id`` is the id of the target's post
    and ``account`` its SocialAccount (for the platform, if the target has not recorded it).
    """
    spec = source.get("spec") or {}
    status = source.get("status") or {}
    data: dict[str, Any]
    if event.type in (EventType.ACCOUNT_CONNECTED, EventType.ACCOUNT_DISCONNECTED):
        state = _str(status.get("state"))
        if event.type is EventType.ACCOUNT_CONNECTED:
            state = "active"
        elif state in (None, "active"):
            state = "disconnected"
        data = {
            "account_id": _object_id(source),
            "platform": _str(spec.get("platform")),
            "display_name": str(spec.get("displayName") or ""),
            "status": state,
        }
    elif event.type is EventType.POST_SCHEDULED:
        when = parse_time(status.get("scheduledFor") or spec.get("scheduledFor"))
        data = {
            "post_id": _object_id(source),
            "scheduled_for": format_time(when) if when is not None else None,
        }
    else:
        platform = _str(status.get("platform")) or _str(((account or {}).get("spec") or {}).get("platform"))
        data = {
            "post_id": post_id,
            "account_id": _int(spec.get("accountId")),
            "platform": platform,
        }
        if event.type is EventType.POST_PUBLISHED:
            data["external_post_id"] = _str(status.get("externalPostId"))
            data["external_url"] = _str(status.get("externalUrl"))
        else:
            raw_error = status.get("lastError")
            error: Mapping[str, Any] = raw_error if isinstance(raw_error, Mapping) else {}
            data["attempts"] = _int(status.get("attempts")) or 0
            data["last_error"] = {
                "code": str(error.get("code") or "error"),
                "message": str(error.get("message") or ""),
            }
    return {"type": event.type.value, "timestamp": format_time(event.occurred_at), "data": data}


def encode(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact JSON, UTF-8, keys in a stable order."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
