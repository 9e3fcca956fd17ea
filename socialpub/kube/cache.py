"""A watch-fed, in-memory copy of one kind: what the api reads instead of the API server.

It lists, then watches from the list's resourceVersion, relisting when the server says the
version expired — the informer pattern. :meth:`ObjectCache.observe` lets a writer put the object
it just wrote into the cache, so the same process reads its own writes at once rather than a
few milliseconds later when the watch event arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from socialpub.kube.client import Expired, KubeClient, KubeError
from socialpub.kube.resources import Resource

__all__ = ["ObjectCache"]

logger = logging.getLogger(__name__)

Key = tuple[str, str]


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class ObjectCache:
    """All objects of one kind (optionally in one namespace, and filtered by a label selector),
    kept current by a watch. A namespaced cache asks only for that namespace, so a namespaced
    Role is all it needs."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        *,
        label_selector: str | None = None,
        namespace: str | None = None,
        watch_timeout: int = 300,
        retry_delay: float = 1.0,
    ) -> None:
        self._client = client
        self._resource = resource
        self._selector = label_selector
        self._namespace = namespace
        self._watch_timeout = watch_timeout
        self._retry_delay = retry_delay
        self._objects: dict[Key, dict[str, Any]] = {}
        self._deleted: dict[Key, int] = {}
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    # Lifecycle.

    async def start(self) -> None:
        """Start listing and watching; returns at once (await :attr:`synced` to wait for the first list)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"cache:{self._resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # Reads.

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get((namespace, name))

    def items(self, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        for (ns, _), obj in list(self._objects.items()):
            if namespace is None or ns == namespace:
                yield obj

    def __len__(self) -> int:
        return len(self._objects)

    def on_change(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``listener(type, obj)`` for every change the cache applies (ADDED/MODIFIED/DELETED)."""
        self._listeners.append(listener)

    # Writes made by this process.

    def observe(self, obj: dict[str, Any]) -> None:
        """Take ``obj`` (just returned by a write) unless the cache already holds something newer."""
        self._apply("MODIFIED", obj)

    def forget(self, obj: dict[str, Any]) -> None:
        """Drop ``obj`` (just deleted by this process)."""
        self._apply("DELETED", obj)

    # Internals.

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        key, rv = _key(obj), _rv(obj)
        current = self._objects.get(key)
        if current is not None and _rv(current) > rv:
            return
        if kind == "DELETED":
            if key in self._objects:
                del self._objects[key]
            self._deleted[key] = rv
        else:
            if self._deleted.get(key, -1) >= rv:
                return
            self._deleted.pop(key, None)
            self._objects[key] = obj
        for listener in list(self._listeners):
            listener(kind, obj)

    async def _relist(self) -> str:
        items, rv = await self._client.list(self._resource, self._namespace, label_selector=self._selector)
        fresh = {_key(o): o for o in items}
        for key, old in list(self._objects.items()):
            if key not in fresh:
                self._apply("DELETED", old)
        self._deleted.clear()
        for obj in items:
            self._apply("MODIFIED", obj)
        self.synced.set()
        return rv

    async def _run(self) -> None:
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    rv = await self._relist()
                async for kind, obj in self._client.watch(
                    self._resource,
                    self._namespace,
                    resource_version=rv,
                    label_selector=self._selector,
                    timeout_seconds=self._watch_timeout,
                ):
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self._apply(kind, obj)
            except Expired:
                rv = None
            except asyncio.CancelledError:
                raise
            except (KubeError, httpx.HTTPError, ValueError) as exc:
                logger.warning("cache of %s: %s; retrying", self._resource.plural, exc)
                await asyncio.sleep(self._retry_delay)
