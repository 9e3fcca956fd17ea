"""One operator at a time: a ``coordination.k8s.io/v1`` Lease that only its holder works under.

Two operators on one cluster (a RollingUpdate's overlap, a second ``socialpub operator``) would
each treat the other's ``publishing`` claims as interrupted and publish again. So the operator
works only while it holds the Lease (``socialpub-system/socialpub-operator`` by default):

- **Acquire**: create the Lease, or take over one whose holder released it (empty
  ``holderIdentity``) or has not renewed it for a whole ``leaseDurationSeconds``, with a write
  conditional on the ``resourceVersion`` read, so of two candidates exactly one wins. Expiry is
  judged as Kubernetes' leader election does, on the *local* clock from the moment this process
  last saw the Lease change, never by comparing ``renewTime`` with a clock of another machine.
- **Renew** every third of the duration (conditional writes again). A holder whose last
  successful renewal was sent more than ``duration - margin`` ago stops all work: it can no
  longer be sure it is the holder, and a waiting replica may take over at ``duration`` after it
  last saw a renewal, which is later than the holder's own send time. Stopping ``margin`` early
  covers writes already on their way.
- **Release** on a graceful stop (``holderIdentity`` cleared), so a successor starts at once.

The decisions are pure functions of what was observed and a monotonic clock
(:func:`observe`, :func:`expired`, :func:`holder_deadline`), tested without a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import AlreadyExists, Conflict, KubeClient, KubeError, NotFound
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import Resource

__all__ = [
    "LEASES",
    "LeaseKeeper",
    "LeaseLost",
    "Observation",
    "expired",
    "holder_deadline",
    "observe",
]

logger = logging.getLogger(__name__)

LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")


class LeaseLost(Exception):
    """This operator could not renew its Lease in time (or another took it): it stopped all work."""


@dataclass(frozen=True)
class Observation:
    """What a candidate last saw of the Lease, and when (its own monotonic clock)."""

    holder: str
    renew_time: str
    resource_version: str
    duration: float
    seen_at: float


def observe(previous: Observation | None, lease: dict[str, Any], now: float) -> Observation:
    """Record the Lease as seen at ``now``; ``seen_at`` moves only when the record changed, so a
    holder that keeps renewing keeps pushing its expiry out, and a dead one's stays put."""
    spec = lease.get("spec") or {}
    holder = str(spec.get("holderIdentity") or "")
    renew = str(spec.get("renewTime") or "")
    version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
    duration = float(spec.get("leaseDurationSeconds") or 0)
    if previous is not None and (previous.holder, previous.renew_time, previous.resource_version) == (
        holder,
        renew,
        version,
    ):
        return previous
    return Observation(holder, renew, version, duration, now)


def expired(observation: Observation, now: float) -> bool:
    """May a candidate take the Lease over: released, or unrenewed for a whole duration as seen here?"""
    if not observation.holder:
        return True
    return now >= observation.seen_at + observation.duration


def holder_deadline(renew_sent_at: float, *, duration: float, margin: float) -> float:
    """When a holder whose last successful renewal was *sent* at ``renew_sent_at`` must have
    stopped all work: before any candidate can consider the Lease expired."""
    return renew_sent_at + duration - margin


def _micro_time(moment: float) -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class LeaseKeeper:
    """Acquires, renews and releases the operator's Lease for one ``identity``.

    ``monotonic`` judges expiry and deadlines (it never jumps); ``wall`` only stamps
    ``acquireTime``/``renewTime`` for people to read. Both are injectable for tests.
    """

    def __init__(
        self,
        client: KubeClient,
        *,
        identity: str,
        name: str,
        namespace: str,
        duration: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.identity = identity
        self.name = name
        self.namespace = namespace
        self.duration = float(max(1, math.ceil(duration)))  # leaseDurationSeconds is an integer
        self.margin = self.duration / 5
        """Stop this long before a candidate could take over: writes already sent must land first."""
        self.renew_every = self.duration / 3
        self._monotonic = monotonic
        self._wall = wall
        self._lease: dict[str, Any] | None = None
        self._renewed_at: float | None = None
        """Monotonic time the last successful write of ours (acquire or renew) was sent."""

    @property
    def deadline(self) -> float | None:
        """Monotonic time by which this holder must have stopped all work (``None``: not held)."""
        if self._renewed_at is None:
            return None
        return holder_deadline(self._renewed_at, duration=self.duration, margin=self.margin)

    def holding(self) -> bool:
        """Is the Lease held now, before its deadline? The engine asks before every claim, every
        send and every write that ends a claim: work that would outlive the deadline is not begun."""
        deadline = self.deadline
        return deadline is not None and self._monotonic() < deadline

    def _spec(self, *, acquire: bool, transitions: int) -> dict[str, Any]:
        now = _micro_time(self._wall())
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        if acquire:
            spec["acquireTime"] = now
        return spec

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            return None

    async def try_acquire(self, observation: Observation | None) -> tuple[bool, Observation | None]:
        """One acquisition step: ``(True, _)`` once held; else what was seen, to wait on."""
        sent = self._monotonic()
        lease = await self._read()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(acquire=True, transitions=0),
            }
            try:
                try:
                    created = await self.client.create(LEASES, body, self.namespace)
                except NotFound:  # no such namespace yet (a fresh cluster)
                    await ensure_namespace(self.client, self.namespace)
                    created = await self.client.create(LEASES, body, self.namespace)
            except AlreadyExists:
                return False, observation  # another candidate was quicker: look again
            self._held(created, sent)
            return True, None
        now = self._monotonic()
        observation = observe(observation, lease, now)
        if observation.holder != self.identity and not expired(observation, now):
            return False, observation
        spec = lease.get("spec") or {}
        transitions = int(spec.get("leaseTransitions") or 0)
        if observation.holder != self.identity:
            transitions += 1
        body = {
            **lease,
            "spec": self._spec(acquire=observation.holder != self.identity, transitions=transitions),
        }
        try:
            taken = await self.client.replace(LEASES, body)  # conditional: carries the resourceVersion read
        except Conflict:
            return False, None  # changed meanwhile (a renewal, a rival): observe afresh
        self._held(taken, sent)
        if observation.holder and observation.holder != self.identity:
            logger.info("took over the Lease %s/%s from %s", self.namespace, self.name, observation.holder)
        return True, None

    def _held(self, lease: dict[str, Any], sent: float) -> None:
        self._lease = lease
        self._renewed_at = sent

    async def acquire(self, stop: asyncio.Event | None = None, *, poll: float | None = None) -> bool:
        """Wait until this process holds the Lease (``True``), or ``stop`` is set (``False``).

        A waiting replica does nothing else meanwhile: no watches, no publishing, no writes."""
        observation: Observation | None = None
        announced = ""
        poll = poll if poll is not None else max(0.2, self.duration / 10)
        while stop is None or not stop.is_set():
            try:
                held, observation = await self.try_acquire(observation)
            except Exception as exc:  # the API server unreachable, refusing, slow: keep waiting
                logger.warning("could not read or write the Lease %s/%s: %s", self.namespace, self.name, exc)
                held = False
            if held:
                logger.info("holding the Lease %s/%s as %s", self.namespace, self.name, self.identity)
                return True
            if observation is not None and observation.holder != announced:
                announced = observation.holder
                logger.info(
                    "waiting: the Lease %s/%s is held by %s (renewed %s); taking over if it is not "
                    "renewed for %ss",
                    self.namespace,
                    self.name,
                    observation.holder,
                    observation.renew_time,
                    int(observation.duration),
                )
            if stop is None:
                await asyncio.sleep(poll)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll)
        return False

    async def renew(self) -> bool:
        """One renewal (conditional on the version last written); ``False`` if another holds it now."""
        assert self._lease is not None
        sent = self._monotonic()
        spec = {
            **(self._lease.get("spec") or {}),
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.duration),
            "renewTime": _micro_time(self._wall()),
        }
        try:
            renewed = await self.client.replace(LEASES, {**self._lease, "spec": spec})
        except Conflict:
            fresh = await self._read()
            if fresh is None or (fresh.get("spec") or {}).get("holderIdentity") != self.identity:
                return False
            self._lease = fresh  # our own earlier write whose answer was lost: renew on it
            return await self.renew()
        self._held(renewed, sent)
        return True

    async def hold(self) -> None:
        """Renew until the Lease is lost; returns at the latest at :attr:`deadline` (the caller
        must then stop all work at once)."""
        while True:
            deadline = self.deadline
            assert deadline is not None
            now = self._monotonic()
            if now >= deadline:
                logger.error(
                    "the Lease %s/%s was not renewed in time: stopping all work", self.namespace, self.name
                )
                return
            due = min(deadline, (self._renewed_at or now) + self.renew_every)
            if now < due:
                await asyncio.sleep(due - now)
                continue
            try:
                renewal = asyncio.ensure_future(self.renew())
                held = await asyncio.wait_for(renewal, max(0.0, deadline - self._monotonic()))
            except TimeoutError:
                continue  # the deadline check above ends it
            except Exception as exc:  # any failure to renew: retry until the deadline
                logger.warning(
                    "renewing the Lease %s/%s failed: %s; retrying", self.namespace, self.name, exc
                )
                await asyncio.sleep(min(0.5, max(0.0, deadline - self._monotonic())))
                continue
            if not held:
                logger.error(
                    "the Lease %s/%s was taken by another operator: stopping all work",
                    self.namespace,
                    self.name,
                )
                self._renewed_at = None
                return

    async def release(self) -> None:
        """Give the Lease up (graceful stop): a waiting replica takes over without waiting."""
        if self._lease is None or self._renewed_at is None:
            return
        spec = {
            **(self._lease.get("spec") or {}),
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "renewTime": _micro_time(self._wall()),
        }
        with contextlib.suppress(KubeError):
            await self.client.replace(LEASES, {**self._lease, "spec": spec})
        self._renewed_at = None
        self._lease = None
