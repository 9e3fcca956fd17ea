"""What the api holds while it runs: one Kubernetes client, the watch-fed caches, their indexes.

Reads are served from the caches (the informer pattern), so a GET costs no Kubernetes round
trip and any number of replicas share the one source of truth. Writes go to the Kubernetes API
and are put into the local caches at once (``observe``), so a client reads its own writes from
the replica that served them; other replicas see them within a watch round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from socialpub.api.idempotency import IdempotencyStore
from socialpub.api.services.ids import IdAllocator
from socialpub.api.services.indexes import IdIndex, KeyIndex, PostIndex, TenantIndex
from socialpub.api.settings import ApiSettings
from socialpub.kube.cache import ObjectCache
from socialpub.kube.client import KubeClient, KubeError
from socialpub.kube.keys import API_KEY_SELECTOR
from socialpub.kube.resources import (
    ACCOUNTS,
    NAMESPACES,
    POSTS,
    SECRETS,
    TARGETS,
    TENANTS,
)
from socialpub.kube.tenants import LABEL_TENANT_UID

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: ApiSettings
    client: KubeClient
    keys: ObjectCache
    tenants: ObjectCache
    namespaces: ObjectCache
    """Namespaces carrying a tenant-uid stamp (whose tenant a namespace was made for)."""
    accounts: ObjectCache
    posts: ObjectCache
    targets: ObjectCache
    idempotency: IdempotencyStore
    ids: IdAllocator
    key_index: KeyIndex
    account_index: IdIndex = field(default_factory=IdIndex)
    post_index: PostIndex = field(default_factory=PostIndex)
    tenant_index: TenantIndex = field(default_factory=TenantIndex)
    _sweeper: asyncio.Task[None] | None = None

    @classmethod
    def connect(cls, settings: ApiSettings) -> Runtime:
        """Build the client and caches (nothing is contacted until :meth:`start`)."""
        client = KubeClient.from_config(settings.kubeconfig)
        runtime = cls(
            settings=settings,
            client=client,
            keys=ObjectCache(
                client, SECRETS, label_selector=API_KEY_SELECTOR, namespace=settings.keys_namespace
            ),
            tenants=ObjectCache(client, TENANTS),
            namespaces=ObjectCache(client, NAMESPACES, label_selector=LABEL_TENANT_UID),
            accounts=ObjectCache(client, ACCOUNTS),
            posts=ObjectCache(client, POSTS),
            targets=ObjectCache(client, TARGETS),
            idempotency=IdempotencyStore(
                client,
                ttl_seconds=settings.idempotency_ttl_seconds,
                lease_seconds=settings.idempotency_lease_seconds,
            ),
            ids=IdAllocator(client),
            key_index=KeyIndex(settings.keys_namespace),
        )
        runtime.keys.on_change(runtime.key_index.apply)
        runtime.tenants.on_change(runtime.tenant_index.apply)
        runtime.accounts.on_change(runtime.account_index.apply)
        runtime.posts.on_change(runtime.post_index.apply)
        return runtime

    @property
    def caches(self) -> dict[str, ObjectCache]:
        return {
            "api_keys": self.keys,
            "tenants": self.tenants,
            "namespaces": self.namespaces,
            "accounts": self.accounts,
            "posts": self.posts,
            "targets": self.targets,
        }

    @property
    def synced(self) -> bool:
        return all(cache.synced.is_set() for cache in self.caches.values())

    async def start(self) -> None:
        """Start every cache and wait (bounded) for their first list, so traffic meets warm caches."""
        for cache in self.caches.values():
            await cache.start()
        waits = [cache.synced.wait() for cache in self.caches.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self.settings.startup_sync_seconds)
        except TimeoutError:
            logger.warning(
                "caches not synced after %ss; serving, /readyz says 503", self.settings.startup_sync_seconds
            )
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="idempotency-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for cache in self.caches.values():
            await cache.stop()
        await self.client.aclose()

    async def kube_answers(self, timeout: float = 2.0) -> bool:
        """Whether the Kubernetes API answers at all (any HTTP answer below 500 counts)."""
        try:
            await asyncio.wait_for(self.client.get(NAMESPACES, self.settings.keys_namespace), timeout)
        except KubeError as exc:
            return exc.status < 500
        except Exception:
            return False
        return True

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.idempotency_sweep_seconds)
            try:
                removed = await self.idempotency.sweep()
                if removed:
                    logger.info("idempotency.sweep removed=%d", removed)
            except Exception as exc:
                logger.warning("idempotency.sweep failed: %s", exc)
