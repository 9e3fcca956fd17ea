"""Live accounts in the operator: the engine's ``live_adapter`` and what a lost token does.

:class:`LiveAdapters` gives the engine, per SocialAccount, an adapter that reads the account's
Secret and decrypts its token *at call time* (so a reconnected account's new token is used at
once, and the plaintext lives only for the duration of one call; it is never logged), then hands
the request to the platform's adapter.

The key ring comes from ``SOCIALPUB_ENCRYPTION_KEY`` or the ``socialpub-encryption`` Secret; the
Secret is read again when a ciphertext names a key the ring does not have yet (after a rotation).
A token sealed for another tenant or account, or tampered with, does not decrypt: the account
must be reconnected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from socialpub.crypto import DecryptionError, KeyRing, associated_data
from socialpub.kube.client import KubeClient, NotFound
from socialpub.kube.credentials import read_keyring, read_token
from socialpub.kube.resources import LABEL_TENANT, NAMESPACES
from socialpub.operator import decisions
from socialpub.platforms.base import (
    Adapter,
    Published,
    PublishRequest,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.registry import PlatformAdapters

__all__ = ["KeyRingSource", "LiveAdapters", "unusable_account_status", "waiting_status"]

logger = logging.getLogger(__name__)

_KEY_RETRY_SECONDS = 60.0


class KeyRingSource:
    """The encryption key ring: from the environment, or the Secret (re-read after a rotation)."""

    def __init__(self, client: KubeClient, *, env_ring: KeyRing | None = None) -> None:
        self._client = client
        self._env = env_ring
        self._ring: KeyRing | None = env_ring
        self._lock = asyncio.Lock()

    @classmethod
    def from_env(cls, client: KubeClient) -> KeyRingSource:
        return cls(client, env_ring=KeyRing.from_env())

    async def get(self, *, refresh: bool = False) -> KeyRing | None:
        if self._env is not None:
            return self._env
        async with self._lock:
            if self._ring is None or refresh:
                text, _ = await read_keyring(self._client)
                self._ring = KeyRing.from_json(text) if text else None
            return self._ring


class LiveAdapters:
    """``live_adapter`` for the engine: account → adapter that decrypts the token per call."""

    def __init__(self, client: KubeClient, platforms: PlatformAdapters, keys: KeyRingSource) -> None:
        self._client = client
        self.platforms = platforms
        self._keys = keys
        self._tenants: dict[str, str] = {}

    @classmethod
    def from_env(cls, client: KubeClient) -> LiveAdapters:
        return cls(client, PlatformAdapters(), KeyRingSource.from_env(client))

    async def aclose(self) -> None:
        await self.platforms.aclose()

    def __call__(self, account: dict[str, Any]) -> Adapter:
        platform = str((account.get("spec") or {}).get("platform") or "")
        return _AccountAdapter(self, account, self.platforms.for_platform(platform))

    async def _tenant_of(self, namespace: str) -> str:
        tenant = self._tenants.get(namespace)
        if tenant is None:
            ns = await self._client.get(NAMESPACES, namespace)
            tenant = ((ns.get("metadata") or {}).get("labels") or {}).get(LABEL_TENANT)
            if not tenant:
                raise ReconnectError(
                    f"namespace {namespace} names no tenant (label {LABEL_TENANT})",
                    code="credentials_unreadable",
                )
            self._tenants[namespace] = tenant
        return tenant

    async def token(self, account: dict[str, Any]) -> str:
        """The account's decrypted token, or :class:`ReconnectError` / :class:`TransientError`."""
        meta = account["metadata"]
        try:
            sealed = await read_token(self._client, account)
        except NotFound as exc:
            raise ReconnectError(
                f"the account's credentials are missing: {exc.message}", code="credentials_missing"
            ) from None
        aad = associated_data(await self._tenant_of(meta["namespace"]), meta["name"])
        ring = await self._keys.get()
        if ring is not None and ring.needs_rotation(sealed) and _kid(sealed) not in ring.keys:
            ring = await self._keys.get(refresh=True)
        if ring is None:
            raise TransientError(
                "no encryption key ring: set SOCIALPUB_ENCRYPTION_KEY or create the "
                "socialpub-encryption Secret (socialpub encryption init)",
                code="encryption_key_missing",
                retry_after=_KEY_RETRY_SECONDS,
            )
        if _kid(sealed) not in ring.keys:
            raise TransientError(
                f"the token is sealed with key {_kid(sealed)!r}, which the key ring does not hold",
                code="encryption_key_unknown",
                retry_after=_KEY_RETRY_SECONDS,
            )
        try:
            return ring.decrypt(sealed, aad).decode()
        except (DecryptionError, UnicodeDecodeError):
            raise ReconnectError(
                "the stored token does not decrypt for this account; connect it again",
                code="credentials_unreadable",
            ) from None


def _kid(sealed: str) -> str:
    parts = sealed.split(":", 2)
    return parts[1] if len(parts) == 3 else ""


class _AccountAdapter:
    """One account's view of a platform adapter: its token added to every request."""

    def __init__(self, owner: LiveAdapters, account: dict[str, Any], adapter: Adapter) -> None:
        self._owner = owner
        self._account = account
        self._adapter = adapter

    async def _with_token(self, request: PublishRequest) -> PublishRequest:
        return dataclasses.replace(request, access_token=await self._owner.token(self._account))

    async def publish(self, request: PublishRequest) -> Published:
        return await self._adapter.publish(await self._with_token(request))

    async def find_published(self, request: PublishRequest) -> Published | None:
        return await self._adapter.find_published(await self._with_token(request))


# What a lost authorization does to the account and its targets (pure; the engine writes them).


def unusable_account_status(account: dict[str, Any], error: ReconnectError, *, now: float) -> dict[str, Any]:
    """The account's status once the platform refused its token: expired or revoked, not Ready,
    and the ``social.account_disconnected`` lifecycle event."""
    state = "revoked" if error.revoked else "expired"
    meta = account["metadata"]
    status = account.get("status") or {}
    moment = decisions.format_time(now)
    message = f"{error.message} — reconnect the account; its posts wait for it."
    conditions = decisions.set_condition(
        status.get("conditions") or [],
        type="Ready",
        status="False",
        reason="TokenRevoked" if error.revoked else "TokenExpired",
        message=message,
        generation=int(meta.get("generation") or 1),
        now=moment,
    )
    event = {
        "id": decisions.event_id(meta["uid"], "social.account_disconnected", moment),
        "type": "social.account_disconnected",
        "occurredAt": moment,
    }
    return {
        "state": state,
        "message": message,
        "conditions": conditions,
        "lifecycleEvents": decisions.with_event(status.get("lifecycleEvents") or [], event),
    }


def waiting_status(attempts: int, *, state: str, code: str, message: str) -> dict[str, Any]:
    """A target that waits for its account to be reconnected: no attempt counted, no timer."""
    return {
        "state": "failed",
        "attempts": attempts,
        "nextAttemptAt": None,
        "lastError": {
            "code": code,
            "message": f"{message} (waiting for the {state} account to be reconnected)"[:2000],
            "class": "reconnect",
        },
    }
