"""Running the operator: as its own process (``socialpub operator``) or inside ``socialpub dev``."""

from __future__ import annotations

import asyncio

import kopf

from socialpub.operator.settings import OperatorSettings  # importing the package registered the handlers

__all__ = ["run_operator"]


async def run_operator(
    settings: OperatorSettings,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    liveness: str | None = None,
) -> None:
    """Run the kopf operator over all namespaces until ``stop`` is set (or the task is cancelled).

    Standalone (no peering): run one replica, or give each replica its own namespaces.
    """
    await kopf.operator(
        standalone=True,
        clusterwide=True,
        memo=kopf.Memo(settings=settings),
        stop_flag=stop,
        ready_flag=ready,
        liveness_endpoint=liveness,
    )
