"""Live accounts' credentials: Secrets holding encrypted tokens, and the encryption key ring.

Only ciphertext passes through here: sealing and opening are done by the callers with
:mod:`socialpub.crypto` (the CLI when an account is added, the operator at publish time), so a
token in plaintext never reaches the Kubernetes API.

* An account's token lives in the Secret ``<account>-credentials`` in the account's namespace,
  under ``data.token``, owned by the account (deleting the account deletes it), and named by
  the account's ``spec.credentialsSecretRef``.
* The key ring (JSON, see :meth:`socialpub.crypto.KeyRing.from_json`) comes from a mounted file
  (``SOCIALPUB_ENCRYPTION_KEYRING_FILE``, the production setup) or the environment
  (``SOCIALPUB_ENCRYPTION_KEY``); without either, from the Secret ``socialpub-encryption`` in
  ``socialpub-system`` under ``data.keyring`` — the development default, kept beside the
  ciphertexts it protects (see :mod:`socialpub.crypto`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import AlreadyExists, KubeClient, NotFound
from socialpub.kube.ids import allocate_id
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import (
    ACCOUNTS,
    LABEL_COMPONENT,
    LABEL_ID,
    LABEL_MODE,
    LABEL_TENANT,
    SECRETS,
    SYSTEM_NAMESPACE,
)
from socialpub.kube.tenants import Tenant
from socialpub.models.keys import Mode
from socialpub.models.platforms import Platform

__all__ = [
    "CREDENTIALS_COMPONENT",
    "KEYRING_KEY",
    "KEYRING_SECRET",
    "LEGACY_TOKEN_REASON",
    "TOKEN_KEY",
    "account_connected_status",
    "create_live_account",
    "credentials_ref",
    "live_accounts",
    "read_keyring",
    "read_token",
    "write_keyring",
    "write_token",
]

KEYRING_SECRET = "socialpub-encryption"
LEGACY_TOKEN_REASON = "TokenNeedsResealing"
"""The Ready reason the operator gives an account whose token is sealed under the old (v1)
binding; ``socialpub encryption rotate`` re-seals such tokens and makes those accounts active."""
KEYRING_KEY = "keyring"
TOKEN_KEY = "token"
CREDENTIALS_COMPONENT = "credentials"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _event_id(uid: str, event_type: str, discriminator: str) -> str:
    """The same stable id the operator gives lifecycle events (``decisions.event_id``)."""
    digest = hashlib.sha256(f"{uid}|{event_type}|{discriminator}".encode()).hexdigest()[:24]
    return f"evt_{digest}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(value: str) -> str:
    return base64.b64decode(value).decode()


# The key ring.


async def read_keyring(client: KubeClient) -> tuple[str | None, str | None]:
    """The key ring's JSON and the Secret's resourceVersion (``(None, None)`` if there is none)."""
    try:
        secret = await client.get(SECRETS, KEYRING_SECRET, SYSTEM_NAMESPACE)
    except NotFound:
        return None, None
    value = (secret.get("data") or {}).get(KEYRING_KEY)
    return (_unb64(value) if value else None), str(secret["metadata"].get("resourceVersion") or "")


async def write_keyring(client: KubeClient, text: str, *, resource_version: str | None) -> None:
    """Store the key ring; with ``resource_version`` only over that version (else create it)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": KEYRING_SECRET,
            "namespace": SYSTEM_NAMESPACE,
            "labels": {LABEL_COMPONENT: "encryption-keys"},
        },
        "data": {KEYRING_KEY: _b64(text)},
    }
    if resource_version:
        body["metadata"]["resourceVersion"] = resource_version
        await client.replace(SECRETS, body)
        return
    await ensure_namespace(client, SYSTEM_NAMESPACE)
    await client.create(SECRETS, body, SYSTEM_NAMESPACE)


# Account tokens.


def credentials_ref(account: dict[str, Any]) -> tuple[str, str] | None:
    """``(secret name, key)`` of a live account's token, or ``None`` (a sandbox account)."""
    ref = (account.get("spec") or {}).get("credentialsSecretRef") or {}
    name = ref.get("name")
    return (str(name), str(ref.get("key") or TOKEN_KEY)) if name else None


async def read_token(client: KubeClient, account: dict[str, Any]) -> str:
    """The account's sealed token; :class:`NotFound` if the Secret or the key is missing."""
    ref = credentials_ref(account)
    meta = account["metadata"]
    if ref is None:
        raise NotFound(404, "NotFound", f"account {meta['name']} has no credentialsSecretRef")
    secret = await client.get(SECRETS, ref[0], meta["namespace"])
    value = (secret.get("data") or {}).get(ref[1])
    if not value:
        raise NotFound(404, "NotFound", f"secret {ref[0]} has no key {ref[1]}")
    return _unb64(value)


async def write_token(client: KubeClient, account: dict[str, Any], sealed: str) -> None:
    """Store the account's sealed token (creating its Secret, owned by the account, if needed)."""
    meta = account["metadata"]
    name, key = credentials_ref(account) or (f"{meta['name']}-credentials", TOKEN_KEY)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {LABEL_COMPONENT: CREDENTIALS_COMPONENT, "social.softsolz.uk/account": meta["name"]},
            "ownerReferences": [
                {
                    "apiVersion": ACCOUNTS.api_version,
                    "kind": ACCOUNTS.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                }
            ],
        },
        "data": {key: _b64(sealed)},
    }
    try:
        await client.create(SECRETS, body, meta["namespace"])
    except AlreadyExists:
        await client.patch(SECRETS, name, {"data": {key: _b64(sealed)}}, meta["namespace"])


def account_connected_status(account: dict[str, Any], *, message: str) -> dict[str, Any]:
    """The status of an account whose token was just stored: active, Ready, ``account_connected``."""
    now = _now()
    status = account.get("status") or {}
    events = [dict(e) for e in status.get("lifecycleEvents") or []]
    event = {
        "id": _event_id(account["metadata"]["uid"], "social.account_connected", now),
        "type": "social.account_connected",
        "occurredAt": now,
    }
    return {
        "state": "active",
        "message": message,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "Connected",
                "message": message,
                "observedGeneration": int(account["metadata"].get("generation") or 1),
            }
        ],
        "lifecycleEvents": [*events, event][-20:],
    }


async def create_live_account(
    client: KubeClient,
    *,
    tenant: Tenant,
    platform: Platform,
    external_id: str,
    display_name: str,
    seal: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """Create an active live account in ``tenant``'s live namespace, its token sealed by ``seal``.

    ``seal(account)`` gets the account as created and returns the ciphertext (its namespace and
    uid are part of the associated data, so the account must exist first). The account is written
    first, then its Secret (owned by it), then its status.
    """
    namespace = tenant.live_namespace
    await ensure_namespace(client, namespace, {LABEL_TENANT: tenant.name, LABEL_MODE: Mode.LIVE.value})
    id_ = await allocate_id(client, namespace, "accounts")
    name = f"account-{id_}"
    account = await client.create(
        ACCOUNTS,
        {
            "apiVersion": ACCOUNTS.api_version,
            "kind": ACCOUNTS.kind,
            "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_ID: str(id_)}},
            "spec": {
                "platform": platform.value,
                "displayName": display_name,
                "externalId": external_id,
                "sandbox": False,
                "credentialsSecretRef": {"name": f"{name}-credentials", "key": TOKEN_KEY},
            },
        },
        namespace,
    )
    await write_token(client, account, seal(account))
    status = account_connected_status(account, message="Connected; the token is stored encrypted.")
    return await client.patch(ACCOUNTS, name, {"status": status}, namespace, subresource="status")


async def live_accounts(client: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """The accounts in ``namespace`` that have credentials."""
    items, _ = await client.list(ACCOUNTS, namespace)
    return [a for a in items if credentials_ref(a) is not None]
