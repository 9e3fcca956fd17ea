"""The FastAPI application: ``create_app()``, and ``app`` for ``uvicorn socialpub.api.app:app``.

Creating the app connects to nothing; the lifespan does (the Kubernetes client and the caches),
so importing this module, generating the OpenAPI document or building a test app is free.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from socialpub.api import errors
from socialpub.api.middleware import BodyLimitMiddleware, BrowserRefusalMiddleware
from socialpub.api.routes import accounts, health, posts
from socialpub.api.runtime import Runtime
from socialpub.api.settings import ApiSettings

__all__ = ["BASE_PATH", "app", "create_app"]

BASE_PATH = "/api/v1/services/social"

DESCRIPTION = """
Create a post once and publish it to a tenant's connected LinkedIn, Facebook Page and Instagram
Business accounts, now or at a scheduled time.

* **Authentication**: `Authorization: Bearer sk_live_…` (real platforms) or `sk_test_…` (the
  tenant's sandbox: sandbox accounts, simulated publishing). Keys carry scopes
  `service.social.view`, `service.social.manage` and `service.social.publish`.
* **Server to server only**: requests from browsers (`Origin`, `Sec-Fetch-*`, CORS preflights)
  are refused with 403.
* **Envelopes**: success bodies are `{"data": …}` (lists add `meta`); every error is
  `{"error": {"code", "message", "details"?}}`.
* **Retries**: send `Idempotency-Key` on POST; a retry returns the first answer with
  `Idempotent-Replayed: true`.
* **Concurrency**: PATCH takes `expected_updated_at`; a stale value is 409 `stale_object`.
"""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """A new app for ``settings`` (default: from the environment); it connects when started."""
    settings = settings or ApiSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.connect(settings)
        await runtime.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="socialpub",
        version="1.0.0",
        summary="Social Publishing API",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "accounts", "description": "Connected accounts that posts can target."},
            {"name": "posts", "description": "Posts, their publishing and their delivery per account."},
            {"name": "health", "description": "Probes; no authentication."},
        ],
    )
    app.state.settings = settings
    app.openapi = _exact_bounds(app.openapi)  # type: ignore[method-assign]
    errors.install(app)
    # Added last = runs first: browsers are refused before anything reads the body.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(BrowserRefusalMiddleware)

    api = APIRouter(prefix=BASE_PATH)
    api.include_router(accounts.router)
    api.include_router(posts.router)
    app.include_router(api)
    app.include_router(health.router)
    return app


_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})


def _integral(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _integral(value)
    elif isinstance(node, list):
        for item in node:
            _integral(item)


def _exact_bounds(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI model stores numeric bounds as floats (``1.0``, ``9.223372036854776e+18``);
    publish whole-number bounds as the integers pydantic declared. Exact as long as the bound is
    a float exactly, which is why ids are bounded by ``< 2**63`` (see ``schemas``)."""
    fixed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not fixed:
            document = generate()
            _integral(document)
            fixed.append(document)
        return fixed[0]

    return openapi


app = create_app()
