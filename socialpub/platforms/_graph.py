"""What Facebook Pages and Instagram share: the Graph API's error object, its usage headers, and
how calls carry the token (``access_token`` as a query parameter, as Meta's own examples do;
the httpx log records are redacted), and how a "did it land?" lookup pages through a listing.

Errors are classified by ``code`` / ``error_subcode`` / ``is_transient``, never by HTTP status:
Graph answers 400 for most of them, including expired tokens and throttling.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from socialpub.platforms._http import LookupTooDeep, parse_time, retry_after_seconds, same_origin, send
from socialpub.platforms.base import (
    Deferred,
    PermanentError,
    PublishError,
    ReconnectError,
    TransientError,
)

__all__ = [
    "PAGE_SIZE",
    "GraphError",
    "Usage",
    "answer_body",
    "classify",
    "find_listed",
    "graph_error",
    "json_body",
    "send_graph",
]

logger = logging.getLogger(__name__)

THROTTLE_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80001, 80010))
EXPIRED_SUBCODES = frozenset({463, 467})
"""Token subcodes that mean "expired/invalid" (reconnect) rather than "revoked"."""
IG_PERMANENT_SUBCODES = frozenset(
    {
        2207004,
        2207005,
        2207009,
        2207010,
        2207023,
        2207026,
        2207028,
        2207035,
        2207036,
        2207037,
        2207040,
        2207051,
        2207057,
    }
)
IG_TRANSIENT_SUBCODES = frozenset({2207001, 2207003, 2207008, 2207027, 2207052})
IG_NEW_CONTAINER_SUBCODES = frozenset({2207006, 2207020, 2207032, 2207053})
"""The container is gone or broken: make a new one, then retry."""
IG_QUOTA_SUBCODE = 2207042
NOT_READY_SUBCODE = 2207027
DUPLICATE_CODE = 506
PAGE_SIZE = 100
"""Items per page of a listing read by a lookup (Graph's largest ``limit``)."""


@dataclass(frozen=True)
class GraphError:
    status: int
    code: int | None
    subcode: int | None
    message: str
    is_transient: bool
    raw: dict[str, Any]


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def send_graph(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    token: str,
    deadline: float,
    params: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> httpx.Response:
    """One Graph request (within ``deadline``), the token as its ``access_token`` parameter."""
    return await send(
        http, method, url, deadline=deadline, params={**(params or {}), "access_token": token}, data=data
    )


def answer_body(response: httpx.Response) -> dict[str, Any] | None:
    """The body of a successful answer; ``None`` for an error (:func:`graph_error` reads it):
    Graph can answer 200 with an ``error`` object."""
    if response.status_code == 200:
        body = json_body(response)
        if "error" not in body:
            return body
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def graph_error(response: httpx.Response) -> GraphError:
    body = json_body(response)
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(error, dict)
    return GraphError(
        status=response.status_code,
        code=_int(error.get("code")),
        subcode=_int(error.get("error_subcode")),
        message=str(error.get("message") or response.text[:300]),
        is_transient=bool(error.get("is_transient")),
        raw=error,
    )


def classify(
    platform: str,
    what: str,
    error: GraphError,
    *,
    headers: httpx.Headers,
    throttle_retry: float | None = None,
    quota_retry: float = 3600.0,
) -> PublishError:
    """A Graph error as transient / deferred / permanent / reconnect (see docs/platforms.md)."""
    code, sub = error.code, error.subcode
    label = f"{code}" + (f"/{sub}" if sub else "")
    message = f"{platform}: {what} failed ({label}): {error.message}"
    if code == 190:
        return ReconnectError(
            message, code=f"{platform}_token_invalid", revoked=sub not in EXPIRED_SUBCODES and sub is not None
        )
    if code == 10 or (code is not None and 200 <= code <= 299):
        return ReconnectError(message, code=f"{platform}_permission_missing", revoked=True)
    if sub == 2207050 or code == 25:
        return ReconnectError(message, code=f"{platform}_account_restricted", revoked=True)
    if code == 368:
        if sub == 1404078:
            return ReconnectError(message, code=f"{platform}_authorization_incomplete", revoked=True)
        return PermanentError(message, code=f"{platform}_blocked")
    if sub == IG_QUOTA_SUBCODE or code == 9:
        return Deferred(message, code=f"{platform}_quota_exhausted", retry_after=quota_retry)
    if sub in IG_PERMANENT_SUBCODES:
        return PermanentError(message, code=f"{platform}_media_rejected_{sub}")
    if sub in IG_TRANSIENT_SUBCODES or sub in IG_NEW_CONTAINER_SUBCODES or code in (-1, -2, 9004, 9007):
        return TransientError(
            message, code=f"{platform}_{'not_ready' if sub == NOT_READY_SUBCODE else 'media_retry'}"
        )
    if code in THROTTLE_CODES or code == 341:
        retry = throttle_retry if throttle_retry else (3600.0 if code == 341 else 300.0)
        return TransientError(message, code=f"{platform}_throttled", retry_after=retry)
    if code in (1, 2) or error.is_transient or error.status >= 500:
        return TransientError(
            message, code=f"{platform}_server_error", retry_after=retry_after_seconds(headers)
        )
    if code == DUPLICATE_CODE:
        return PermanentError(message, code=f"{platform}_duplicate")
    return PermanentError(message, code=f"{platform}_invalid_request")


class Usage:
    """Graph's usage headers, remembered per app and per Page / business, to slow down before
    being throttled (``X-App-Usage``, ``X-Page-Usage``, ``X-Business-Use-Case-Usage``; percent).

    Below ``slowdown`` percent calls go out at once; between ``slowdown`` and ``stop`` each call
    waits a little (up to ``max_pause`` seconds, growing with the usage); at ``stop`` publishing
    is deferred until ``estimated_time_to_regain_access`` (or an hour for app-level usage).
    """

    def __init__(self, *, slowdown: float, stop: float, max_pause: float = 2.0) -> None:
        self._slowdown = slowdown
        self._stop = stop
        self._max_pause = max_pause
        self._seen: dict[str, tuple[float, float, float]] = {}
        """key -> (percent, seconds to regain access, observed at)."""

    def observe(self, headers: httpx.Headers, *, page_id: str | None = None) -> None:
        now = time.time()
        for name in ("x-app-usage", "x-page-usage"):
            raw = headers.get(name)
            if raw:
                usage = _loads(raw)
                if isinstance(usage, dict):
                    key = "app" if name == "x-app-usage" else f"page:{page_id or ''}"
                    self._seen[key] = (_percent(usage), 0.0, now)
        raw = headers.get("x-business-use-case-usage")
        if raw:
            usage = _loads(raw)
            if isinstance(usage, dict):
                for business, entries in usage.items():
                    for entry in entries if isinstance(entries, list) else []:
                        if isinstance(entry, dict):
                            regain = float(entry.get("estimated_time_to_regain_access") or 0) * 60
                            self._seen[f"page:{business}"] = (_percent(entry), regain, now)

    def _current(self, page_id: str) -> tuple[float, float]:
        """The highest live usage that applies to ``page_id``, and the wait to regain access."""
        now = time.time()
        worst, regain = 0.0, 0.0
        for key in ("app", f"page:{page_id}"):
            seen = self._seen.get(key)
            if seen is None:
                continue
            percent, wait, at = seen
            lifetime = wait if wait > 0 else 3600.0
            if percent >= self._stop and now - at > lifetime:
                continue  # the window that was full has passed; let a call find out the new usage
            if percent > worst:
                worst, regain = percent, max(0.0, at + lifetime - now)
        return worst, regain

    def regain(self, page_id: str) -> float:
        """Seconds until the fullest usage window that applies to ``page_id`` has passed."""
        return self._current(page_id)[1]

    def deferral(self, page_id: str) -> float | None:
        """Seconds to hold off before any call for ``page_id`` (``None``: go ahead)."""
        percent, regain = self._current(page_id)
        return max(regain, 1.0) if percent >= self._stop else None

    async def pace(self, page_id: str) -> None:
        """Space calls out as the usage nears the limit."""
        percent, _ = self._current(page_id)
        if percent > self._slowdown:
            span = max(1.0, self._stop - self._slowdown)
            await asyncio.sleep(min(self._max_pause, self._max_pause * (percent - self._slowdown) / span))


def _loads(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        logger.debug("unparseable usage header %r", raw)
        return None


def _percent(usage: dict[str, Any]) -> float:
    values = [usage.get(k) for k in ("call_count", "total_time", "total_cputime")]
    return max((float(v) for v in values if isinstance(v, int | float)), default=0.0)


async def find_listed(
    fetch: Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]],
    *,
    platform: str,
    base: str,
    fields: str,
    time_field: str,
    since: float,
    earliest: float,
    max_pages: int,
    matches: Callable[[dict[str, Any]], bool],
    elsewhere: str,
) -> dict[str, Any] | None:
    """The first item of a Graph listing (newest first, from ``earliest``) that ``matches``.

    ``fetch(params, url)`` reads one page: the first from the listing's path with ``params``,
    then the full ``paging.next`` URL Graph gave (``url``) with that URL's own query less its
    ``access_token`` (the caller adds the token again). Paging stops at the end of the list or
    at the first page that reaches back past ``earliest`` (``None``: not there); a ``next`` link
    on another host is never followed (the token would go with it: :class:`TransientError` with
    the message ``elsewhere``), and a listing deeper than ``max_pages`` is :class:`LookupTooDeep`
    (an account busier than a lookup may read: not "not found")."""
    params: dict[str, Any] = {"fields": fields, "since": str(int(earliest)), "limit": str(PAGE_SIZE)}
    url: str | None = None
    for _ in range(max(1, max_pages)):
        body = await fetch(params, url)
        items = [i for i in body.get("data") or [] if isinstance(i, dict) and i.get("id")]
        times = [t for i in items if (t := parse_time(i.get(time_field))) is not None]
        for item in items:
            created = parse_time(item.get(time_field))
            if created is not None and created < earliest:
                continue
            if matches(item):
                return item
        following = (body.get("paging") or {}).get("next")
        if not items or min(times, default=earliest) < earliest or not isinstance(following, str):
            return None  # the end of the list, or past the window's start
        if not same_origin(following, base):
            raise TransientError(f"{platform}: {elsewhere}; not following it", code=f"{platform}_bad_paging")
        next_url = httpx.URL(following)
        params = {k: v for k, v in next_url.params.items() if k != "access_token"}
        url = str(next_url.copy_with(query=None))
    raise LookupTooDeep(platform, max_pages, since)
