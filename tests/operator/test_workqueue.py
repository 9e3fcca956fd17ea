"""The per-object work queue: one task per key, re-run on new work, retries after failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Hashable

import pytest

from socialpub.operator.workqueue import WorkQueue

pytestmark = pytest.mark.looptime


class Handler:
    """Records calls; each call takes ``duration`` (fake) seconds; fails while ``failures`` last."""

    def __init__(self, duration: float = 1.0) -> None:
        self.duration = duration
        self.calls: list[Hashable] = []
        self.running: Counter[Hashable] = Counter()
        self.max_running: Counter[Hashable] = Counter()
        self.concurrent = 0
        self.max_concurrent = 0
        self.failures: Counter[Hashable] = Counter()

    async def __call__(self, key: Hashable) -> None:
        self.calls.append(key)
        self.running[key] += 1
        self.concurrent += 1
        self.max_running[key] = max(self.max_running[key], self.running[key])
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            await asyncio.sleep(self.duration)
            if self.failures[key] > 0:
                self.failures[key] -= 1
                raise RuntimeError(f"{key} failed")
        finally:
            self.running[key] -= 1
            self.concurrent -= 1


async def test_one_task_per_key_and_bursts_collapse() -> None:
    handler = Handler()
    queue = WorkQueue(handler)
    for _ in range(10):
        queue.submit("a")
    queue.submit("b")
    assert queue.busy("a")
    assert len(queue) == 2
    await queue.idle()
    # The burst arrived before the worker started: it reads the latest state once.
    assert Counter(handler.calls) == {"a": 1, "b": 1}
    assert handler.max_running["a"] == 1
    assert not queue.busy("a")


async def test_a_submit_while_running_runs_again_after() -> None:
    handler = Handler(duration=5)
    queue = WorkQueue(handler)
    queue.submit("k")
    await asyncio.sleep(1)
    queue.submit("k")
    await asyncio.sleep(1)
    assert handler.calls == ["k"]  # not concurrently
    await queue.idle()
    assert handler.calls == ["k", "k"]
    assert handler.max_running["k"] == 1


async def test_a_submit_after_completion_runs_again() -> None:
    handler = Handler()
    queue = WorkQueue(handler)
    queue.submit("k")
    await queue.idle()
    queue.submit("k")
    await queue.idle()
    assert handler.calls == ["k", "k"]


async def test_keys_run_concurrently_up_to_the_limit() -> None:
    handler = Handler(duration=1)
    queue = WorkQueue(handler, concurrency=3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(9):
        queue.submit(i)
    await queue.idle()
    assert handler.max_concurrent == 3
    assert loop.time() - start == pytest.approx(3, abs=0.01)


async def test_a_failure_is_retried_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    handler = Handler(duration=0)
    handler.failures["k"] = 3
    queue = WorkQueue(handler, retry_delays=(1, 2, 4))
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.submit("k")
    queue.submit("other")
    await queue.idle()
    assert Counter(handler.calls) == {"k": 4, "other": 1}
    assert loop.time() - start == pytest.approx(1 + 2 + 4, abs=0.01)
    assert caplog.text.count("work on k failed") == 3


async def test_backoff_stays_at_its_last_delay() -> None:
    handler = Handler(duration=0)
    handler.failures["k"] = 5
    queue = WorkQueue(handler, retry_delays=(1, 2))
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.submit("k")
    await queue.idle()
    assert len(handler.calls) == 6
    assert loop.time() - start == pytest.approx(1 + 2 + 2 + 2 + 2, abs=0.01)


async def test_close_cancels_waiting_work_and_gives_running_work_grace() -> None:
    handler = Handler(duration=3)
    queue = WorkQueue(handler, concurrency=1)
    queue.submit("running")
    queue.submit("waiting")
    await asyncio.sleep(1)
    await queue.close(grace=5)
    assert handler.calls == ["running"]  # it finished; the waiting one never started
    assert len(queue) == 0
    queue.submit("late")
    await asyncio.sleep(10)
    assert handler.calls == ["running"]


async def test_close_cancels_running_work_after_the_grace() -> None:
    handler = Handler(duration=60)
    queue = WorkQueue(handler)
    queue.submit("slow")
    await asyncio.sleep(1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await queue.close(grace=2)
    assert loop.time() - start == pytest.approx(2, abs=0.01)
    assert handler.running["slow"] == 0
    assert len(queue) == 0


async def test_waiting_keys_run_lowest_priority_number_first_fifo_within() -> None:
    handler = Handler(duration=1)
    queue = WorkQueue(handler, concurrency=1, priority=lambda key: int(str(key)[0]))
    for key in ["2a", "1a", "2b", "0a", "1b", "0b"]:
        queue.submit(key)
    await queue.idle()
    # "2a" took the free slot at once; the rest waited and were served by priority.
    assert handler.calls == ["2a", "0a", "0b", "1a", "1b", "2b"]


async def test_cancelled_waiters_do_not_leak_slots() -> None:
    handler = Handler(duration=1)
    queue = WorkQueue(handler, concurrency=2)
    for i in range(6):
        queue.submit(i)
    await asyncio.sleep(0.5)
    waiting = [queue._tasks[i] for i in (2, 3, 4)]
    for task in waiting:
        task.cancel()
    await queue.idle()
    assert sorted(handler.calls) == [0, 1, 5]
    for i in range(10, 14):  # both slots are still there
        queue.submit(i)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await queue.idle()
    assert loop.time() - start == pytest.approx(2, abs=0.01)
    assert handler.max_concurrent == 2
