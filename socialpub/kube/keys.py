"""API key records: Secrets in the system namespace that hold only a key's hash and grants.

The CLI creates and revokes them; the api watches them (so a revocation takes effect within a
watch round trip) and looks keys up by hash.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import KubeClient, NotFound
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import (
    LABEL_COMPONENT,
    LABEL_MODE,
    LABEL_TENANT,
    SECRETS,
    SYSTEM_NAMESPACE,
)
from socialpub.models.keys import Mode, Scope, checksum_ok, hash_key, key_id, new_key

__all__ = [
    "API_KEY_SELECTOR",
    "ApiKeyRecord",
    "create_key",
    "ensure_system_namespace",
    "find_key",
    "list_keys",
    "revoke_key",
]

API_KEY_SELECTOR = f"{LABEL_COMPONENT}=api-key"


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

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_secret(cls, secret: Mapping[str, Any]) -> ApiKeyRecord | None:
        """The record a Secret holds, or ``None`` if it is not a well-formed key record."""
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        try:
            scopes = frozenset(Scope(s) for s in data.get("scopes", "").split() if s)
            return cls(
                id=key_id(data["hash"]),
                key_hash=data["hash"],
                tenant=data["tenant"],
                mode=Mode(data["mode"]),
                scopes=scopes,
                created_at=data.get("createdAt", ""),
                revoked_at=data.get("revokedAt") or None,
            )
        except (KeyError, ValueError):
            return None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


async def ensure_system_namespace(client: KubeClient) -> None:
    await ensure_namespace(client, SYSTEM_NAMESPACE)


async def create_key(
    client: KubeClient, *, tenant: str, mode: Mode, scopes: Iterable[Scope]
) -> tuple[str, ApiKeyRecord]:
    """Create a key; returns ``(key, record)``. The key is not stored anywhere: show it once."""
    await ensure_system_namespace(client)
    key = new_key(mode)
    digest = hash_key(key)
    scope_set = frozenset(scopes)
    record = ApiKeyRecord(key_id(digest), digest, tenant, mode, scope_set, _now())
    await client.create(
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "socialpub.softsolz.uk/api-key",
            "metadata": {
                "name": f"apikey-{record.id}",
                "labels": {LABEL_COMPONENT: "api-key", LABEL_TENANT: tenant, LABEL_MODE: mode.value},
            },
            "data": {
                "hash": _b64(digest),
                "tenant": _b64(tenant),
                "mode": _b64(mode.value),
                "scopes": _b64(" ".join(sorted(s.value for s in scope_set))),
                "createdAt": _b64(record.created_at),
            },
        },
        SYSTEM_NAMESPACE,
    )
    return key, record


async def list_keys(client: KubeClient, *, tenant: str) -> list[ApiKeyRecord]:
    await ensure_system_namespace(client)
    secrets, _ = await client.list(
        SECRETS, SYSTEM_NAMESPACE, label_selector=f"{API_KEY_SELECTOR},{LABEL_TENANT}={tenant}"
    )
    records = [r for r in (ApiKeyRecord.from_secret(s) for s in secrets) if r is not None]
    return sorted(records, key=lambda r: r.created_at)


async def find_key(client: KubeClient, key: str) -> ApiKeyRecord | None:
    """The record of ``key`` (revoked or not), or ``None`` if it is malformed or unknown."""
    if not checksum_ok(key):
        return None
    digest = hash_key(key)
    try:
        secret = await client.get(SECRETS, f"apikey-{key_id(digest)}", SYSTEM_NAMESPACE)
    except NotFound:
        return None
    record = ApiKeyRecord.from_secret(secret)
    return record if record is not None and hmac.compare_digest(record.key_hash, digest) else None


async def revoke_key(client: KubeClient, *, tenant: str, key_id_: str) -> ApiKeyRecord:
    """Mark a key revoked (the record stays, for audit). Raises NotFound for another tenant's key."""
    secret = await client.get(SECRETS, f"apikey-{key_id_}", SYSTEM_NAMESPACE)
    record = ApiKeyRecord.from_secret(secret)
    if record is None or record.tenant != tenant:
        raise NotFound(404, "NotFound", f"no key {key_id_} for tenant {tenant}")
    if record.revoked_at:
        return record
    revoked_at = _now()
    await client.patch(
        SECRETS, secret["metadata"]["name"], {"data": {"revokedAt": _b64(revoked_at)}}, SYSTEM_NAMESPACE
    )
    return ApiKeyRecord(
        record.id, record.key_hash, record.tenant, record.mode, record.scopes, record.created_at, revoked_at
    )
