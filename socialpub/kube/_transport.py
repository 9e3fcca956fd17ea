"""The HTTP underneath :class:`~socialpub.kube.client.KubeClient`: aiohttp, with httpx's errors.

Why not httpx, as elsewhere: its connection pool (httpcore) spends CPU per request that grows
with the requests in flight (encode/httpx#3215), and its URL parsing costs a quarter of a
millisecond per call. At 64 concurrent status patches against the embedded API, httpx managed
~80/s at ~7 ms of client CPU each; aiohttp several times that. The operator writes thousands of
statuses when many posts fall due at once, so this matters.

Callers (the api, the CLI) catch ``httpx.HTTPError`` for "cannot reach the Kubernetes API", so
every transport failure here is raised as the httpx error of the same meaning.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

__all__ = ["HttpCore", "RawResponse", "ssl_context"]


def ssl_context(verify: bool | str, cert: tuple[str, str] | None) -> ssl.SSLContext:
    """What ``httpx.AsyncClient(verify=..., cert=...)`` would have used."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str):
        context = ssl.create_default_context(cafile=verify)
    else:
        import certifi  # httpx's default trust store

        context = ssl.create_default_context(cafile=certifi.where())
    if cert is not None:
        context.load_cert_chain(cert[0], cert[1])
    return context


def _proxy_for(base_url: str) -> str | None:
    """``$HTTPS_PROXY``/``$HTTP_PROXY`` unless ``$NO_PROXY`` exempts the host — decided once, not
    per request (aiohttp's ``trust_env`` does it per request, in a thread)."""
    parts = urllib.parse.urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def translate(exc: BaseException, method: str, url: str) -> httpx.TransportError:
    """The httpx error for an aiohttp (or timeout) failure."""
    request = httpx.Request(method, url)
    message = f"{method} {url}: {exc or type(exc).__name__}"
    error: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = httpx.ConnectTimeout
    elif isinstance(exc, TimeoutError):  # aiohttp.SocketTimeoutError, asyncio's
        error = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError):
        error = httpx.ConnectError
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        error = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        error = httpx.ReadError
    else:
        error = httpx.TransportError
    return error(message, request=request)


@dataclass(frozen=True)
class RawResponse:
    status: int
    reason: str
    body: bytes


class HttpCore:
    """One pooled aiohttp session per event loop (created by the first request in it)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        max_connections: int,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.base_url = base_url
        self._headers = dict(headers)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._connect_timeout = timeout
        self._limit = max_connections
        self._tls = tls
        self._proxy = _proxy_for(base_url)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=self._limit, ssl=self._tls or False),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._loop = loop
        return self._session

    @staticmethod
    def _params(params: Mapping[str, Any] | None) -> dict[str, str] | None:
        return {k: str(v) for k, v in params.items()} if params else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> RawResponse:
        url = self.base_url + path
        headers = {"Content-Type": content_type} if content_type else None
        try:
            async with self._session_here().request(
                method,
                url,
                params=self._params(params),
                data=content,
                headers=headers,
                timeout=self._timeout,
                proxy=self._proxy,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return RawResponse(response.status, response.reason or "", body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translate(exc, method, url) from exc

    async def stream_lines(
        self, path: str, *, params: Mapping[str, Any], read_timeout: float
    ) -> AsyncIterator[RawResponse | bytes]:
        """GET ``path``: first a :class:`RawResponse` (with the body if the status is an error),
        then the body's lines, however long, as they arrive."""
        url = self.base_url + path
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._connect_timeout, sock_read=read_timeout
        )
        try:
            async with self._session_here().get(
                url, params=self._params(params), timeout=timeout, proxy=self._proxy, allow_redirects=False
            ) as response:
                if response.status >= 400:
                    yield RawResponse(response.status, response.reason or "", await response.read())
                    return
                yield RawResponse(response.status, response.reason or "", b"")
                pending = b""
                async for chunk in response.content.iter_any():
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line
                if pending:
                    yield pending
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise translate(exc, "GET", url) from exc

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
