"""Settings of the api process, read from the environment (``SOCIALPUB_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from socialpub.kube.keys import keys_namespace

__all__ = ["ApiSettings"]


@dataclass
class ApiSettings:
    kubeconfig: str | None = None
    """Kubeconfig to reach the Kubernetes API; ``None`` = ``$KUBECONFIG`` or the in-cluster account."""
    max_body_bytes: int = 1024 * 1024
    keys_namespace: str = field(default_factory=keys_namespace)
    """The only namespace whose Secrets the api reads: API-key records and nothing else
    (``$SOCIALPUB_KEYS_NAMESPACE``, default ``socialpub-keys``)."""
    idempotency_ttl_seconds: int = 24 * 3600
    idempotency_lease_seconds: float = 60
    """How long an idempotency claim is held without renewal; its holder renews it every quarter
    of this while the request runs, so only a claim whose replica died (or gave up) expires."""
    idempotency_sweep_seconds: float = 3600.0
    """How often expired idempotency records are deleted (any replica may do it; it is idempotent)."""
    startup_sync_seconds: float = 15.0
    """How long startup waits for the caches' first list before serving anyway (``/readyz`` says 503)."""

    @classmethod
    def from_env(cls) -> ApiSettings:
        return cls(
            kubeconfig=os.environ.get("KUBECONFIG") or None,
            max_body_bytes=int(os.environ.get("SOCIALPUB_MAX_BODY_BYTES", 1024 * 1024)),
            keys_namespace=keys_namespace(os.environ),
            idempotency_ttl_seconds=int(os.environ.get("SOCIALPUB_IDEMPOTENCY_TTL_SECONDS", 24 * 3600)),
            idempotency_lease_seconds=float(os.environ.get("SOCIALPUB_IDEMPOTENCY_LEASE_SECONDS", 60)),
        )
