"""Integer ids for the REST API, unique per kind within a namespace.

The counters live in one ConfigMap per namespace and advance by compare-and-swap on its
resourceVersion, so any number of api replicas (and the operator, for posts applied with
kubectl) hand out each id exactly once.
"""

from __future__ import annotations

import asyncio
import random

from socialpub.kube.client import AlreadyExists, Conflict, KubeClient, NotFound
from socialpub.kube.resources import CONFIGMAPS, LABEL_COMPONENT

__all__ = ["IDS_CONFIGMAP", "allocate_id"]

IDS_CONFIGMAP = "socialpub-ids"


async def allocate_id(
    client: KubeClient, namespace: str, kind: str, *, attempts: int = 50, count: int = 1
) -> int:
    """The next id of ``kind`` (e.g. ``posts``) in ``namespace``.

    With ``count`` > 1, reserves that many consecutive ids in one compare-and-swap and returns
    the first: a writer with several creates waiting pays for one round of contention, not many.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    for attempt in range(attempts):
        try:
            current = await client.get(CONFIGMAPS, IDS_CONFIGMAP, namespace)
        except NotFound:
            try:
                await client.create(
                    CONFIGMAPS,
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": IDS_CONFIGMAP, "labels": {LABEL_COMPONENT: "ids"}},
                        "data": {kind: str(count)},
                    },
                    namespace,
                )
                return 1
            except AlreadyExists:
                continue
        first = int((current.get("data") or {}).get(kind, "0")) + 1
        patch = {
            "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
            "data": {kind: str(first + count - 1)},
        }
        try:
            await client.patch(CONFIGMAPS, IDS_CONFIGMAP, patch, namespace)
            return first
        except Conflict:
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise RuntimeError(f"could not allocate a {kind} id in {namespace} after {attempts} attempts")
