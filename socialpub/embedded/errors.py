"""Errors of the embedded Kubernetes API, rendered as ``kind: Status`` bodies.

Clients (kopf, kubectl, the ``kubernetes`` package) branch on ``code`` and ``reason``, so every
failure the server can produce goes through :class:`ApiError` with the reason kube-apiserver
would give; the HTTP layer turns it into the one JSON shape they all understand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ApiError", "status_body"]


class ApiError(Exception):
    """A failed request, carrying everything a ``metav1.Status`` needs."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    # Constructors for the cases clients tell apart by reason.

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def not_found(cls, resource: str, name: str, *, group: str = "", kind: str = "") -> ApiError:
        qualified = f"{resource}.{group}" if group else resource
        return cls(
            404,
            "NotFound",
            f'{qualified} "{name}" not found',
            details={"name": name, "group": group, "kind": resource},
        )

    @classmethod
    def no_route(cls) -> ApiError:
        return cls(404, "NotFound", "the server could not find the requested resource")

    @classmethod
    def already_exists(cls, resource: str, name: str, *, group: str = "") -> ApiError:
        qualified = f"{resource}.{group}" if group else resource
        return cls(
            409,
            "AlreadyExists",
            f'{qualified} "{name}" already exists',
            details={"name": name, "group": group, "kind": resource},
        )

    @classmethod
    def conflict(cls, resource: str, name: str, *, group: str = "", why: str = "") -> ApiError:
        qualified = f"{resource}.{group}" if group else resource
        why = (
            why
            or "the object has been modified; please apply your changes to the latest version and try again"
        )
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
            details={"name": name, "group": group, "kind": resource},
        )

    @classmethod
    def invalid(
        cls,
        kind: str,
        group: str,
        name: str,
        causes: Sequence[tuple[str, str, str]],
        *,
        message: str | None = None,
    ) -> ApiError:
        """422 Invalid; ``causes`` are ``(reason, message, field)`` triples."""
        qualified = f"{kind}.{group}" if group else kind
        parts = [f"{field}: {msg}" if field else msg for _, msg, field in causes]
        summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        return cls(
            422,
            "Invalid",
            message or f'{qualified} "{name}" is invalid: {summary}',
            details={
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [{"reason": r, "message": m, "field": f} for r, m, f in causes],
            },
        )

    @classmethod
    def unsupported_media_type(cls) -> ApiError:
        return cls(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )

    @classmethod
    def expired(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)

    @classmethod
    def method_not_allowed(cls, method: str) -> ApiError:
        return cls(
            405,
            "MethodNotAllowed",
            f"the server does not allow this method on the requested resource ({method})",
        )


def status_body(error: ApiError) -> dict[str, Any]:
    """The ``metav1.Status`` body for ``error``."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message,
        "reason": error.reason,
        "code": error.code,
    }
    if error.details is not None:
        body["details"] = error.details
    return body
