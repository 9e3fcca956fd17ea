"""Social accounts: SocialAccount objects in a tenant's namespaces.

A sandbox account needs no OAuth dance, so the CLI (and ``socialpub dev``) create them
directly: an id from the namespace's counter, a SocialAccount named ``account-<id>`` and a status
that says it is active. Setting that status is the operator's job for real accounts; for sandbox
accounts it is written here until the operator takes it over.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import KubeClient
from socialpub.kube.ids import allocate_id
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import ACCOUNTS, LABEL_ID, LABEL_MODE, LABEL_TENANT
from socialpub.kube.tenants import Tenant
from socialpub.models.keys import Mode
from socialpub.models.platforms import Platform

__all__ = [
    "account_id",
    "create_sandbox_account",
    "ensure_sandbox_account",
    "find_accounts",
    "mark_sandbox_active",
]


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def account_id(obj: dict[str, Any]) -> int | None:
    """The REST id of an account (its ``social.softsolz.uk/id`` label), or ``None`` if it has none yet."""
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_ID)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def mark_sandbox_active(client: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    """Write the status of a ready sandbox account (``state: active``, condition ``Ready`` True)."""
    status = {
        "state": "active",
        "message": "Sandbox account: publishing is simulated.",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": _now(),
                "reason": "SandboxAccount",
                "message": "Sandbox accounts are always ready to publish (in simulation).",
            }
        ],
    }
    return await client.patch(ACCOUNTS, name, {"status": status}, namespace, subresource="status")


async def create_sandbox_account(
    client: KubeClient, *, tenant: Tenant, platform: Platform, display_name: str
) -> dict[str, Any]:
    """Create an active sandbox account in ``tenant``'s sandbox namespace; returns the object."""
    namespace = tenant.sandbox_namespace
    # A tenant applied with kubectl gets its namespaces from the operator; do not depend on it.
    await ensure_namespace(client, namespace, {LABEL_TENANT: tenant.name, LABEL_MODE: Mode.TEST.value})
    id_ = await allocate_id(client, namespace, "accounts")
    name = f"account-{id_}"
    await client.create(
        ACCOUNTS,
        {
            "apiVersion": ACCOUNTS.api_version,
            "kind": ACCOUNTS.kind,
            "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_ID: str(id_)}},
            "spec": {
                "platform": platform.value,
                "displayName": display_name,
                "externalId": f"sandbox-{id_}",
                "sandbox": True,
            },
        },
        namespace,
    )
    return await mark_sandbox_active(client, namespace, name)


async def find_accounts(client: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """The accounts in ``namespace`` that have an id, by id."""
    items, _ = await client.list(ACCOUNTS, namespace, label_selector=LABEL_ID)
    return sorted((obj for obj in items if account_id(obj) is not None), key=lambda obj: account_id(obj) or 0)


async def ensure_sandbox_account(
    client: KubeClient, *, tenant: Tenant, platform: Platform, display_name: str
) -> tuple[dict[str, Any], bool]:
    """The sandbox account of ``platform`` named ``display_name``, created if there is none.

    Returns ``(account, created)``. An existing account left without a status (its creator
    stopped between the two writes) is marked active.
    """
    for obj in await find_accounts(client, tenant.sandbox_namespace):
        spec = obj.get("spec") or {}
        if spec.get("platform") == platform.value and spec.get("displayName") == display_name:
            if not (obj.get("status") or {}).get("state") and spec.get("sandbox"):
                obj = await mark_sandbox_active(client, tenant.sandbox_namespace, obj["metadata"]["name"])
            return obj, False
    return await create_sandbox_account(
        client, tenant=tenant, platform=platform, display_name=display_name
    ), True
