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

    @classmethod
    def from_env(cls) -> OperatorSettings:
        return cls(
            kubeconfig=os.environ.get("KUBECONFIG") or None,
            retry_base_seconds=float(os.environ.get("SOCIALPUB_RETRY_BASE_SECONDS", 30)),
            sandbox_delay_seconds=float(os.environ.get("SOCIALPUB_SANDBOX_DELAY_SECONDS", 0.3)),
            concurrency=int(os.environ.get("SOCIALPUB_OPERATOR_CONCURRENCY", 64)),
        )
