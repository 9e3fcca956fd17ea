"""Post ids without a contention storm: concurrent creates in one namespace share one
compare-and-swap on the id counter.

:func:`~socialpub.kube.ids.allocate_id` is a compare-and-swap on one ConfigMap per namespace.
Sixteen creates arriving together would otherwise race for it, and all but one would retry,
again and again. Here the requests waiting for an id in a namespace are served together: one
CAS reserves as many consecutive ids as there are waiters. Other replicas (and the operator)
still go through the same counter, so ids stay unique across all of them.
"""

from __future__ import annotations

import asyncio

from socialpub.kube.client import KubeClient
from socialpub.kube.ids import allocate_id

__all__ = ["IdAllocator"]


class IdAllocator:
    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._waiting: dict[tuple[str, str], list[asyncio.Future[int]]] = {}
        self._drains: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def next(self, namespace: str, kind: str) -> int:
        """A fresh id of ``kind`` in ``namespace`` (a cancelled caller leaves a gap, never a duplicate)."""
        key = (namespace, kind)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if key not in self._drains:
            self._drains[key] = asyncio.create_task(self._drain(key), name=f"ids:{namespace}:{kind}")
        return await future

    async def _drain(self, key: tuple[str, str]) -> None:
        try:
            while waiters := self._waiting.pop(key, []):
                try:
                    first = await allocate_id(self._client, key[0], key[1], count=len(waiters))
                except Exception as exc:
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                for offset, waiter in enumerate(waiters):
                    if not waiter.done():
                        waiter.set_result(first + offset)
        finally:
            del self._drains[key]
