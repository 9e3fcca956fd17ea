"""Posts: the logic behind ``/posts`` — create, list, read, edit, publish, delete, targets.

A post is a SocialPost ``post-<id>`` in the caller's namespace; its deliveries are SocialTargets
``post-<id>-<accountId>`` owned by it. The operator keeps the targets in line with
``spec.targets`` too, but the api creates and deletes them itself at once, so a read right after
a write sees them; both sides tolerate the other having done it first.

Reads come from the caches. Every edit is a merge patch carrying the ``resourceVersion`` the
decision was made on, so "check the state, then write" is atomic: if anything changed in
between, the Kubernetes API answers 409 Conflict and the decision is made again on a fresh
read (a stale ``expected_updated_at`` then gives 409 ``stale_object``). Another tenant's post,
or a post of the other mode, is simply not found (404, never 403).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from socialpub.api.deps import Principal
from socialpub.api.errors import Conflict, Forbidden, Gone, NotFound, UnprocessableEntity
from socialpub.api.idempotency import Creation
from socialpub.api.runtime import Runtime
from socialpub.api.schemas import (
    Post,
    PostCreate,
    PostStatus,
    PostUpdate,
    PublishRequest,
    Target,
    format_time,
)
from socialpub.api.services.mapping import (
    EDITABLE,
    account_platform,
    is_deleting,
    next_updated_at,
    object_id,
    post_from_object,
    post_manifest,
    post_name,
    post_status,
    spec_media,
    spec_targets,
    target_from_object,
    target_manifest,
    target_name,
    targets_of,
    updated_at,
)
from socialpub.api.services.validation import check_content
from socialpub.kube.client import AlreadyExists
from socialpub.kube.client import Conflict as KubeConflict
from socialpub.kube.client import NotFound as KubeNotFound
from socialpub.kube.resources import ANNOTATION_UPDATED_AT, POSTS, TARGETS
from socialpub.models.keys import Scope

__all__ = [
    "create",
    "create_named",
    "delete",
    "get",
    "list_posts",
    "publish",
    "reserve",
    "targets",
    "update",
]

_WRITE_ATTEMPTS = 8
"""Conditional writes retried on a fresh read when something else (the operator writing status,
another replica) changed the post; only a real change of what the caller checked fails them."""


def _now() -> datetime:
    return datetime.now(UTC)


async def _nothing() -> None:
    return None


def _deleted(post_id: int) -> Gone:
    return Gone(
        f"post {post_id}, which this Idempotency-Key created, has been deleted since; it is not "
        "created again. Send a new Idempotency-Key to create a new post",
        code="post_deleted",
        details={"post_id": post_id},
    )


def _not_found(post_id: int) -> NotFound:
    return NotFound(f"no post {post_id}", code="post_not_found")


def _find(runtime: Runtime, principal: Principal, post_id: int) -> dict[str, Any]:
    obj = runtime.post_index.get(principal.namespace, post_id)
    if obj is None or is_deleting(obj):
        raise _not_found(post_id)
    return obj


async def _fresh(
    runtime: Runtime, principal: Principal, obj: Mapping[str, Any], post_id: int
) -> dict[str, Any]:
    """The post as the Kubernetes API has it now (after a conflict the cache may lag)."""
    try:
        current = await runtime.client.get(POSTS, obj["metadata"]["name"], principal.namespace)
    except KubeNotFound:
        raise _not_found(post_id) from None
    runtime.posts.observe(current)
    if is_deleting(current):
        raise _not_found(post_id)
    return current


def _account_lookup(runtime: Runtime, principal: Principal) -> Callable[[int], dict[str, Any] | None]:
    """Accounts by id, in the principal's namespace only (another tenant's do not exist here)."""
    return lambda account_id: runtime.account_index.get(principal.namespace, account_id)


async def _ensure_targets(
    runtime: Runtime, post: Mapping[str, Any], previous: Mapping[str, Any] | None = None
) -> None:
    """Make the post's SocialTargets match its ``spec.targets``: create, update, delete."""
    namespace = post["metadata"]["namespace"]
    wanted = dict(targets_of(post))
    jobs = []
    for account_id, override in wanted.items():
        name = target_name(post, account_id)
        existing = runtime.targets.get(namespace, name)
        if existing is None or is_deleting(existing):
            jobs.append(_create_target(runtime, post, account_id, override))
        elif (existing.get("spec") or {}).get("overrideBody") != override:
            jobs.append(_patch_target(runtime, namespace, name, override))
    if previous is not None:
        for account_id, _ in targets_of(previous):
            if account_id not in wanted:
                jobs.append(_delete_target(runtime, namespace, target_name(post, account_id)))
    await asyncio.gather(*jobs)


async def _create_target(
    runtime: Runtime, post: Mapping[str, Any], account_id: int, override: str | None
) -> None:
    try:
        created = await runtime.client.create(
            TARGETS, target_manifest(post, account_id, override), post["metadata"]["namespace"]
        )
    except AlreadyExists:
        return  # the operator was first
    runtime.targets.observe(created)


async def _patch_target(runtime: Runtime, namespace: str, name: str, override: str | None) -> None:
    try:
        patched = await runtime.client.patch(TARGETS, name, {"spec": {"overrideBody": override}}, namespace)
    except KubeNotFound:
        return
    runtime.targets.observe(patched)


async def _delete_target(runtime: Runtime, namespace: str, name: str) -> None:
    existing = runtime.targets.get(namespace, name)
    with contextlib.suppress(KubeNotFound):
        await runtime.client.delete(TARGETS, name, namespace)
    if existing is not None:
        runtime.targets.forget(existing)


async def create(runtime: Runtime, principal: Principal, payload: PostCreate) -> Post:
    """A new draft post (and its targets)."""
    name = await reserve(runtime, principal, payload)
    return await create_named(
        runtime, principal, payload, name, Creation(landed_before=False, landed=_nothing)
    )


async def reserve(runtime: Runtime, principal: Principal, payload: PostCreate) -> str:
    """Check a new post and pick its name (``post-<id>``); nothing but the id counter is written.

    Split from :func:`create_named` so that an ``Idempotency-Key`` claim can record the name
    before the post exists: every retry then creates that one post, never another.
    """
    check_content(
        body=payload.body,
        media_count=len(payload.media),
        targets=[(t.account_id, t.override_body) for t in payload.targets],
        account=_account_lookup(runtime, principal),
    )
    return post_name(await runtime.ids.next(principal.namespace, "posts"))


async def create_named(
    runtime: Runtime, principal: Principal, payload: PostCreate, name: str, creation: Creation
) -> Post:
    """The post ``name`` as ``payload`` describes it, and its targets: created if absent, else
    the one that exists (a retry resuming an interrupted create). Safe to run any number of times.

    If an earlier attempt already created it (``creation.landed_before``) and it is gone now,
    the client deleted it: 410 ``post_deleted``, and it is not created again.
    """
    post_id = int(name.rpartition("-")[2])
    if post_name(post_id) != name:
        raise ValueError(f"not a post name: {name!r}")
    now = _now()
    if creation.landed_before:
        try:
            created = await runtime.client.get(POSTS, name, principal.namespace)
        except KubeNotFound:
            raise _deleted(post_id) from None
        if is_deleting(created):
            raise _deleted(post_id)
    else:
        manifest = post_manifest(
            post_id, body=payload.body, media=payload.media, targets=payload.targets, now=now
        )
        try:
            created = await runtime.client.create(POSTS, manifest, principal.namespace)
        except AlreadyExists:
            created = await runtime.client.get(POSTS, name, principal.namespace)
        await creation.landed()
    runtime.posts.observe(created)
    await _ensure_targets(runtime, created)
    return post_from_object(created, now)


def list_posts(
    runtime: Runtime,
    principal: Principal,
    *,
    status: PostStatus | None,
    search: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Post], int]:
    """One page of the namespace's posts, newest first, and how many match in all."""
    now = _now()
    rows = runtime.post_index.newest_first(principal.namespace)
    if search:
        needle = search.casefold()
        rows = [r for r in rows if needle in r.text]
    if status is not None:
        rows = [r for r in rows if post_status(r.obj, now) == status]
    page = rows[offset : offset + limit]
    return [post_from_object(r.obj, now) for r in page], len(rows)


def get(runtime: Runtime, principal: Principal, post_id: int) -> Post:
    return post_from_object(_find(runtime, principal, post_id), _now())


async def update(runtime: Runtime, principal: Principal, post_id: int, changes: PostUpdate) -> Post:
    """Edit a draft or scheduled post, atomically against ``expected_updated_at``."""
    obj = _find(runtime, principal, post_id)
    for _ in range(_WRITE_ATTEMPTS):
        now = _now()
        status = post_status(obj, now)
        if status not in EDITABLE:
            raise Conflict(
                f"post {post_id} is {status.value}; only draft and scheduled posts can be edited",
                code="post_not_editable",
                details={"status": status.value},
            )
        _check_may_edit(principal, post_id, status)
        _check_unchanged(post_id, obj, changes.expected_updated_at)
        if not changes.changes_content:
            return post_from_object(obj, now)
        spec = obj.get("spec") or {}
        body = changes.body if changes.body is not None else str(spec.get("body") or "")
        media_count = len(changes.media) if changes.media is not None else len(spec.get("media") or [])
        wanted = (
            [(t.account_id, t.override_body) for t in changes.targets]
            if changes.targets is not None
            else targets_of(obj)
        )
        check_content(
            body=body, media_count=media_count, targets=wanted, account=_account_lookup(runtime, principal)
        )
        spec_patch: dict[str, Any] = {}
        if changes.body is not None:
            spec_patch["body"] = changes.body
        if changes.media is not None:
            spec_patch["media"] = spec_media(changes.media)
        if changes.targets is not None:
            spec_patch["targets"] = spec_targets(changes.targets)
        try:
            patched = await _conditional_patch(runtime, obj, spec_patch, now)
        except KubeConflict:
            obj = await _fresh(runtime, principal, obj, post_id)
            continue
        await _ensure_targets(runtime, patched, previous=obj)
        return post_from_object(patched, now)
    raise _busy(post_id)


def _check_unchanged(post_id: int, obj: Mapping[str, Any], expected: datetime | None) -> None:
    """409 ``stale_object`` if the caller said which version it read and ``obj`` is another.

    Checked on the very object whose ``resourceVersion`` the write is conditional on, so a
    change landing after this check makes the write fail, and the check runs again on the
    fresh object (where it then refuses).
    """
    current = updated_at(obj)
    if expected is not None and expected != current:
        raise Conflict(
            f"post {post_id} was changed since you read it; read it again and retry",
            code="stale_object",
            details={
                "field": "expected_updated_at",
                "expected_updated_at": format_time(expected),
                "updated_at": format_time(current),
            },
        )


def _check_may_edit(principal: Principal, post_id: int, status: PostStatus) -> None:
    """A released post (scheduled) goes out with whatever it holds when it falls due, so changing
    it is publishing: it needs the publish scope as well as manage. Drafts need manage only.

    Decided on the very object whose ``resourceVersion`` the write is conditional on, so a post
    that becomes scheduled after this read makes the write fail and the check runs again.
    """
    if status is PostStatus.DRAFT or Scope.PUBLISH in principal.scopes:
        return
    raise Forbidden(
        f"post {post_id} is {status.value}: editing it changes what gets published, "
        f"so this API key needs the scope {Scope.PUBLISH.value} as well",
        code="insufficient_scope",
        details={"required_scope": Scope.PUBLISH.value},
    )


async def publish(runtime: Runtime, principal: Principal, post_id: int, request: PublishRequest) -> Post:
    """Publish now (``draft: false``, no ``scheduledFor``) or schedule; rescheduling is allowed.

    A time not in the future breaks a rule of the moment, not the request's shape: 422 with its
    own code, ``scheduled_for_in_past`` (a schema-valid request is never a ``validation_error``).
    """
    if request.scheduled_for is not None and request.scheduled_for <= _now():
        message = "must be in the future; omit it to publish now"
        raise UnprocessableEntity(
            f"scheduled_for {message}",
            code="scheduled_for_in_past",
            details=[{"field": "scheduled_for", "code": "in_the_past", "message": message}],
        )
    obj = _find(runtime, principal, post_id)
    for _ in range(_WRITE_ATTEMPTS):
        now = _now()
        status = post_status(obj, now)
        if status not in EDITABLE:
            raise Conflict(
                f"post {post_id} is already {status.value}; it cannot be published again",
                code="post_already_published",
                details={"status": status.value},
            )
        _check_unchanged(post_id, obj, request.expected_updated_at)
        when = request.scheduled_for
        spec_patch = {"draft": False, "scheduledFor": format_time(when) if when is not None else None}
        try:
            patched = await _conditional_patch(runtime, obj, spec_patch, now)
        except KubeConflict:
            obj = await _fresh(runtime, principal, obj, post_id)
            continue
        await _ensure_targets(runtime, patched)
        return post_from_object(patched, now)
    raise _busy(post_id)


async def _conditional_patch(
    runtime: Runtime, obj: Mapping[str, Any], spec_patch: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Merge-patch ``spec`` and bump ``updated_at``, only if the post is still at ``obj``'s version."""
    meta = obj["metadata"]
    patch = {
        "metadata": {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {ANNOTATION_UPDATED_AT: format_time(next_updated_at(obj, now))},
        },
        "spec": dict(spec_patch),
    }
    try:
        patched = await runtime.client.patch(POSTS, meta["name"], patch, meta["namespace"])
    except KubeNotFound:
        raise _not_found(object_id(obj) or 0) from None
    runtime.posts.observe(patched)
    return patched


def _busy(post_id: int) -> Conflict:
    return Conflict(
        f"post {post_id} kept changing while this request tried to write it; retry",
        code="stale_object",
        headers={"Retry-After": "1"},
    )


async def delete(runtime: Runtime, principal: Principal, post_id: int) -> None:
    """Delete the post; its targets go with it (ownerReferences). Nothing is retracted.

    A scheduled post is thereby cancelled. A post that is publishing may be deleted too: targets
    already delivered stay on their platforms, and the operator stops delivering the rest.
    """
    obj = _find(runtime, principal, post_id)
    meta = obj["metadata"]
    try:
        result = await runtime.client.delete(POSTS, meta["name"], meta["namespace"], propagation="Background")
    except KubeNotFound:
        raise _not_found(post_id) from None
    if result.get("kind") == POSTS.kind and is_deleting(result):
        runtime.posts.observe(result)  # held by a finalizer: reads treat it as gone
    else:
        runtime.posts.forget(obj)
    for account_id, _ in targets_of(obj):
        target = runtime.targets.get(meta["namespace"], target_name(obj, account_id))
        if target is not None:
            runtime.targets.forget(target)


def targets(runtime: Runtime, principal: Principal, post_id: int) -> list[Target]:
    """One row per account in the post's targets, with the delivery state the operator recorded."""
    obj = _find(runtime, principal, post_id)
    rows = []
    for account_id, _ in targets_of(obj):
        target = runtime.targets.get(principal.namespace, target_name(obj, account_id))
        if target is not None and is_deleting(target):
            target = None
        account = runtime.account_index.get(principal.namespace, account_id)
        rows.append(target_from_object(account_id, target, account_platform(account) if account else None))
    return rows
