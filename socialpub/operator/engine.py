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
   platform is called.
3. **Record**: ``published`` (with the external id) or ``failed``/``dead`` after the call.
4. **Resolve**: a target found ``publishing`` that this process is not working on was
   interrupted; the adapter is asked whether that attempt landed before anything is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import AlreadyExists, Conflict, KubeClient, NotFound
from socialpub.kube.events import record_event
from socialpub.kube.ids import allocate_id
from socialpub.kube.resources import (
    ANNOTATION_CREATED_AT,
    ANNOTATION_UPDATED_AT,
    LABEL_ID,
    LABEL_POST,
    POSTS,
    TARGETS,
)
from socialpub.operator import decisions
from socialpub.operator.settings import OperatorSettings
from socialpub.operator.timers import Timer
from socialpub.operator.workqueue import WorkQueue
from socialpub.platforms.base import (
    Adapter,
    MediaItem,
    Published,
    PublishError,
    PublishRequest,
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


class Engine:
    """Everything the operator does, behind three ``observe`` entry points."""

    def __init__(
        self,
        client: KubeClient,
        settings: OperatorSettings,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        live_adapter: Callable[[dict[str, Any]], Adapter] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._sandbox = SandboxAdapter(delay_seconds=settings.sandbox_delay_seconds)
        self._live_adapter = live_adapter
        self.posts: dict[Key, dict[str, Any]] = {}
        self.targets: dict[Key, dict[str, Any]] = {}
        self.accounts: dict[Key, dict[str, Any]] = {}
        self._targets_of: dict[Key, set[Key]] = {}
        self._in_flight: set[Key] = set()
        self.timer = Timer(self._on_due, clock=clock)
        self.queue = WorkQueue(self._work, concurrency=settings.concurrency)
        self._timer_task: asyncio.Task[None] | None = None

    # Lifecycle.

    async def start(self) -> None:
        if self._timer_task is None:
            self._timer_task = asyncio.create_task(self.timer.run(), name="socialpub-timer")

    async def stop(self) -> None:
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
            self._timer_task = None
        await self.queue.close()

    # Observation (called by the kopf handlers for every watch event).

    def observe(self, plural: str, event_type: str | None, body: dict[str, Any]) -> None:
        """Take the latest state of an object and schedule whatever work it now needs."""
        key = _key(body)
        store = {"socialposts": self.posts, "socialtargets": self.targets, "socialaccounts": self.accounts}[
            plural
        ]
        deleted = event_type == "DELETED"
        current = store.get(key)
        if current is not None and _rv(current) > _rv(body) and not deleted:
            return  # an older event than a write this process already applied
        if deleted:
            store.pop(key, None)
        else:
            store[key] = body
        if plural == "socialposts":
            if deleted:
                self.timer.cancel(("post", key))
            self.queue.submit(("post", key))
        elif plural == "socialtargets":
            post_key = (key[0], str((body.get("spec") or {}).get("postName") or ""))
            if deleted:
                self._targets_of.get(post_key, set()).discard(key)
                self.timer.cancel(("target", key))
            else:
                self._targets_of.setdefault(post_key, set()).add(key)
                self.queue.submit(("target", key))
            self.queue.submit(("aggregate", post_key))
        else:
            # An account change can unblock targets waiting on it.
            for target_key, target in list(self.targets.items()):
                if target_key[0] == key[0] and self._account_key(target) == key:
                    self.queue.submit(("target", target_key))

    def _remember(self, store: dict[Key, dict[str, Any]], obj: dict[str, Any]) -> dict[str, Any]:
        """Keep an object this process just wrote (read-your-writes), unless a newer one is known."""
        key = _key(obj)
        if _rv(obj) >= _rv(store.get(key)):
            store[key] = obj
        return store[key]

    def _on_due(self, item: Hashable) -> None:
        self.queue.submit(item)

    async def _work(self, item: Hashable) -> None:
        assert isinstance(item, tuple)
        kind, key = item
        if kind == "post":
            await self.reconcile_post(key)
        elif kind == "target":
            await self.advance_target(key)
        elif kind == "aggregate":
            await self.aggregate_post(key)

    # Posts.

    def _account_key(self, target: dict[str, Any]) -> Key | None:
        account_id = (target.get("spec") or {}).get("accountId")
        namespace = _key(target)[0]
        for key, account in self.accounts.items():
            if key[0] == namespace and ((account.get("metadata") or {}).get("labels") or {}).get(
                LABEL_ID
            ) == str(account_id):
                return key
        return None

    def _account_of(self, target: dict[str, Any]) -> dict[str, Any] | None:
        key = self._account_key(target)
        return self.accounts.get(key) if key else None

    async def reconcile_post(self, key: Key) -> None:
        post = self.posts.get(key)
        if post is None or (post.get("metadata") or {}).get("deletionTimestamp"):
            self.timer.cancel(("post", key))
            return
        post = await self._ensure_identity(post)
        status = post.get("status") or {}
        spec = post.get("spec") or {}
        if status.get("publishStartedAt"):
            await self._keep_released(post)
            return
        await self._sync_targets(post)
        now = self._clock()
        if spec.get("draft"):
            self.timer.cancel(("post", key))
            await self._write_post_status(post, phase="draft", scheduled_for=None)
            return
        due = decisions.parse_time(spec.get("scheduledFor"))
        if due is not None and due > now:
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
            stamp = (
                datetime.fromtimestamp(created, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            )
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

    async def _sync_targets(self, post: dict[str, Any]) -> None:
        """Make the post's SocialTargets match ``spec.targets`` (only before publishing begins)."""
        meta = post["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        desired = self._desired_targets(post)
        existing = {
            k[1]: self.targets[k] for k in self._targets_of.get((namespace, name), set()) if k in self.targets
        }
        for target_name, spec in desired.items():
            current = existing.get(target_name)
            if current is None:
                await self._create_target(post, target_name, spec)
            elif (current.get("spec") or {}) != spec:
                patch = {"spec": {**spec, "overrideBody": spec.get("overrideBody")}}
                updated = await self.client.patch(TARGETS, target_name, patch, namespace)
                self._remember(self.targets, updated)
        for target_name in existing:
            if target_name not in desired:
                with contextlib.suppress(NotFound):
                    await self.client.delete(TARGETS, target_name, namespace)
                self.targets.pop((namespace, target_name), None)
                self._targets_of.get((namespace, name), set()).discard((namespace, target_name))

    async def _create_target(self, post: dict[str, Any], target_name: str, spec: dict[str, Any]) -> None:
        meta = post["metadata"]
        body = {
            "apiVersion": TARGETS.api_version,
            "kind": TARGETS.kind,
            "metadata": {
                "name": target_name,
                "namespace": meta["namespace"],
                "labels": {LABEL_POST: meta["name"]},
                "ownerReferences": [
                    {
                        "apiVersion": POSTS.api_version,
                        "kind": POSTS.kind,
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }
        try:
            created = await self.client.create(TARGETS, body, meta["namespace"])
        except AlreadyExists:
            created = await self.client.get(TARGETS, target_name, meta["namespace"])
        self._remember(self.targets, created)
        self._targets_of.setdefault((meta["namespace"], meta["name"]), set()).add(_key(created))

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
            await record_event(
                self.client, updated, reason="Scheduled", message=f"Scheduled for {scheduled_for}"
            )

    async def _release(self, post: dict[str, Any]) -> None:
        """Publishing begins: freeze the content into each target and mark them pending."""
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
        patch = {
            "metadata": {"resourceVersion": meta["resourceVersion"]},
            "status": {
                "phase": "publishing",
                "publishStartedAt": now_iso,
                "releasedGeneration": generation,
                "observedGeneration": generation,
                "conditions": conditions,
            },
        }
        try:
            updated = await self.client.patch(
                POSTS, meta["name"], patch, meta["namespace"], subresource="status"
            )
        except Conflict:
            # Changed while we decided (an edit or a reschedule): decide again from the latest state.
            fresh = await self.client.get(POSTS, meta["name"], meta["namespace"])
            self._remember(self.posts, fresh)
            self.queue.submit(("post", _key(fresh)))
            return
        post = self._remember(self.posts, updated)
        await record_event(
            self.client,
            post,
            reason="Publishing",
            message=f"Publishing to {len(self._desired_targets(post))} account(s)",
        )
        await self._keep_released(post)

    async def _keep_released(self, post: dict[str, Any]) -> None:
        """After release: every target has its frozen content; later spec edits are not acted on."""
        meta = post["metadata"]
        namespace = meta["namespace"]
        status = post.get("status") or {}
        released_generation = int(status.get("releasedGeneration") or meta.get("generation") or 1)
        generation = int(meta.get("generation") or 1)
        spec = post.get("spec") or {}
        for target_key in sorted(self._targets_of.get((namespace, meta["name"]), set())):
            target = self.targets.get(target_key)
            if target is None or (target.get("status") or {}).get("content"):
                continue
            account = self._account_of(target)
            override = (target.get("spec") or {}).get("overrideBody")
            content = {
                "text": override or spec.get("body", ""),
                "media": [{"url": m.get("url"), "alt": m.get("alt", "")} for m in spec.get("media") or []],
            }
            target_status = {
                "state": "pending",
                "attempts": 0,
                "content": content,
                "platform": ((account or {}).get("spec") or {}).get("platform"),
            }
            updated = await self.client.patch(
                TARGETS, target_key[1], {"status": target_status}, namespace, subresource="status"
            )
            self._remember(self.targets, updated)
            self.queue.submit(("target", target_key))
        frozen = generation != released_generation
        conditions = status.get("conditions") or []
        now = _micro_now()
        new_conditions = decisions.set_condition(
            conditions,
            type="SpecApplied",
            status="False" if frozen else "True",
            reason="PublishingStarted" if frozen else "Applied",
            message=(
                f"spec changed (generation {generation}) after publishing began with generation "
                f"{released_generation}; the released content is kept"
            )
            if frozen
            else "the released content matches the spec",
            generation=generation,
            now=now,
        )
        if new_conditions != conditions:
            updated = await self.client.patch(
                POSTS,
                meta["name"],
                {"status": {"conditions": new_conditions}},
                namespace,
                subresource="status",
            )
            self._remember(self.posts, updated)
        self.queue.submit(("aggregate", (namespace, meta["name"])))

    async def aggregate_post(self, key: Key) -> None:
        """The post's phase, counts and conditions follow its targets once released."""
        post = self.posts.get(key)
        if post is None:
            return
        status = post.get("status") or {}
        if not status.get("publishStartedAt"):
            return
        meta = post["metadata"]
        targets = [self.targets[k] for k in self._targets_of.get(key, set()) if k in self.targets]
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
        conditions = decisions.set_condition(
            conditions,
            type="Ready",
            status="True" if terminal else "False",
            reason={
                "published": "Published",
                "partially_published": "PartiallyPublished",
                "failed": "Failed",
            }.get(phase, "Publishing"),
            message=f"the post is {phase}",
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
        updated = await self.client.patch(
            POSTS, meta["name"], {"status": desired}, meta["namespace"], subresource="status"
        )
        self._remember(self.posts, updated)
        if terminal and status.get("phase") != phase:
            await record_event(
                self.client,
                updated,
                reason={
                    "published": "Published",
                    "partially_published": "PartiallyPublished",
                    "failed": "Failed",
                }[phase],
                message=f"Post {phase.replace('_', ' ')}: {published} of {len(states)} account(s)",
                warning=phase != "published",
            )

    # Targets.

    def _adapter_for(self, account: dict[str, Any]) -> Adapter:
        if (account.get("spec") or {}).get("sandbox"):
            return self._sandbox
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
        )

    async def advance_target(self, key: Key) -> None:
        target = self.targets.get(key)
        if target is None:
            self.timer.cancel(("target", key))
            return
        status = target.get("status") or {}
        post_key = (key[0], str((target.get("spec") or {}).get("postName") or ""))
        post = self.posts.get(post_key)
        post_released = bool(post and (post.get("status") or {}).get("publishStartedAt"))
        if post_released and not status.get("content"):
            self.queue.submit(("post", post_key))  # released before this target was seen: freeze it now
            return
        released = post_released and bool(status.get("content"))
        plan = decisions.plan_target(
            status, released=released, in_flight=key in self._in_flight, now=self._clock()
        )
        if plan.action == "wait" and plan.until is not None:
            self.timer.arm(("target", key), plan.until)
        elif plan.action in ("deliver", "resolve"):
            assert post is not None
            try:
                await self._attempt(target, post, resolve=plan.action == "resolve")
            except NotFound:
                logger.info("target %s/%s went away while publishing (its post was deleted)", *key)

    async def _attempt(self, target: dict[str, Any], post: dict[str, Any], *, resolve: bool) -> None:
        key = _key(target)
        status = target.get("status") or {}
        attempts = int(status.get("attempts") or 0)
        attempt = attempts + 1
        account = self._account_of(target)
        if account is None:
            await self._record(
                target,
                post,
                decisions.failure_status(
                    attempts_before=attempts,
                    classification="permanent",
                    code="account_not_found",
                    message=f"no SocialAccount with id {(target.get('spec') or {}).get('accountId')} here",
                    now=self._clock(),
                    base=self.settings.retry_base_seconds,
                    rng=self._rng,
                ),
            )
            return
        try:
            adapter = self._adapter_for(account)
        except _NoAdapter as exc:
            await self._record(
                target,
                post,
                decisions.failure_status(
                    attempts_before=attempts,
                    classification="permanent",
                    code="no_adapter",
                    message=str(exc),
                    now=self._clock(),
                    base=self.settings.retry_base_seconds,
                    rng=self._rng,
                ),
            )
            return
        if resolve:
            found = await adapter.find_published(self._request(target, account, attempt))
            if found is not None:
                await self._record_published(
                    target, post, found, attempt, note="resolved after an interruption"
                )
                return
            await self._record(
                target,
                post,
                {
                    **decisions.failure_status(
                        attempts_before=attempts,
                        classification="transient",
                        code="attempt_interrupted",
                        message="the attempt was interrupted and the platform has no record of it",
                        now=self._clock(),
                        base=self.settings.retry_base_seconds,
                        rng=self._rng,
                    ),
                    **(
                        {"nextAttemptAt": decisions.format_time(self._clock())}
                        if attempt < decisions.MAX_ATTEMPTS
                        else {}
                    ),
                },
            )
            return
        claim = {
            "metadata": {"resourceVersion": target["metadata"]["resourceVersion"]},
            "status": {
                "state": "publishing",
                "lastAttemptAt": decisions.format_time(self._clock()),
                "nextAttemptAt": None,
            },
        }
        self._in_flight.add(key)
        try:
            try:
                claimed = await self.client.patch(TARGETS, key[1], claim, key[0], subresource="status")
            except Conflict:
                fresh = await self.client.get(TARGETS, key[1], key[0])
                self._remember(self.targets, fresh)
                self.queue.submit(("target", key))
                return
            target = self._remember(self.targets, claimed)
            self.queue.submit(("aggregate", (key[0], post["metadata"]["name"])))
            request = self._request(target, account, attempt)
            try:
                result = await adapter.publish(request)
            except PublishError as exc:
                retry_after = exc.retry_after if isinstance(exc, TransientError) else None
                await self._record(
                    target,
                    post,
                    decisions.failure_status(
                        attempts_before=attempts,
                        classification=exc.classification,
                        code=exc.code,
                        message=exc.message,
                        now=self._clock(),
                        base=self.settings.retry_base_seconds,
                        rng=self._rng,
                        retry_after=retry_after,
                    ),
                )
                return
            await self._record_published(target, post, result, attempt)
        finally:
            self._in_flight.discard(key)

    async def _record_published(
        self, target: dict[str, Any], post: dict[str, Any], result: Published, attempt: int, note: str = ""
    ) -> None:
        now = self._clock()
        status = target.get("status") or {}
        event = {
            "id": decisions.event_id(target["metadata"]["uid"], "social.post_published"),
            "type": "social.post_published",
            "occurredAt": decisions.format_time(now),
        }
        await self._record(
            target,
            post,
            {
                "state": "published",
                "attempts": attempt,
                "externalPostId": result.external_id,
                "externalUrl": result.url,
                "publishedAt": decisions.format_time(now),
                "nextAttemptAt": None,
                "lastError": None,
                "lifecycleEvents": decisions.with_event(status.get("lifecycleEvents") or [], event),
            },
            note=note,
        )

    async def _record(
        self, target: dict[str, Any], post: dict[str, Any], new_status: dict[str, Any], note: str = ""
    ) -> None:
        """Write the outcome of an attempt, then tell people (Events) and the post (aggregate)."""
        key = _key(target)
        state = new_status["state"]
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
        updated = await self.client.patch(
            TARGETS, key[1], {"status": new_status}, key[0], subresource="status"
        )
        target = self._remember(self.targets, updated)
        account = self._account_of(target)
        where = (
            f"{(account or {}).get('spec', {}).get('platform', '?')} "
            f"({(account or {}).get('spec', {}).get('displayName', '?')})"
        )
        error = new_status.get("lastError") or {}
        if state == "published":
            message = f"Published to {where}: {new_status.get('externalUrl')}" + (
                f" ({note})" if note else ""
            )
            await record_event(self.client, post, reason="PublishedTarget", message=message)
        elif state == "failed":
            await record_event(
                self.client,
                post,
                reason="Retrying",
                warning=True,
                message=f"Attempt {new_status['attempts']} to {where} failed "
                f"({error.get('code')}: {error.get('message')}); retrying at "
                f"{new_status.get('nextAttemptAt')}",
            )
            due = decisions.parse_time(new_status.get("nextAttemptAt"))
            if due is not None:
                self.timer.arm(("target", key), due)
        elif state == "dead":
            await record_event(
                self.client,
                post,
                reason="DeadLettered",
                warning=True,
                message=f"Gave up on {where} after {new_status['attempts']} attempt(s): "
                f"{error.get('code')}: {error.get('message')}",
            )
        self.queue.submit(("aggregate", (key[0], post["metadata"]["name"])))


class _NoAdapter(Exception):
    """No adapter can publish for this account."""
