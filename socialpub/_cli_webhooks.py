"""``socialpub webhooks add|list|remove|rotate-secret``: a tenant's webhook endpoints.

An endpoint is a SocialWebhookEndpoint ``webhook-<id>`` in the tenant's live or sandbox namespace
with its signing secret in the Secret ``webhook-<id>-secret`` (owned by the endpoint, so removing
the endpoint removes the Secret and the delivery records). The secret is printed once, on stdout.

The functions taking a :class:`KubeClient` hold the logic (the tests call them); the commands
check input, connect and print.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from socialpub._cli_common import CliError, connect
from socialpub.kube.client import Conflict, KubeClient, NotFound
from socialpub.kube.devstack import dev_stack_allows_loopback
from socialpub.kube.ids import allocate_id
from socialpub.kube.resources import (
    ANNOTATION_CREATED_AT,
    ANNOTATION_SECRET_ROTATED_AT,
    LABEL_COMPONENT,
    LABEL_ENDPOINT,
    LABEL_ID,
    SECRETS,
    WEBHOOK_ENDPOINTS,
)
from socialpub.kube.tenants import Tenant, check_tenant_name, get_tenant
from socialpub.models.keys import Mode
from socialpub.webhooks import signing, urls
from socialpub.webhooks.events import EVENT_TYPES

__all__ = [
    "Endpoint",
    "add_endpoint",
    "find_endpoint",
    "list_endpoints",
    "remove_endpoint",
    "rotate_secret",
    "webhooks_add",
    "webhooks_list",
    "webhooks_remove",
    "webhooks_rotate_secret",
]

SECRET_KEY = "secret"


def _micro_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _allow_loopback(args: argparse.Namespace) -> bool:
    """Loopback asked for explicitly (``--allow-loopback`` or the operator's own variable)."""
    env = os.environ.get("SOCIALPUB_WEBHOOK_ALLOW_LOOPBACK", "").lower() in ("1", "true", "yes")
    return bool(getattr(args, "allow_loopback", False)) or env


async def _loopback_allowed(client: KubeClient, args: argparse.Namespace, url: str) -> bool:
    """Whether ``url`` may name a loopback receiver: asked for, or the cluster is ``socialpub dev``'s
    (whose operator delivers to loopback; :mod:`socialpub.kube.devstack`)."""
    if _allow_loopback(args):
        return True
    try:
        urls.check_url(url, live=False)
    except urls.UrlRefused as exc:
        if exc.code == "loopback_address" and await dev_stack_allows_loopback(client):
            print("the dev stack's operator delivers to loopback receivers: accepted", file=sys.stderr)
            return True
    return False


@dataclass(frozen=True)
class Endpoint:
    """One endpoint as the CLI shows it."""

    id: int | None
    name: str
    mode: Mode
    namespace: str
    url: str
    events: list[str]
    ready: str
    reason: str
    failures: int
    last_delivery_at: str | None
    backlog: int

    @classmethod
    def from_object(cls, obj: dict[str, Any], mode: Mode) -> Endpoint:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        raw_id = (meta.get("labels") or {}).get(LABEL_ID)
        return cls(
            id=int(raw_id) if raw_id and str(raw_id).isdigit() else None,
            name=str(meta.get("name")),
            mode=mode,
            namespace=str(meta.get("namespace")),
            url=str(spec.get("url") or ""),
            events=list(spec.get("events") or []),
            ready=str(ready.get("status") or "Unknown"),
            reason=str(ready.get("reason") or "-"),
            failures=int(status.get("consecutiveFailures") or 0),
            last_delivery_at=status.get("lastDeliveryAt"),
            backlog=int(status.get("backlog") or 0),
        )


async def check_url(url: str, *, mode: Mode, allow_loopback: bool) -> None:
    """The URL rules the operator applies at every delivery, checked now (DNS included)."""
    try:
        await urls.resolve(url, live=mode is Mode.LIVE, allow_loopback=allow_loopback)
    except urls.UrlRefused as exc:
        raise CliError(f"--url refused: {exc}", 2) from None
    except OSError as exc:
        raise CliError(f"--url: cannot resolve its host: {exc}", 2) from None


async def add_endpoint(
    client: KubeClient, tenant: Tenant, *, mode: Mode, url: str, events: list[str]
) -> tuple[dict[str, Any], str]:
    """Create the Secret and the endpoint (then make the endpoint own the Secret).

    Returns ``(endpoint, secret)``. The Secret is written first, so the operator never sees an
    endpoint without its secret.
    """
    namespace = tenant.namespace(mode)
    id_ = await allocate_id(client, namespace, "webhooks")
    name = f"webhook-{id_}"
    secret_name = f"{name}-secret"
    secret = signing.generate_secret()
    await client.create(
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": secret_name,
                "namespace": namespace,
                "labels": {LABEL_COMPONENT: "webhook-secret", LABEL_ENDPOINT: name},
            },
            "data": {SECRET_KEY: base64.b64encode(secret.encode()).decode()},
        },
        namespace,
    )
    spec: dict[str, Any] = {"url": url, "secretRef": {"name": secret_name, "key": SECRET_KEY}}
    if events:
        spec["events"] = sorted(set(events), key=EVENT_TYPES.index)
    endpoint = await client.create(
        WEBHOOK_ENDPOINTS,
        {
            "apiVersion": WEBHOOK_ENDPOINTS.api_version,
            "kind": WEBHOOK_ENDPOINTS.kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {LABEL_ID: str(id_)},
                "annotations": {ANNOTATION_CREATED_AT: _micro_now()},
            },
            "spec": spec,
        },
        namespace,
    )
    owner = {
        "apiVersion": WEBHOOK_ENDPOINTS.api_version,
        "kind": WEBHOOK_ENDPOINTS.kind,
        "name": name,
        "uid": endpoint["metadata"]["uid"],
    }
    await client.patch(SECRETS, secret_name, {"metadata": {"ownerReferences": [owner]}}, namespace)
    return endpoint, secret


async def list_endpoints(client: KubeClient, tenant: Tenant) -> list[Endpoint]:
    """The tenant's endpoints, live then sandbox, by id."""
    result = []
    for mode in (Mode.LIVE, Mode.TEST):
        items, _ = await client.list(WEBHOOK_ENDPOINTS, tenant.namespace(mode))
        found = [Endpoint.from_object(obj, mode) for obj in items]
        result += sorted(found, key=lambda e: (e.id is None, e.id or 0, e.name))
    return result


async def find_endpoint(
    client: KubeClient, tenant: Tenant, ref: str, mode: Mode | None = None
) -> tuple[dict[str, Any], Mode]:
    """The endpoint ``ref`` (an id or a name) of ``tenant``; with ``mode`` None, in either namespace."""
    name = f"webhook-{ref}" if ref.isdigit() else ref
    found = []
    for m in (mode,) if mode is not None else (Mode.LIVE, Mode.TEST):
        try:
            found.append((await client.get(WEBHOOK_ENDPOINTS, name, tenant.namespace(m)), m))
        except NotFound:
            continue
    if not found:
        raise CliError(f"tenant {tenant.name!r} has no webhook endpoint {ref!r}")
    if len(found) > 1:
        raise CliError(f"{ref!r} names a live and a test endpoint: say which with --mode", 2)
    return found[0]


async def remove_endpoint(client: KubeClient, endpoint: dict[str, Any]) -> None:
    """Delete the endpoint; its Secret and delivery records go with it (ownerReferences)."""
    meta = endpoint["metadata"]
    await client.delete(WEBHOOK_ENDPOINTS, meta["name"], meta["namespace"], propagation="Background")
    secret_name = ((endpoint.get("spec") or {}).get("secretRef") or {}).get("name")
    if secret_name:
        try:
            secret = await client.get(SECRETS, secret_name, meta["namespace"])
        except NotFound:
            return
        if (secret["metadata"].get("labels") or {}).get(LABEL_ENDPOINT) == meta["name"]:
            with contextlib.suppress(NotFound):
                await client.delete(SECRETS, secret_name, meta["namespace"])


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def rotate_secret(
    client: KubeClient,
    endpoint: dict[str, Any],
    *,
    overlap_seconds: float = signing.ROTATION_OVERLAP_SECONDS,
    attempts: int = 5,
) -> tuple[str, str]:
    """A new current secret; the old one keeps signing for ``overlap_seconds``.

    Returns ``(new secret, expiry of the old one)``. The Secret is replaced conditionally on its
    resourceVersion, then the endpoint is annotated so the operator re-reads it at once.
    """
    meta = endpoint["metadata"]
    ref = (endpoint.get("spec") or {}).get("secretRef") or {}
    name, key = str(ref.get("name") or ""), str(ref.get("key") or SECRET_KEY)
    new = signing.generate_secret()
    now = time.time()
    for _ in range(attempts):
        try:
            current = await client.get(SECRETS, name, meta["namespace"])
        except NotFound:
            raise CliError(f"the endpoint's Secret {name} does not exist in {meta['namespace']}") from None
        data = signing.rotate(_decoded(current), key, new, now=now, overlap_seconds=overlap_seconds)
        body = {
            **current,
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        body.pop("stringData", None)
        try:
            await client.replace(SECRETS, body)
            break
        except Conflict:
            continue
    else:
        raise CliError(f"the Secret {name} kept changing; try again")
    await client.patch(
        WEBHOOK_ENDPOINTS,
        meta["name"],
        {"metadata": {"annotations": {ANNOTATION_SECRET_ROTATED_AT: _micro_now()}}},
        meta["namespace"],
    )
    previous = json.loads(data.get(signing.previous_key(key), "[]"))
    return new, str(previous[0]["expiresAt"]) if previous else ""


# The commands.


async def _tenant(client: KubeClient, name: str) -> Tenant:
    try:
        return await get_tenant(client, check_tenant_name(name))
    except NotFound:
        raise CliError(f"no tenant {name!r} (create it with: socialpub tenants create {name})") from None


async def webhooks_add(args: argparse.Namespace) -> None:
    mode = Mode(args.mode)
    events = list(args.events or [])
    async with connect(args) as client:
        await check_url(args.url, mode=mode, allow_loopback=await _loopback_allowed(client, args, args.url))
        tenant = await _tenant(client, args.tenant)
        endpoint, secret = await add_endpoint(client, tenant, mode=mode, url=args.url, events=events)
    meta = endpoint["metadata"]
    print(secret, flush=True)
    print(
        f"created webhook endpoint {meta['labels'][LABEL_ID]} ({meta['name']} in {meta['namespace']}, "
        f"{mode.value}) for {', '.join(events) if events else 'every event'}. Its signing secret, "
        "above, is shown only this once: store it now.",
        file=sys.stderr,
    )


async def webhooks_list(args: argparse.Namespace) -> None:
    async with connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        found = await list_endpoints(client, tenant)
    if args.output == "json":
        print(
            json.dumps(
                [
                    {
                        "id": e.id,
                        "name": e.name,
                        "mode": e.mode.value,
                        "url": e.url,
                        "events": e.events,
                        "ready": e.ready,
                        "reason": e.reason,
                        "consecutive_failures": e.failures,
                        "backlog": e.backlog,
                        "last_delivery_at": e.last_delivery_at,
                    }
                    for e in found
                ],
                indent=2,
            )
        )
        return
    rows = [
        (
            str(e.id or "-"),
            e.mode.value,
            e.url,
            ",".join(t.removeprefix("social.") for t in e.events) or "all",
            f"{e.ready} ({e.reason})",
            str(e.failures),
            str(e.backlog),
            e.last_delivery_at or "-",
        )
        for e in found
    ]
    headers = ("ID", "MODE", "URL", "EVENTS", "READY", "FAILURES", "BACKLOG", "LAST DELIVERY")
    widths = [max(len(c) for c in column) for column in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        print("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


async def webhooks_remove(args: argparse.Namespace) -> None:
    async with connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        endpoint, mode = await find_endpoint(
            client, tenant, args.endpoint, Mode(args.mode) if args.mode else None
        )
        await remove_endpoint(client, endpoint)
    print(f"webhook endpoint {endpoint['metadata']['name']} ({mode.value}) removed")


async def webhooks_rotate_secret(args: argparse.Namespace) -> None:
    if not 0 <= args.overlap_hours <= 24 * 7:
        raise CliError("--overlap-hours must be between 0 and 168", 2)
    async with connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        endpoint, _ = await find_endpoint(
            client, tenant, args.endpoint, Mode(args.mode) if args.mode else None
        )
        secret, expires = await rotate_secret(client, endpoint, overlap_seconds=args.overlap_hours * 3600)
    print(secret, flush=True)
    until = f"both secrets sign every delivery until {expires}" if expires else "the old secret stops now"
    print(
        f"rotated the signing secret of {endpoint['metadata']['name']}: {until}. The new secret, above, "
        "is shown only this once.",
        file=sys.stderr,
    )
