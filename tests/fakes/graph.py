"""What the Facebook and Instagram fakes share: the Graph API's routing under ``/v{N}.0``, the
``access_token`` parameter (or a Bearer header), token states and the error envelope."""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, bearer, record_of

TOKEN_SUBCODES = {"expired": 463, "revoked": 460, "invalid": 467}


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
