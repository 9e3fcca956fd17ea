"""Running the operator: as its own process (``socialpub operator``) or inside ``socialpub dev``.

The operator works only while it holds its Lease (:mod:`socialpub.operator.leadership`): kopf is
not even started before, so a waiting replica watches nothing and writes nothing, and its probe
endpoint (kopf's, served once started) stays down — it is not ready. If the Lease cannot be
renewed in time, all work is stopped at once (no grace: the next holder may start soon) and
:class:`LeaseLost` is raised, so the process exits non-zero and Kubernetes restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import kopf

from socialpub.kube.client import KubeClient
from socialpub.operator.engine import Engine
from socialpub.operator.leadership import LeaseKeeper, LeaseLost
from socialpub.operator.settings import OperatorSettings  # importing the package registered the handlers
from socialpub.operator.webhooks import WebhookDispatcher

__all__ = ["LeaseLost", "run_operator"]

logger = logging.getLogger(__name__)


async def run_operator(
    settings: OperatorSettings,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    liveness: str | None = None,
) -> None:
    """Wait for the Lease, then run the kopf operator over all namespaces until ``stop`` is set
    (or the task is cancelled); raises :class:`LeaseLost` if the Lease is lost meanwhile."""
    _quiet_kopf_watch_finalizer(asyncio.get_running_loop())
    client = KubeClient.from_config(settings.kubeconfig)
    keeper = LeaseKeeper(
        client,
        identity=settings.identity,
        name=settings.lease_name,
        namespace=settings.lease_namespace,
        duration=settings.lease_duration_seconds,
    )
    try:
        if not await keeper.acquire(stop):
            return
        memo = kopf.Memo(settings=settings, lease=keeper)
        operator = asyncio.create_task(
            kopf.operator(
                standalone=True,
                clusterwide=True,
                memo=memo,
                stop_flag=stop,
                ready_flag=ready,
                liveness_endpoint=liveness,
            ),
            name="socialpub-kopf",
        )
        holding = asyncio.create_task(keeper.hold(), name="socialpub-lease")
        try:
            await asyncio.wait({operator, holding}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not holding.done():
                holding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await holding
        if holding.done() and not operator.done():
            await _halt(memo, operator)
            raise LeaseLost(f"lost the Lease {settings.lease_namespace}/{settings.lease_name}")
        operator.result()
        await keeper.release()
    finally:
        await client.aclose()


async def _halt(memo: kopf.Memo, operator: asyncio.Task[None]) -> None:
    """Stop every piece of work now: no grace for calls under way (their claims' ``leaseUntil``
    keeps the next holder from checking them too early), then stop kopf."""
    engine = getattr(memo, "engine", None)
    if isinstance(engine, Engine):
        engine.halt()
    webhooks = getattr(memo, "webhooks", None)
    if isinstance(webhooks, WebhookDispatcher):
        with contextlib.suppress(Exception):
            await webhooks.stop(grace=0)
    operator.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(operator, 10)


def _quiet_kopf_watch_finalizer(loop: asyncio.AbstractEventLoop) -> None:
    """kopf stopped (SIGTERM) while a watch was still being opened leaves its ``infinite_watch``
    generator unclosed; closing it at loop shutdown raises "generator didn't stop after athrow()"
    inside kopf, after all our work has stopped. That one case is logged at DEBUG, not as an ERROR
    (which monitoring would page on); every other loop error goes to the handler already there."""
    previous = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        generator, error = context.get("asyncgen"), context.get("exception")
        if (
            getattr(generator, "__name__", None) == "infinite_watch"
            and isinstance(error, RuntimeError)
            and "didn't stop after athrow" in str(error)
        ):
            logger.debug("kopf's watch generator was closed at shutdown: %s", error)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
