"""Per-object work: at most one task per key at a time, re-run when more work arrived meanwhile.

Every change the operator sees only *submits* a key; the worker then reads the latest state and
does whatever is needed (level-triggered), so bursts of events collapse into one reconcile and
two workers never race on the same object. Failures are retried with a capped backoff.

At most ``concurrency`` keys are worked on at once; when more wait, the one with the lowest
``priority(key)`` goes first (then the longest waiting), so urgent work (a publish) overtakes
work that only gains from waiting (a summary that coalesces more updates the later it runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["WorkQueue"]

logger = logging.getLogger(__name__)


class _PriorityGate:
    """A semaphore whose waiters are served lowest priority number first, FIFO within one."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def acquire(self, priority: int) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():  # skip waiters that were cancelled
                future.set_result(None)
                return
        self._free += 1


class WorkQueue:
    """Runs ``handler(key)`` for submitted keys, at most ``concurrency`` at once, one per key."""

    def __init__(
        self,
        handler: Callable[[Hashable], Awaitable[None]],
        *,
        concurrency: int = 64,
        retry_delays: tuple[float, ...] = (0.2, 0.5, 1, 2, 5, 10, 30),
        priority: Callable[[Hashable], int] = lambda key: 0,
    ) -> None:
        self._handler = handler
        self._gate = _PriorityGate(concurrency)
        self._priority = priority
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._again: set[Hashable] = set()
        self._running: set[Hashable] = set()
        self._retry_delays = retry_delays
        self._closed = False

    def submit(self, key: Hashable) -> None:
        """Make sure ``handler(key)`` runs (again) soon; a no-op once the queue is closed."""
        if self._closed:
            return
        if key in self._tasks:
            self._again.add(key)
            return
        self._tasks[key] = asyncio.create_task(self._work(key), name=f"work:{key}")

    def busy(self, key: Hashable) -> bool:
        return key in self._tasks

    def __len__(self) -> int:
        """Keys with work queued or running."""
        return len(self._tasks)

    async def _work(self, key: Hashable) -> None:
        failures = 0
        try:
            while not self._closed:
                self._again.discard(key)
                try:
                    await self._gate.acquire(self._priority(key))
                    try:
                        if self._closed:
                            return
                        self._running.add(key)
                        await self._handler(key)
                    finally:
                        self._running.discard(key)
                        self._gate.release()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    delay = self._retry_delays[min(failures, len(self._retry_delays) - 1)]
                    failures += 1
                    logger.exception("work on %s failed; retrying in %ss", key, delay)
                    await asyncio.sleep(delay)
                    self._again.add(key)
                if key not in self._again:
                    return
        finally:
            self._tasks.pop(key, None)

    async def close(self, grace: float = 0.0) -> None:
        """Stop: no new work starts; work already running gets ``grace`` seconds, then is cancelled."""
        self._closed = True
        running = [self._tasks[k] for k in self._running if k in self._tasks]
        if running and grace > 0:
            await asyncio.wait(running, timeout=grace)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def halt(self) -> None:
        """Stop at once, without grace: no new work starts and everything under way is cancelled
        (when this operator lost its Lease, nothing may be written any more)."""
        self._closed = True
        for task in list(self._tasks.values()):
            task.cancel()

    async def idle(self) -> None:
        """Wait until no work is queued or running (for tests and clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
