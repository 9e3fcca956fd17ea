"""One timer structure for every scheduled moment in the operator.

Posts due at ``scheduledFor`` and targets due for a retry are entries in a single heap served by
one asyncio task, instead of one sleeping task (or kopf timer) per object. Arming, re-arming
and cancelling are O(log n) (superseded entries are skipped lazily when they surface, and the
heap is compacted when they outnumber the live ones, so memory tracks the live entries), and the
task sleeps exactly until the earliest entry — so a post publishes at its time, not on the next
polling tick, with tens of thousands waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Hashable

__all__ = ["Timer"]

logger = logging.getLogger(__name__)

_MAX_SLEEP = 30.0
"""Re-check at least this often, so a wall-clock jump cannot delay a post for long."""
_MIN_SLEEP = 1e-4
"""Shortest sleep: asyncio runs a timer closer than its clock resolution at once, *without* the
clock reaching it, so sleeping for a sub-resolution remainder would spin; a post due in 30 µs
fires at most this much later instead."""
_COMPACT_MIN = 64
"""Below this many heap entries, stale ones are never worth a compaction."""


class Timer:
    """Calls ``fire(key)`` at (or just after) the clock time each key was armed for.

    ``clock`` is the wall clock by default (``scheduledFor`` is wall-clock time); tests inject the
    event loop's clock. ``fire`` must not block: the engine only submits the key to its work queue.
    """

    def __init__(self, fire: Callable[[Hashable], None], *, clock: Callable[[], float] = time.time) -> None:
        self._fire = fire
        self._clock = clock
        self._heap: list[tuple[float, int, Hashable]] = []
        self._due: dict[Hashable, float] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def arm(self, key: Hashable, when: float) -> None:
        """Fire ``key`` at ``when`` (replacing any earlier arming of the same key)."""
        if self._due.get(key) == when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        if self._heap[0][2] == key:
            self._wake.set()  # the earliest entry changed: the sleeper must re-compute its timeout
        self._maybe_compact()

    def cancel(self, key: Hashable) -> None:
        if self._due.pop(key, None) is not None:
            self._maybe_compact()

    def due_at(self, key: Hashable) -> float | None:
        return self._due.get(key)

    def __len__(self) -> int:
        """Live (armed, not yet fired) entries."""
        return len(self._due)

    @property
    def heap_size(self) -> int:
        """Entries held, including superseded ones not yet dropped (bounded by ~4x the live ones)."""
        return len(self._heap)

    def _maybe_compact(self) -> None:
        if len(self._heap) > _COMPACT_MIN and len(self._heap) > 4 * len(self._due):
            self._heap = [(w, s, k) for (w, s, k) in self._heap if self._due.get(k) == w]
            heapq.heapify(self._heap)

    def _pop_due(self, now: float) -> list[Hashable]:
        fired = []
        while self._heap and self._heap[0][0] <= now:
            when, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == when:
                del self._due[key]
                fired.append(key)
        return fired

    async def run(self) -> None:
        """Serve the heap forever (cancel the task to stop)."""
        while True:
            for key in self._pop_due(self._clock()):
                try:
                    self._fire(key)
                except Exception:  # one bad callback must not stop every other schedule
                    logger.exception("timer callback for %r failed", key)
            self._wake.clear()
            # Drop superseded entries at the top, so the sleep is computed from a live one.
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)
            timeout = _MAX_SLEEP
            if self._heap:
                timeout = max(_MIN_SLEEP, min(_MAX_SLEEP, self._heap[0][0] - self._clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
