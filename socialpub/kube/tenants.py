"""Tenants: a SocialTenant and its two namespaces, live and sandbox."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

from socialpub.kube.client import AlreadyExists, KubeClient, NotFound
from socialpub.kube.keys import ApiKeyRecord, revoke_tenant_keys
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import LABEL_MODE, LABEL_TENANT, NAMESPACES, TENANTS
from socialpub.models.keys import Mode

__all__ = [
    "Tenant",
    "TenantNameError",
    "check_tenant_name",
    "delete_tenant",
    "ensure_tenant",
    "get_tenant",
    "list_tenants",
]

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


class TenantNameError(ValueError):
    """A tenant name must be a DNS label of at most 40 characters (it prefixes namespace names)."""


@dataclass(frozen=True)
class Tenant:
    name: str
    display_name: str
    live_namespace: str
    sandbox_namespace: str

    def namespace(self, mode: Mode) -> str:
        """Where objects of ``mode`` live: ``sk_test_`` keys reach only the sandbox namespace."""
        return self.live_namespace if mode is Mode.LIVE else self.sandbox_namespace

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Tenant:
        spec = obj.get("spec") or {}
        name = obj["metadata"]["name"]
        return cls(
            name=name,
            display_name=str(spec.get("displayName") or name),
            live_namespace=str(spec.get("liveNamespace") or f"{name}-live"),
            sandbox_namespace=str(spec.get("sandboxNamespace") or f"{name}-sandbox"),
        )


def check_tenant_name(name: str) -> str:
    """``name`` if it can name a tenant; raises :class:`TenantNameError` otherwise."""
    if not _NAME.match(name):
        raise TenantNameError(f"invalid tenant name {name!r}: use 1-40 lowercase letters, digits and '-'")
    return name


async def ensure_tenant(client: KubeClient, name: str, *, display_name: str | None = None) -> Tenant:
    """Create the tenant ``name`` and its namespaces; running it again changes nothing."""
    check_tenant_name(name)
    tenant = Tenant(name, display_name or name, f"{name}-live", f"{name}-sandbox")
    try:
        obj = await client.create(
            TENANTS,
            {
                "apiVersion": TENANTS.api_version,
                "kind": TENANTS.kind,
                "metadata": {"name": name},
                "spec": {
                    "displayName": tenant.display_name,
                    "liveNamespace": tenant.live_namespace,
                    "sandboxNamespace": tenant.sandbox_namespace,
                },
            },
        )
    except AlreadyExists:
        obj = await client.get(TENANTS, name)
    tenant = Tenant.from_object(obj)
    await ensure_namespace(client, tenant.live_namespace, {LABEL_TENANT: name, LABEL_MODE: Mode.LIVE.value})
    await ensure_namespace(
        client, tenant.sandbox_namespace, {LABEL_TENANT: name, LABEL_MODE: Mode.TEST.value}
    )
    return tenant


async def get_tenant(client: KubeClient, name: str) -> Tenant:
    """The tenant ``name``; raises :class:`~socialpub.kube.client.NotFound` if there is none."""
    return Tenant.from_object(await client.get(TENANTS, name))


async def list_tenants(client: KubeClient) -> list[Tenant]:
    """Every tenant, by name."""
    items, _ = await client.list(TENANTS)
    return sorted((Tenant.from_object(obj) for obj in items), key=lambda t: t.name)


async def delete_tenant(
    client: KubeClient, name: str, *, delete_namespaces: bool = False
) -> tuple[Tenant, list[ApiKeyRecord]]:
    """Delete the tenant ``name``: revoke its keys, delete its SocialTenant and, only if asked,
    its two namespaces with everything in them. Returns the tenant and the keys revoked.

    Keys are revoked first, so no request is served for a tenant being deleted. Even without
    that, a key stops working once its tenant is gone: records carry the tenant's uid, which a
    tenant created again under the same name does not share.

    The namespaces are kept by default (their accounts, posts and sealed tokens are data someone
    may want back); the operator still publishes posts already scheduled there, and a tenant
    created again under this name takes them over. ``delete_namespaces`` removes them for good.
    Raises :class:`~socialpub.kube.client.NotFound` if there is no such tenant.
    """
    tenant = await get_tenant(client, check_tenant_name(name))
    revoked = await revoke_tenant_keys(client, name)
    with contextlib.suppress(NotFound):  # deleted meanwhile: the outcome asked for
        await client.delete(TENANTS, name)
    if delete_namespaces:
        for namespace in (tenant.live_namespace, tenant.sandbox_namespace):
            with contextlib.suppress(NotFound):
                await client.delete(NAMESPACES, namespace)
    return tenant, revoked
