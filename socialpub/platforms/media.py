"""Fetching a post's images for upload, without becoming a proxy into the operator's network.

Media URLs come from integrators, so the fetch is treated as hostile input (SSRF):

* only ``https`` URLs (no credentials in the URL), on the default or an explicit port;
* the host name is resolved once, and **every** address it resolves to must be public, as
  :mod:`socialpub.addresses` decides for webhook deliveries too: private, loopback, link-local
  (cloud metadata at 169.254.169.254), CGNAT, documentation, multicast, reserved and unspecified
  addresses are refused, as are IPv4-mapped/NAT64/6to4/Teredo forms of them;
* the connection goes to the address that was checked (no second DNS lookup a rebinding attack
  could answer differently), with TLS verified against the original host name;
* redirects are followed by hand, at most three, each hop checked the same way;
* the body is capped (``Content-Length`` first, then while streaming) and the whole fetch has a
  deadline.

``SOCIALPUB_ALLOW_LOOPBACK_MEDIA=1`` admits loopback addresses (and nothing else) for tests that
serve images from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from socialpub import addresses
from socialpub.platforms._http import new_client
from socialpub.platforms.base import PermanentError, TransientError
from socialpub.platforms.settings import PlatformSettings

__all__ = ["Fetched", "MediaFetcher", "MediaRefused", "check_address", "sniff_image_type"]

_MAX_REDIRECTS = 3

IPAddress = addresses.IPAddress


class MediaRefused(PermanentError):
    """The URL may not be fetched (scheme, address, size, type): retrying cannot help."""

    def __init__(self, message: str, *, code: str = "media_refused") -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class Fetched:
    url: str
    content: bytes
    content_type: str
    """The type sniffed from the bytes (``image/jpeg``, ``image/png``, ``image/gif``), not the header."""


def check_address(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why ``ip`` must not be fetched from (``None`` if it may): :func:`socialpub.addresses.refusal`."""
    refused = addresses.refusal(ip, allow_loopback=allow_loopback)
    return None if refused is None else refused.reason


def sniff_image_type(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


class MediaFetcher:
    """Downloads images over one pooled client, with the checks above."""

    def __init__(self, settings: PlatformSettings) -> None:
        self._settings = settings
        self._http = new_client(
            timeout=settings.media_timeout_seconds,
            max_connections=settings.max_connections,
            verify=ssl.create_default_context(cafile=settings.media_ca_file)
            if settings.media_ca_file
            else True,
            trust_env=False,  # no proxies from the environment: the address checks must hold
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            return [literal]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise TransientError(f"media host {host!r} does not resolve: {exc}", code="media_dns") from exc
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise TransientError(f"media host {host!r} has no address", code="media_dns")
        return addresses

    async def _checked(self, url: str) -> tuple[httpx.URL, str, IPAddress]:
        """The URL to connect to (the checked address), the original host, and that address."""
        try:
            parts = urlsplit(url)
            port = parts.port or 443
        except ValueError as exc:
            raise MediaRefused(f"media URL {url!r} is malformed") from exc
        if parts.scheme != "https":
            raise MediaRefused(f"media URL {url!r} is not https", code="media_not_https")
        if parts.username or parts.password:
            raise MediaRefused("media URLs must not carry credentials")
        host = parts.hostname
        if not host:
            raise MediaRefused(f"media URL {url!r} has no host")
        addresses = await self._resolve(host, port)
        for ip in addresses:
            reason = check_address(ip, allow_loopback=self._settings.allow_loopback_media)
            if reason is not None:
                raise MediaRefused(
                    f"media host {host!r} resolves to {ip}, {reason}: refused", code="media_address_refused"
                )
        ip = addresses[0]
        netloc = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
        pinned = httpx.URL(url).copy_with(host=netloc.strip("[]"), port=port)
        return pinned, host, ip

    async def fetch(self, url: str) -> Fetched:
        """The image at ``url``; :class:`MediaRefused` (permanent) or :class:`TransientError`."""
        try:
            async with asyncio.timeout(self._settings.media_timeout_seconds):
                return await self._fetch(url)
        except TimeoutError as exc:
            raise TransientError(f"fetching {url} took too long", code="media_timeout") from exc

    async def _fetch(self, url: str) -> Fetched:
        cap = self._settings.media_max_bytes
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            pinned, host, _ip = await self._checked(current)
            headers = {"Host": _host_header(current), "Accept": "image/*"}
            request = self._http.build_request(
                "GET", pinned, headers=headers, extensions={"sni_hostname": host}
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise TransientError(f"fetching {current} failed: {exc}", code="media_fetch_failed") from exc
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise MediaRefused(f"{current} redirects without a Location")
                    current = urljoin(current, location)
                    continue
                if response.status_code >= 500 or response.status_code in (408, 429):
                    raise TransientError(
                        f"fetching {current} answered {response.status_code}", code="media_fetch_failed"
                    )
                if response.status_code != 200:
                    raise MediaRefused(
                        f"fetching {current} answered {response.status_code}", code="media_unavailable"
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > cap:
                    raise MediaRefused(
                        f"{current} is {declared} bytes; the limit is {cap}", code="media_too_large"
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise MediaRefused(
                            f"{current} is over the limit of {cap} bytes", code="media_too_large"
                        )
                    chunks.append(chunk)
            except httpx.HTTPError as exc:
                raise TransientError(f"fetching {current} failed: {exc}", code="media_fetch_failed") from exc
            finally:
                await response.aclose()
            content = b"".join(chunks)
            kind = sniff_image_type(content)
            if kind is None:
                raise MediaRefused(
                    f"{current} is not a JPEG, PNG or GIF image", code="media_unsupported_type"
                )
            return Fetched(url, content, kind)
        raise MediaRefused(f"{url} redirects more than {_MAX_REDIRECTS} times")


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host
