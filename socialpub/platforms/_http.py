"""What the platform adapters share about HTTP: the pooled client, timeouts, Retry-After, the
"did the request reach the platform?" question, and keeping tokens out of logs."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import os
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import certifi
import httpx

from socialpub.platforms.base import (
    Deferred,
    OutcomeUnknown,
    PermanentError,
    PublishError,
    PublishRequest,
    TransientError,
)

__all__ = [
    "UNCONFIRMED",
    "LookupTooDeep",
    "ambiguous",
    "create_failed",
    "format_time",
    "install_token_redaction",
    "looked_up",
    "lookup_failed_after_unknown",
    "mark_unconfirmed",
    "new_client",
    "parse_time",
    "retry_after_seconds",
    "same_origin",
    "send",
    "transport_error",
    "unconfirmed_create",
    "unconfirmed_since",
]

UNCONFIRMED = "unconfirmedSince"
"""``platformState`` key: start of the earliest create whose outcome is unknown (RFC 3339)."""

_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s\"']+")


class _RedactTokens(logging.Filter):
    """httpx logs every request URL at INFO; Graph API calls carry ``access_token`` in the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _TOKEN_IN_URL.sub(r"\1REDACTED", str(a)) if isinstance(a, str | httpx.URL) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        if isinstance(record.msg, str) and "access_token=" in record.msg:
            record.msg = _TOKEN_IN_URL.sub(r"\1REDACTED", record.msg)
        return True


_redaction_installed = False


def install_token_redaction() -> None:
    """Redact ``access_token=…`` from httpx's and httpcore's log records (idempotent)."""
    global _redaction_installed
    if _redaction_installed:
        return
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).addFilter(_RedactTokens())
    _redaction_installed = True


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """The CA bundle httpx would use (``SSL_CERT_FILE``/``SSL_CERT_DIR`` if set, else certifi's),
    loaded once per process rather than once per client."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


_SHARD_CONNECTIONS = 8


class PooledTransport(httpx.AsyncBaseTransport):
    """A keep-alive connection pool made of small httpcore pools, each request sent on the least
    busy one.

    httpcore's pool does O(requests in flight x connections) work every time a request starts or
    ends, so one pool of 64 connections with 64 requests in flight spends milliseconds of CPU per
    request (measured: 64 concurrent 50 ms calls took 1.5 s instead of 0.06 s). Pools of eight
    connections keep that cost flat; together they are the one pool of the platform's client.
    """

    def __init__(self, *, max_connections: int, keepalive_expiry: float, verify: ssl.SSLContext) -> None:
        shards = max(1, -(-max_connections // _SHARD_CONNECTIONS))
        per_shard = max(1, -(-max_connections // shards))
        limits = httpx.Limits(
            max_connections=per_shard, max_keepalive_connections=per_shard, keepalive_expiry=keepalive_expiry
        )
        self._shards = [httpx.AsyncHTTPTransport(verify=verify, limits=limits) for _ in range(shards)]
        self._busy = [0] * shards

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._shards)), key=self._busy.__getitem__)
        self._busy[index] += 1
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            self._busy[index] -= 1
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Released(response.stream, self._busy, index),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


class _Released(httpx.AsyncByteStream):
    """A response body that marks its pool less busy once it is closed."""

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, busy: list[int], index: int
    ) -> None:
        self._stream = stream
        self._busy = busy
        self._index = index
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, httpx.AsyncByteStream)
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            if isinstance(self._stream, httpx.AsyncByteStream):
                await self._stream.aclose()
        finally:
            if not self._closed:
                self._closed = True
                self._busy[self._index] -= 1


def new_client(*, timeout: float, max_connections: int, **kwargs: Any) -> httpx.AsyncClient:
    """One pooled HTTP/1.1 keep-alive client per platform (never one per request)."""
    install_token_redaction()
    verify = kwargs.pop("verify", None) or _default_tls()
    transport = PooledTransport(max_connections=max_connections, keepalive_expiry=30.0, verify=verify)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False, **kwargs
    )


async def send(
    client: httpx.AsyncClient, method: str, url: str, *, deadline: float, **kwargs: Any
) -> httpx.Response:
    """One request with a hard deadline on the whole exchange, answer body included.

    httpx's timeouts bound each phase and each read, so an answer that trickles in could hold a
    call for ever; the operator's claim lease needs a worst case (``max_publish_seconds``). Past
    the deadline the request counts as a read timeout: possibly acted on by the platform.
    """
    try:
        async with asyncio.timeout(deadline):
            return await client.request(method, url, **kwargs)
    except TimeoutError as exc:
        raise httpx.ReadTimeout(f"no complete answer within {deadline:g}s") from exc


def same_origin(url: str, base: str) -> bool:
    """Is ``url`` (a ``next`` link a platform gave us) on the host of ``base``? The token is sent
    with it, so it must never go anywhere else."""
    target, root = httpx.URL(url), httpx.URL(base)
    return (target.scheme, target.host, target.port) == (root.scheme, root.host, root.port)


class LookupTooDeep(OutcomeUnknown):
    """A "did it land?" lookup read its page limit without reaching the attempt's start. "Not
    found" would be a guess that re-sends a post that may be live; the account holds more newer
    posts than a lookup may read, and waiting only adds more, so it needs a person."""

    def __init__(self, platform: str, pages: int, since: float) -> None:
        super().__init__(
            f"{platform}: read {pages} pages of the account's posts without reaching "
            f"{format_time(since)}, when the attempt began; whether it landed is unknown",
            code=f"{platform}_lookup_too_deep",
        )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date), if present and sane."""
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def ambiguous(exc: httpx.HTTPError) -> bool:
    """Could the platform have acted on a request that failed with ``exc``?

    A refused connection or a connect timeout never reached it; a read timeout, a reset or a
    connection closed without an answer may have come after it committed.
    """
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, _NOT_SENT)


def transport_error(
    platform: str, what: str, exc: httpx.HTTPError, *, acted_on: bool = False
) -> TransientError:
    """A transport failure as a transient error; ``acted_on``: the call was a create that the
    platform may still commit (see :attr:`TransientError.ambiguous`)."""
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
    return TransientError(
        f"{platform}: {what} failed: {type(exc).__name__}: {exc}",
        code=f"{platform}_{kind}",
        ambiguous=acted_on,
    )


async def create_failed(
    request: PublishRequest, platform: str, what: str, exc: httpx.HTTPError
) -> TransientError:
    """A create that failed in transport. If it may have reached the platform, its outcome is
    recorded as unknown first (``unconfirmedSince``) and the error is ambiguous, so the operator
    waits out the claim's lease before it looks or re-sends; a create that never left (connection
    refused) is a plain transient error."""
    sent = ambiguous(exc)
    if sent:
        await mark_unconfirmed(request)
    return transport_error(platform, what, exc, acted_on=sent)


async def unconfirmed_create(request: PublishRequest, error: TransientError) -> TransientError:
    """``error`` answered a create that may have been acted on (a 5xx, an answer without an id):
    record the unknown outcome, and make the error ambiguous."""
    await mark_unconfirmed(request)
    error.ambiguous = True
    return error


def lookup_failed_after_unknown(error: PublishError, earlier: float | None) -> PublishError:
    """A "did it land?" lookup that failed cannot say "not published". After a create whose outcome
    is unknown (``earlier``): failed for good (a retired API version, a listing refused 400/404,
    Graph code 100) it means *unknown*, never dead — a person decides; failed for now (a 5xx, a
    timeout) it is retried as an ambiguous failure, so five of them in a row never dead-letter a
    post that may be live. Other failures, and any without an unknown outcome, pass through."""
    if earlier is None:
        return error
    if isinstance(error, TransientError) and not isinstance(error, Deferred):
        # Failing for now: retried, but as ambiguous, so the operator's last attempt is resolved
        # (published, dead only if not found, unknown) rather than dead-lettered blind.
        error.ambiguous = True
        return error
    if not isinstance(error, PermanentError):
        return error
    return OutcomeUnknown(
        f"{error.message} (while checking whether an earlier attempt, begun "
        f"{format_time(earlier)}, landed: its outcome is unknown)",
        code=f"{error.code}_after_unknown_outcome",
    )


_T = TypeVar("_T")


async def looked_up(lookup: Awaitable[_T], earlier: float | None) -> _T:
    """The answer of a "did it land?" read, or its failure as :func:`lookup_failed_after_unknown`
    reads it after an unknown outcome (``earlier``): the one place every adapter's lookup goes
    through, so none can dead-letter a post that may be live."""
    try:
        return await lookup
    except PublishError as exc:
        wrapped = lookup_failed_after_unknown(exc, earlier)
        if wrapped is exc:
            raise
        raise wrapped from exc


def format_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):  # Graph's "2024-05-01T09:30:00+0000"
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def unconfirmed_since(request: PublishRequest) -> float | None:
    """When an earlier create of this target ended with an unknown outcome (``None``: never)."""
    return parse_time(request.platform_state.get(UNCONFIRMED))


async def mark_unconfirmed(request: PublishRequest) -> None:
    """Record durably that a create may have landed, so the next attempt looks before re-sending."""
    if UNCONFIRMED not in request.platform_state:
        await request.checkpoint({UNCONFIRMED: format_time(request.started_at or time.time())})
