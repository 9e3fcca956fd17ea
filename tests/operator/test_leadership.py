"""The operator's Lease: the pure rules on a given clock, then two keepers on the embedded API
with injected clocks (who holds it, who waits, when a takeover is allowed, that the holder stops
before anyone may take over)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from socialpub.kube.client import KubeClient
from socialpub.operator.leadership import LEASES, LeaseKeeper, Observation, expired, holder_deadline, observe
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess


def lease(holder: str, renew: str = "2026-12-02T15:00:00.000000Z", rv: str = "7", duration: int = 15) -> dict:
    return {
        "metadata": {"resourceVersion": rv},
        "spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": duration},
    }


# The rules.


def test_a_lease_is_expired_only_a_whole_duration_after_it_was_last_seen_to_change() -> None:
    seen = observe(None, lease("a"), now=100.0)
    assert seen == Observation("a", "2026-12-02T15:00:00.000000Z", "7", 15.0, 100.0)
    assert not expired(seen, 100.0)
    assert not expired(observe(seen, lease("a"), now=110.0), 114.999)  # unchanged: seen_at stays 100
    assert expired(observe(seen, lease("a"), now=115.0), 115.0)


def test_a_renewal_pushes_the_expiry_out() -> None:
    seen = observe(None, lease("a"), now=100.0)
    renewed = observe(seen, lease("a", renew="2026-12-02T15:00:05.000000Z", rv="8"), now=112.0)
    assert renewed.seen_at == 112.0
    assert not expired(renewed, 126.0)
    assert expired(renewed, 127.0)


def test_a_released_lease_may_be_taken_at_once() -> None:
    assert expired(observe(None, lease(""), now=100.0), 100.0)


def test_the_holder_stops_before_any_candidate_may_take_over() -> None:
    # The holder sent its last renewal at 100 (by its clock); a candidate saw it land at 100 or
    # later, so it may take over at 115 at the earliest: the holder has stopped at 112.
    assert holder_deadline(100.0, duration=15, margin=3) == 112.0
    candidate = observe(None, lease("a"), now=100.0)
    assert not expired(candidate, holder_deadline(100.0, duration=15, margin=3))


# Two keepers on a real API server, on injected clocks.


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(kube: KubeHarness) -> Iterator[KubeClient]:
    client = KubeClient.from_config(str(kube.kubeconfig))
    yield client
    kube.call(client.aclose())


def keeper(client: KubeClient, identity: str, clock: Clock) -> LeaseKeeper:
    return LeaseKeeper(
        client, identity=identity, name="socialpub-operator", namespace="socialpub-system", duration=15,
        monotonic=clock, wall=lambda: 1_780_000_000.0 + clock.now,
    )  # fmt: skip


def test_one_holder_and_a_waiting_candidate_that_takes_over_only_after_expiry(
    kube: KubeHarness, client: KubeClient
) -> None:
    clock_a, clock_b = Clock(), Clock()
    a, b = keeper(client, "op-a", clock_a), keeper(client, "op-b", clock_b)

    held, _ = kube.call(a.try_acquire(None))
    assert held  # created the Lease (and its namespace)
    stored = kube.call(client.get(LEASES, "socialpub-operator", "socialpub-system"))
    assert stored["spec"]["holderIdentity"] == "op-a"
    assert stored["spec"]["leaseDurationSeconds"] == 15
    assert a.deadline == 1000.0 + 15 - 3

    held, seen = kube.call(b.try_acquire(None))
    assert not held
    assert seen is not None
    assert seen.holder == "op-a"
    clock_b.now += 14.9
    held, seen = kube.call(b.try_acquire(seen))
    assert not held

    # The holder renews (at its 10 s): the candidate's wait starts over from when it sees that.
    clock_a.now += 10
    assert kube.call(a.renew())
    assert a.deadline == 1010.0 + 12
    held, seen = kube.call(b.try_acquire(seen))
    assert not held
    assert seen is not None
    assert seen.seen_at == clock_b.now
    clock_b.now += 14.5
    assert not kube.call(b.try_acquire(seen))[0]

    # The holder goes silent; a full duration after the candidate last saw a change, it takes over.
    clock_b.now += 0.5
    held, _ = kube.call(b.try_acquire(seen))
    assert held
    stored = kube.call(client.get(LEASES, "socialpub-operator", "socialpub-system"))
    assert stored["spec"]["holderIdentity"] == "op-b"
    assert stored["spec"]["leaseTransitions"] == 1
    # The old holder learns it lost on its next renewal and must stop.
    assert not kube.call(a.renew())


def test_of_two_candidates_for_an_expired_lease_exactly_one_wins(
    kube: KubeHarness, client: KubeClient
) -> None:
    clock = Clock()
    assert kube.call(keeper(client, "op-dead", clock).try_acquire(None))[0]
    b, c = keeper(client, "op-b", clock), keeper(client, "op-c", clock)
    _, seen_b = kube.call(b.try_acquire(None))
    _, seen_c = kube.call(c.try_acquire(None))
    clock.now += 15
    results = [kube.call(b.try_acquire(seen_b))[0], kube.call(c.try_acquire(seen_c))[0]]
    assert results.count(True) == 1
    stored = kube.call(client.get(LEASES, "socialpub-operator", "socialpub-system"))
    assert stored["spec"]["holderIdentity"] == ("op-b" if results[0] else "op-c")


def test_a_released_lease_is_taken_without_waiting(kube: KubeHarness, client: KubeClient) -> None:
    clock = Clock()
    a = keeper(client, "op-a", clock)
    assert kube.call(a.try_acquire(None))[0]
    b = keeper(client, "op-b", clock)
    assert not kube.call(b.try_acquire(None))[0]
    kube.call(a.release())
    assert kube.call(b.try_acquire(None))[0]


# The real operator process.


def test_an_operator_that_cannot_renew_stops_before_its_lease_expires_and_exits_non_zero(
    kube: KubeHarness, client: KubeClient, tmp_path: Path
) -> None:
    operator = OperatorProcess(kube.kubeconfig, tmp_path / "operator.log").start()
    try:
        duration = float(operator.env["SOCIALPUB_OPERATOR_LEASE_SECONDS"])
        assert kube.server is not None
        port = kube.server.port
        kube.stop()  # the API server is gone: no renewal can succeed
        stopped = time.time()
        assert operator.proc is not None
        code = operator.proc.wait(timeout=3 * duration)
        exited = time.time()
        kube.settings.port = port
        kube.start(apply_crds=False)  # the same state: the Lease as last renewed
        last = kube.call(client.get(LEASES, "socialpub-operator", "socialpub-system"))
        renewed = datetime.fromisoformat(last["spec"]["renewTime"].replace("Z", "+00:00")).timestamp()

        assert code != 0
        assert "stopping all work" in operator.log()
        assert "lost the Lease" in operator.log()
        # Stopped before anyone could take over (a candidate waits a whole duration after it last
        # saw a renewal, which was written at `renewed` at the latest).
        assert exited < renewed + duration
        assert stopped <= exited
    finally:
        operator.stop()
