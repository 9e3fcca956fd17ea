"""One error envelope for every failure: ``{"error": {"code", "message", "details"?}}``.

Integrators write one error handler, so nothing may answer in another shape: not our own
errors, not FastAPI's validation errors (``{"detail": [...]}``), not Starlette's 404/405 pages
for unknown routes, not a crash. :func:`install` registers a handler for each source; the
middleware (browser refusal, body limits) renders through :func:`error_response` too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from socialpub.kube.client import KubeError

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "NotFound",
    "ServiceUnavailable",
    "Unauthorized",
    "UnprocessableEntity",
    "error_response",
    "field_path",
    "install",
]

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the api answers on purpose; subclasses fix the status, instances the code."""

    status_code = 400
    default_code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details
        self.headers = dict(headers or {})


class BadRequest(ApiError):
    status_code = 400
    default_code = "bad_request"


class Unauthorized(ApiError):
    """401; always carries ``WWW-Authenticate: Bearer`` (RFC 6750) so clients know what to send."""

    status_code = 401
    default_code = "invalid_api_key"

    def __init__(self, message: str, *, code: str | None = None, invalid_token: bool = True) -> None:
        challenge = 'Bearer realm="socialpub"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        super().__init__(message, code=code, headers={"WWW-Authenticate": challenge})


class Forbidden(ApiError):
    status_code = 403
    default_code = "forbidden"


class NotFound(ApiError):
    status_code = 404
    default_code = "not_found"


class Conflict(ApiError):
    status_code = 409
    default_code = "conflict"


class Gone(ApiError):
    """410: what was asked for existed and was deleted (an idempotent create's post)."""

    status_code = 410
    default_code = "gone"


class UnprocessableEntity(ApiError):
    """422: the request is well formed but breaks a rule; ``details`` names the fields."""

    status_code = 422
    default_code = "validation_error"


class ServiceUnavailable(ApiError):
    status_code = 503
    default_code = "service_unavailable"


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The envelope as a response; ``details`` is left out when there are none."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=dict(headers or {}))


_SOURCES = ("body", "query", "path", "header", "cookie")


def field_path(loc: Sequence[int | str]) -> str | None:
    """``("body", "targets", 0, "account_id")`` → ``"targets[0].account_id"``.

    The location kind is dropped (each parameter name is unique across them); a header keeps its
    name; the request body as a whole has no field name (``None``).
    """
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in _SOURCES else None
    if source == "header" and parts:
        return "-".join(word.capitalize() for word in str(parts[0]).split("-"))
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or None


_MESSAGES = {
    "missing": "this field is required",
    "extra_forbidden": "unknown field",
}


def _validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    for err in errors:
        loc = tuple(err.get("loc") or ())
        field = field_path(loc)
        kind = str(err.get("type", ""))
        message = _MESSAGES.get(kind) or str(err.get("msg", "invalid value"))
        if field is None and kind == "missing":
            message = "a JSON request body is required"
        message = message.removeprefix("Value error, ")
        detail: dict[str, Any] = {"field": field} if field is not None else {}
        detail["message"] = message
        details.append(detail)
    return details


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    bad_json = [e for e in errors if e.get("type") == "json_invalid"]
    if bad_json:
        ctx = bad_json[0].get("ctx") or {}
        loc: tuple[Any, ...] = tuple(bad_json[0].get("loc") or ())
        where = f" at position {loc[-1]}" if len(loc) > 1 else ""
        reason = f": {ctx['error']}" if ctx.get("error") else ""
        return error_response(400, "invalid_json", f"the request body is not valid JSON{reason}{where}")
    return error_response(
        422, "validation_error", "the request is not valid; see details", _validation_details(errors)
    )


_HTTP_CODES = {
    400: ("bad_request", "the request could not be understood"),
    404: ("not_found", "no such route; the api lives under /api/v1/services/social"),
    405: ("method_not_allowed", "this route does not accept that method"),
    413: ("payload_too_large", "the request body is too large"),
    415: ("unsupported_media_type", "send the request body as application/json"),
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        code, message = "invalid_json", "the request body could not be parsed as JSON"
    elif exc.status_code == 400 and exc.detail and exc.detail != "Bad Request":
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and request.url.path.startswith("/api/"):
        message = f"no route {request.method} {request.url.path}"
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; use {' or '.join(allowed)}"
    return error_response(exc.status_code, code, message, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method served at this path, from the OpenAPI paths (Starlette names only the
    methods of the first route that matched the path)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            methods |= {m.upper() for m in operations}
    return sorted(methods)


async def _upstream_error(request: Request, exc: Exception) -> Response:
    """The Kubernetes API failed or refused a write our validation should have stopped."""
    logger.error("kubernetes api error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "service_unavailable",
        "the api cannot reach its storage right now; retry shortly",
        headers={"Retry-After": "1"},
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Last resort: log it and answer in the envelope. No input should ever get here."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    """Route every kind of failure through the envelope."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(KubeError, _upstream_error)
    app.add_exception_handler(httpx.HTTPError, _upstream_error)
    app.add_exception_handler(Exception, _unexpected)
