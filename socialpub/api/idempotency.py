"""``Idempotency-Key`` on POST: a retried request gets the first answer, and runs only once.

Records are ConfigMaps in the caller's namespace (the Kubernetes API is the only database),
named ``idem-<sha256(tenant|mode|key)[:40]>`` so that keys are scoped to a tenant and mode and
any characters are safe. The protocol, after Stripe and the IETF draft:

* **claim** by *creating* the record (``state: in-flight``, the request's fingerprint, the
  time). Creation is atomic in the Kubernetes API, so of any number of concurrent retries, on
  any number of replicas, exactly one wins and runs the handler.
* a loser reads the record: in flight → 409 ``idempotency_key_in_use`` (``Retry-After: 1``);
  completed with another fingerprint → 422 ``idempotency_key_reused``; completed with the same
  one → the stored status and body, byte for byte, with ``Idempotent-Replayed: true``.
* an in-flight claim older than the lease (its replica died mid-request) and a completed record
  older than the retention (24 h) are taken over by a ``resourceVersion``-conditional replace,
  so again only one taker wins.
* **complete** by storing the status and body. If the handler fails with a 4xx — nothing was
  changed — the claim is deleted, so the client can fix the request and retry with the same key
  (Stripe does not save requests that failed validation either). Other failures also release
  the claim, best effort; see the note on :meth:`IdempotentRequest.respond`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
    "IdempotencyStore",
    "IdempotentRequest",
    "fingerprint",
    "record_name",
]

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255
IN_FLIGHT = "in-flight"
COMPLETED = "completed"
REPLAYED_HEADER = "Idempotent-Replayed"
COMPONENT = "idempotency"
SELECTOR = f"{LABEL_COMPONENT}={COMPONENT}"


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


@dataclass(frozen=True)
class Claim:
    """This request owns the key until it completes or releases it."""

    namespace: str
    name: str
    resource_version: str
    data: dict[str, str]


@dataclass(frozen=True)
class Stored:
    """The first request's answer."""

    status: int
    body: bytes


class IdempotencyStore:
    """Claims, completes and replays idempotency records in one namespace per tenant and mode."""

    def __init__(self, client: KubeClient, *, ttl_seconds: int, lease_seconds: int) -> None:
        self._client = client
        self._ttl = timedelta(seconds=ttl_seconds)
        self._lease = timedelta(seconds=lease_seconds)

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

    async def claim(
        self, namespace: str, name: str, fingerprint_: str, method: str, path: str
    ) -> Claim | Stored:
        now = datetime.now(UTC)
        data = {
            "state": IN_FLIGHT,
            "fingerprint": fingerprint_,
            "method": method,
            "path": path,
            "claimedAt": format_time(now),
        }
        for _ in range(5):
            try:
                created = await self._client.create(
                    CONFIGMAPS, self._manifest(namespace, name, data), namespace
                )
                return Claim(namespace, name, created["metadata"]["resourceVersion"], data)
            except AlreadyExists:
                pass
            try:
                existing = await self._client.get(CONFIGMAPS, name, namespace)
            except NotFound:
                continue  # released between our create and get: try to claim again
            stored = existing.get("data") or {}
            rv = existing["metadata"]["resourceVersion"]
            state = stored.get("state")
            if not self._expired(stored, now):
                if stored.get("fingerprint") != fingerprint_:
                    raise UnprocessableEntity(
                        "this Idempotency-Key was used with a different request (method, path or body); "
                        "use a new key for a new request",
                        code="idempotency_key_reused",
                    )
                if state == COMPLETED:
                    return Stored(int(stored.get("status", "200")), stored.get("body", "").encode())
                raise Conflict(
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                    code="idempotency_key_in_use",
                    headers={"Retry-After": "1"},
                )
            try:
                replaced = await self._client.replace(CONFIGMAPS, self._manifest(namespace, name, data, rv))
                return Claim(namespace, name, replaced["metadata"]["resourceVersion"], data)
            except (KubeConflict, NotFound):
                continue
        raise Conflict(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            code="idempotency_key_in_use",
            headers={"Retry-After": "1"},
        )

    def _expired(self, stored: dict[str, str], now: datetime) -> bool:
        """Whether a record may be taken over: a completed one past retention, an in-flight one
        past its lease (its replica died), or anything unreadable."""
        state = stored.get("state")
        claimed = parse_time(stored.get("claimedAt"))
        completed = parse_time(stored.get("completedAt")) or claimed
        if state == COMPLETED and completed is not None and stored.get("status", "").isdigit():
            return now - completed > self._ttl
        if state == IN_FLIGHT and claimed is not None:
            return now - claimed > self._lease
        return True

    async def complete(self, claim: Claim, status: int, body: bytes) -> None:
        data = {
            **claim.data,
            "state": COMPLETED,
            "completedAt": format_time(datetime.now(UTC)),
            "status": str(status),
            "body": body.decode(),
        }
        manifest = self._manifest(claim.namespace, claim.name, data, claim.resource_version)
        try:
            await self._client.replace(CONFIGMAPS, manifest)
        except KubeError as exc:
            # Our lease ran out and another request took the key over; its answer will stand.
            logger.warning("idempotency.complete lost claim %s/%s: %s", claim.namespace, claim.name, exc)

    async def sweep(self) -> int:
        """Delete records past retention (plus a lease of slack), in every namespace; returns how many."""
        items, _ = await self._client.list(CONFIGMAPS, label_selector=SELECTOR)
        cutoff = datetime.now(UTC) - self._ttl - self._lease
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

    async def release(self, claim: Claim) -> None:
        try:
            await self._client.delete(
                CONFIGMAPS, claim.name, claim.namespace, resource_version=claim.resource_version
            )
        except Exception as exc:  # best effort: the lease expires anyway
            logger.warning("idempotency.release failed for %s/%s: %s", claim.namespace, claim.name, exc)


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

    async def respond(self, status: int, produce: Callable[[], Awaitable[BaseModel]]) -> Response:
        """Run ``produce`` at most once per key and answer ``status`` with its JSON.

        Any failure releases the claim: a 4xx changed nothing, so a retry is safe and should
        run again. After a 5xx a retry runs again as well; the handlers are written so that a
        failure leaves nothing half-done that a second run would duplicate, except in the rare
        case where the post was created and the answer then failed.
        """
        if self.key is None:
            return _json_response(status, _json_bytes((await produce()).model_dump(mode="json")))
        outcome = await self.store.claim(
            self.namespace, self.record, self.fingerprint, self.method, self.path
        )
        if isinstance(outcome, Stored):
            return _json_response(outcome.status, outcome.body, replayed=True)
        try:
            model = await produce()
        except BaseException:
            await self.store.release(outcome)
            raise
        body = _json_bytes(model.model_dump(mode="json"))
        await self.store.complete(outcome, status, body)
        return _json_response(status, body)


def _json_response(status: int, body: bytes, *, replayed: bool = False) -> Response:
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)
