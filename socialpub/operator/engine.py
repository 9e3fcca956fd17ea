"""The operator's engine: from observed resources to posts on the platforms, crash-safely.

kopf feeds every watch event of posts, targets and accounts into :meth:`Engine.observe`. The
engine keeps the latest copy of each object, and *submits keys* to a :class:`WorkQueue`; the
work functions read the latest state and act (level-triggered), so the same code serves a
fresh event, an operator restart and a retry. Time-based work (a post's ``scheduledFor``, a
target's ``nextAttemptAt``) is armed in one :class:`Timer`.

The delivery protocol, per target (each independent and concurrent):

1. **Release**: when its post is due, the post's status records ``publishStartedAt`` and the
   released generation, and each target's status gets the frozen content and ``pending``.
2. **Claim**: ``publishing`` is written (conditional on the resourceVersion) *before* the
   platform is called, with ``claimedBy`` and ``leaseUntil``; the call gets what the claim write
   left of the budget, and no claim or call is made once the Lease is past its deadline.
3. **Record**: ``published`` (with the external id, written again until stored) or
   ``failed``/``dead`` after the call — fenced on our claim. An ambiguous failure (the platform
   may still commit the call) is not retried before ``leaseUntil``.
4. **Resolve**: a target found ``publishing`` that this process is not working on was
   interrupted; once the claim's ``leaseUntil`` has passed (the attempt can no longer land) —
   and, for another operator's claim, its whole duration on this process's monotonic clock — the
   adapter is asked whether that attempt landed before anything is retried. An adapter that
   cannot tell, a lookup that fails for good, or an account that is gone makes it ``unknown``:
   never re-sent, never dead-lettered unasked, left to a person.

A released post's set of targets is fixed (``status.releasedTargets``): a SocialTarget that
appears later (re-added, recreated, applied by hand) is never published, and a released one that
is deleted is never recreated, so no account receives the same post twice whatever happens to
the spec; the post reports each refused change (``SpecApplied=False`` and a ``ChangeRefused``
Event).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import AlreadyExists, Conflict, Invalid, KubeClient, NotFound
from socialpub.kube.events import record_event
from socialpub.kube.ids import allocate_id
from socialpub.kube.resources import (
    ACCOUNTS,
    ANNOTATION_CREATED_AT,
    ANNOTATION_UPDATED_AT,
    LABEL_ID,
    POSTS,
    TARGETS,
    Resource,
)
from socialpub.kube.targets import target_manifest
from socialpub.models.keys import Mode
from socialpub.operator import decisions
from socialpub.operator.live import unusable_account_status, waiting_status
from socialpub.operator.settings import OperatorSettings
from socialpub.operator.timers import Timer
from socialpub.operator.workqueue import WorkQueue
from socialpub.platforms.base import (
    Adapter,
    Deferred,
    MediaItem,
    OutcomeUnknown,
    Published,
    PublishError,
    PublishRequest,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.sandbox import SandboxAdapter

__all__ = ["Engine"]

logger = logging.getLogger(__name__)

Key = tuple[str, str]
"""``(namespace, name)``."""


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _micro_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return ((obj.get("metadata") or {}).get("labels")) or {}


def _spec_version(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What changes when someone other than the operator changes what an object asks for."""
    meta = obj.get("metadata") or {}
    return meta.get("generation"), meta.get("deletionTimestamp"), meta.get("labels")


def _spec_applied(
    conditions: list[dict[str, Any]],
    *,
    generation: int,
    released_generation: int,
    refused: list[str] | None = None,
) -> list[dict[str, Any]]:
    """``SpecApplied``: False once the spec moved on from the generation that was released, or
    when something was done to the post's targets that the operator refuses (``refused``)."""
    frozen = generation != released_generation or bool(refused)
    message = "the released content matches the spec"
    if frozen:
        message = (
            f"spec changed (generation {generation}) after publishing began with generation "
            f"{released_generation}; the released content is kept"
            if generation != released_generation
            else "publishing began; the released targets are kept"
        )
        if refused:
            message += "; refused: " + "; ".join(refused)
    return decisions.set_condition(
        conditions,
        type="SpecApplied",
        status="False" if frozen else "True",
        reason="PublishingStarted" if frozen else "Applied",
        message=message,
        generation=generation,
        now=_micro_now(),
    )


def _released_targets(post: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    """The targets released with the post (uid -> record), or ``None`` for a post released
    before the operator recorded them (its targets are recorded on its next reconcile)."""
    records = ((post or {}).get("status") or {}).get("releasedTargets")
    if records is None:
        return None
    return {str(r.get("uid")): dict(r) for r in records if isinstance(r, Mapping)}


def _target_record(target: dict[str, Any]) -> dict[str, Any]:
    meta = target.get("metadata") or {}
    return {
        "name": str(meta.get("name") or ""),
        "uid": str(meta.get("uid") or ""),
        "accountId": int((target.get("spec") or {}).get("accountId") or 0),
    }


_PRIORITIES = {"target": 0, "post": 1, "aggregate": 2, "event": 3}
"""When work waits for a slot: deliveries first (a due post is late until its targets publish),
then posts (releases, schedules), then the posts' summaries (which coalesce while they wait),
then Kubernetes Events."""


def _priority(item: Hashable) -> int:
    return _PRIORITIES.get(item[0], 1) if isinstance(item, tuple) else 1


def _released(post: dict[str, Any] | None) -> bool:
    """Has publishing of this post begun (its content released to the targets)?"""
    return bool(post and (post.get("status") or {}).get("publishStartedAt"))


def _owner_uid(obj: dict[str, Any]) -> str | None:
    """The uid of the SocialPost that owns a target (its ``ownerReferences``), if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("kind") == POSTS.kind:
            return str(ref.get("uid"))
    return None


def _claim_of(target: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """Which claim a ``publishing`` target shows (``None`` when it is not ``publishing``)."""
    status = (target or {}).get("status") or {}
    if status.get("state") != "publishing":
        return None
    return status.get("claimedBy"), status.get("lastAttemptAt"), status.get("leaseUntil")


def _owned_by(target: dict[str, Any], post: dict[str, Any]) -> bool:
    """Is ``target`` this post's? Its ``postName`` is not enough: a post deleted and created
    again under the same name leaves the old post's targets (named alike) until they are
    garbage-collected, and they must not be taken for the new post's."""
    return _owner_uid(target) == str((post.get("metadata") or {}).get("uid"))


_MIN_BUDGET_SHARE = 0.5
"""A claim whose write left less than this share of the planned call budget is handed back
unsent: the call would be cut short (and left for a lookup) for no reason but a slow write."""
_RELEASED_CLAIM_RETRY_SECONDS = 1.0
_RECORD_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
"""Backoff between tries to store a published result (about 16 s in all, within the Lease)."""


def _discard(index: dict[Any, set[Key]], bucket: Any, key: Key) -> None:
    members = index.get(bucket)
    if members is not None:
        members.discard(key)
        if not members:
            del index[bucket]


class Engine:
    """Everything the operator does, behind one ``observe`` entry point fed by the watches."""

    def __init__(
        self,
        client: KubeClient,
        settings: OperatorSettings,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        live_adapter: Callable[[dict[str, Any]], Adapter] | None = None,
        namespace_mode: Callable[[str], Awaitable[Mode | None]] | None = None,
        identity: str = "",
        call_seconds: Callable[[str], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        lease_valid: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.identity = identity or settings.identity
        """Who claims targets (``status.claimedBy``): the operator Lease's holder identity."""
        self._live_call_seconds = call_seconds or settings.live_call_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._lease_valid = lease_valid or (lambda: True)
        """Is the operator's Lease still held (before its deadline)? Checked before every claim,
        every send and every status write that ends a claim."""
        self._rng = rng or random.Random()
        self._sandbox = SandboxAdapter(delay_seconds=settings.sandbox_delay_seconds)
        self._live_adapter = live_adapter
        self._namespace_mode = namespace_mode
        """Live or sandbox, from which of a tenant's namespaces an account is in (operator.tenants)."""
        self.posts: dict[Key, dict[str, Any]] = {}
        self.targets: dict[Key, dict[str, Any]] = {}
        self.accounts: dict[Key, dict[str, Any]] = {}
        self._stores = {
            POSTS.plural: self.posts,
            TARGETS.plural: self.targets,
            ACCOUNTS.plural: self.accounts,
        }
        # Indexes, kept by _put/_drop, so no lookup scans a whole store.
        self._targets_of: dict[Key, set[Key]] = {}
        """(namespace, post name) -> its targets."""
        self._account_by_id: dict[tuple[str, str], Key] = {}
        """(namespace, account id label) -> the account."""
        self._targets_by_account: dict[tuple[str, str], set[Key]] = {}
        """(namespace, account id) -> the targets publishing to it."""
        self._in_flight: set[Key] = set()
        self._claims_seen: dict[Key, tuple[tuple[Any, ...], float]] = {}
        """Claims made by others: (claimedBy, lastAttemptAt, leaseUntil) and when this process
        first saw them, on its monotonic clock (see :func:`decisions.resolve_delay`)."""
        self._unowned: dict[str, set[Key]] = {}
        """Targets waiting because their account's namespace has no tenant (by namespace)."""
        self.timer = Timer(self._on_due, clock=clock)
        self.queue = WorkQueue(self._work, concurrency=settings.concurrency, priority=_priority)
        self._timer_task: asyncio.Task[None] | None = None
        self._pending_events: dict[int, tuple[dict[str, Any], str, str, bool]] = {}
        self._event_seq = itertools.count()

    # Lifecycle.

    async def start(self, *, prime: bool = True) -> None:
        """Load every post, target and account (so no decision is made on a partial view), then
        start the timer. kopf's watches then keep the copies current."""
        if self._timer_task is not None:
            return
        if prime:
            listed = {}
            for resource in (ACCOUNTS, TARGETS, POSTS):
                listed[resource.plural], _ = await self.client.list(resource, limit=500)
            for plural, items in listed.items():
                for obj in items:
                    self.observe(plural, None, obj)
        self._timer_task = asyncio.create_task(self.timer.run(), name="socialpub-timer")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop; platform calls already under way get ``grace`` seconds to finish and be recorded."""
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
            self._timer_task = None
        await self.queue.close(grace=grace)

    def halt(self) -> None:
        """Stop everything now, with no grace (the operator lost its Lease): calls under way are
        abandoned; their claims stay ``publishing`` until ``leaseUntil``, then the next holder
        checks them."""
        if self._timer_task is not None:
            self._timer_task.cancel()
        self.queue.halt()

    # The local copies and their indexes.

    def _put(self, plural: str, obj: dict[str, Any]) -> None:
        key = _key(obj)
        store = self._stores[plural]
        old = store.get(key)
        if old is not None:
            self._unindex(plural, key, old)
        store[key] = obj
        namespace = key[0]
        if plural == TARGETS.plural:
            spec = obj.get("spec") or {}
            self._targets_of.setdefault((namespace, str(spec.get("postName") or "")), set()).add(key)
            account = (namespace, str(spec.get("accountId")))
            self._targets_by_account.setdefault(account, set()).add(key)
        elif plural == ACCOUNTS.plural:
            account_id = _labels(obj).get(LABEL_ID)
            if account_id:
                self._account_by_id[(namespace, account_id)] = key

    def _drop(self, plural: str, key: Key) -> None:
        old = self._stores[plural].pop(key, None)
        if old is not None:
            self._unindex(plural, key, old)

    def _unindex(self, plural: str, key: Key, old: dict[str, Any]) -> None:
        namespace = key[0]
        if plural == TARGETS.plural:
            spec = old.get("spec") or {}
            _discard(self._targets_of, (namespace, str(spec.get("postName") or "")), key)
            _discard(self._targets_by_account, (namespace, str(spec.get("accountId"))), key)
        elif plural == ACCOUNTS.plural:
            account_id = _labels(old).get(LABEL_ID)
            if account_id and self._account_by_id.get((namespace, account_id)) == key:
                del self._account_by_id[(namespace, account_id)]

    def _remember(self, store: dict[Key, dict[str, Any]], obj: dict[str, Any]) -> dict[str, Any]:
        """Keep an object this process just wrote (read-your-writes), unless a newer one is known.

        The server's answer to a write can carry someone else's concurrent change too (a status
        merge-patch lands on the latest spec). Its watch events will then look old and be skipped,
        so a change of generation (spec) or a deletion seen here is acted on here.
        """
        key = _key(obj)
        plural = next(p for p, s in self._stores.items() if s is store)
        old = store.get(key)
        if _rv(obj) >= _rv(old):
            self._put(plural, obj)
            if old is not None and _spec_version(old) != _spec_version(obj):
                self._submit_for(plural, key, obj, deleted=False, new=False)
        return store[key]

    # Observation (called by the kopf handlers for every watch event).

    def observe(self, plural: str, event_type: str | None, body: dict[str, Any]) -> None:
        """Take the latest state of an object and submit whatever work it may now need."""
        key = _key(body)
        store = self._stores[plural]
        current = store.get(key)
        if event_type == "DELETED":
            self._drop(plural, key)
        elif current is not None and _rv(current) >= _rv(body):
            # Older than, or the echo of, a write this process already applied (and acted on).
            return
        else:
            self._put(plural, body)
        self._submit_for(plural, key, body, deleted=event_type == "DELETED", new=current is None)

    def _submit_for(self, plural: str, key: Key, body: dict[str, Any], *, deleted: bool, new: bool) -> None:
        if plural == POSTS.plural:
            if deleted:
                self.timer.cancel(("post", key))
            self.queue.submit(("post", key))
        elif plural == TARGETS.plural:
            post_key = (key[0], str((body.get("spec") or {}).get("postName") or ""))
            if deleted:
                self.timer.cancel(("target", key))
            else:
                self.queue.submit(("target", key))
            if deleted or new:
                # Targets are the post's to keep: one created or deleted by someone else is
                # reconciled against spec.targets until publishing begins, and reported (never
                # published, never recreated) after.
                self.queue.submit(("post", post_key))
            self.queue.submit(("aggregate", post_key))
        else:
            # An account that appears or changes can unblock (or stop) targets publishing to it.
            account_id = _labels(body).get(LABEL_ID)
            for target_key in sorted(self._targets_by_account.get((key[0], str(account_id)), ())):
                self.queue.submit(("target", target_key))

    def _on_due(self, item: Hashable) -> None:
        self.queue.submit(item)

    def _event(self, involved: dict[str, Any], *, reason: str, message: str, warning: bool = False) -> None:
        """Post a Kubernetes Event about ``involved`` as low-priority work: when many posts fall
        due at once, Events wait until the claims and results that make posts late are written.
        Events are best effort (as in Kubernetes): one queued when the operator stops is lost."""
        seq = next(self._event_seq)
        self._pending_events[seq] = (involved, reason, message, warning)
        self.queue.submit(("event", seq))

    async def _work(self, item: Hashable) -> None:
        assert isinstance(item, tuple)
        kind, key = item
        try:
            if kind == "post":
                await self.reconcile_post(key)
            elif kind == "target":
                await self.advance_target(key)
            elif kind == "aggregate":
                await self.aggregate_post(key)
            elif kind == "event":
                involved, reason, message, warning = self._pending_events.pop(key)
                await record_event(self.client, involved, reason=reason, message=message, warning=warning)
        except NotFound:
            # Deleted while we worked (the DELETED event may still be on its way): forget it. If
            # it still exists, something else it needs went away; the queue retries.
            resource = TARGETS if kind == "target" else POSTS
            try:
                fresh = await self.client.get(resource, key[1], key[0])
            except NotFound:
                self.observe(resource.plural, "DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
                return
            self._remember(self._stores[resource.plural], fresh)
            raise

    # Accounts.

    def _account_of(self, target: dict[str, Any]) -> dict[str, Any] | None:
        account_id = str((target.get("spec") or {}).get("accountId"))
        key = self._account_by_id.get((_key(target)[0], account_id))
        return self.accounts.get(key) if key else None

    async def _find_account(self, target: dict[str, Any]) -> dict[str, Any] | None:
        """The target's account; asks the API server before concluding there is none (an account
        created a moment ago may not have reached this process's watch yet)."""
        account = self._account_of(target)
        if account is not None:
            return account
        account_id = (target.get("spec") or {}).get("accountId")
        items, _ = await self.client.list(
            ACCOUNTS, _key(target)[0], label_selector=f"{LABEL_ID}={account_id}"
        )
        for item in items:
            self._remember(self.accounts, item)
        return self._account_of(target)

    # Posts.

    async def reconcile_post(self, key: Key) -> None:
        """Before release: keep the targets, the Scheduled state and the timer; at the due time,
        release. After release: only freeze content into targets and report spec drift."""
        post = self.posts.get(key)
        if post is None or (post.get("metadata") or {}).get("deletionTimestamp"):
            self.timer.cancel(("post", key))
            return
        post = await self._ensure_identity(post)
        spec = post.get("spec") or {}
        if _released(post):
            await self._keep_released(post)
            return
        if not await self._sync_targets(post):
            return  # an older namesake's target is on its way out; looked at again shortly
        if spec.get("draft"):
            self.timer.cancel(("post", key))
            await self._write_post_status(post, phase="draft", scheduled_for=None)
            return
        due = decisions.parse_time(spec.get("scheduledFor"))
        if due is not None and due > self._clock():
            self.timer.arm(("post", key), due)
            await self._write_post_status(post, phase="scheduled", scheduled_for=spec.get("scheduledFor"))
            return
        self.timer.cancel(("post", key))
        await self._release(post)

    async def _ensure_identity(self, post: dict[str, Any]) -> dict[str, Any]:
        """Give a post applied with kubectl its integer id (and the REST API's timestamps)."""
        meta = post["metadata"]
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        if labels.get(LABEL_ID) and ANNOTATION_CREATED_AT in annotations:
            return post
        patch: dict[str, Any] = {"metadata": {}}
        if not labels.get(LABEL_ID):
            post_id = await allocate_id(self.client, meta["namespace"], "posts")
            patch["metadata"]["labels"] = {LABEL_ID: str(post_id)}
        if ANNOTATION_CREATED_AT not in annotations:
            created = decisions.parse_time(meta.get("creationTimestamp")) or self._clock()
            stamp = decisions.format_time(created)
            patch["metadata"]["annotations"] = {ANNOTATION_CREATED_AT: stamp, ANNOTATION_UPDATED_AT: stamp}
        updated = await self.client.patch(POSTS, meta["name"], patch, meta["namespace"])
        return self._remember(self.posts, updated)

    def _desired_targets(self, post: dict[str, Any]) -> dict[str, dict[str, Any]]:
        name = post["metadata"]["name"]
        desired = {}
        for entry in (post.get("spec") or {}).get("targets") or []:
            account_id = entry.get("accountId")
            spec: dict[str, Any] = {"postName": name, "accountId": account_id}
            if entry.get("overrideBody"):
                spec["overrideBody"] = entry["overrideBody"]
            desired[f"{name}-{account_id}"] = spec
        return desired

    def _own_targets(self, post: dict[str, Any]) -> list[dict[str, Any]]:
        """The post's SocialTargets: named after it *and* owned by it (its uid), sorted by name."""
        keys = sorted(self._targets_of.get(_key(post), ()))
        return [self.targets[k] for k in keys if k in self.targets and _owned_by(self.targets[k], post)]

    async def _sync_targets(self, post: dict[str, Any]) -> bool:
        """Make the post's SocialTargets match ``spec.targets`` (only before publishing begins).

        ``False`` while a target it needs is still taken by a namesake of an older post of the
        same name (deleted, its targets not yet garbage-collected): that one is deleted here, and
        the post is looked at again shortly; it is not released before its own targets exist."""
        namespace = post["metadata"]["namespace"]
        desired = self._desired_targets(post)
        existing = {t["metadata"]["name"]: t for t in self._own_targets(post)}
        complete = True
        for target_name, spec in desired.items():
            current = existing.get(target_name)
            if current is None:
                complete = await self._create_target(post, target_name, spec) and complete
            elif (current.get("spec") or {}) != spec:
                patch = {"spec": {**spec, "overrideBody": spec.get("overrideBody")}}
                updated = await self.client.patch(TARGETS, target_name, patch, namespace)
                self._remember(self.targets, updated)
        for target_name, target in existing.items():
            if target_name not in desired:
                with contextlib.suppress(NotFound):
                    await self.client.delete(TARGETS, target_name, namespace)
                self._drop(TARGETS.plural, _key(target))
        return complete

    async def _create_target(self, post: dict[str, Any], target_name: str, spec: dict[str, Any]) -> bool:
        """Create one of the post's targets; ``False`` if its name is still taken by a target that
        is not this post's (an older post's of the same name, deleted — its targets lingering or
        orphaned — or one applied by hand without an owner): that one is deleted, since before the
        release the post's targets are the operator's to keep, and the post is looked at again."""
        meta = post["metadata"]
        body = target_manifest(post, int(spec["accountId"]), spec.get("overrideBody"))
        try:
            created = await self.client.create(TARGETS, body, meta["namespace"])
        except AlreadyExists:
            created = await self.client.get(TARGETS, target_name, meta["namespace"])
            if not _owned_by(created, post):
                with contextlib.suppress(NotFound, Conflict):
                    await self.client.delete(
                        TARGETS,
                        target_name,
                        meta["namespace"],
                        resource_version=str(created["metadata"]["resourceVersion"]),
                    )
                self._drop(TARGETS.plural, _key(created))
                self.timer.arm(("post", _key(post)), self._clock() + _RELEASED_CLAIM_RETRY_SECONDS)
                return False
        self._remember(self.targets, created)
        return True

    async def _write_post_status(
        self, post: dict[str, Any], *, phase: str, scheduled_for: str | None
    ) -> None:
        """Status of a post not yet released: draft or scheduled (with the Scheduled condition)."""
        meta = post["metadata"]
        status = post.get("status") or {}
        generation = int(meta.get("generation") or 1)
        now = _micro_now()
        conditions = status.get("conditions") or []
        events = status.get("lifecycleEvents") or []
        if phase == "scheduled":
            conditions = decisions.set_condition(
                conditions,
                type="Scheduled",
                status="True",
                reason="Scheduled",
                message=f"publishes at {scheduled_for}",
                generation=generation,
                now=now,
            )
            if status.get("scheduledFor") != scheduled_for:
                events = decisions.with_event(
                    events,
                    {
                        "id": decisions.event_id(meta["uid"], "social.post_scheduled", str(scheduled_for)),
                        "type": "social.post_scheduled",
                        "occurredAt": now,
                    },
                )
        else:
            conditions = decisions.set_condition(
                conditions,
                type="Scheduled",
                status="False",
                reason="Draft",
                message="the post is a draft",
                generation=generation,
                now=now,
            )
        conditions = decisions.set_condition(
            conditions,
            type="Published",
            status="False",
            reason="NotPublished",
            message="publishing has not begun",
            generation=generation,
            now=now,
        )
        conditions = decisions.set_condition(
            conditions,
            type="Ready",
            status="False",
            reason="Waiting" if phase == "scheduled" else "Draft",
            message=f"the post is {phase}",
            generation=generation,
            now=now,
        )
        counts = decisions.target_counts(["pending"] * len(self._desired_targets(post)))
        desired = {
            "phase": phase,
            "scheduledFor": scheduled_for,
            "observedGeneration": generation,
            "targetCounts": counts,
            "conditions": conditions,
            "lifecycleEvents": events,
        }
        if all(status.get(k) == v for k, v in desired.items()):
            return
        updated = await self.client.patch(
            POSTS, meta["name"], {"status": desired}, meta["namespace"], subresource="status"
        )
        self._remember(self.posts, updated)
        if phase == "scheduled" and status.get("scheduledFor") != scheduled_for:
            self._event(updated, reason="Scheduled", message=f"Scheduled for {scheduled_for}")

    async def _release(self, post: dict[str, Any]) -> None:
        """Publishing begins: record it on the post (conditional on the version decided on); each
        target then freezes its content and publishes on its own."""
        meta = post["metadata"]
        generation = int(meta.get("generation") or 1)
        now_iso = decisions.format_time(self._clock())
        status = post.get("status") or {}
        conditions = decisions.set_condition(
            status.get("conditions") or [],
            type="Scheduled",
            status="True",
            reason="Released",
            message=f"publishing began at {now_iso}",
            generation=generation,
            now=_micro_now(),
        )
        conditions = _spec_applied(conditions, generation=generation, released_generation=generation)
        released = [_target_record(t) for t in self._own_targets(post)]
        publishing = {
            "phase": "publishing",
            "publishStartedAt": now_iso,
            "releasedGeneration": generation,
            "releasedTargets": released,
            "observedGeneration": generation,
            "conditions": conditions,
        }
        updated = await self._patch_status(POSTS, post, publishing, ("post", _key(post)))
        if updated is None:
            return  # changed while we decided (an edit or a reschedule): decided again
        post = updated
        await self._keep_released(post)
        self._event(
            post,
            reason="Publishing",
            message=f"Publishing to {len(released)} account(s)",
        )

    async def _keep_released(self, post: dict[str, Any]) -> None:
        """After release: every released target gets its content; nothing done to the spec or to
        the targets afterwards is acted on, and what was refused is reported."""
        meta = post["metadata"]
        key = _key(post)
        status = post.get("status") or {}
        released_generation = int(status.get("releasedGeneration") or meta.get("generation") or 1)
        generation = int(meta.get("generation") or 1)
        current = self._own_targets(post)
        released = _released_targets(post)
        patch: dict[str, Any] = {}
        if released is None:
            # Released by an operator that did not record its targets: they are the ones there now.
            records = [_target_record(t) for t in current]
            released = {r["uid"]: r for r in records}
            patch["releasedTargets"] = records
        for target in current:
            content = (target.get("status") or {}).get("content")
            if target["metadata"].get("uid") in released and (not content or "releasedTargets" in patch):
                self.queue.submit(("target", _key(target)))
        refused = _refused_changes(post, released, current)
        conditions = status.get("conditions") or []
        new_conditions = _spec_applied(
            conditions, generation=generation, released_generation=released_generation, refused=refused
        )
        if new_conditions != conditions or status.get("observedGeneration") != generation:
            patch.update({"conditions": new_conditions, "observedGeneration": generation})
        if patch:
            updated = await self._patch_status(POSTS, post, patch, ("post", key))
            if updated is None:
                return
            post = updated
            old: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "SpecApplied"), {})
            new = next(c for c in new_conditions if c.get("type") == "SpecApplied")
            if new["status"] == "False" and new.get("message") != old.get("message"):
                self._event(post, reason="ChangeRefused", warning=True, message=new["message"])
        self.queue.submit(("aggregate", key))

    async def aggregate_post(self, key: Key) -> None:
        """The post's phase, counts and conditions follow its targets once released."""
        post = self.posts.get(key)
        if not _released(post):
            return
        assert post is not None
        status = post.get("status") or {}
        meta = post["metadata"]
        released = _released_targets(post)
        targets = [
            t for t in self._own_targets(post) if released is None or t["metadata"].get("uid") in released
        ]
        if released is not None and len(targets) < len(released):
            # A released target was deleted: its outcome is gone with it, so the phase and counts
            # stay as last computed with it (SpecApplied reports the deletion).
            return
        states = [(t.get("status") or {}).get("state") or "pending" for t in targets]
        phase = decisions.post_phase(draft=False, released=True, due=None, now=self._clock(), states=states)
        generation = int(meta.get("generation") or 1)
        now = _micro_now()
        conditions = status.get("conditions") or []
        published = sum(1 for s in states if s == "published")
        if phase in ("published", "partially_published"):
            conditions = decisions.set_condition(
                conditions,
                type="Published",
                status="True",
                reason="Published" if phase == "published" else "PartiallyPublished",
                message=f"published to {published} of {len(states)} account(s)",
                generation=generation,
                now=now,
            )
        elif phase == "failed":
            conditions = decisions.set_condition(
                conditions,
                type="Published",
                status="False",
                reason="AllTargetsDead",
                message=f"every one of {len(states)} target(s) was dead-lettered",
                generation=generation,
                now=now,
            )
        else:
            conditions = decisions.set_condition(
                conditions,
                type="Published",
                status="False",
                reason="Publishing",
                message=f"published to {published} of {len(states)} account(s) so far",
                generation=generation,
                now=now,
            )
        terminal = phase in ("published", "partially_published", "failed")
        unknown = [
            str((t.get("spec") or {}).get("accountId"))
            for t in targets
            if (t.get("status") or {}).get("state") == "unknown"
        ]
        if unknown or any(c.get("type") == "NeedsAttention" for c in conditions):
            conditions = decisions.set_condition(
                conditions,
                type="NeedsAttention",
                status="True" if unknown else "False",
                reason="OutcomeUnknown" if unknown else "Resolved",
                message=(
                    "the platform cannot tell whether the post reached account(s) "
                    f"{', '.join(sorted(unknown))}; it is not re-sent: check the account, then set "
                    "the target's state"
                )
                if unknown
                else "no target's outcome is unknown",
                generation=generation,
                now=now,
            )
        conditions = decisions.set_condition(
            conditions,
            type="Ready",
            status="True" if terminal else "False",
            reason="NeedsAttention" if unknown and not terminal else _PHASE_REASONS.get(phase, "Publishing"),
            message=f"the post is {phase}"
            + (f"; {len(unknown)} target(s) need attention" if unknown else ""),
            generation=generation,
            now=now,
        )
        desired: dict[str, Any] = {
            "phase": phase,
            "targetCounts": decisions.target_counts(states),
            "conditions": conditions,
        }
        if terminal and published and not status.get("publishedAt"):
            times = [(t.get("status") or {}).get("publishedAt") for t in targets]
            desired["publishedAt"] = (
                max(t for t in times if t) if any(times) else decisions.format_time(self._clock())
            )
        if all(status.get(k) == v for k, v in desired.items()):
            return
        updated = await self._patch_status(POSTS, post, desired, ("aggregate", key))
        if updated is None:
            return
        if terminal and status.get("phase") != phase:
            self._event(
                updated,
                reason=_PHASE_REASONS[phase],
                message=f"Post {phase.replace('_', ' ')}: {published} of {len(states)} account(s)",
                warning=phase != "published",
            )

    async def _patch_status(
        self, resource: Resource, obj: dict[str, Any], status: dict[str, Any], again: tuple[str, Key]
    ) -> dict[str, Any] | None:
        """Write ``obj``'s status conditionally on the version it was decided on: concurrent work
        (a post's reconcile and its summary, a claim and a watch event) must not undo each other
        from a stale copy. On a conflict the latest copy is kept, ``again`` is decided anew from it,
        and ``None`` is returned."""
        key = _key(obj)
        store = self._stores[resource.plural]
        patch = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "status": status}
        try:
            updated = await self.client.patch(resource, key[1], patch, key[0], subresource="status")
        except Conflict:
            self._remember(store, await self.client.get(resource, key[1], key[0]))
            self.queue.submit(again)
            return None
        return self._remember(store, updated)

    # Targets.

    async def _adapter_for(self, account: dict[str, Any]) -> Adapter:
        """Simulated or real, decided by the account's namespace, never by its ``spec.sandbox``."""
        namespace = str(account["metadata"]["namespace"])
        mode = await self._namespace_mode(namespace) if self._namespace_mode else None
        if mode is Mode.TEST:
            return self._sandbox
        if mode is None:
            raise _NoAdapter(
                f"namespace {namespace} is not the live or the sandbox namespace of exactly one "
                "SocialTenant: nothing is published from it"
            )
        if self._live_adapter is None:
            raise _NoAdapter("no adapter for live accounts is configured in this operator")
        return self._live_adapter(account)

    def _request(self, target: dict[str, Any], account: dict[str, Any], attempt: int) -> PublishRequest:
        status = target.get("status") or {}
        content = status.get("content") or {}
        return PublishRequest(
            nonce=target["metadata"]["uid"],
            attempt=attempt,
            platform=str((account.get("spec") or {}).get("platform") or ""),
            account_external_id=str((account.get("spec") or {}).get("externalId") or ""),
            text=str(content.get("text") or ""),
            media=tuple(
                MediaItem(str(m.get("url")), str(m.get("alt") or "")) for m in content.get("media") or []
            ),
            started_at=decisions.parse_time(status.get("lastAttemptAt")) or self._clock(),
            platform_state=dict(status.get("platformState") or {}),
            checkpoint=functools.partial(self._checkpoint, _key(target)),
        )

    async def _checkpoint(self, key: Key, state: Mapping[str, Any]) -> None:
        """An adapter saves progress (``status.platformState``) before a step it must recover from.

        Written only while the claim is still ours (:meth:`_write_claimed`): an operator that lost
        its claim must not write onto its successor's work, and the step the checkpoint guards must
        not run then either. The stored object is read back from the answer: a key the API server
        pruned (a field the CRD does not declare) or changed was *not* saved, and the step it guards
        must not run, so that is an error here rather than a marker silently lost before a crash
        needs it."""
        target = self.targets.get(key)
        if target is not None and not self._holds_claim(target):
            updated = await self._write_resolving(key, {"platformState": dict(state)})
        else:
            updated = await self._write_claimed(key, {"platformState": dict(state)})
        if updated is None:
            raise TransientError(
                "this operator no longer holds the claim on the target (or its Lease): not continuing",
                code="claim_lost",
            )
        saved = (updated.get("status") or {}).get("platformState") or {}
        lost = sorted(k for k, v in state.items() if v is not None and saved.get(k) != v)
        if lost:
            raise TransientError(
                f"the API server did not store {', '.join(lost)} in status.platformState "
                "(is the SocialTarget CRD current?); not continuing without it",
                code="checkpoint_not_stored",
            )

    # Fenced status writes: nothing this process writes to a target can undo a newer decision.

    def _holds_claim(self, target: dict[str, Any]) -> bool:
        status = target.get("status") or {}
        return status.get("state") == "publishing" and status.get("claimedBy") == self.identity

    def _latest(self, target: dict[str, Any]) -> dict[str, Any]:
        """The newest copy of ``target`` this process knows (a checkpoint may have moved it on)."""
        known = self.targets.get(_key(target))
        return known if known is not None and _rv(known) > _rv(target) else target

    async def _write_claimed(self, key: Key, status: dict[str, Any]) -> dict[str, Any] | None:
        """Write ``status`` while the target is claimed by this operator (``claimedBy`` = our
        identity, ``publishing``), conditional on the version that showed it, and while the Lease
        is held. ``None`` (nothing written) once the claim or the Lease is no longer ours."""
        return await self._write_fenced(
            key, status, may_write=self._holds_claim, conflict="kept changing under our claim"
        )

    async def _write_resolving(self, key: Key, status: dict[str, Any]) -> dict[str, Any] | None:
        """Write ``status`` while resolving an interrupted claim that is not ours (an adapter's
        checkpoint during its lookup): only while the target still shows that same claim, and
        while the Lease is held. ``None`` once the claim has changed."""
        claim = _claim_of(self.targets.get(key))
        return await self._write_fenced(
            key,
            status,
            may_write=lambda target: _claim_of(target) == claim,
            conflict="kept changing while it was resolved",
        )

    async def _write_fenced(
        self,
        key: Key,
        status: dict[str, Any],
        *,
        may_write: Callable[[dict[str, Any]], bool],
        conflict: str,
    ) -> dict[str, Any] | None:
        """The one fenced write loop: ``status`` is written conditional on the version that was
        checked with ``may_write`` (and while the Lease is held); on a conflict the latest copy is
        read and checked again. ``None`` (nothing written) once ``may_write`` or the Lease says
        no; a target that keeps changing (5 conflicts) raises :class:`Conflict` with ``conflict``."""
        target = self.targets.get(key)
        for _ in range(5):
            if target is None or not may_write(target) or not self._lease_valid():
                return None
            patch = {"metadata": {"resourceVersion": target["metadata"]["resourceVersion"]}, "status": status}
            try:
                updated = await self.client.patch(TARGETS, key[1], patch, key[0], subresource="status")
            except Conflict:
                target = self._remember(self.targets, await self.client.get(TARGETS, key[1], key[0]))
                continue
            return self._remember(self.targets, updated)
        raise Conflict(409, "Conflict", f"target {key[0]}/{key[1]} {conflict}", {})

    async def _write_target(self, target: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
        """Write a target's status, fenced: under our claim (:meth:`_write_claimed`), or else
        conditional on the version the decision was made on; on a conflict the target is decided
        again from its latest state and ``None`` is returned."""
        target = self._latest(target)
        key = _key(target)
        if self._holds_claim(target):
            return await self._write_claimed(key, status)
        if not self._lease_valid():
            return None
        return await self._patch_status(TARGETS, target, status, ("target", key))

    async def advance_target(self, key: Key) -> None:
        target = self.targets.get(key)
        if target is None:
            self.timer.cancel(("target", key))
            self._claims_seen.pop(key, None)
            return
        status = target.get("status") or {}
        post_key = (key[0], str((target.get("spec") or {}).get("postName") or ""))
        post = self.posts.get(post_key)
        if not _released(post):
            return
        assert post is not None
        if not _owned_by(target, post):
            # A target of another SocialPost of the same name (deleted and created again): not
            # this post's; it goes with its own post (ownerReferences).
            self.timer.cancel(("target", key))
            return
        released = _released_targets(post)
        if released is None:
            self.queue.submit(("post", post_key))  # its targets are recorded first
            return
        record = released.get(str(target["metadata"].get("uid")))
        if record is None:
            # Not one of the post's released deliveries (added, re-added or recreated after the
            # release): never published. The post reports it.
            self.timer.cancel(("target", key))
            return
        if int((target.get("spec") or {}).get("accountId") or 0) != int(record.get("accountId") or 0):
            # Its account was changed after the release: publishing it would send the post to an
            # account it was not released to (which may have it already). Refused; the post says so.
            self.timer.cancel(("target", key))
            self.queue.submit(("post", post_key))
            return
        if not status.get("content"):
            frozen = await self._freeze(target, post)
            if frozen is None:
                return
            target, status = frozen, frozen.get("status") or {}
        plan = decisions.plan_target(
            status, released=True, in_flight=key in self._in_flight, now=self._clock()
        )
        if plan.action == "resolve":
            delay = self._resolve_delay(key, status)
            if delay > 0:
                self.timer.arm(("target", key), self._clock() + delay)
                return
        elif status.get("state") != "publishing":
            self._claims_seen.pop(key, None)
        if plan.action == "wait" and plan.until is not None:
            if status.get("state") == "publishing":
                self._resolve_delay(key, status)  # starts this process's own count for the claim
            self.timer.arm(("target", key), plan.until)
        elif plan.action in ("deliver", "resolve"):
            await self._attempt(target, post, resolve=plan.action == "resolve")

    def _resolve_delay(self, key: Key, status: Mapping[str, Any]) -> float:
        """How long a claim found here must still wait on this process's monotonic clock (see
        :func:`decisions.resolve_delay`); remembers when this process first saw the claim."""
        claim = _claim_of({"status": status}) or ()
        seen = self._claims_seen.get(key)
        if seen is None or seen[0] != claim:
            seen = (claim, self._monotonic())
            self._claims_seen[key] = seen
        return decisions.resolve_delay(
            status, identity=self.identity, first_seen=seen[1], now_monotonic=self._monotonic()
        )

    async def _freeze(self, target: dict[str, Any], post: dict[str, Any]) -> dict[str, Any] | None:
        """Release one target: its effective content is written into its status, ``pending``.

        From here on every attempt publishes exactly this, whatever happens to the post's spec.
        (The post's spec is the released generation unless it was edited in the moment between
        release and this write — possible only across an operator restart.) Only from an empty
        status, and conditional on the version that showed it empty: a late freeze must never
        turn a target that has moved on (publishing, published) back into ``pending``. ``None``
        when it was not written (the target is decided again from its latest state).
        """
        current = target.get("status") or {}
        if current.get("content") or current.get("state") not in (None, "", "pending"):
            return target
        spec = post.get("spec") or {}
        account = await self._find_account(target)
        override = (target.get("spec") or {}).get("overrideBody")
        status: dict[str, Any] = {
            "state": "pending",
            "attempts": 0,
            "content": {
                "text": override or spec.get("body", ""),
                "media": [{"url": m.get("url"), "alt": m.get("alt", "")} for m in spec.get("media") or []],
            },
        }
        platform = ((account or {}).get("spec") or {}).get("platform")
        if platform:
            status["platform"] = platform
        updated = await self._write_target(target, status)
        if updated is not None:
            self.queue.submit(("aggregate", (_key(target)[0], post["metadata"]["name"])))
        return updated

    def _failure(
        self,
        attempts: int,
        classification: str,
        code: str,
        message: str,
        retry_after: float | None = None,
        not_before: float | None = None,
    ) -> dict[str, Any]:
        return decisions.failure_status(
            attempts_before=attempts,
            classification=classification,
            code=code,
            message=message,
            now=self._clock(),
            base=self.settings.retry_base_seconds,
            rng=self._rng,
            retry_after=retry_after,
            not_before=not_before,
        )

    async def _attempt(self, target: dict[str, Any], post: dict[str, Any], *, resolve: bool) -> None:
        key = _key(target)
        status = target.get("status") or {}
        attempts = int(status.get("attempts") or 0)
        attempt = attempts + 1
        account = await self._find_account(target)
        if account is None:
            account_id = (target.get("spec") or {}).get("accountId")
            message = f"no SocialAccount with id {account_id} in {key[0]}"
            if resolve:
                # An attempt was in flight when the account went: the post may be live. Never
                # dead-lettered without asking the platform, which can no longer be asked.
                unknown = OutcomeUnknown(
                    f"{message}: an attempt to it was interrupted and can no longer be checked",
                    code="account_not_found",
                )
                await self._record_unknown(target, post, attempt, unknown)
                return
            await self._record(
                target, post, self._failure(attempts, "permanent", "account_not_found", message)
            )
            return
        state = (account.get("status") or {}).get("state")
        if state in _UNUSABLE_ACCOUNT_STATES:
            # Wait for the account to be reconnected (its update resubmits this target); an
            # interrupted attempt stays ``publishing`` until it can be checked with a valid token.
            if not resolve:
                await self._wait_for_account(
                    target, post, attempts, f"account_{state}", f"the account is {state}"
                )
            return
        try:
            adapter = await self._adapter_for(account)
        except _NoAdapter as exc:
            await self._wait_for_tenancy(target, post, account, str(exc), resolve=resolve)
            return
        self._unowned.get(key[0], set()).discard(key)
        if resolve:
            await self._resolve(target, post, adapter, account, attempt)
            return
        await self._deliver(target, post, adapter, account, attempts)

    async def _deliver(
        self,
        target: dict[str, Any],
        post: dict[str, Any],
        adapter: Adapter,
        account: dict[str, Any],
        attempts: int,
    ) -> None:
        """Claim the target, then make one attempt within the claim's budget and record it."""
        key = _key(target)
        attempt = attempts + 1
        previous = target.get("status") or {}
        if not self._lease_valid():
            return  # the Lease is (about to be) lost: no new claim; the next holder takes it up
        now = self._clock()
        planned = self._call_seconds(adapter, account)
        settle = self.settings.claim_settle_seconds
        lease_until = decisions.claim_until(claimed_at=now, call_seconds=planned, settle_seconds=settle)
        claim = {
            "state": "publishing",
            "lastAttemptAt": decisions.format_time(now),
            "nextAttemptAt": None,
            "claimedBy": self.identity,
            "leaseUntil": decisions.format_time(lease_until),
        }
        self._in_flight.add(key)
        try:
            claimed = await self._patch_status(TARGETS, target, claim, ("target", key))
            if claimed is None:
                return
            target = claimed
            self.queue.submit(("aggregate", (key[0], post["metadata"]["name"])))
            # The call gets what is left of the claim after the claim write (never the settle margin).
            budget = decisions.call_budget(lease_until=lease_until, settle_seconds=settle, now=self._clock())
            if not self._lease_valid():
                return  # not sent: the claim stays until leaseUntil and the next holder checks it
            if budget < planned * _MIN_BUDGET_SHARE:
                await self._release_claim(target, post, previous, budget, planned)
                return
            try:
                request = self._request(target, account, attempt)
                result = await asyncio.wait_for(adapter.publish(request), budget)
            except TimeoutError:
                # Cancelled at the budget: the platform may still act on the call. The claim stays
                # and is resolved (looked up) like an interrupted one, once its lease has passed.
                self.timer.arm(("target", key), lease_until)
                return
            except OutcomeUnknown as exc:
                await self._record_unknown(target, post, attempt, exc)
                return
            except PublishError as exc:
                await self._record_failure(target, post, account, attempts, exc, lease_until=lease_until)
                return
            await self._record_published(target, post, result, attempt)
        finally:
            self._in_flight.discard(key)

    async def _release_claim(
        self,
        target: dict[str, Any],
        post: dict[str, Any],
        previous: Mapping[str, Any],
        budget: float,
        planned: float,
    ) -> None:
        """The claim write took so long that too little of the call budget is left: nothing is
        sent, the claim is handed back (the state before it, no attempt counted) and the target is
        tried again shortly."""
        key = _key(target)
        logger.warning(
            "target %s/%s: the claim write left %.1fs of a %.1fs call budget; not sending, retrying",
            key[0],
            key[1],
            budget,
            planned,
        )
        status = {
            "state": previous.get("state") or "pending",
            "lastAttemptAt": previous.get("lastAttemptAt"),
            "nextAttemptAt": previous.get("nextAttemptAt"),
            "claimedBy": None,
            "leaseUntil": None,
        }
        if await self._write_claimed(key, status) is not None:
            self.timer.arm(("target", key), self._clock() + _RELEASED_CLAIM_RETRY_SECONDS)
            self.queue.submit(("aggregate", (key[0], post["metadata"]["name"])))

    def _call_seconds(self, adapter: Adapter, account: dict[str, Any]) -> float:
        """The longest one adapter call for this account can take (the claim's lease covers it)."""
        if adapter is self._sandbox:
            return 2 * self.settings.sandbox_delay_seconds + 2.0  # no network: only the loop's delays
        return self._live_call_seconds(str((account.get("spec") or {}).get("platform") or ""))

    async def _resolve(
        self,
        target: dict[str, Any],
        post: dict[str, Any],
        adapter: Adapter,
        account: dict[str, Any],
        attempt: int,
    ) -> None:
        """An attempt was interrupted (found ``publishing`` by a process not making it): did it land?"""
        try:
            found = await adapter.find_published(self._request(target, account, attempt))
        except OutcomeUnknown as exc:
            await self._record_unknown(target, post, attempt, exc)
            return
        except PublishError as exc:
            await self._resolve_failed(target, post, account, attempt, exc)
            return
        if found is not None:
            await self._record_published(target, post, found, attempt, note="resolved after an interruption")
            return
        failure = self._failure(
            attempt - 1,
            "transient",
            "attempt_interrupted",
            "the attempt was interrupted and the platform has no record of it",
        )
        if failure["state"] == "failed":
            failure["nextAttemptAt"] = decisions.format_time(self._clock())  # nothing landed: retry now
        await self._record(target, post, failure)

    async def _record_failure(
        self,
        target: dict[str, Any],
        post: dict[str, Any],
        account: dict[str, Any],
        attempts: int,
        exc: PublishError,
        *,
        lease_until: float,
    ) -> None:
        """Record a failed attempt. Two failures do not count as attempts: :class:`Deferred` (a quota
        or throttle, not the content: retried after ``retry_after``) and :class:`ReconnectError`
        (the account is marked expired/revoked and its targets wait until it is reconnected).

        An *ambiguous* transient failure (the platform may still act on the call: a timeout or a
        dropped connection after sending, a 5xx to a create) is not retried — not even looked up —
        before the attempt's ``leaseUntil``; a last attempt that failed that way is not dead-lettered
        either: its claim stays and is resolved at ``leaseUntil`` (published if it landed, else
        dead; ``unknown`` if the platform cannot tell)."""
        if isinstance(exc, ReconnectError):
            await self._mark_account(account, exc)
            await self._wait_for_account(target, post, attempts, exc.code, exc.message)
            return
        if isinstance(exc, Deferred):
            error = {"code": exc.code, "message": exc.message[:2000], "class": "transient"}
            due = decisions.format_time(self._clock() + max(0.0, exc.retry_after or 0.0))
            await self._record(
                target,
                post,
                {"state": "failed", "attempts": attempts, "lastError": error, "nextAttemptAt": due},
            )
            return
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        ambiguous = isinstance(exc, TransientError) and exc.ambiguous
        if ambiguous and attempts + 1 >= decisions.MAX_ATTEMPTS:
            error = {"code": exc.code, "message": exc.message[:2000], "class": "transient"}
            if await self._write_claimed(_key(target), {"lastError": error}) is not None:
                self.timer.arm(("target", _key(target)), lease_until)
            return
        failure = self._failure(
            attempts,
            exc.classification,
            exc.code,
            exc.message,
            retry_after,
            not_before=lease_until if ambiguous else None,
        )
        await self._record(target, post, failure)

    async def _resolve_failed(
        self,
        target: dict[str, Any],
        post: dict[str, Any],
        account: dict[str, Any],
        attempt: int,
        exc: PublishError,
    ) -> None:
        """The platform could not be asked whether an interrupted attempt landed. The target stays
        ``publishing`` (never re-sent blind) and is asked again later — unless asking cannot work,
        and then it is ``unknown`` (for a person): the post may be live, so never ``dead``."""
        key = _key(target)
        if isinstance(exc, ReconnectError):
            await self._mark_account(account, exc)  # the account's update resubmits the target
        elif isinstance(exc, TransientError):
            delay = decisions.backoff_delay(attempt, base=self.settings.retry_base_seconds, rng=self._rng)
            self.timer.arm(("target", key), self._clock() + max(delay, exc.retry_after or 0.0))
        else:
            message = f"could not check whether the interrupted attempt landed: {exc.message}"
            await self._record_unknown(target, post, attempt, OutcomeUnknown(message, code=exc.code))

    async def _record_unknown(
        self, target: dict[str, Any], post: dict[str, Any], attempt: int, exc: OutcomeUnknown
    ) -> None:
        """The platform cannot tell whether the attempt landed: ``unknown``, for a person to settle.

        Re-sending could post twice and giving up could dead-letter a live post, so neither is
        done; the post's ``NeedsAttention`` condition and a Warning Event say so."""
        error = {"code": exc.code, "message": exc.message[:2000], "class": "unknown"}
        await self._record(
            target,
            post,
            {"state": "unknown", "attempts": attempt, "lastError": error, "nextAttemptAt": None},
        )

    async def _mark_account(self, account: dict[str, Any], exc: ReconnectError) -> None:
        """The platform refused the account's token: mark it expired/revoked (once)."""
        key = _key(account)
        for _ in range(3):
            if (account.get("status") or {}).get("state") in _UNUSABLE_ACCOUNT_STATES:
                return
            patch = {
                "metadata": {"resourceVersion": account["metadata"]["resourceVersion"]},
                "status": unusable_account_status(account, exc, now=self._clock()),
            }
            try:
                updated = await self.client.patch(ACCOUNTS, key[1], patch, key[0], subresource="status")
            except Conflict:
                account = self._remember(self.accounts, await self.client.get(ACCOUNTS, key[1], key[0]))
                continue
            self._remember(self.accounts, updated)
            self._event(updated, reason="ReconnectRequired", warning=True, message=exc.message)
            return

    async def _wait_for_account(
        self, target: dict[str, Any], post: dict[str, Any], attempts: int, code: str, message: str
    ) -> None:
        """Park the target until its account is active again (no attempt counted, no timer)."""
        key = _key(target)
        account = self._account_of(target) or {}
        state = (account.get("status") or {}).get("state") or "expired"
        status = self._latest(target).get("status") or {}
        desired = waiting_status(attempts, state=state, code=code, message=message)
        self.timer.cancel(("target", key))
        if all(status.get(k) == v for k, v in desired.items() if k != "lastError") and (
            (status.get("lastError") or {}).get("class") == "reconnect"
        ):
            return
        if await self._write_target(target, {**desired, "claimedBy": None, "leaseUntil": None}) is None:
            return
        self.queue.submit(("aggregate", (key[0], post["metadata"]["name"])))
        self._event(
            post,
            reason="WaitingForAccount",
            warning=True,
            message=f"Waiting for account {(target.get('spec') or {}).get('accountId')} to be reconnected: "
            f"{message}",
        )

    async def _wait_for_tenancy(
        self,
        target: dict[str, Any],
        post: dict[str, Any],
        account: dict[str, Any],
        message: str,
        *,
        resolve: bool,
    ) -> None:
        """The account's namespace has no mode (no tenant names it, or two do): nothing is
        published from it, and that is a wait, not a failure. No attempt is counted; the target
        keeps its state with ``lastError`` ``namespace_not_owned`` and is looked at again when
        tenants or namespaces change (:meth:`tenancy_changed`). An interrupted attempt
        (``publishing``) stays as it is: it is never ended without asking the platform."""
        key = _key(target)
        self._unowned.setdefault(str(account["metadata"]["namespace"]), set()).add(key)
        self.timer.cancel(("target", key))
        if resolve:
            logger.warning("target %s/%s: interrupted attempt waits for a tenant: %s", *key, message)
            return
        status = self._latest(target).get("status") or {}
        error = {"code": "namespace_not_owned", "message": message[:2000], "class": "transient"}
        if status.get("lastError") == error and status.get("nextAttemptAt") is None:
            return
        desired = {
            "state": status.get("state") or "pending",
            "lastError": error,
            "nextAttemptAt": None,
            "claimedBy": None,
            "leaseUntil": None,
        }
        if await self._write_target(target, desired) is None:
            return
        self.queue.submit(("aggregate", (key[0], post["metadata"]["name"])))
        self._event(post, reason="WaitingForTenant", warning=True, message=message)

    def tenancy_changed(self) -> None:
        """Tenants or namespaces changed: targets waiting for their namespace's tenant look again."""
        waiting, self._unowned = self._unowned, {}
        for keys in waiting.values():
            for key in sorted(keys):
                self.queue.submit(("target", key))

    async def _record_published(
        self, target: dict[str, Any], post: dict[str, Any], result: Published, attempt: int, note: str = ""
    ) -> None:
        """Record a post the platform has: the result is in hand and is not given up because one
        write failed. The write is retried here (bounded, with backoff, fenced by our claim)
        rather than dropped and left to a lookup after ``leaseUntil`` — which a LinkedIn member
        account cannot do, and which a platform whose lookup lags could answer "not found"."""
        now = self._clock()
        status = target.get("status") or {}
        event = {
            "id": decisions.event_id(target["metadata"]["uid"], "social.post_published"),
            "type": "social.post_published",
            "occurredAt": decisions.format_time(now),
        }
        outcome = {
            "state": "published",
            "attempts": attempt,
            "externalPostId": result.external_id,
            "externalUrl": result.url,
            "publishedAt": decisions.format_time(now),
            "nextAttemptAt": None,
            "lastError": None,
            "lifecycleEvents": decisions.with_event(status.get("lifecycleEvents") or [], event),
        }
        key = _key(target)
        for delay in (*_RECORD_RETRY_SECONDS, None):
            try:
                await self._record(target, post, outcome, note=note)
                return
            except (NotFound, Invalid):
                raise  # gone, or refused as it stands: writing it again changes nothing
            except Exception as exc:  # a transport error, a timeout, a 5xx: the result must be kept
                if delay is None or not self._lease_valid():
                    logger.error(
                        "target %s/%s: published as %s (%s) but recording it failed: %s",
                        key[0],
                        key[1],
                        result.external_id,
                        result.url,
                        exc,
                    )
                    raise
                logger.warning("target %s/%s: recording the published post failed (%s); retrying", *key, exc)
                await asyncio.sleep(delay)
                target = self._latest(target)

    async def _record(
        self, target: dict[str, Any], post: dict[str, Any], new_status: dict[str, Any], note: str = ""
    ) -> None:
        """Write the outcome of an attempt (fenced: :meth:`_write_target`), then tell the post
        (aggregate) and people (Events)."""
        key = _key(target)
        state = new_status["state"]
        new_status = {"claimedBy": None, "leaseUntil": None, **new_status}  # the claim is over
        if state == "dead":
            status = target.get("status") or {}
            event = {
                "id": decisions.event_id(target["metadata"]["uid"], "social.post_failed"),
                "type": "social.post_failed",
                "occurredAt": decisions.format_time(self._clock()),
            }
            new_status = {
                **new_status,
                "lifecycleEvents": decisions.with_event(status.get("lifecycleEvents") or [], event),
            }
        updated = await self._write_target(target, new_status)
        if updated is None:
            logger.info("target %s/%s: %s not recorded: it moved on or the claim is not ours", *key, state)
            return
        target = updated
        self.queue.submit(("aggregate", (key[0], post["metadata"]["name"])))
        if state == "failed":
            due = decisions.parse_time(new_status.get("nextAttemptAt"))
            if due is not None:
                self.timer.arm(("target", key), due)
        account_spec = (self._account_of(target) or {}).get("spec") or {}
        where = f"{account_spec.get('platform', '?')} ({account_spec.get('displayName', '?')})"
        error = new_status.get("lastError") or {}
        if state == "published":
            message = f"Published to {where}: {new_status.get('externalUrl')}" + (
                f" ({note})" if note else ""
            )
            self._event(post, reason="PublishedTarget", message=message)
        elif state == "failed":
            self._event(
                post,
                reason="Retrying",
                warning=True,
                message=f"Attempt {new_status['attempts']} to {where} failed "
                f"({error.get('code')}: {error.get('message')}); retrying at "
                f"{new_status.get('nextAttemptAt')}",
            )
        elif state == "unknown":
            self._event(
                post,
                reason="OutcomeUnknown",
                warning=True,
                message=f"Cannot tell whether attempt {new_status['attempts']} to {where} landed "
                f"({error.get('code')}: {error.get('message')}); not re-sent: check the account, then "
                "set the target's state (published or dead)",
            )
        elif state == "dead":
            self._event(
                post,
                reason="DeadLettered",
                warning=True,
                message=f"Gave up on {where} after {new_status['attempts']} attempt(s): "
                f"{error.get('code')}: {error.get('message')}",
            )


def _refused_changes(
    post: dict[str, Any], released: dict[str, dict[str, Any]], current: list[dict[str, Any]]
) -> list[str]:
    """What was done to a released post that the operator does not act on, for people to read.

    The released targets are the post's deliveries for good: a draft flag, accounts added to or
    removed from ``spec.targets``, SocialTargets created after the release (however they came:
    the api, kubectl, a GitOps sync) and released ones deleted are all reported, never acted on,
    so no account can receive the post a second time.
    """
    spec = post.get("spec") or {}
    refused: list[str] = []
    if spec.get("draft"):
        refused.append("draft: true (a released post never goes back to draft)")
    released_accounts = sorted({int(r.get("accountId") or 0) for r in released.values()})
    wanted = sorted({int(t.get("accountId") or 0) for t in spec.get("targets") or []})
    added = [a for a in wanted if a not in released_accounts]
    removed = [a for a in released_accounts if a not in wanted]
    if added:
        refused.append(f"accounts added after publishing began are not published: {added}")
    if removed:
        refused.append(f"accounts removed after publishing began keep their delivery: {removed}")
    strays = sorted(t["metadata"]["name"] for t in current if t["metadata"].get("uid") not in released)
    if strays:
        refused.append(f"SocialTargets created after publishing began are never published: {strays}")
    moved = sorted(
        f"{t['metadata']['name']} (released to account {released[uid].get('accountId')}, now "
        f"{(t.get('spec') or {}).get('accountId')})"
        for t in current
        if (uid := str(t["metadata"].get("uid"))) in released
        and int((t.get("spec") or {}).get("accountId") or 0) != int(released[uid].get("accountId") or 0)
    )
    if moved:
        refused.append(f"released SocialTargets whose account was changed are not published: {moved}")
    present = {t["metadata"].get("uid") for t in current}
    deleted = sorted(r["name"] for uid, r in released.items() if uid not in present)
    if deleted:
        refused.append(f"released SocialTargets were deleted and are never recreated or re-sent: {deleted}")
    return refused


_PHASE_REASONS = {"published": "Published", "partially_published": "PartiallyPublished", "failed": "Failed"}
_UNUSABLE_ACCOUNT_STATES = ("expired", "revoked", "disconnected")


class _NoAdapter(Exception):
    """No adapter can publish for this account."""
