"""What every request passes before routing: browser refusal, then body size and type.

Both are plain ASGI middleware rather than dependencies because they must hold for every URL,
including unknown routes and the health probes, and must run before authentication: a leaked
secret key used from a web page is refused without telling the page anything else.
"""

from __future__ import annotations

import email.message

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialpub.api.errors import error_response

__all__ = ["BodyLimitMiddleware", "BrowserRefusalMiddleware", "is_json_content_type"]


class BrowserRefusalMiddleware:
    """Refuse anything a browser sent (403 ``browser_requests_not_allowed``); never speak CORS.

    Browsers mark cross-origin requests with ``Origin``, send an ``OPTIONS`` preflight before any
    request carrying ``Authorization``, and add ``Sec-Fetch-*`` headers that page scripts cannot
    forge. Servers and curl send none of these. Refusing the preflight, and never emitting an
    ``Access-Control-*`` header, means a browser never even sends the real request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        from_browser = (
            scope["method"] == "OPTIONS"
            or "origin" in headers
            or any(name.startswith("sec-fetch-") for name in headers)
        )
        if from_browser:
            response = error_response(
                403,
                "browser_requests_not_allowed",
                "this API is for servers only: a secret key must never be used from a browser "
                "(requests with Origin, Sec-Fetch-* or a CORS preflight are refused). "
                "If a key was exposed in a web page, revoke it.",
            )
            await response(scope, receive, _without_cors(send))
            return
        await self.app(scope, receive, _without_cors(send))


def _without_cors(send: Send) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {
                **message,
                "headers": [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-")
                ],
            }
        await send(message)

    return sender


def is_json_content_type(value: str | None) -> bool:
    """``application/json`` or any ``application/*+json``, parameters (charset) ignored."""
    if not value:
        return False
    parsed = email.message.Message()
    parsed["content-type"] = value
    if parsed.get_content_maintype() != "application":
        return False
    subtype = parsed.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class BodyLimitMiddleware:
    """Bodies over ``max_bytes`` → 413; a non-empty body that is not JSON → 415.

    The declared ``Content-Length`` is checked first (nothing is read), then the body is read
    with a running count, since a chunked body declares no length. The body is buffered (it is
    at most ``max_bytes``) and replayed to the app, which also reads it for idempotency
    fingerprints.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await error_response(400, "bad_request", "Content-Length is not a number")(
                    scope, receive, send
                )
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if body and not is_json_content_type(headers.get("content-type")):
            await error_response(
                415,
                "unsupported_media_type",
                "request bodies must be JSON: send Content-Type: application/json",
            )(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"request bodies are limited to {self.max_bytes} bytes",
            {"max_bytes": self.max_bytes},
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
