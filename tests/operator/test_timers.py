"""The one Timer behind every schedule, on looptime's fake loop clock (no real sleeping)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Hashable

import pytest

from socialpub.operator.timers import Timer

pytestmark = pytest.mark.looptime


class Recorder:
    def __init__(self) -> None:
        self.fired: list[tuple[Hashable, float]] = []

    def __call__(self, key: Hashable) -> None:
        self.fired.append((key, asyncio.get_running_loop().time()))

    @property
    def keys(self) -> list[Hashable]:
        return [k for k, _ in self.fired]


@contextlib.asynccontextmanager
async def running(timer: Timer) -> AsyncIterator[Timer]:
    task = asyncio.create_task(timer.run())
    try:
        yield timer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make() -> tuple[Timer, Recorder]:
    recorder = Recorder()
    return Timer(recorder, clock=asyncio.get_running_loop().time), recorder


async def test_fires_each_key_at_its_time_in_due_order() -> None:
    timer, recorder = make()
    now = asyncio.get_running_loop().time()
    for key, delay in [("c", 30), ("a", 10), ("d", 45.5), ("b", 20)]:
        timer.arm(key, now + delay)
    async with running(timer):
        await asyncio.sleep(100)
    assert recorder.keys == ["a", "b", "c", "d"]
    for (_, at), delay in zip(recorder.fired, [10, 20, 30, 45.5], strict=True):
        assert at == pytest.approx(now + delay, abs=1e-3)
    assert len(timer) == 0


async def test_nothing_fires_early() -> None:
    timer, recorder = make()
    now = asyncio.get_running_loop().time()
    timer.arm("post", now + 60)
    async with running(timer):
        await asyncio.sleep(59.99)
        assert recorder.fired == []
        await asyncio.sleep(0.02)
        assert recorder.keys == ["post"]


async def test_rearming_moves_a_key_earlier_or_later_and_it_fires_once() -> None:
    timer, recorder = make()
    now = asyncio.get_running_loop().time()
    timer.arm("earlier", now + 100)
    timer.arm("later", now + 10)
    async with running(timer):
        await asyncio.sleep(1)
        timer.arm("earlier", now + 5)  # wakes the sleeping timer
        timer.arm("later", now + 50)
        await asyncio.sleep(200)
    assert recorder.keys == ["earlier", "later"]
    assert recorder.fired[0][1] == pytest.approx(now + 5, abs=1e-3)
    assert recorder.fired[1][1] == pytest.approx(now + 50, abs=1e-3)


async def test_rearming_back_to_an_old_time_still_fires_once() -> None:
    timer, recorder = make()
    now = asyncio.get_running_loop().time()
    timer.arm("k", now + 10)
    timer.arm("k", now + 20)
    timer.arm("k", now + 10)
    async with running(timer):
        await asyncio.sleep(60)
    assert recorder.keys == ["k"]


async def test_cancel_prevents_firing() -> None:
    timer, recorder = make()
    now = asyncio.get_running_loop().time()
    timer.arm("kept", now + 10)
    timer.arm("cancelled", now + 5)
    async with running(timer):
        await asyncio.sleep(1)
        timer.cancel("cancelled")
        timer.cancel("never-armed")
        await asyncio.sleep(60)
    assert recorder.keys == ["kept"]
    assert timer.due_at("cancelled") is None


async def test_a_time_in_the_past_fires_at_once() -> None:
    timer, recorder = make()
    now = asyncio.get_running_loop().time()
    async with running(timer):
        await asyncio.sleep(1)
        timer.arm("overdue", now - 3600)
        await asyncio.sleep(0.001)
    assert recorder.keys == ["overdue"]
    assert recorder.fired[0][1] == pytest.approx(now + 1, abs=1e-3)


async def test_an_arming_while_idle_wakes_the_timer_before_its_periodic_check() -> None:
    timer, recorder = make()
    async with running(timer):
        await asyncio.sleep(7)  # the timer sleeps (up to its periodic re-check) with nothing armed
        now = asyncio.get_running_loop().time()
        timer.arm("new", now + 2)
        await asyncio.sleep(3)
    assert recorder.fired[0][1] == pytest.approx(now + 2, abs=1e-3)


async def test_ten_thousand_entries_fire_in_order_each_at_its_time() -> None:
    timer, recorder = make()
    now = asyncio.get_running_loop().time()
    rng = random.Random(2026)
    # 10,000 entries over a day, on 2,000 distinct instants (each fake-time step costs looptime
    # some idle loop cycles: distinct instants, not entries, are what makes this test slow).
    instants = [now + rng.uniform(0, 86400) for _ in range(2000)]
    due = {i: rng.choice(instants) for i in range(10_000)}
    for i in rng.sample(range(10_000), 10_000):
        timer.arm(i, due[i])
    moved = rng.sample(range(10_000), 1000)  # a tenth is rescheduled, a hundred cancelled
    for i in moved[:900]:
        due[i] = rng.choice(instants)
        timer.arm(i, due[i])
    for i in moved[900:]:
        del due[i]
        timer.cancel(i)
    assert len(timer) == 9_900
    async with running(timer):
        await asyncio.sleep(86401)
    assert sorted(recorder.keys) == sorted(due)  # each exactly once
    fired_due = [due[k] for k in recorder.keys]
    assert fired_due == sorted(fired_due)
    assert all(at == pytest.approx(due[k], abs=1e-3) for k, at in recorder.fired)


async def test_same_instant_entries_all_fire() -> None:
    timer, recorder = make()
    when = asyncio.get_running_loop().time() + 5
    for i in range(1000):
        timer.arm(i, when)
    async with running(timer):
        await asyncio.sleep(6)
    assert sorted(recorder.keys) == list(range(1000))
    assert {round(at, 3) for _, at in recorder.fired} == {round(when, 3)}


async def test_memory_tracks_live_entries_under_constant_rescheduling() -> None:
    timer, _ = make()
    now = asyncio.get_running_loop().time()
    for i in range(10):
        timer.arm(i, now + 1000 + i)
    for n in range(100_000):  # one post rescheduled over and over, never fired
        timer.arm("busy", now + 500 + n % 997)
    assert len(timer) == 11
    assert timer.heap_size <= 4 * 11 + 64
    for n in range(50_000):
        timer.arm(("churn", n), now + 100)
        timer.cancel(("churn", n))
    assert len(timer) == 11
    assert timer.heap_size <= 4 * 11 + 64


async def test_a_failing_callback_does_not_stop_the_timer(caplog: pytest.LogCaptureFixture) -> None:
    fired: list[str] = []

    def fire(key: Hashable) -> None:
        if key == "bad":
            raise RuntimeError("boom")
        fired.append(str(key))

    timer = Timer(fire, clock=asyncio.get_running_loop().time)
    now = asyncio.get_running_loop().time()
    timer.arm("bad", now + 1)
    timer.arm("good", now + 2)
    async with running(timer):
        await asyncio.sleep(5)
    assert fired == ["good"]
    assert "timer callback for 'bad' failed" in caplog.text


async def test_a_remainder_below_the_clock_resolution_does_not_spin() -> None:
    # The loop's clock ticks in microseconds here: after sleeping to 1.0 the entry is still
    # 0.3 ns ahead. Sleeping 0.3 ns would return at once without the clock moving (a spin).
    timer, recorder = make()
    now = asyncio.get_running_loop().time()
    timer.arm("almost", now + 1 + 3e-10)
    async with running(timer):
        await asyncio.sleep(2)
    assert recorder.keys == ["almost"]
    assert recorder.fired[0][1] == pytest.approx(now + 1, abs=1e-3)
