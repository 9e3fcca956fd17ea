"""What the Facebook and Instagram fakes share: the Graph API's routing under ``/v{N}.0``, the
``access_token`` parameter (or a Bearer header), token states and the error envelope."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.base import FakeServer, bearer, record_of

TOKEN_SUBCODES = {"expired": 463, "revoked": 460, "invalid": 467}
MAX_LIMIT = 100
"""Graph's largest page of an edge (``limit`` above it is clamped)."""


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    status: int = 400,
    transient: bool = False,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "is_transient": transient,
        "fbtrace_id": "A" + secrets.token_hex(8),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.json_response({"error": error}, status=status, headers=headers)


def graph_error_body(code: int, message: str, *, subcode: int | None = None, transient: bool = False) -> dict:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "is_transient": transient,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbC123"
    return {"error": error}


class FakeGraph(FakeServer):
    """Routes ``/v{N}.0/<path>`` to :meth:`dispatch`; checks the token first."""

    version = "v25.0"

    def __init__(self) -> None:
        super().__init__()
        self.tokens: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"{self.url}/{self.version}"

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.tokens.clear()

    def grant(self, token: str) -> str:
        self.tokens[token] = "valid"
        return token

    def expire(self, token: str) -> None:
        self.tokens[token] = "expired"

    def revoke(self, token: str) -> None:
        self.tokens[token] = "revoked"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", r"/{version:v\d+\.0}/{path:.*}", self._route)

    def usage_headers(self, path: str) -> dict[str, str]:
        return {}

    async def _route(self, request: web.Request) -> web.Response:
        record = record_of(request)
        token = record.param("access_token") or bearer(request)
        state = self.tokens.get(token or "", "invalid")
        headers = self.usage_headers(request.match_info["path"])
        if state != "valid":
            return graph_error(
                190,
                f"Error validating access token: the session is {state}",
                subcode=TOKEN_SUBCODES[state],
                headers=headers,
            )
        parts = [p for p in request.match_info["path"].split("/") if p]
        response = await self.dispatch(request, parts)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    async def dispatch(self, request: web.Request, parts: list[str]) -> web.Response:
        raise NotImplementedError


def as_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1")


def as_json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def _cursor(item_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": item_id}).encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


def page_of(
    request: web.Request,
    items: Sequence[dict[str, Any]],
    *,
    created: Callable[[dict[str, Any]], float],
    public: Callable[[dict[str, Any]], dict[str, Any]],
    base_url: str,
    default_limit: int = 25,
) -> web.Response:
    """One page of an edge the way Graph pages it: newest first, ``since`` / ``until`` (unix
    seconds) filters, ``limit`` (at most :data:`MAX_LIMIT`), cursor paging with ``after`` /
    ``before`` (opaque), and ``paging.next`` — the full URL of the next page, every parameter of
    this request (the token too) kept — only while more items remain."""
    query = request.query
    try:
        since = float(query["since"]) if query.get("since") else None
        until = float(query["until"]) if query.get("until") else None
        limit = min(int(query.get("limit") or default_limit), MAX_LIMIT)
    except ValueError:
        return graph_error(100, "(#100) since, until and limit must be numbers")
    if limit < 1:
        return graph_error(100, "(#100) limit must be positive")
    chosen = [
        i for i in items if (since is None or created(i) >= since) and (until is None or created(i) <= until)
    ]
    chosen.sort(key=lambda i: (created(i), str(i["id"])), reverse=True)
    start = 0
    if query.get("after"):
        after = _uncursor(query["after"])
        ids = [str(i["id"]) for i in chosen]
        if after not in ids:
            return graph_error(100, "(#100) The after cursor is invalid")
        start = ids.index(after) + 1
    page = chosen[start : start + limit]
    paging: dict[str, Any] = {}
    if page:
        paging["cursors"] = {"before": _cursor(str(page[0]["id"])), "after": _cursor(str(page[-1]["id"]))}
        if start + limit < len(chosen):
            params = {k: v for k, v in query.items() if k not in ("after", "before")}
            params["after"] = paging["cursors"]["after"]
            paging["next"] = f"{base_url}{request.path}?{urlencode(params)}"
    return web.json_response({"data": [public(i) for i in page], "paging": paging})
