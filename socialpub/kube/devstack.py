"""The mark ``socialpub dev`` leaves on its cluster, so the CLI knows it talks to the dev stack.

``socialpub dev`` runs its operator with loopback webhook receivers allowed (a receiver on
``http://127.0.0.1:…`` is how webhooks are tried on a laptop) and writes the ConfigMap
``socialpub-system/socialpub-dev-stack`` saying so. ``socialpub webhooks add`` reads it to accept
the same loopback URLs that operator delivers to.

The mark only relaxes the CLI's *preflight* check. The operator's own allowance is a setting of
its process (``SOCIALPUB_WEBHOOK_ALLOW_LOOPBACK``, which only ``socialpub dev`` turns on), never
read from the cluster: a production operator refuses loopback whatever a ConfigMap says.
"""

from __future__ import annotations

from typing import Any

from socialpub.kube.client import AlreadyExists, KubeClient, KubeError, NotFound
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import CONFIGMAPS, LABEL_COMPONENT, SYSTEM_NAMESPACE

__all__ = ["DEV_STACK_CONFIGMAP", "dev_stack_allows_loopback", "mark_dev_stack"]

DEV_STACK_CONFIGMAP = "socialpub-dev-stack"
_ALLOW_LOOPBACK = "webhookAllowLoopback"


async def mark_dev_stack(client: KubeClient, *, webhook_allow_loopback: bool) -> None:
    """Record that this cluster is ``socialpub dev``'s and what its operator allows."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": DEV_STACK_CONFIGMAP,
            "namespace": SYSTEM_NAMESPACE,
            "labels": {LABEL_COMPONENT: "dev-stack"},
        },
        "data": {_ALLOW_LOOPBACK: "true" if webhook_allow_loopback else "false"},
    }
    await ensure_namespace(client, SYSTEM_NAMESPACE)
    try:
        await client.create(CONFIGMAPS, body, SYSTEM_NAMESPACE)
    except AlreadyExists:
        await client.patch(CONFIGMAPS, DEV_STACK_CONFIGMAP, {"data": body["data"]}, SYSTEM_NAMESPACE)


async def dev_stack_allows_loopback(client: KubeClient) -> bool:
    """Whether the cluster is a ``socialpub dev`` stack whose operator delivers to loopback."""
    try:
        cm = await client.get(CONFIGMAPS, DEV_STACK_CONFIGMAP, SYSTEM_NAMESPACE)
    except NotFound:
        return False
    except KubeError as exc:
        if exc.status == 403:  # not allowed to look: then it is not our dev stack
            return False
        raise
    return (cm.get("data") or {}).get(_ALLOW_LOOPBACK) == "true"
