"""Settings of the operator process, read from the environment (``SOCIALPUB_*``)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field

from socialpub.platforms.settings import PlatformSettings

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
    identity: str = field(default_factory=lambda: default_identity())
    """Who this operator is, in the Lease's ``holderIdentity`` and in targets' ``claimedBy``."""
    lease_name: str = "socialpub-operator"
    """The ``coordination.k8s.io/v1`` Lease only its holder may work under."""
    lease_namespace: str = "socialpub-system"
    lease_duration_seconds: float = 15.0
    """How long a Lease lasts unrenewed: a waiting replica takes over this long after the holder's
    last renewal it saw; the holder stops all work a safety margin earlier."""
    claim_settle_seconds: float = 30.0
    """Added to a platform call's worst-case duration in a claim's ``leaseUntil``: how long after the
    call may have landed a platform's own lookups take to show it."""
    _platform_bounds: dict[str, float] = field(default_factory=dict, init=False, repr=False, compare=False)
    """The adapters' computed worst case per platform, read from the environment on first use."""
    live_call_max_seconds: float = 120.0
    """The longest one live publish call may run. The engine cancels a call at this bound (or at the
    adapters' own computed worst case, if lower) and treats it as interrupted, so the bound is real
    and a claim's ``leaseUntil`` (claim time + this + ``claim_settle_seconds``) stays short: a crash
    delays the "did it land?" check of an interrupted attempt by minutes, not by the ~25 minutes
    the adapters' every-timeout-at-once worst case would give. Cancelling is safe: the settle margin
    covers a create the platform finishes after we hung up."""

    def live_call_seconds(self, platform: str) -> float:
        """The longest one live adapter call to ``platform`` may run (the claim's lease covers it)."""
        if platform not in self._platform_bounds:  # read the environment once, not per claim
            self._platform_bounds[platform] = PlatformSettings.from_env().max_publish_seconds_for(platform)
        return min(self._platform_bounds[platform], self.live_call_max_seconds)

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
            identity=os.environ.get("SOCIALPUB_OPERATOR_IDENTITY") or default_identity(),
            lease_name=os.environ.get("SOCIALPUB_OPERATOR_LEASE_NAME", "socialpub-operator"),
            lease_namespace=os.environ.get("SOCIALPUB_OPERATOR_LEASE_NAMESPACE", "socialpub-system"),
            lease_duration_seconds=float(os.environ.get("SOCIALPUB_OPERATOR_LEASE_SECONDS", 15)),
            claim_settle_seconds=float(os.environ.get("SOCIALPUB_CLAIM_SETTLE_SECONDS", 30)),
            live_call_max_seconds=float(os.environ.get("SOCIALPUB_LIVE_CALL_MAX_SECONDS", 120)),
        )


def default_identity() -> str:
    """``<host>-<pid>-<random>``: unique per process, so a restarted container (same pod name,
    same host) never mistakes its predecessor's Lease or claims for its own. The host is the
    pod's name in Kubernetes."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
