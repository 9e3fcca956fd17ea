"""How routes document their error answers in OpenAPI: ``responses=errors(401, 404, ...)``.

Each status gets the one :class:`~socialpub.api.schemas.ErrorBody` schema and a realistic
example, so generated clients and the interactive docs show what the API really sends.
"""

from __future__ import annotations

from typing import Any

from socialpub.api.schemas import ErrorBody

__all__ = ["errors", "replayable"]

_EXAMPLES: dict[int, tuple[str, str, str, Any]] = {
    400: ("Malformed request", "invalid_json", "the request body is not valid JSON", None),
    401: ("Missing, unknown or revoked API key", "invalid_api_key", "unknown API key", None),
    403: (
        "The key lacks the scope, or the request came from a browser",
        "insufficient_scope",
        "this API key lacks the scope service.social.manage",
        {"required_scope": "service.social.manage"},
    ),
    404: ("No such post (or it belongs to another tenant or mode)", "post_not_found", "no post 42", None),
    409: (
        "Conflict: stale expected_updated_at, post not editable, or Idempotency-Key in use",
        "stale_object",
        "post 42 was changed since you read it; read it again and retry",
        {"updated_at": "2025-06-01T09:31:00.000000Z"},
    ),
    410: (
        "The post this Idempotency-Key created has been deleted since; it is not created again",
        "post_deleted",
        "post 42, which this Idempotency-Key created, has been deleted since; it is not created again. "
        "Send a new Idempotency-Key to create a new post",
        {"post_id": 42},
    ),
    413: (
        "Request body over 1 MiB",
        "payload_too_large",
        "request bodies are limited to 1048576 bytes",
        None,
    ),
    415: (
        "Request body is not JSON",
        "unsupported_media_type",
        "request bodies must be JSON: send Content-Type: application/json",
        None,
    ),
    422: (
        "Validation failed; details name the fields",
        "validation_error",
        "the request is not valid; see details",
        [{"field": "targets[0].account_id", "message": "this field is required"}],
    ),
    503: (
        "Not ready, or storage unreachable; retry. `tenant_not_ready`: the key's tenant does not own "
        "its namespace alone (another tenant names it, or it was made for another tenant)",
        "service_unavailable",
        "retry shortly",
        None,
    ),
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries for ``statuses``, all with the error envelope."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, code, message, details = _EXAMPLES[status]
        error: dict[str, Any] = {"code": code, "message": message}
        if details is not None:
            error["details"] = details
        out[status] = {
            "model": ErrorBody,
            "description": description,
            "content": {"application/json": {"example": {"error": error}}},
        }
    return out


def replayable(status: int) -> dict[int | str, dict[str, Any]]:
    """Documents the ``Idempotent-Replayed`` header on a POST's success status."""
    return {
        status: {
            "headers": {
                "Idempotent-Replayed": {
                    "description": "`true` when this is the stored answer to an earlier request "
                    "with the same Idempotency-Key; absent otherwise.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        }
    }
