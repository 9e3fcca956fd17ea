"""Social accounts: SocialAccount objects in a tenant's namespaces.

A sandbox account needs no OAuth dance, so the CLI (and ``socialpub dev``) create them
directly: an id from the namespace's counter, a SocialAccount named ``account-<id>`` and a status
that says it is active. Setting that status is the operator's job for real accounts; for sandbox
accounts it is written here until the operator takes it over. The write that makes an account
active also records ``social.account_connected`` in ``status.lifecycleEvents`` (whoever changes
an account's state records the event in the same write, so it is never lost; the operator
delivers it to the tenant's webhooks).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import KubeClient
from socialpub.kube.ids import allocate_id
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import ACCOUNTS, LABEL_ID, LABEL_MODE, LABEL_TENANT
from socialpub.kube.tenants import Tenant
from socialpub.models.events import EventType, event_id, with_event
from socialpub.models.keys import Mode
from socialpub.models.platforms import Platform

__all__ = [
    "account_id",
    "create_sandbox_account",
    "disconnect_account",
    "ensure_sandbox_account",
    "find_accounts",
    "mark_sandbox_active",
    "set_account_state",
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


def _micro_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def set_account_state(
    client: KubeClient, account: dict[str, Any], *, state: str, reason: str, message: str
) -> dict[str, Any]:
    """Write an account's ``state`` (with its ``Ready`` condition) and the event of the transition.

    ``account`` is the object as last read. Becoming ``active`` records
    ``social.account_connected``; leaving it records ``social.account_disconnected`` — in the same
    write, with an id derived from the account and the version it moves from (so each transition
    is one event, and repeating the write records nothing new).
    """
    meta = account["metadata"]
    current = account.get("status") or {}
    events = list(current.get("lifecycleEvents") or [])
    was_active = current.get("state") == "active"
    event_type = None
    if state == "active" and not was_active:
        event_type = EventType.ACCOUNT_CONNECTED
    elif state != "active" and was_active:
        event_type = EventType.ACCOUNT_DISCONNECTED
    if event_type is not None:
        events = with_event(
            events,
            {
                "id": event_id(str(meta.get("uid")), event_type, str(meta.get("resourceVersion"))),
                "type": event_type.value,
                "occurredAt": _micro_now(),
            },
        )
    ready = "True" if state == "active" else "False"
    old_ready: dict[str, Any] = next(
        (c for c in current.get("conditions") or [] if c.get("type") == "Ready"), {}
    )
    status = {
        "state": state,
        "lifecycleEvents": events,
        "message": message,
        "conditions": [
            {
                "type": "Ready",
                "status": ready,
                "lastTransitionTime": old_ready.get("lastTransitionTime")
                if old_ready.get("status") == ready
                else _now(),
                "reason": reason,
                "message": message,
            }
        ],
    }
    return await client.patch(
        ACCOUNTS, meta["name"], {"status": status}, meta["namespace"], subresource="status"
    )


async def mark_sandbox_active(client: KubeClient, account: dict[str, Any]) -> dict[str, Any]:
    """Make a sandbox account active (``state: active``, condition ``Ready`` True, connected event)."""
    return await set_account_state(
        client,
        account,
        state="active",
        reason="SandboxAccount",
        message="Sandbox account: publishing is simulated.",
    )


async def disconnect_account(client: KubeClient, account: dict[str, Any]) -> dict[str, Any]:
    """Mark an account ``disconnected`` (posts to it fail until it is connected again)."""
    return await set_account_state(
        client,
        account,
        state="disconnected",
        reason="Disconnected",
        message="The account was disconnected; connect it again to publish.",
    )


async def create_sandbox_account(
    client: KubeClient, *, tenant: Tenant, platform: Platform, display_name: str
) -> dict[str, Any]:
    """Create an active sandbox account in ``tenant``'s sandbox namespace; returns the object."""
    namespace = tenant.sandbox_namespace
    # A tenant applied with kubectl gets its namespaces from the operator; do not depend on it.
    await ensure_namespace(client, namespace, {LABEL_TENANT: tenant.name, LABEL_MODE: Mode.TEST.value})
    id_ = await allocate_id(client, namespace, "accounts")
    name = f"account-{id_}"
    created = await client.create(
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
    return await mark_sandbox_active(client, created)


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
                obj = await mark_sandbox_active(client, obj)
            return obj, False
    return await create_sandbox_account(
        client, tenant=tenant, platform=platform, display_name=display_name
    ), True
