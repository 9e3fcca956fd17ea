"""Creating namespaces idempotently (tenants, the system namespace)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from socialpub.kube.client import AlreadyExists, KubeClient, NotFound
from socialpub.kube.resources import NAMESPACES

__all__ = ["ensure_namespace"]


async def ensure_namespace(client: KubeClient, name: str, labels: Mapping[str, str] | None = None) -> None:
    """Create namespace ``name`` unless it exists (a concurrent creator is not an error)."""
    try:
        await client.get(NAMESPACES, name)
        return
    except NotFound:
        pass
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels or {})}}
    with contextlib.suppress(AlreadyExists):
        await client.create(NAMESPACES, body)
