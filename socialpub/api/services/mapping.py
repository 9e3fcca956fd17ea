"""The one place that knows both shapes: Kubernetes objects (camelCase, labels, annotations)
and the REST models (snake_case, integer ids, UTC timestamps).

Everything here is a pure function of its arguments, so the rules (notably which status a post
shows) are easy to read and to test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from socialpub.api.schemas import (
    Account,
    Media,
    MediaInput,
    Post,
    PostStatus,
    PostTarget,
    Target,
    TargetError,
    TargetInput,
    TargetStatus,
    format_time,
)
from socialpub.kube.resources import (
    ANNOTATION_CREATED_AT,
    ANNOTATION_UPDATED_AT,
    LABEL_ID,
    POSTS,
)
from socialpub.kube.targets import target_manifest, target_name
from socialpub.models.platforms import Platform

__all__ = [
    "EDITABLE",
    "account_from_object",
    "account_platform",
    "account_state",
    "created_at",
    "is_active_account",
    "is_deleting",
    "next_updated_at",
    "object_id",
    "parse_time",
    "post_from_object",
    "post_manifest",
    "post_name",
    "post_status",
    "search_text",
    "spec_media",
    "spec_targets",
    "target_from_object",
    "target_manifest",
    "target_name",
    "targets_of",
    "updated_at",
]

EDITABLE = frozenset({PostStatus.DRAFT, PostStatus.SCHEDULED})
_PHASES = frozenset(s.value for s in PostStatus)
_TARGET_STATES = frozenset(s.value for s in TargetStatus)
_PLATFORMS = frozenset(p.value for p in Platform)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 string as an aware UTC datetime; ``None`` for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def object_id(obj: Mapping[str, Any]) -> int | None:
    """The REST id (label ``social.softsolz.uk/id``), or ``None`` if it has none yet."""
    raw = (_meta(obj).get("labels") or {}).get(LABEL_ID)
    if isinstance(raw, str) and raw.isdigit() and not raw.startswith("0"):
        return int(raw)
    return None


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """Being deleted (held by a finalizer): gone as far as the REST API is concerned."""
    return bool(_meta(obj).get("deletionTimestamp"))


def created_at(obj: Mapping[str, Any]) -> datetime:
    meta = _meta(obj)
    return (
        parse_time((meta.get("annotations") or {}).get(ANNOTATION_CREATED_AT))
        or parse_time(meta.get("creationTimestamp"))
        or _EPOCH
    )


def updated_at(obj: Mapping[str, Any]) -> datetime:
    return parse_time((_meta(obj).get("annotations") or {}).get(ANNOTATION_UPDATED_AT)) or created_at(obj)


def next_updated_at(obj: Mapping[str, Any], now: datetime) -> datetime:
    """``now``, but always after the current value: every edit changes ``updated_at``."""
    return max(now, updated_at(obj) + timedelta(microseconds=1))


# Posts.


def post_name(post_id: int) -> str:
    return f"post-{post_id}"


def post_status(obj: Mapping[str, Any], now: datetime) -> PostStatus:
    """The status users see.

    A released post (``status.publishStartedAt``) is never a draft again, whatever its spec says
    (a ``draft: true`` written with kubectl or by a GitOps revert changes nothing): its phase is
    the operator's. Before release a draft is a draft whatever else is recorded. Otherwise the
    operator's ``status.phase`` wins, but only if it was computed for the current spec
    (``observedGeneration``): right after a publish or a reschedule the recorded phase is stale
    until the operator catches up, and the spec tells the truth — scheduled if ``scheduledFor``
    is ahead, else publishing.
    """
    spec = _spec(obj)
    status = _status(obj)
    released = bool(status.get("publishStartedAt"))
    if spec.get("draft") is True and not released:
        return PostStatus.DRAFT
    phase = status.get("phase")
    observed = status.get("observedGeneration")
    current = released or observed is None or observed == _meta(obj).get("generation")
    if current and phase in _PHASES and phase != PostStatus.DRAFT:
        return PostStatus(phase)
    if released:
        return PostStatus.PUBLISHING
    scheduled = parse_time(spec.get("scheduledFor"))
    if scheduled is not None and scheduled > now:
        return PostStatus.SCHEDULED
    return PostStatus.PUBLISHING


def spec_media(media: Sequence[MediaInput]) -> list[dict[str, Any]]:
    return [{"url": m.url, "alt": m.alt} if m.alt else {"url": m.url} for m in media]


def spec_targets(targets: Sequence[TargetInput]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in targets:
        entry: dict[str, Any] = {"accountId": t.account_id}
        if t.override_body is not None:
            entry["overrideBody"] = t.override_body
        out.append(entry)
    return out


def post_manifest(
    post_id: int, *, body: str, media: Sequence[MediaInput], targets: Sequence[TargetInput], now: datetime
) -> dict[str, Any]:
    """A new draft SocialPost as the api creates it."""
    stamp = format_time(now)
    return {
        "apiVersion": POSTS.api_version,
        "kind": POSTS.kind,
        "metadata": {
            "name": post_name(post_id),
            "labels": {LABEL_ID: str(post_id)},
            "annotations": {ANNOTATION_CREATED_AT: stamp, ANNOTATION_UPDATED_AT: stamp},
        },
        "spec": {
            "body": body,
            "media": spec_media(media),
            "targets": spec_targets(targets),
            "draft": True,
        },
    }


def _targets_of(obj: Mapping[str, Any]) -> list[tuple[int, str | None]]:
    out: list[tuple[int, str | None]] = []
    for entry in _spec(obj).get("targets") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("accountId"), int):
            override = entry.get("overrideBody")
            out.append((entry["accountId"], override if isinstance(override, str) else None))
    return out


def post_from_object(obj: Mapping[str, Any], now: datetime) -> Post:
    spec, status = _spec(obj), _status(obj)
    post_id = object_id(obj)
    assert post_id is not None, "only posts with an id are shown"
    return Post(
        id=post_id,
        status=post_status(obj, now),
        body=str(spec.get("body") or ""),
        media=[
            Media(url=str(m.get("url", "")), alt=str(m.get("alt") or ""))
            for m in spec.get("media") or []
            if isinstance(m, Mapping)
        ],
        targets=[PostTarget(account_id=a, override_body=o) for a, o in _targets_of(obj)],
        scheduled_for=parse_time(spec.get("scheduledFor")),
        published_at=parse_time(status.get("publishedAt")),
        created_at=created_at(obj),
        updated_at=updated_at(obj),
    )


def search_text(obj: Mapping[str, Any]) -> str:
    """What ``search`` matches: the body and every override body, case-folded."""
    parts = [str(_spec(obj).get("body") or "")] + [o for _, o in _targets_of(obj) if o]
    return "\n".join(parts).casefold()


# Targets.


def target_from_object(account_id: int, obj: Mapping[str, Any] | None, platform: Platform | None) -> Target:
    """One row of ``GET /posts/{id}/targets``; a target not created yet reads as pending."""
    status = _status(obj) if obj is not None else {}
    state = status.get("state")
    recorded = status.get("platform")
    if recorded in _PLATFORMS:
        platform = Platform(recorded)
    error = status.get("lastError")
    attempts = status.get("attempts")
    external = status.get("externalPostId")
    return Target(
        account_id=account_id,
        platform=platform,
        status=TargetStatus(state) if state in _TARGET_STATES else TargetStatus.PENDING,
        attempts=attempts if isinstance(attempts, int) and attempts >= 0 else 0,
        external_post_id=external if isinstance(external, str) else None,
        last_error=(
            TargetError(code=str(error.get("code") or "error"), message=str(error.get("message") or ""))
            if isinstance(error, Mapping)
            else None
        ),
        next_attempt_at=parse_time(status.get("nextAttemptAt")),
        published_at=parse_time(status.get("publishedAt")),
    )


def targets_of(obj: Mapping[str, Any]) -> list[tuple[int, str | None]]:
    """``(account_id, override_body)`` per entry of the post's ``spec.targets``, in order."""
    return _targets_of(obj)


# Accounts.


def account_platform(obj: Mapping[str, Any]) -> Platform | None:
    value = _spec(obj).get("platform")
    return Platform(value) if value in _PLATFORMS else None


def is_active_account(obj: Mapping[str, Any]) -> bool:
    return _status(obj).get("state") == "active" and not is_deleting(obj)


def account_state(obj: Mapping[str, Any]) -> str:
    return str(_status(obj).get("state") or "pending")


def account_from_object(obj: Mapping[str, Any]) -> Account | None:
    account_id, platform = object_id(obj), account_platform(obj)
    if account_id is None or platform is None:
        return None
    return Account(
        id=account_id,
        platform=platform,
        display_name=str(_spec(obj).get("displayName") or ""),
        status=account_state(obj),
    )
