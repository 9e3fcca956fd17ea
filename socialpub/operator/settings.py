"""Settings of the operator process, read from the environment (``SOCIALPUB_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["OperatorSettings"]


@dataclass
class OperatorSettings:
    kubeconfig: str | None = None
    """Kubeconfig to reach the Kubernetes API; ``None`` = ``$KUBECONFIG`` or the in-cluster account."""
    retry_base_seconds: float = 30.0
    """Backoff base: attempt n waits uniformly up to ``base * 2**(n-1)`` seconds, capped at one hour."""
    sandbox_delay_seconds: float = 0.3
    """How long the sandbox simulator takes to "publish"."""
    concurrency: int = 64
    """How many objects are worked on at once (each target publishes independently)."""
    webhook_retry_base_seconds: float = 5.0
    """The first retry delay of webhook deliveries; the whole Standard Webhooks schedule (0, 5 s,
    5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h) is scaled by ``base / 5`` (tests shrink it)."""
    webhook_timeout_seconds: float = 10.0
    """A delivery attempt that has no complete answer within this many seconds has failed."""
    webhook_endpoint_concurrency: int = 8
    """Deliveries in flight to one endpoint at once (one slow endpoint never delays another)."""
    webhook_allow_loopback: bool = False
    """Deliver to loopback addresses (``socialpub dev`` and tests); private addresses never."""
    webhook_retention_seconds: float = 4 * 86400.0
    """Events younger than this are delivered (also after an outage); finished deliveries are
    deleted once their event is older. Longer than the whole retry schedule (75 h 35 min)."""

    @classmethod
    def from_env(cls) -> OperatorSettings:
        return cls(
            kubeconfig=os.environ.get("KUBECONFIG") or None,
            retry_base_seconds=float(os.environ.get("SOCIALPUB_RETRY_BASE_SECONDS", 30)),
            sandbox_delay_seconds=float(os.environ.get("SOCIALPUB_SANDBOX_DELAY_SECONDS", 0.3)),
            concurrency=int(os.environ.get("SOCIALPUB_OPERATOR_CONCURRENCY", 64)),
            webhook_retry_base_seconds=float(os.environ.get("SOCIALPUB_WEBHOOK_RETRY_BASE_SECONDS", 5)),
            webhook_timeout_seconds=float(os.environ.get("SOCIALPUB_WEBHOOK_TIMEOUT_SECONDS", 10)),
            webhook_endpoint_concurrency=int(os.environ.get("SOCIALPUB_WEBHOOK_ENDPOINT_CONCURRENCY", 8)),
            webhook_allow_loopback=os.environ.get("SOCIALPUB_WEBHOOK_ALLOW_LOOPBACK", "").lower()
            in ("1", "true", "yes"),
            webhook_retention_seconds=float(os.environ.get("SOCIALPUB_WEBHOOK_RETENTION_SECONDS", 4 * 86400)),
        )
