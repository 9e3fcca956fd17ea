"""API key records: Secrets that hold only a key's hash and grants, in a namespace of their own.

The CLI creates and revokes them; the api watches them (so a revocation takes effect within a
watch round trip) and looks keys up by hash.

Where they live: the keys namespace (``socialpub-keys``, or ``$SOCIALPUB_KEYS_NAMESPACE``) holds
API-key records and nothing else. A namespaced Role can then grant the api ``get/list/watch`` on
Secrets there and nowhere else: Kubernetes cannot restrict a list or watch by name, so sharing a
namespace with the encryption key ring (``socialpub-system``) would have meant granting it too.
Records from before this (in ``socialpub-system``) are moved by :func:`migrate_keys`, which the
CLI and ``socialpub dev`` run (they have admin rights; the api does not).

Whose they are: a record names its tenant *and the tenant's uid*. A tenant deleted and created
again under the same name has another uid, so its old keys no longer authenticate even if their
records were never cleaned up.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import AlreadyExists, Conflict, KubeClient, NotFound
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import (
    LABEL_COMPONENT,
    LABEL_MODE,
    LABEL_TENANT,
    SECRETS,
    SYSTEM_NAMESPACE,
    TENANTS,
)
from socialpub.models.keys import Mode, Scope, checksum_ok, hash_key, key_id, new_key

__all__ = [
    "API_KEY_SELECTOR",
    "KEYS_NAMESPACE",
    "KEYS_NAMESPACE_ENV",
    "ApiKeyRecord",
    "create_key",
    "ensure_keys_namespace",
    "find_key",
    "keys_namespace",
    "list_keys",
    "migrate_keys",
    "revoke_key",
    "revoke_tenant_keys",
]

API_KEY_SELECTOR = f"{LABEL_COMPONENT}=api-key"
KEYS_NAMESPACE = "socialpub-keys"
KEYS_NAMESPACE_ENV = "SOCIALPUB_KEYS_NAMESPACE"
LEGACY_NAMESPACE = SYSTEM_NAMESPACE
"""Where key records lived before they had a namespace of their own."""


def keys_namespace(environ: Mapping[str, str] | None = None) -> str:
    """The keys namespace: ``$SOCIALPUB_KEYS_NAMESPACE``, else ``socialpub-keys``."""
    return (os.environ if environ is None else environ).get(KEYS_NAMESPACE_ENV) or KEYS_NAMESPACE


@dataclass(frozen=True)
class ApiKeyRecord:
    """What is known about a key without the key itself."""

    id: str
    key_hash: str
    tenant: str
    mode: Mode
    scopes: frozenset[Scope]
    created_at: str
    revoked_at: str | None = None
    tenant_uid: str | None = None
    """The uid of the SocialTenant the key was made for; ``None`` only in records not yet migrated."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any]) -> ApiKeyRecord | None:
        """The record a Secret holds, or ``None`` if it is not a well-formed key record."""
        try:
            data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
            scopes = frozenset(Scope(s) for s in data.get("scopes", "").split() if s)
            return cls(
                id=key_id(data["hash"]),
                key_hash=data["hash"],
                tenant=data["tenant"],
                mode=Mode(data["mode"]),
                scopes=scopes,
                created_at=data.get("createdAt", ""),
                revoked_at=data.get("revokedAt") or None,
                tenant_uid=data.get("tenantUid") or None,
            )
        except (KeyError, ValueError):
            return None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _secret_name(id_: str) -> str:
    return f"apikey-{id_}"


def _manifest(record: ApiKeyRecord) -> dict[str, Any]:
    data = {
        "hash": _b64(record.key_hash),
        "tenant": _b64(record.tenant),
        "mode": _b64(record.mode.value),
        "scopes": _b64(" ".join(sorted(s.value for s in record.scopes))),
        "createdAt": _b64(record.created_at),
    }
    if record.tenant_uid:
        data["tenantUid"] = _b64(record.tenant_uid)
    if record.revoked_at:
        data["revokedAt"] = _b64(record.revoked_at)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "socialpub.softsolz.uk/api-key",
        "metadata": {
            "name": _secret_name(record.id),
            "labels": {
                LABEL_COMPONENT: "api-key",
                LABEL_TENANT: record.tenant,
                LABEL_MODE: record.mode.value,
            },
        },
        "data": data,
    }


async def ensure_keys_namespace(client: KubeClient, namespace: str | None = None) -> str:
    """Create the keys namespace if needed; returns its name."""
    name = namespace or keys_namespace()
    await ensure_namespace(client, name, {LABEL_COMPONENT: "api-keys"})
    return name


async def _tenant_uid(client: KubeClient, tenant: str) -> str:
    obj = await client.get(TENANTS, tenant)
    return str(obj["metadata"]["uid"])


async def create_key(
    client: KubeClient,
    *,
    tenant: str,
    mode: Mode,
    scopes: Iterable[Scope],
    namespace: str | None = None,
) -> tuple[str, ApiKeyRecord]:
    """Create a key, bound to the tenant's current uid; returns ``(key, record)``. The key is
    not stored anywhere: show it once. Raises NotFound if the tenant does not exist."""
    where = await ensure_keys_namespace(client, namespace)
    uid = await _tenant_uid(client, tenant)
    key = new_key(mode)
    digest = hash_key(key)
    record = ApiKeyRecord(key_id(digest), digest, tenant, mode, frozenset(scopes), _now(), tenant_uid=uid)
    await client.create(SECRETS, _manifest(record), where)
    return key, record


async def list_keys(client: KubeClient, *, tenant: str, namespace: str | None = None) -> list[ApiKeyRecord]:
    secrets, _ = await client.list(
        SECRETS,
        namespace or keys_namespace(),
        label_selector=f"{API_KEY_SELECTOR},{LABEL_TENANT}={tenant}",
    )
    records = [r for r in (ApiKeyRecord.from_secret(s) for s in secrets) if r is not None]
    return sorted(records, key=lambda r: r.created_at)


async def find_key(client: KubeClient, key: str, namespace: str | None = None) -> ApiKeyRecord | None:
    """The record of ``key`` (revoked or not), or ``None`` if it is malformed or unknown."""
    if not checksum_ok(key):
        return None
    digest = hash_key(key)
    try:
        secret = await client.get(SECRETS, _secret_name(key_id(digest)), namespace or keys_namespace())
    except NotFound:
        return None
    record = ApiKeyRecord.from_secret(secret)
    return record if record is not None and hmac.compare_digest(record.key_hash, digest) else None


async def _mark_revoked(client: KubeClient, record: ApiKeyRecord, namespace: str) -> ApiKeyRecord:
    if record.revoked_at:
        return record
    revoked_at = _now()
    await client.patch(SECRETS, _secret_name(record.id), {"data": {"revokedAt": _b64(revoked_at)}}, namespace)
    return replace(record, revoked_at=revoked_at)


async def revoke_key(
    client: KubeClient, *, tenant: str, key_id_: str, namespace: str | None = None
) -> ApiKeyRecord:
    """Mark a key revoked (the record stays, for audit). Raises NotFound for another tenant's key."""
    where = namespace or keys_namespace()
    secret = await client.get(SECRETS, _secret_name(key_id_), where)
    record = ApiKeyRecord.from_secret(secret)
    if record is None or record.tenant != tenant:
        raise NotFound(404, "NotFound", f"no key {key_id_} for tenant {tenant}")
    return await _mark_revoked(client, record, where)


async def revoke_tenant_keys(
    client: KubeClient, tenant: str, namespace: str | None = None
) -> list[ApiKeyRecord]:
    """Revoke every key of ``tenant`` (when it is deleted); returns those newly revoked."""
    where = namespace or keys_namespace()
    revoked = []
    for record in await list_keys(client, tenant=tenant, namespace=where):
        if record.active:
            revoked.append(await _mark_revoked(client, record, where))
    return revoked


def _older(secret_created: Any, tenant_created: Any) -> bool:
    """Whether a key record's Secret was made before its tenant, both by the API server's
    ``creationTimestamp`` (to the second, its precision; a tie is not "older").

    Never the record's ``createdAt``: that is the clock of the machine that ran the CLI, which
    may be off by minutes or more — behind, a valid key looked older than its tenant and was
    revoked; ahead, a key of a deleted tenant looked newer than its successor and was bound to
    it. Both times come from one clock here.
    """
    try:
        key_time = datetime.fromisoformat(str(secret_created).replace("Z", "+00:00"))
        tenant_time = datetime.fromisoformat(str(tenant_created).replace("Z", "+00:00"))
    except ValueError:
        return False
    return key_time < tenant_time


async def _move(
    client: KubeClient,
    secret: dict[str, Any],
    where: str,
    bound: Callable[[ApiKeyRecord, Mapping[str, Any]], Awaitable[ApiKeyRecord]],
) -> bool:
    """Move one legacy record into ``where``; returns whether it was a key record (and moved).

    A run that crashed between its copy and its delete leaves both; a revocation made on the
    legacy copy meanwhile (an older CLI still writes there) must not be lost, so when the copy
    exists its ``revokedAt`` is merged in. The delete is conditional on the legacy record being
    as read; if it changed (revoked just now), it is read again and merged again.
    """
    for _ in range(5):
        record = ApiKeyRecord.from_secret(secret)
        if record is None:
            return False  # not a key record we understand: left alone (it cannot authenticate)
        try:
            await client.create(SECRETS, _manifest(await bound(record, secret)), where)
        except AlreadyExists:  # moved by a run that stopped before deleting
            if record.revoked_at:
                copy = ApiKeyRecord.from_secret(await client.get(SECRETS, _secret_name(record.id), where))
                if copy is not None and not copy.revoked_at:
                    patch = {"data": {"revokedAt": _b64(record.revoked_at)}}
                    await client.patch(SECRETS, _secret_name(record.id), patch, where)
        meta = secret["metadata"]
        try:
            await client.delete(
                SECRETS, meta["name"], LEGACY_NAMESPACE, resource_version=meta["resourceVersion"]
            )
            return True
        except NotFound:
            return True
        except Conflict:  # changed since read (a revocation): merge what it says now
            try:
                secret = await client.get(SECRETS, meta["name"], LEGACY_NAMESPACE)
            except NotFound:
                return True
    raise Conflict(
        409, "Conflict", f"the key record {secret['metadata']['name']} kept changing while it was moved"
    )


async def migrate_keys(client: KubeClient, namespace: str | None = None) -> int:
    """Move key records from ``socialpub-system`` into the keys namespace and bind every record
    that has no tenant uid to its tenant; returns how many records changed. Safe to re-run.

    A record older than its tenant (the tenant was deleted and made again since the key was
    created) or whose tenant no longer exists is not bound but revoked: binding it would hand
    the old key to the new tenant. The dev key (made for the current ``demo`` tenant) keeps
    working across the move.
    """
    where = await ensure_keys_namespace(client, namespace)
    tenants: dict[str, dict[str, Any] | None] = {}

    async def tenant(name: str) -> dict[str, Any] | None:
        if name not in tenants:
            try:
                tenants[name] = await client.get(TENANTS, name)
            except NotFound:
                tenants[name] = None
        return tenants[name]

    async def bound(record: ApiKeyRecord, secret: Mapping[str, Any]) -> ApiKeyRecord:
        if record.tenant_uid:
            return record
        obj = await tenant(record.tenant)
        created = (secret.get("metadata") or {}).get("creationTimestamp")
        if obj is None or _older(created, obj["metadata"].get("creationTimestamp")):
            return replace(record, revoked_at=record.revoked_at or _now())
        return replace(record, tenant_uid=str(obj["metadata"]["uid"]))

    changed = 0
    if where != LEGACY_NAMESPACE:
        legacy, _ = await client.list(SECRETS, LEGACY_NAMESPACE, label_selector=API_KEY_SELECTOR)
        for secret in legacy:
            if await _move(client, secret, where, bound):
                changed += 1
    current, _ = await client.list(SECRETS, where, label_selector=API_KEY_SELECTOR)
    for secret in current:
        record = ApiKeyRecord.from_secret(secret)
        if record is None or record.tenant_uid or record.revoked_at:
            continue  # bound, or revoked (which needs no binding: it authenticates nothing)
        fixed = await bound(record, secret)
        patch = {
            "data": {k: v for k, v in _manifest(fixed)["data"].items() if k in ("tenantUid", "revokedAt")}
        }
        await client.patch(SECRETS, secret["metadata"]["name"], patch, where)
        changed += 1
    return changed
