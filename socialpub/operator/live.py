"""Live accounts in the operator: the engine's ``live_adapter`` and what a lost token does.

:class:`LiveAdapters` gives the engine, per SocialAccount, an adapter that reads the account's
Secret and decrypts its token *at call time* (so a reconnected account's new token is used at
once, and the plaintext lives only for the duration of one call; it is never logged), then hands
the request to the platform's adapter.

The key ring (:class:`KeyRingSource`) follows its source, so a key removed from it stops
decrypting promptly, without a restart: a mounted file (``SOCIALPUB_ENCRYPTION_KEYRING_FILE``)
is checked for a change at every use; the ``socialpub-encryption`` Secret (the development
default) is read again when the copy is older than ``SOCIALPUB_ENCRYPTION_KEYRING_MAX_AGE_SECONDS``
(10 s) or names no key a ciphertext needs; ``SOCIALPUB_ENCRYPTION_KEY`` is fixed for the process.

A token is bound to its account's namespace, uid and mode: one copied from another account, or
sealed under the old (``v1``) binding, does not decrypt here and the account must be re-sealed
(``socialpub encryption rotate``) or reconnected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from socialpub.crypto import (
    DecryptionError,
    KeyRing,
    KeyRingError,
    KeyRingFile,
    associated_data,
    is_legacy,
    key_id,
    keyring_source,
)
from socialpub.kube.client import KubeClient, KubeError, NotFound
from socialpub.kube.credentials import LEGACY_TOKEN_REASON, read_keyring, read_token
from socialpub.models.keys import Mode
from socialpub.operator import decisions
from socialpub.platforms.base import (
    Adapter,
    Published,
    PublishRequest,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.registry import PlatformAdapters

__all__ = [
    "KeyRingSource",
    "LiveAdapters",
    "unusable_account_status",
    "waiting_status",
]

logger = logging.getLogger(__name__)

_KEY_RETRY_SECONDS = 60.0


class KeyRingSource:
    """The encryption key ring as its source holds it now: a file, the environment, or the Secret."""

    def __init__(
        self,
        client: KubeClient,
        *,
        env_ring: KeyRing | None = None,
        file: KeyRingFile | None = None,
        max_age: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._env = env_ring
        self._file = file
        self._max_age = max_age
        self._clock = clock
        self._ring: KeyRing | None = None
        self._version: str | None = None
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_env(cls, client: KubeClient, *, clock: Callable[[], float] = time.monotonic) -> KeyRingSource:
        spec = keyring_source()
        max_age = float(os.environ.get("SOCIALPUB_ENCRYPTION_KEYRING_MAX_AGE_SECONDS", 10))
        if spec.kind == "file":
            assert spec.path is not None
            return cls(client, file=KeyRingFile(spec.path), max_age=max_age, clock=clock)
        return cls(client, env_ring=spec.ring, max_age=max_age, clock=clock)

    @property
    def where(self) -> str:
        if self._file is not None:
            return f"the key ring file {self._file.path}"
        if self._env is not None:
            return "SOCIALPUB_ENCRYPTION_KEY"
        return "the socialpub-encryption Secret"

    async def get(self, *, refresh: bool = False) -> KeyRing | None:
        """The current key ring (``None`` if the Secret does not exist).

        :class:`KeyRingError` if the file or the Secret holds no valid key ring.
        """
        if self._file is not None:
            return self._file.get()
        if self._env is not None:
            return self._env
        async with self._lock:
            now = self._clock()
            stale = self._loaded_at is None or now - self._loaded_at >= self._max_age
            if refresh or stale:
                text, version = await read_keyring(self._client)
                if text is None:
                    self._ring = None
                elif version != self._version or self._ring is None:
                    self._ring = KeyRing.parse(text, where="the socialpub-encryption Secret")
                self._version = version
                self._loaded_at = now
            return self._ring


NamespaceModes = Callable[[str], Awaitable[Mode | None]]
"""``namespace -> mode`` as the tenants define it (:meth:`socialpub.operator.tenants.Tenancy.mode_of`)."""


class LiveAdapters:
    """``live_adapter`` for the engine: account → adapter that decrypts the token per call."""

    def __init__(
        self,
        client: KubeClient,
        platforms: PlatformAdapters,
        keys: KeyRingSource,
        *,
        mode_of: NamespaceModes,
    ) -> None:
        self._client = client
        self.platforms = platforms
        self._keys = keys
        self._mode_of = mode_of

    @classmethod
    def from_env(cls, client: KubeClient, *, mode_of: NamespaceModes) -> LiveAdapters:
        return cls(client, PlatformAdapters(), KeyRingSource.from_env(client), mode_of=mode_of)

    async def aclose(self) -> None:
        await self.platforms.aclose()

    def __call__(self, account: dict[str, Any]) -> Adapter:
        platform = str((account.get("spec") or {}).get("platform") or "")
        return _AccountAdapter(self, account, self.platforms.for_platform(platform))

    async def token(self, account: dict[str, Any]) -> str:
        """The account's decrypted token, or :class:`ReconnectError` / :class:`TransientError`."""
        try:
            return await self._token(account)
        except (KubeError, httpx.HTTPError) as exc:
            # Reading the tenants, the token's Secret or the key ring failed (the API server is
            # slow, down or refused): before any platform call, so nothing can have been sent.
            # Transient, and not ambiguous: the target's claim is recorded as a failed attempt at
            # once, not left publishing until leaseUntil.
            raise TransientError(
                f"reading the account's credentials failed: {type(exc).__name__}: {exc}",
                code="credentials_unavailable",
            ) from None

    async def _token(self, account: dict[str, Any]) -> str:
        meta = account["metadata"]
        mode = await self._mode_of(str(meta["namespace"]))
        if mode is not Mode.LIVE:  # the engine never asks for these; a second line of defence
            raise ReconnectError(
                f"namespace {meta['namespace']} is not a tenant's live namespace: no token is used there",
                code="credentials_unusable",
            )
        try:
            sealed = await read_token(self._client, account)
        except NotFound as exc:
            raise ReconnectError(
                f"the account's credentials are missing: {exc.message}", code="credentials_missing"
            ) from None
        if is_legacy(sealed):
            raise ReconnectError(
                "the token was sealed before tokens were bound to their account's namespace and uid; "
                "re-seal it with `socialpub encryption rotate`, or connect the account again",
                code="credentials_legacy",
            )
        aad = associated_data(namespace=str(meta["namespace"]), uid=str(meta["uid"]), mode=mode.value)
        try:
            ring = await self._keys.get()
            if ring is not None and key_id(sealed) not in ring.keys:
                ring = await self._keys.get(refresh=True)  # a key added since the last read
        except KeyRingError as exc:
            raise TransientError(
                str(exc), code="encryption_key_unreadable", retry_after=_KEY_RETRY_SECONDS
            ) from None
        if ring is None:
            raise TransientError(
                "no encryption key ring: set SOCIALPUB_ENCRYPTION_KEYRING_FILE or SOCIALPUB_ENCRYPTION_KEY, "
                "or create the socialpub-encryption Secret (socialpub encryption init)",
                code="encryption_key_missing",
                retry_after=_KEY_RETRY_SECONDS,
            )
        if key_id(sealed) not in ring.keys:
            raise TransientError(
                f"the token is sealed with key {key_id(sealed)!r}, which {self._keys.where} does not hold",
                code="encryption_key_unknown",
                retry_after=_KEY_RETRY_SECONDS,
            )
        try:
            return ring.decrypt(sealed, aad).decode()
        except (DecryptionError, UnicodeDecodeError):
            raise ReconnectError(
                "the stored token does not decrypt for this account (it was sealed for another "
                "account, namespace or mode, or altered); connect it again",
                code="credentials_unreadable",
            ) from None


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
    reason = "TokenRevoked" if error.revoked else "TokenExpired"
    if error.code == "credentials_legacy":
        reason = LEGACY_TOKEN_REASON
    conditions = decisions.set_condition(
        status.get("conditions") or [],
        type="Ready",
        status="False",
        reason=reason,
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
