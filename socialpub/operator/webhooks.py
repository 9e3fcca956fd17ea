"""Webhook delivery: every recorded lifecycle event to every subscribed endpoint, at least once.

The dispatcher is fed the same watch events as the engine (posts, targets, accounts) plus the
SocialWebhookEndpoints. It is level-triggered and keeps all of its durable state in resources:

1. **Source of truth**: the operator (or the CLI) records each lifecycle event in
   ``status.lifecycleEvents`` of the resource whose transition caused it, in the same write.
2. **Queue**: for each recorded event younger than the retention window and each endpoint of the
   namespace that subscribes to its type (and existed when it occurred), a
   ``SocialWebhookDelivery`` is created, owned by the endpoint and named from (endpoint uid,
   event id) — so creating it again after a restart is a no-op. Its spec freezes the payload.
3. **Claim**: ``sending`` and the attempt count are written (conditional on the
   resourceVersion) before the POST.
4. **Record**: ``delivered`` (2xx), ``failed`` with ``nextAttemptAt`` (the Standard Webhooks
   schedule), or ``dead`` (schedule exhausted, or 410 Gone — which also disables the endpoint).
5. **Resume**: after a restart every unfinished delivery is listed and worked on again; one found
   ``sending`` is sent again (at least once: receivers dedupe on ``webhook-id``, the event id).

Each endpoint has its own work queue (``webhook_endpoint_concurrency`` deliveries in flight), so
a slow or dead endpoint only ever delays itself. Retries are armed in one :class:`Timer`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import httpx

from socialpub.kube.client import AlreadyExists, Conflict, KubeClient, NotFound
from socialpub.kube.events import record_event
from socialpub.kube.resources import (
    ACCOUNTS,
    ANNOTATION_CREATED_AT,
    ANNOTATION_SECRET_ROTATED_AT,
    LABEL_ENDPOINT,
    LABEL_EVENT_TYPE,
    LABEL_ID,
    POSTS,
    SECRETS,
    TARGETS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_ENDPOINTS,
)
from socialpub.models.keys import Mode
from socialpub.operator.decisions import set_condition
from socialpub.operator.settings import OperatorSettings
from socialpub.operator.tenants import Tenancy
from socialpub.operator.timers import Timer
from socialpub.operator.workqueue import WorkQueue
from socialpub.webhooks import events as catalogue
from socialpub.webhooks import signing, urls
from socialpub.webhooks.schedule import delivery_name, parse_retry_after, retry_delay

__all__ = ["USER_AGENT", "WebhookDispatcher"]

logger = logging.getLogger(__name__)

Key = tuple[str, str]
"""``(namespace, name)``."""

USER_AGENT = "socialpub-webhooks/1"

TERMINAL = ("delivered", "dead")
RECENT = 10
"""Attempts listed in an endpoint's ``status.recentDeliveries``."""
FLUSH_INTERVAL = 0.5
"""An endpoint's status (counters, recent deliveries) is written at most this often."""
SECRET_TTL = 10.0
"""A Secret read is reused this long (a rotation with the CLI takes effect at once)."""
GC_INTERVAL = 600.0
_SOURCES = {POSTS.plural: "SocialPost", TARGETS.plural: "SocialTarget", ACCOUNTS.plural: "SocialAccount"}


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _generation(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 1)


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _state(delivery: dict[str, Any]) -> str:
    return str(_status(delivery).get("state") or "pending")


def _occurred(delivery: dict[str, Any]) -> float:
    return catalogue.parse_time(_spec(delivery).get("occurredAt")) or 0.0


class _Problem(Exception):
    """A delivery cannot be attempted as configured (Secret missing, URL refused)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class _Outcome:
    status: int
    """The HTTP status, 0 when no response was received."""
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Want:
    """A delivery to create: which endpoint, which event, and the resource that recorded it."""

    endpoint: Key
    endpoint_uid: str
    event: catalogue.RecordedEvent
    source_kind: str
    source: dict[str, Any]


@dataclass
class _Endpoint:
    """What the dispatcher knows about one endpoint besides the object itself."""

    key: Key
    obj: dict[str, Any]
    queue: WorkQueue
    """Its deliveries' work (claims and records are Kubernetes writes: several per request)."""
    sending: asyncio.Semaphore
    """Requests in flight to it: ``webhook_endpoint_concurrency``."""
    deliveries: set[Key] = field(default_factory=set)
    """Its unfinished deliveries."""
    delivered_total: int = 0
    failed_total: int = 0
    consecutive_failures: int = 0
    last_at: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)
    gone_generation: int | None = None
    gone_at: str | None = None
    problem: _Problem | None = None
    secret: tuple[float, str, str, str, dict[str, str]] | None = None
    """(read at, Secret name, data key, rotation marker, decoded data)."""
    last_flush: float = 0.0

    @property
    def uid(self) -> str:
        return str((self.obj.get("metadata") or {}).get("uid") or "")

    @property
    def created(self) -> float:
        """When the endpoint was created: events from then on are delivered to it.

        The microsecond ``created-at`` annotation (the CLI and the api set it) if present, else
        ``creationTimestamp`` — whole seconds, so an event in the same second is delivered too.
        """
        meta = self.obj.get("metadata") or {}
        precise = catalogue.parse_time((meta.get("annotations") or {}).get(ANNOTATION_CREATED_AT))
        return precise or catalogue.parse_time(meta.get("creationTimestamp")) or 0.0

    @property
    def suspended(self) -> bool:
        meta = self.obj.get("metadata") or {}
        return bool(
            _spec(self.obj).get("disabled")
            or meta.get("deletionTimestamp")
            or self.gone_generation == _generation(self.obj)
        )

    def load_stats(self) -> None:
        status = _status(self.obj)
        self.delivered_total = int(status.get("deliveredTotal") or 0)
        self.failed_total = int(status.get("failedTotal") or 0)
        self.consecutive_failures = int(status.get("consecutiveFailures") or 0)
        self.last_at = status.get("lastDeliveryAt")
        self.last_status = status.get("lastDeliveryStatus")
        self.last_error = status.get("lastError")
        self.recent = [dict(r) for r in status.get("recentDeliveries") or [] if isinstance(r, dict)]
        gone = status.get("disabledGeneration")
        self.gone_generation = int(gone) if isinstance(gone, int) else None
        self.gone_at = status.get("disabledAt")


class WebhookDispatcher:
    """Delivers the tenants' webhooks; fed by :meth:`observe`, like the engine."""

    def __init__(
        self,
        client: KubeClient,
        settings: OperatorSettings,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        resolver: urls.Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        control_concurrency: int = 32,
        mode_of: Callable[[str], Awaitable[Mode | None]] | None = None,
    ) -> None:
        self.client = client
        self._mode_of = mode_of or Tenancy(client).mode_of
        """Live or sandbox per namespace: the operator's tenancy view, the same decision as for
        publishing (never a namespace label, which the namespace's writers may set)."""
        self.settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._resolver = resolver
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self.endpoints: dict[Key, _Endpoint] = {}
        self._endpoints_in: dict[str, set[Key]] = {}
        self.deliveries: dict[Key, dict[str, Any]] = {}
        """Unfinished deliveries (the latest copy this process has)."""
        self._done: dict[Key, tuple[float, Key]] = {}
        """Finished deliveries: when their event occurred (for clean-up) and their endpoint."""
        self._wanted: dict[Key, _Want] = {}
        self._sources: dict[tuple[str, Key], dict[str, Any]] = {}
        """Posts, targets and accounts with events inside the retention window."""
        self._sources_in: dict[str, set[tuple[str, Key]]] = {}
        self._post_ids: dict[Key, int] = {}
        self._accounts_by_id: dict[tuple[str, str], dict[str, Any]] = {}
        self._in_flight: set[Key] = set()
        self._expedite: set[Key] = set()
        self._urgent: set[Key] = set()
        self.timer = Timer(self._on_due, clock=clock)
        self._control = WorkQueue(self._control_work, concurrency=control_concurrency)
        self._timer_task: asyncio.Task[None] | None = None
        self._closed = False

    # Lifecycle.

    async def start(self) -> None:
        """Load every endpoint and delivery (so nothing is queued twice), then start the timer."""
        if self._timer_task is not None:
            return
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.webhook_timeout_seconds),
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=256),
            follow_redirects=False,
            trust_env=False,
            transport=self._transport,
        )
        try:
            endpoints, _ = await self.client.list(WEBHOOK_ENDPOINTS, limit=500)
            deliveries, _ = await self.client.list(WEBHOOK_DELIVERIES, limit=500)
        except NotFound:
            # Publishing must not stop because the webhook CRDs are missing: say so, stay inert.
            logger.warning(
                "the SocialWebhookEndpoint/SocialWebhookDelivery CRDs are not installed: "
                "webhooks are not delivered (apply crds/ and restart the operator)"
            )
            self._closed = True
            return
        for obj in endpoints:
            self._observe_endpoint(None, obj)
        for obj in deliveries:
            self._adopt(obj)
        self._timer_task = asyncio.create_task(self.timer.run(), name="socialpub-webhook-timer")
        self.timer.arm(("gc",), self._clock() + 1.0)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop; attempts under way get ``grace`` seconds to finish and be recorded."""
        self._closed = True
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
            self._timer_task = None
        await asyncio.gather(*(ep.queue.close(grace=grace) for ep in self.endpoints.values()))
        await self._control.close(grace=grace)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def idle(self) -> None:
        """Wait until no work is queued or running (tests and benchmarks)."""
        while len(self._control) or any(len(ep.queue) for ep in self.endpoints.values()):
            await self._control.idle()
            for ep in list(self.endpoints.values()):
                await ep.queue.idle()

    # Observation.

    def observe(self, plural: str, event_type: str | None, body: dict[str, Any]) -> None:
        """Take the latest state of an object (never mutated here) and queue what it needs."""
        if self._closed:
            return
        if plural == WEBHOOK_ENDPOINTS.plural:
            self._observe_endpoint(event_type, body)
            return
        if plural not in _SOURCES:
            return
        key = _key(body)
        deleted = event_type == "DELETED"
        if plural == POSTS.plural:
            post_id = (((body.get("metadata") or {}).get("labels")) or {}).get(LABEL_ID)
            if deleted or not post_id or not str(post_id).isdigit():
                self._post_ids.pop(key, None)
            else:
                self._post_ids[key] = int(post_id)
        elif plural == ACCOUNTS.plural:
            account_id = (((body.get("metadata") or {}).get("labels")) or {}).get(LABEL_ID)
            if account_id:
                if deleted:
                    self._accounts_by_id.pop((key[0], str(account_id)), None)
                else:
                    self._accounts_by_id[(key[0], str(account_id))] = body
        ref = (plural, key)
        recorded = [] if deleted else self._recent(body)
        if not recorded:
            self._drop_source(ref)
            return
        self._sources[ref] = body
        self._sources_in.setdefault(key[0], set()).add(ref)
        for endpoint_key in sorted(self._endpoints_in.get(key[0], ())):
            self._want(self.endpoints[endpoint_key], _SOURCES[plural], body, recorded)

    def _recent(self, body: dict[str, Any]) -> list[catalogue.RecordedEvent]:
        horizon = self._clock() - self.settings.webhook_retention_seconds
        return [e for e in catalogue.recorded_events(body) if e.occurred_at > horizon]

    def _drop_source(self, ref: tuple[str, Key]) -> None:
        if self._sources.pop(ref, None) is not None:
            members = self._sources_in.get(ref[1][0])
            if members is not None:
                members.discard(ref)
                if not members:
                    del self._sources_in[ref[1][0]]

    def _want(
        self, ep: _Endpoint, kind: str, source: dict[str, Any], recorded: list[catalogue.RecordedEvent]
    ) -> None:
        """Queue the creation of the deliveries of ``recorded`` that ``ep`` subscribes to."""
        meta = ep.obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return
        subscribed = _spec(ep.obj).get("events") or []
        for event in recorded:
            if event.occurred_at < ep.created or not catalogue.wanted(subscribed, event.type):
                continue
            name = delivery_name(ep.key[1], ep.uid, event.id)
            key = (ep.key[0], name)
            if key in self.deliveries or key in self._done or key in self._wanted:
                continue
            self._wanted[key] = _Want(ep.key, ep.uid, event, kind, source)
            self._control.submit(("create", key))

    def _observe_endpoint(self, event_type: str | None, body: dict[str, Any]) -> None:
        key = _key(body)
        ep = self.endpoints.get(key)
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if event_type == "DELETED" or (ep is not None and ep.uid != uid):
            self._drop_endpoint(key)
            if event_type == "DELETED":
                return
            ep = None
        if ep is not None and _rv(ep.obj) >= _rv(body):
            return
        new = ep is None
        if ep is None:
            in_flight = max(1, self.settings.webhook_endpoint_concurrency)
            # Claims and records of some deliveries overlap the requests of others, so the
            # endpoint always has its share of requests in flight.
            ep = _Endpoint(
                key, body, WorkQueue(self._deliver, concurrency=4 * in_flight), asyncio.Semaphore(in_flight)
            )
            ep.load_stats()
            self.endpoints[key] = ep
            self._endpoints_in.setdefault(key[0], set()).add(key)
            old = None
        else:
            old = ep.obj
            ep.obj = body
        marker = ((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SECRET_ROTATED_AT)
        if ep.secret is not None and ep.secret[3] != (marker or ""):
            ep.secret = None
        if (
            not new
            and old is not None
            and _generation(old) == _generation(body)
            and (
                (old.get("metadata") or {}).get("deletionTimestamp")
                == (body.get("metadata") or {}).get("deletionTimestamp")
            )
        ):
            return
        # New, or its spec changed: a new url/secretRef/filter, enabled or disabled.
        if ep.gone_generation is not None and ep.gone_generation != _generation(body):
            ep.gone_generation = None  # a changed spec enables an endpoint that answered 410
            ep.gone_at = None
        ep.problem = None
        ep.secret = None
        for ref in sorted(self._sources_in.get(key[0], ())):
            source = self._sources.get(ref)
            if source is not None:
                self._want(ep, _SOURCES[ref[0]], source, self._recent(source))
        self._resume(ep)
        self._flush_soon(ep, urgent=True)

    def _drop_endpoint(self, key: Key) -> None:
        ep = self.endpoints.pop(key, None)
        if ep is None:
            return
        members = self._endpoints_in.get(key[0])
        if members is not None:
            members.discard(key)
            if not members:
                del self._endpoints_in[key[0]]
        # Its deliveries are deleted with it (ownerReferences); forget them here.
        for dkey in ep.deliveries:
            self.deliveries.pop(dkey, None)
            self.timer.cancel(("delivery", dkey))
        for dkey in [k for k, (_, owner) in self._done.items() if owner == key]:
            del self._done[dkey]
        for dkey in [k for k, want in self._wanted.items() if want.endpoint == key]:
            del self._wanted[dkey]
        self.timer.cancel(("flush", key))
        task = asyncio.ensure_future(ep.queue.close())
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def _resume(self, ep: _Endpoint) -> None:
        if ep.suspended:
            return
        for dkey in sorted(ep.deliveries):
            ep.queue.submit(dkey)

    def _endpoint_of(self, delivery: dict[str, Any]) -> _Endpoint | None:
        key = _key(delivery)
        ep = self.endpoints.get((key[0], str(_spec(delivery).get("endpointName") or "")))
        if ep is None:
            return None
        owners = (delivery.get("metadata") or {}).get("ownerReferences") or []
        if owners and not any(o.get("uid") == ep.uid for o in owners):
            return None  # a predecessor's delivery (same endpoint name, other uid): being deleted
        return ep

    def _adopt(self, delivery: dict[str, Any]) -> None:
        """Keep a delivery read or written by this process and work on it if unfinished."""
        key = _key(delivery)
        current = self.deliveries.get(key)
        if current is not None and _rv(current) > _rv(delivery):
            return
        ep = self._endpoint_of(delivery)
        if _state(delivery) in TERMINAL:
            self.deliveries.pop(key, None)
            if ep is not None:
                if key in ep.deliveries:
                    ep.deliveries.discard(key)
                    self._flush_soon(ep)  # the backlog shrank
                self._done[key] = (_occurred(delivery), ep.key)
            self.timer.cancel(("delivery", key))
            return
        self.deliveries[key] = delivery
        if ep is not None:
            if key not in ep.deliveries:
                ep.deliveries.add(key)
                self._flush_soon(ep)  # the backlog grew
            if not ep.suspended:
                ep.queue.submit(key)

    def _forget(self, key: Key) -> None:
        delivery = self.deliveries.pop(key, None)
        self.timer.cancel(("delivery", key))
        if delivery is not None:
            ep = self._endpoint_of(delivery)
            if ep is not None:
                ep.deliveries.discard(key)

    # Timer and control work.

    def _on_due(self, item: Hashable) -> None:
        assert isinstance(item, tuple)
        if item[0] == "delivery":
            delivery = self.deliveries.get(item[1])
            ep = self._endpoint_of(delivery) if delivery is not None else None
            if ep is not None:
                ep.queue.submit(item[1])
        else:
            self._control.submit(item)

    async def _control_work(self, item: Hashable) -> None:
        assert isinstance(item, tuple)
        if item[0] == "create":
            await self._create(item[1])
        elif item[0] == "flush":
            await self._flush(item[1])
        elif item[0] == "gc":
            await self._collect()

    async def _post_id(self, namespace: str, post_name: str) -> int | None:
        known = self._post_ids.get((namespace, post_name))
        if known is not None:
            return known
        try:
            post = await self.client.get(POSTS, post_name, namespace)
        except NotFound:
            suffix = post_name.rsplit("-", 1)[-1]
            return int(suffix) if post_name.startswith("post-") and suffix.isdigit() else None
        value = ((post.get("metadata") or {}).get("labels") or {}).get(LABEL_ID)
        return int(value) if value and str(value).isdigit() else None

    async def _create(self, key: Key) -> None:
        """Create one delivery: the payload is built now, from the resource that recorded the event."""
        want = self._wanted.get(key)
        if want is None:
            return
        ep = self.endpoints.get(want.endpoint)
        if ep is None or ep.uid != want.endpoint_uid:
            self._wanted.pop(key, None)
            return
        source = want.source
        post_id = account = None
        if want.source_kind == "SocialTarget":
            spec = _spec(source)
            post_id = await self._post_id(key[0], str(spec.get("postName") or ""))
            account = self._accounts_by_id.get((key[0], str(spec.get("accountId"))))
        body = catalogue.encode(catalogue.payload(want.event, source, post_id=post_id, account=account))
        labels = {LABEL_EVENT_TYPE: want.event.type.value}
        if len(ep.key[1]) <= 63:
            labels[LABEL_ENDPOINT] = ep.key[1]
        obj = {
            "apiVersion": WEBHOOK_DELIVERIES.api_version,
            "kind": WEBHOOK_DELIVERIES.kind,
            "metadata": {
                "name": key[1],
                "namespace": key[0],
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": WEBHOOK_ENDPOINTS.api_version,
                        "kind": WEBHOOK_ENDPOINTS.kind,
                        "name": ep.key[1],
                        "uid": ep.uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "endpointName": ep.key[1],
                "eventId": want.event.id,
                "eventType": want.event.type.value,
                "occurredAt": catalogue.format_time(want.event.occurred_at),
                "source": {"kind": want.source_kind, "name": str((source.get("metadata") or {}).get("name"))},
                "payload": body.decode(),
            },
        }
        try:
            try:
                created = await self.client.create(WEBHOOK_DELIVERIES, obj, key[0])
            except AlreadyExists:
                created = await self.client.get(WEBHOOK_DELIVERIES, key[1], key[0])
        except NotFound:  # the namespace is gone
            self._wanted.pop(key, None)
            return
        self._wanted.pop(key, None)
        if self.endpoints.get(want.endpoint) is ep:
            self._adopt(created)

    # Delivering.

    async def _deliver(self, item: Hashable) -> None:
        assert isinstance(item, tuple)
        key: Key = item
        delivery = self.deliveries.get(key)
        if delivery is None or self._closed:
            return
        ep = self._endpoint_of(delivery)
        state = _state(delivery)
        if ep is None or state in TERMINAL or ep.suspended:
            return
        now = self._clock()
        if state == "failed" and key not in self._expedite:
            due = catalogue.parse_time(_status(delivery).get("nextAttemptAt"))
            if due is not None and due > now:
                self.timer.arm(("delivery", key), due)
                return
        if state == "sending" and key in self._in_flight:
            return
        self._expedite.discard(key)
        self.timer.cancel(("delivery", key))
        attempt = int(_status(delivery).get("attempts") or 0) + 1
        claim = {
            "metadata": {"resourceVersion": delivery["metadata"]["resourceVersion"]},
            "status": {
                "state": "sending",
                "attempts": attempt,
                "lastAttemptAt": catalogue.format_time(now),
                "nextAttemptAt": None,
                "observedGeneration": _generation(delivery),
            },
        }
        self._in_flight.add(key)
        try:
            try:
                claimed = await self.client.patch(
                    WEBHOOK_DELIVERIES, key[1], claim, key[0], subresource="status"
                )
            except Conflict:
                self._adopt(await self.client.get(WEBHOOK_DELIVERIES, key[1], key[0]))
                return
            except NotFound:
                self._forget(key)
                return
            self.deliveries[key] = claimed
            outcome = await self._send(ep, claimed)
            await self._record(ep, claimed, attempt, outcome)
        finally:
            self._in_flight.discard(key)

    async def _is_live(self, namespace: str) -> bool:
        """Live rules (https only, no private addresses) unless the namespace is a tenant's sandbox
        namespace as its SocialTenant names it; asked at every send, so a change of tenants is
        followed (the view is the operator's, kept current by its watch)."""
        return await self._mode_of(namespace) is not Mode.TEST

    async def _secrets(self, ep: _Endpoint) -> list[str]:
        ref = _spec(ep.obj).get("secretRef") or {}
        name, data_key = str(ref.get("name") or ""), str(ref.get("key") or "secret")
        marker = ((ep.obj.get("metadata") or {}).get("annotations") or {}).get(
            ANNOTATION_SECRET_ROTATED_AT
        ) or ""
        now = self._clock()
        cached = ep.secret
        if cached is not None and cached[1:4] == (name, data_key, marker) and now - cached[0] < SECRET_TTL:
            data = cached[4]
        else:
            try:
                secret = await self.client.get(SECRETS, name, ep.key[0])
            except NotFound:
                raise _Problem("SecretMissing", f"Secret {name} not found in {ep.key[0]}") from None
            data = {}
            for k, v in (secret.get("data") or {}).items():
                with contextlib.suppress(binascii.Error, ValueError):
                    data[k] = base64.b64decode(v).decode()
            for k, v in (secret.get("stringData") or {}).items():
                data[k] = str(v)
            ep.secret = (now, name, data_key, marker, data)
        try:
            return signing.active_secrets(data, data_key, now=now)
        except signing.SecretError as exc:
            raise _Problem("SecretInvalid", f"Secret {name}: {exc}") from None

    async def _send(self, ep: _Endpoint, delivery: dict[str, Any]) -> _Outcome:
        """One attempt: sign, connect to a checked address, POST, classify the answer."""
        assert self._http is not None
        spec = _spec(delivery)
        url = str(_spec(ep.obj).get("url") or "")
        try:
            secrets = await self._secrets(ep)
            resolved = await urls.resolve(
                url,
                live=await self._is_live(ep.key[0]),
                allow_loopback=self.settings.webhook_allow_loopback,
                resolver=self._resolver,
            )
        except _Problem as exc:
            ep.problem = exc
            return _Outcome(0, exc.message)
        except urls.UrlRefused as exc:
            ep.problem = _Problem("URLRefused", f"{url}: {exc}")
            return _Outcome(0, f"url refused ({exc.code}): {exc}")
        except OSError as exc:
            return _Outcome(0, f"cannot resolve the endpoint's host: {exc}")
        ep.problem = None
        body = str(spec.get("payload") or "").encode()
        extensions = {"sni_hostname": resolved.server_name} if resolved.server_name else None
        timeout = self.settings.webhook_timeout_seconds
        async with ep.sending:  # the endpoint's share of requests in flight; the timeout starts after
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                **signing.headers(str(spec.get("eventId")), int(self._clock()), body, secrets),
            }
            if resolved.host_header:
                headers["host"] = resolved.host_header
            try:
                async with (
                    asyncio.timeout(timeout),
                    self._http.stream(
                        "POST", resolved.url, content=body, headers=headers, extensions=extensions
                    ) as response,
                ):
                    snippet = b""
                    if not 200 <= response.status_code < 300:
                        async for chunk in response.aiter_raw():
                            snippet += chunk
                            if len(snippet) >= 256:
                                break
            except TimeoutError:
                return _Outcome(0, f"no complete answer within {timeout:g}s")
            except httpx.HTTPError as exc:
                return _Outcome(0, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
        status = response.status_code
        if 200 <= status < 300:
            return _Outcome(status)
        text = " ".join(snippet[:256].decode(errors="replace").split())
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=self._clock())
        error = f"HTTP {status} {response.reason_phrase or ''}".strip() + (f": {text}" if text else "")
        return _Outcome(status, error, retry_after)

    async def _record(self, ep: _Endpoint, delivery: dict[str, Any], attempt: int, outcome: _Outcome) -> None:
        key = _key(delivery)
        now = self._clock()
        now_text = catalogue.format_time(now)
        status: dict[str, Any] = {"lastStatus": outcome.status, "nextAttemptAt": None}
        gone = outcome.status == 410
        if outcome.ok:
            result = "delivered"
            status.update(state="delivered", deliveredAt=now_text, lastError=None)
            condition = ("True", "Delivered", f"delivered on attempt {attempt} (HTTP {outcome.status})")
        else:
            error = (outcome.error or "failed")[:2000]
            status["lastError"] = error
            delay = (
                None
                if gone
                else retry_delay(
                    attempt,
                    base=self.settings.webhook_retry_base_seconds,
                    rng=self._rng,
                    retry_after=outcome.retry_after,
                )
            )
            if delay is None:
                result = "dead"
                status["state"] = "dead"
                why = "the endpoint answered 410 Gone" if gone else f"attempt {attempt} was the last"
                condition = ("False", "Dead", f"gave up: {why}; last error: {error}")
            else:
                result = "failed"
                status.update(state="failed", nextAttemptAt=catalogue.format_time(now + delay))
                condition = ("False", "Retrying", f"attempt {attempt} failed ({error}); retrying")
        status["conditions"] = set_condition(
            _status(delivery).get("conditions") or [],
            type="Ready",
            status=condition[0],
            reason=condition[1],
            message=condition[2],
            generation=_generation(delivery),
            now=now_text,
        )
        try:
            updated = await self.client.patch(
                WEBHOOK_DELIVERIES, key[1], {"status": status}, key[0], subresource="status"
            )
        except NotFound:
            self._forget(key)
            return
        recovered = outcome.ok and ep.consecutive_failures > 0
        self._note_attempt(ep, updated, attempt, now_text, outcome, result)
        self._adopt(updated)
        if recovered:
            # The endpoint answers again: its waiting deliveries go now, not at their retry times.
            for other in sorted(ep.deliveries):
                if _state(self.deliveries.get(other) or {}) == "failed":
                    self._expedite.add(other)
                    ep.queue.submit(other)
        if gone and ep.gone_generation != _generation(ep.obj):
            ep.gone_generation = _generation(ep.obj)
            ep.gone_at = now_text
            self._flush_soon(ep, urgent=True)
            await record_event(
                self.client,
                ep.obj,
                reason="EndpointGone",
                warning=True,
                message=f"{_spec(ep.obj).get('url')} answered 410 Gone: deliveries are suspended until "
                "the endpoint's spec changes",
            )
        elif result == "dead":
            event_type = _spec(delivery).get("eventType")
            await record_event(
                self.client,
                ep.obj,
                reason="DeliveryFailed",
                warning=True,
                message=f"Gave up delivering {event_type} {_spec(delivery).get('eventId')} after "
                f"{attempt} attempt(s): {status.get('lastError')}",
            )

    def _note_attempt(
        self,
        ep: _Endpoint,
        delivery: dict[str, Any],
        attempt: int,
        at: str,
        outcome: _Outcome,
        result: str,
    ) -> None:
        spec = _spec(delivery)
        ep.last_at = at
        ep.last_status = outcome.status
        if outcome.ok:
            ep.delivered_total += 1
            ep.consecutive_failures = 0
        else:
            ep.failed_total += 1
            ep.consecutive_failures += 1
            ep.last_error = (outcome.error or "")[:2000]
        entry = {
            "delivery": _key(delivery)[1],
            "eventId": spec.get("eventId"),
            "eventType": spec.get("eventType"),
            "attempt": attempt,
            "attemptedAt": at,
            "status": outcome.status,
            "result": result,
        }
        if outcome.error:
            entry["error"] = outcome.error[:1024]
        ep.recent = [entry, *ep.recent][:RECENT]
        self._flush_soon(ep, urgent=ep.consecutive_failures == 1 or (outcome.ok and ep.delivered_total == 1))

    # The endpoint's status.

    def _flush_soon(self, ep: _Endpoint, *, urgent: bool = False) -> None:
        if urgent:
            self._urgent.add(ep.key)
        self._control.submit(("flush", ep.key))

    async def _endpoint_status(self, ep: _Endpoint) -> dict[str, Any]:
        spec = _spec(ep.obj)
        generation = _generation(ep.obj)
        url = str(spec.get("url") or "")
        problem = ep.problem
        if problem is None:
            try:
                urls.check_url(
                    url,
                    live=await self._is_live(ep.key[0]),
                    allow_loopback=self.settings.webhook_allow_loopback,
                )
            except urls.UrlRefused as exc:
                problem = _Problem("URLRefused", f"{url}: {exc}")
        gone = ep.gone_generation is not None and ep.gone_generation == generation
        if spec.get("disabled"):
            ready = ("False", "Disabled", "spec.disabled is set: events are held, not delivered")
        elif gone:
            ready = ("False", "Gone", f"it answered 410 Gone at {ep.gone_at}; change its spec to enable it")
        elif problem is not None:
            ready = ("False", problem.reason, problem.message)
        elif ep.consecutive_failures:
            ready = (
                "False",
                "DeliveryFailing",
                f"{ep.consecutive_failures} attempt(s) failed in a row; last: {ep.last_error}",
            )
        elif ep.last_at:
            ready = ("True", "Delivering", f"the last delivery succeeded at {ep.last_at}")
        else:
            ready = ("True", "Ready", "no deliveries yet")
        conditions = set_condition(
            _status(ep.obj).get("conditions") or [],
            type="Ready",
            status=ready[0],
            reason=ready[1],
            message=ready[2][:2000],
            generation=generation,
            now=catalogue.format_time(self._clock()),
        )
        disabled_reason = None
        if spec.get("disabled"):
            disabled_reason = "spec.disabled is set"
        elif gone:
            disabled_reason = "the endpoint answered 410 Gone; any change to its spec enables it again"
        return {
            "observedGeneration": generation,
            "conditions": conditions,
            "consecutiveFailures": ep.consecutive_failures,
            "deliveredTotal": ep.delivered_total,
            "failedTotal": ep.failed_total,
            "backlog": len(ep.deliveries) + sum(1 for w in self._wanted.values() if w.endpoint == ep.key),
            "lastDeliveryAt": ep.last_at,
            "lastDeliveryStatus": ep.last_status,
            "lastError": ep.last_error,
            "recentDeliveries": ep.recent or None,
            "disabledReason": disabled_reason,
            "disabledGeneration": ep.gone_generation if gone else None,
            "disabledAt": ep.gone_at if gone else None,
        }

    async def _flush(self, key: Key) -> None:
        ep = self.endpoints.get(key)
        if ep is None:
            return
        now = self._clock()
        if key not in self._urgent and now - ep.last_flush < FLUSH_INTERVAL:
            self.timer.arm(("flush", key), ep.last_flush + FLUSH_INTERVAL)
            return
        self._urgent.discard(key)
        desired = await self._endpoint_status(ep)
        current = _status(ep.obj)
        if all(current.get(k) == v for k, v in desired.items()):
            return
        ep.last_flush = now
        try:
            updated = await self.client.patch(
                WEBHOOK_ENDPOINTS, key[1], {"status": desired}, key[0], subresource="status"
            )
        except NotFound:
            return
        if self.endpoints.get(key) is ep and _rv(updated) > _rv(ep.obj):
            ep.obj = updated

    # Clean-up.

    async def _collect(self) -> None:
        """Delete deliveries whose event left the retention window (so they are never re-created)."""
        now = self._clock()
        horizon = now - self.settings.webhook_retention_seconds
        try:
            for key, (occurred, _) in list(self._done.items()):
                if occurred < horizon:
                    with contextlib.suppress(NotFound):
                        await self.client.delete(WEBHOOK_DELIVERIES, key[1], key[0])
                    self._done.pop(key, None)
            for key, delivery in list(self.deliveries.items()):
                ep = self._endpoint_of(delivery)
                if _occurred(delivery) < horizon and (ep is None or ep.suspended):
                    with contextlib.suppress(NotFound):
                        await self.client.delete(WEBHOOK_DELIVERIES, key[1], key[0])
                    self._forget(key)
            for ref, source in list(self._sources.items()):
                if not self._recent(source):
                    self._drop_source(ref)
        finally:
            interval = min(GC_INTERVAL, max(1.0, self.settings.webhook_retention_seconds / 4))
            self.timer.arm(("gc",), now + interval)
