"""Probes for the orchestrator, outside the base path and without authentication."""

from __future__ import annotations

from fastapi import APIRouter

from socialpub.api.deps import RuntimeDep
from socialpub.api.errors import ServiceUnavailable
from socialpub.api.responses import errors
from socialpub.api.schemas import Health, HealthResponse

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness", responses=errors(403))
async def healthz() -> HealthResponse:
    """The process is alive and serving (says nothing about the Kubernetes API)."""
    return HealthResponse(data=Health(status="ok"))


@router.get("/readyz", response_model=HealthResponse, summary="Readiness", responses=errors(403, 503))
async def readyz(runtime: RuntimeDep) -> HealthResponse:
    """Ready to serve: every cache has done its first list and the Kubernetes API answers."""
    checks = {f"cache:{name}": cache.synced.is_set() for name, cache in runtime.caches.items()}
    checks["kubernetes"] = await runtime.kube_answers()
    if not all(checks.values()):
        raise ServiceUnavailable(
            "not ready: " + ", ".join(name for name, ok in checks.items() if not ok),
            code="not_ready",
            details={"checks": checks},
            headers={"Retry-After": "1"},
        )
    return HealthResponse(data=Health(status="ready", checks=checks))
