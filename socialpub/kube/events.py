"""Kubernetes Events on our objects: what ``kubectl describe`` and ``kubectl get events`` show."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from socialpub.kube.client import KubeClient, KubeError
from socialpub.kube.resources import EVENTS

__all__ = ["record_event"]

logger = logging.getLogger(__name__)


async def record_event(
    client: KubeClient,
    involved: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    warning: bool = False,
    component: str = "socialpub-operator",
) -> None:
    """Post an Event about ``involved``; failures are logged, never raised (events are best effort)."""
    meta = involved.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": None,
        "count": 1,
    }
    try:
        await client.create(EVENTS, body, namespace)
    except KubeError as exc:
        logger.warning("could not record event %s on %s: %s", reason, meta.get("name"), exc)
