"""Lifecycle events: their types and stable ids — pure, shared by every writer of a status.

An event is recorded in ``status.lifecycleEvents`` of the resource whose transition caused it,
in the same write as the transition (so it is never lost), with an id that is a function of the
resource and the transition: writing the same transition twice records it once, and the id is
the ``webhook-id`` of every delivery of the event.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["EVENT_KEEP", "EventType", "event_id", "with_event"]

EVENT_KEEP = 20
"""How many events a status keeps (the CRDs' ``maxItems``); the oldest are dropped first."""


class EventType(enum.StrEnum):
    """The five events an integrator can subscribe to."""

    ACCOUNT_CONNECTED = "social.account_connected"
    ACCOUNT_DISCONNECTED = "social.account_disconnected"
    POST_SCHEDULED = "social.post_scheduled"
    POST_PUBLISHED = "social.post_published"
    POST_FAILED = "social.post_failed"


def event_id(uid: str, event_type: str, discriminator: str = "") -> str:
    """A stable event id: the same transition of the same object always yields the same id.

    The same function as the operator's ``decisions.event_id``: ``evt_`` and 24 hex digits of
    SHA-256 — only ``[a-zA-Z0-9_]``, as Standard Webhooks asks of a ``webhook-id``.
    """
    digest = hashlib.sha256(f"{uid}|{event_type}|{discriminator}".encode()).hexdigest()[:24]
    return f"evt_{digest}"


def with_event(
    events: Sequence[Mapping[str, Any]], event: Mapping[str, Any], *, keep: int = EVENT_KEEP
) -> list[dict[str, Any]]:
    """``events`` plus ``event`` (once: ids are stable), keeping the newest ``keep``."""
    existing = [dict(e) for e in events]
    if any(e.get("id") == event["id"] for e in existing):
        return existing
    return [*existing, dict(event)][-keep:]
