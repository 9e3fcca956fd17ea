"""Watch streams: replay from a resourceVersion, then live changes, filtered per watcher.

The store announces every durable change once; :class:`WatchHub` fans it out to the watchers of
that kind (and namespace) whose selectors care. A watcher whose selectors stop (or start)
matching an object sees it leave as ``DELETED`` (or arrive as ``ADDED``), as on a real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from socialpub.embedded.selectors import FieldSelector, LabelSelector
from socialpub.embedded.store import Change, Store, encode_event

__all__ = ["WatchHub", "Watcher"]


@dataclass(eq=False)
class Watcher:
    """One open watch: what it filters on and the queue of encoded event lines it still has to send."""

    storage_key: str
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    since: int
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)

    def offer(self, change: Change) -> None:
        """Queue ``change`` if this watcher should see it, translated for its selectors."""
        if change.rv <= self.since or change.storage_key != self.storage_key:
            return
        if self.namespace is not None and change.namespace != self.namespace:
            return
        line = self.translate(change)
        if line is not None:
            self.queue.put_nowait(line)

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        return self.labels.matches((obj.get("metadata") or {}).get("labels")) and self.fields.matches(obj)

    def translate(self, change: Change) -> bytes | None:
        now = self.matches(change.obj)
        if change.type == "DELETED":
            return change.event_line() if now else None
        before = self.matches(change.old) if change.old is not None else False
        if now and (before or change.type == "ADDED"):
            return change.event_line()
        if now:
            return encode_event("ADDED", change.obj)
        if before:
            return encode_event("DELETED", change.obj)
        return None


class WatchHub:
    """Routes durable changes from the :class:`Store` to the open watches."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._watchers: dict[str, set[Watcher]] = {}
        self._unsubscribe: Callable[[], None] = store.subscribe(self._dispatch)

    def open(self, watcher: Watcher, *, replay: bool) -> None:
        """Register ``watcher``; with ``replay``, queue the kept changes newer than its ``since`` first.

        Replay and registration happen in one step of the event loop, so no change falls between.
        """
        if replay:
            for change in self._store.history_since(watcher.since):
                watcher.offer(change)
        self._watchers.setdefault(watcher.storage_key, set()).add(watcher)

    def close(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.storage_key)
        if watchers is not None:
            watchers.discard(watcher)

    def count(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def stop(self) -> None:
        self._unsubscribe()

    def _dispatch(self, change: Change) -> None:
        for watcher in self._watchers.get(change.storage_key, ()):
            watcher.offer(change)
