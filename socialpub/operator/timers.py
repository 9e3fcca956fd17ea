"""One timer structure for every scheduled moment in the operator.

Posts due at ``scheduledFor`` and targets due for a retry are entries in a single heap served by
one asyncio task, instead of one sleeping task (or kopf timer) per object. Arming, re-arming
and cancelling are O(log n) (cancelled entries are skipped lazily when they surface), memory is
a few dozen bytes per entry, and the task sleeps exactly until the earliest entry — so a post
publishes at its time, not on the next polling tick, with tens of thousands waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Hashable

__all__ = ["Timer"]

_MAX_SLEEP = 30.0
"""Re-check at least this often, so a wall-clock jump cannot delay a post for long."""


class Timer:
    """Calls ``fire(key)`` at (or just after) the wall-clock time each key was armed for."""

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
            self._wake.set()

    def cancel(self, key: Hashable) -> None:
        self._due.pop(key, None)

    def due_at(self, key: Hashable) -> float | None:
        return self._due.get(key)

    def __len__(self) -> int:
        return len(self._due)

    def _pop_due(self, now: float) -> list[Hashable]:
        fired = []
        while self._heap and self._heap[0][0] <= now:
            when, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == when:
                del self._due[key]
                fired.append(key)
        # Compact when cancelled entries dominate, so memory tracks live entries.
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._due):
            self._heap = [(w, s, k) for (w, s, k) in self._heap if self._due.get(k) == w]
            heapq.heapify(self._heap)
        return fired

    async def run(self) -> None:
        while True:
            for key in self._pop_due(self._clock()):
                self._fire(key)
            self._wake.clear()
            timeout = _MAX_SLEEP
            if self._heap:
                timeout = max(0.0, min(_MAX_SLEEP, self._heap[0][0] - self._clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
