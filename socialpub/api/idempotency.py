"""``Idempotency-Key`` on POST: a retried request gets the first answer, and runs only once.

Records are ConfigMaps in the caller's namespace (the Kubernetes API is the only database),
named ``idem-<sha256(tenant|mode|key)[:40]>`` so that keys are scoped to a tenant and mode and
any characters are safe. The protocol, after Stripe and the IETF draft:

* **claim** by *creating* the record (``state: in-flight``, the request's fingerprint, who holds
  it and until when). Creation is atomic in the Kubernetes API, so of any number of concurrent
  retries, on any number of replicas, exactly one wins and runs the handler.
* a loser reads the record: in flight → 409 ``idempotency_key_in_use`` (``Retry-After: 1``);
  another fingerprint → 422 ``idempotency_key_reused``; completed with the same one → the
  stored status and body, byte for byte, with ``Idempotent-Replayed: true``.
* **a lease, renewed while the request runs.** The holder extends ``leaseUntil`` every quarter
  lease; a holder that cannot renew stops its work before the lease runs out, so a lease never
  expires under a request that is still running. Only an expired lease (its replica died, or
  its holder gave up and expired it at once) can be taken over, by a ``resourceVersion``-
  conditional replace, so again only one taker wins.
* **a create first records what it creates.** Before writing anything, the holder stores the
  name it will create (``resource: post-<id>``). From then on the claim is never released: any
  failure only expires the lease, and whoever takes the claim over *resumes* the same creation
  (reads the object by name, creates it only if absent, then its targets, then completes) —
  so every retry, after a failure at any step, converges on one and the same post.
* **and then that it created it.** Once the object exists the holder stores ``created: true``.
  A resumed creation that finds it recorded but the object gone knows the client deleted it
  (after its first answer was lost or the record was left unfinished): it answers 410 and never
  creates it again — a retry must not bring back what the client deleted.
* **complete** by storing the status and body. A request that fails before recording a
  resource changed nothing, so the claim is deleted and a retry runs again.

Every write to a record is conditional on the ``resourceVersion`` last seen. When the answer to
a write is lost (the API server committed it, the connection dropped), the record is read back:
if it holds exactly what was written, the write happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from fastapi.responses import Response
from pydantic import BaseModel

from socialpub.api.errors import Conflict, UnprocessableEntity
from socialpub.api.schemas import format_time
from socialpub.api.services.mapping import parse_time
from socialpub.kube.client import AlreadyExists, KubeClient, KubeError, NotFound
from socialpub.kube.client import Conflict as KubeConflict
from socialpub.kube.resources import CONFIGMAPS, LABEL_COMPONENT

__all__ = [
    "MAX_KEY_LENGTH",
    "REPLAYED_HEADER",
    "Claim",
    "Creation",
    "IdempotencyStore",
    "IdempotentRequest",
    "fingerprint",
    "record_name",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_KEY_LENGTH = 255
IN_FLIGHT = "in-flight"
COMPLETED = "completed"
REPLAYED_HEADER = "Idempotent-Replayed"
COMPONENT = "idempotency"
SELECTOR = f"{LABEL_COMPONENT}={COMPONENT}"
_WRITE_ATTEMPTS = 3


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and the body as canonical JSON."""
    canonical = ""
    if body.strip():
        try:
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        except ValueError:
            canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def record_name(tenant: str, mode: str, key: str) -> str:
    return "idem-" + hashlib.sha256(f"{tenant}|{mode}|{key}".encode()).hexdigest()[:40]


def _in_use() -> Conflict:
    return Conflict(
        "a request with this Idempotency-Key is still being processed; retry shortly",
        code="idempotency_key_in_use",
        headers={"Retry-After": "1"},
    )


def _transient(exc: BaseException) -> bool:
    """A failure after which the write may or may not have happened (or may work if retried)."""
    return isinstance(exc, httpx.HTTPError) or (isinstance(exc, KubeError) and exc.status >= 500)


class ClaimLost(Exception):
    """Another request took this claim over (our lease had run out); it finishes the work."""


@dataclass
class Claim:
    """This request holds the key until it completes, releases or expires it.

    ``resource_version`` follows every write this request makes, so each one is conditional on
    the record still being as this request last left it.
    """

    namespace: str
    name: str
    resource_version: str
    data: dict[str, str]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def holder(self) -> str:
        return self.data.get("holder", "")

    @property
    def resource(self) -> str | None:
        """The name this request's creation has recorded (set before anything is created)."""
        return self.data.get("resource") or None

    @property
    def created(self) -> bool:
        """Whether the recorded resource was created (set once it exists)."""
        return self.data.get("created") == "true"


@dataclass(frozen=True)
class Stored:
    """The first request's answer."""

    status: int
    body: bytes


class IdempotencyStore:
    """Claims, completes and replays idempotency records in one namespace per tenant and mode."""

    def __init__(
        self,
        client: KubeClient,
        *,
        ttl_seconds: int,
        lease_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._ttl = timedelta(seconds=ttl_seconds)
        self._lease = timedelta(seconds=lease_seconds)
        self._now = clock

    @property
    def lease_seconds(self) -> float:
        return self._lease.total_seconds()

    @staticmethod
    def _manifest(
        namespace: str, name: str, data: dict[str, str], resource_version: str | None = None
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL_COMPONENT: COMPONENT},
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}

    def _lease_until(self) -> str:
        return format_time(self._now() + self._lease)

    async def _read(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._client.get(CONFIGMAPS, name, namespace)
        except NotFound:
            return None

    # Claiming.

    async def claim(
        self, namespace: str, name: str, fingerprint_: str, method: str, path: str
    ) -> Claim | Stored:
        holder = secrets.token_hex(8)
        for _ in range(5):
            now = self._now()
            data = {
                "state": IN_FLIGHT,
                "fingerprint": fingerprint_,
                "method": method,
                "path": path,
                "claimedAt": format_time(now),
                "holder": holder,
                "leaseUntil": self._lease_until(),
            }
            existing: dict[str, Any] | None
            try:
                created = await self._client.create(
                    CONFIGMAPS, self._manifest(namespace, name, data), namespace
                )
                return Claim(namespace, name, created["metadata"]["resourceVersion"], data)
            except AlreadyExists:
                existing = await self._read(namespace, name)
            except Exception as exc:
                if not _transient(exc):
                    raise
                existing = await self._read(namespace, name)  # did our create happen?
                if existing is not None and (existing.get("data") or {}).get("holder") == holder:
                    return Claim(namespace, name, existing["metadata"]["resourceVersion"], existing["data"])
            if existing is None:
                continue  # released between our create and get: try to claim again
            stored: dict[str, str] = existing.get("data") or {}
            rv = existing["metadata"]["resourceVersion"]
            expired = self._expired(stored, now)
            resumable = stored.get("state") == IN_FLIGHT and bool(stored.get("resource"))
            if not expired or resumable:
                if stored.get("fingerprint") != fingerprint_:
                    raise UnprocessableEntity(
                        "this Idempotency-Key was used with a different request (method, path or body); "
                        "use a new key for a new request",
                        code="idempotency_key_reused",
                    )
                if stored.get("state") == COMPLETED:
                    return Stored(int(stored.get("status", "200")), stored.get("body", "").encode())
                if not expired:
                    raise _in_use()
                # Resume: the same request, whose holder is gone, had recorded what it creates.
                data = {**stored, "holder": holder, "leaseUntil": self._lease_until()}
            try:
                replaced = await self._client.replace(CONFIGMAPS, self._manifest(namespace, name, data, rv))
                return Claim(namespace, name, replaced["metadata"]["resourceVersion"], data)
            except (KubeConflict, NotFound):
                continue
        raise _in_use()

    def _expired(self, stored: dict[str, str], now: datetime) -> bool:
        """Whether a record may be taken over: a completed one past retention, an in-flight one
        past its lease (its holder died or gave up), or anything unreadable."""
        state = stored.get("state")
        claimed = parse_time(stored.get("claimedAt"))
        completed = parse_time(stored.get("completedAt")) or claimed
        if state == COMPLETED and completed is not None and stored.get("status", "").isdigit():
            return now - completed > self._ttl
        lease_until = parse_time(stored.get("leaseUntil"))
        if state == IN_FLIGHT and lease_until is not None:
            return now >= lease_until
        if state == IN_FLIGHT and claimed is not None:  # a record from before leases were renewed
            return now - claimed > self._lease
        return True

    # Writing our own claim.

    async def _write(self, claim: Claim, data: dict[str, str]) -> None:
        """Replace the record with ``data`` if it is still as we left it; raise :class:`ClaimLost`
        if someone else changed it. A lost answer is settled by reading the record back."""
        async with claim.lock:
            last: BaseException | None = None
            for attempt in range(_WRITE_ATTEMPTS):
                manifest = self._manifest(claim.namespace, claim.name, data, claim.resource_version)
                try:
                    written = await self._client.replace(CONFIGMAPS, manifest)
                    claim.resource_version = written["metadata"]["resourceVersion"]
                    claim.data = data
                    return
                except (KubeConflict, NotFound) as exc:
                    last = exc
                except Exception as exc:
                    if not _transient(exc):
                        raise
                    last = exc
                try:
                    current = await self._read(claim.namespace, claim.name)
                except Exception as exc:
                    if not _transient(exc):
                        raise
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                found: dict[str, str] = (current or {}).get("data") or {}
                if current is None or found.get("holder") != claim.holder or found.get("state") != IN_FLIGHT:
                    if found == data:
                        claim.resource_version = current["metadata"]["resourceVersion"] if current else ""
                        claim.data = data
                        return  # our completion landed; only its answer was lost
                    raise ClaimLost(f"{claim.namespace}/{claim.name}")
                claim.resource_version = current["metadata"]["resourceVersion"]
                if found == data:
                    claim.data = data
                    return  # the write happened; only its answer was lost
                # Still ours: an earlier write of ours landed after we stopped waiting for it.
            assert last is not None
            raise last

    async def renew(self, claim: Claim) -> None:
        await self._write(claim, {**claim.data, "leaseUntil": self._lease_until()})

    async def record_created(self, claim: Claim) -> None:
        """Store that the recorded resource now exists (a resume must not create it again)."""
        if claim.data.get("created") != "true":
            await self._write(claim, {**claim.data, "created": "true", "leaseUntil": self._lease_until()})

    async def record_resource(self, claim: Claim, resource: str) -> None:
        """Store the name this request will create, before it creates it."""
        await self._write(claim, {**claim.data, "resource": resource, "leaseUntil": self._lease_until()})

    async def complete(self, claim: Claim, status: int, body: bytes) -> None:
        data = {
            **claim.data,
            "state": COMPLETED,
            "completedAt": format_time(self._now()),
            "status": str(status),
            "body": body.decode(),
        }
        data.pop("leaseUntil", None)
        await self._write(claim, data)

    async def abandon(self, claim: Claim) -> None:
        """Give the claim up after a failure, best effort (else its lease runs out).

        With nothing recorded nothing was created: the record is deleted and a retry runs anew.
        With a resource recorded the claim must survive: its lease is expired at once, so the
        next retry resumes the creation instead of waiting for the lease.
        """
        try:
            current = await self._read(claim.namespace, claim.name)
            if current is None:
                return
            data: dict[str, str] = current.get("data") or {}
            if data.get("holder") != claim.holder or data.get("state") != IN_FLIGHT:
                return
            rv = current["metadata"]["resourceVersion"]
            if data.get("resource"):
                expired = {**data, "leaseUntil": format_time(self._now())}
                await self._client.replace(
                    CONFIGMAPS, self._manifest(claim.namespace, claim.name, expired, rv)
                )
            else:
                await self._client.delete(CONFIGMAPS, claim.name, claim.namespace, resource_version=rv)
        except Exception as exc:  # the lease runs out anyway
            logger.warning("idempotency.abandon failed for %s/%s: %s", claim.namespace, claim.name, exc)

    # Holding the lease while working.

    async def hold(self, claim: Claim, work: Awaitable[T]) -> T:
        """Run ``work`` while renewing the claim's lease; stop it before the lease could run out.

        If a renewal finds the claim taken over, or renewals keep failing until the lease is
        nearly over, ``work`` is cancelled and :class:`ClaimLost` raised: a lease never expires
        under a request that is still running.
        """
        task: asyncio.Future[T] = asyncio.ensure_future(work)
        lost: list[BaseException] = []
        beat = asyncio.create_task(self._heartbeat(claim, task, lost), name=f"idempotency:{claim.name}")
        try:
            return await task
        except asyncio.CancelledError:
            if lost:
                raise ClaimLost(f"{claim.namespace}/{claim.name}") from lost[0]
            raise
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _heartbeat(self, claim: Claim, task: asyncio.Future[Any], lost: list[BaseException]) -> None:
        """Renew every quarter lease. Each renewal may take at most what is left of the lease
        minus one period, and when nothing is left the work is stopped: a period before the
        lease ends, whatever the API server does, the request is either renewed or stopping."""
        period = self.lease_seconds / 4
        while not task.done():
            await asyncio.sleep(period)
            deadline = parse_time(claim.data.get("leaseUntil"))
            budget = (deadline - self._now()).total_seconds() - period if deadline is not None else 0.0
            reason: BaseException | None = None
            if budget <= 0:
                reason = TimeoutError("the lease could not be renewed in time")
            else:
                try:
                    await asyncio.wait_for(self.renew(claim), timeout=min(period, budget))
                except ClaimLost as exc:
                    reason = exc
                except Exception as exc:  # try again next period, while the lease lasts
                    logger.warning("idempotency renewal of %s/%s: %s", claim.namespace, claim.name, exc)
            if reason is not None:
                logger.warning("idempotency lease of %s/%s lost: %s", claim.namespace, claim.name, reason)
                lost.append(reason)
                task.cancel()
                return

    # Retention.

    async def sweep(self) -> int:
        """Delete records past retention (plus a lease of slack), in every namespace; returns how many."""
        items, _ = await self._client.list(CONFIGMAPS, label_selector=SELECTOR)
        cutoff = self._now() - self._ttl - self._lease
        removed = 0
        for item in items:
            data = item.get("data") or {}
            stamp = parse_time(data.get("completedAt")) or parse_time(data.get("claimedAt"))
            if stamp is not None and stamp >= cutoff:
                continue
            meta = item["metadata"]
            try:
                await self._client.delete(
                    CONFIGMAPS, meta["name"], meta["namespace"], resource_version=meta["resourceVersion"]
                )
                removed += 1
            except KubeError:
                pass  # changed or gone meanwhile: another replica's sweep, or a fresh claim
        return removed


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Creation:
    """What a create step of :meth:`IdempotentRequest.respond_create` is told and must tell."""

    landed_before: bool
    """An earlier attempt with this key created the object (it may have been deleted since)."""
    landed: Callable[[], Awaitable[None]]
    """To be awaited as soon as the object exists (before anything that belongs to it)."""


@dataclass
class IdempotentRequest:
    """One request's idempotency context (``key`` is ``None`` when the header was not sent)."""

    store: IdempotencyStore
    namespace: str
    key: str | None
    record: str
    fingerprint: str
    method: str
    path: str

    async def _claim(self) -> Claim | Stored:
        return await self.store.claim(self.namespace, self.record, self.fingerprint, self.method, self.path)

    async def respond(self, status: int, produce: Callable[[], Awaitable[BaseModel]]) -> Response:
        """Run ``produce`` at most once per key and answer ``status`` with its JSON.

        For a change that creates nothing (publishing): any failure releases the claim, and a
        retry runs again (a conditional write either happened or not; running it again is what
        the client asked for).
        """
        if self.key is None:
            return _json_response(status, _json_bytes((await produce()).model_dump(mode="json")))
        outcome = await self._claim()
        if isinstance(outcome, Stored):
            return _json_response(outcome.status, outcome.body, replayed=True)
        return await self._finish(outcome, status, produce)

    async def respond_create(
        self,
        status: int,
        reserve: Callable[[], Awaitable[str]],
        create: Callable[[str, Creation], Awaitable[BaseModel]],
    ) -> Response:
        """Create something exactly once per key, whatever fails and however often it is retried.

        ``reserve`` checks the request and picks the name to create (no writes but the id
        counter); ``create(name, creation)`` makes that object if it is absent, and whatever
        belongs to it, and answers it — it must be safe to run again. The name is recorded in the
        claim before ``create`` runs; a retry that takes the claim over calls ``create`` with the
        same name. ``create`` calls ``creation.landed()`` as soon as the object exists; when
        ``creation.landed_before`` it must not create the object again (if it is gone, the client
        deleted it: answer that, e.g. 410).
        """
        if self.key is None:
            name = await reserve()
            model = await create(name, Creation(landed_before=False, landed=_nothing))
            return _json_response(status, _json_bytes(model.model_dump(mode="json")))
        outcome = await self._claim()
        if isinstance(outcome, Stored):
            return _json_response(outcome.status, outcome.body, replayed=True)
        claim = outcome

        async def work() -> BaseModel:
            name = claim.resource
            if name is None:
                name = await reserve()
                await self.store.record_resource(claim, name)

            async def landed() -> None:
                await self.store.record_created(claim)

            return await create(name, Creation(landed_before=claim.created, landed=landed))

        return await self._finish(claim, status, work)

    async def _finish(
        self, claim: Claim, status: int, produce: Callable[[], Awaitable[BaseModel]]
    ) -> Response:
        try:
            model = await self.store.hold(claim, produce())
        except ClaimLost:
            raise _in_use() from None
        except BaseException:
            await self.store.abandon(claim)
            raise
        body = _json_bytes(model.model_dump(mode="json"))
        try:
            await self.store.complete(claim, status, body)
        except Exception as exc:
            # The work is done. A retry that finds the claim unfinished resumes it, which
            # converges on the same object; the client gets its answer now.
            logger.warning("idempotency.complete failed for %s/%s: %s", claim.namespace, claim.name, exc)
            if not isinstance(exc, ClaimLost):
                await self.store.abandon(claim)
        return _json_response(status, body)


def _json_response(status: int, body: bytes, *, replayed: bool = False) -> Response:
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)
