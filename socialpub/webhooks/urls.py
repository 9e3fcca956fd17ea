"""Which URLs may receive webhooks, and where exactly a delivery connects.

Rules (checked when an endpoint is added and again at every delivery, after DNS resolution):

* ``https`` in live mode; ``http`` or ``https`` in test mode (the sandbox);
* no user name or password in the URL, and a host;
* only public addresses, as :mod:`socialpub.addresses` decides for media downloads too: no
  private, loopback, link-local (169.254/16 — cloud metadata — and fe80::/10), CGNAT,
  documentation, benchmarking, multicast, reserved or unspecified address, nor one of those
  wrapped in an IPv6 translation form (IPv4-mapped, NAT64, 6to4, Teredo). ``allow_loopback``
  admits loopback alone (the operator of ``socialpub dev``, and the CLI when it talks to that
  stack, set it so local receivers work).

A hostname is resolved *once* per attempt and the connection goes to an address that passed the
check (with the original ``Host`` header and TLS server name), so DNS rebinding between the check
and the connection cannot reach an internal address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from socialpub import addresses

__all__ = ["Resolved", "UrlRefused", "check_address", "check_url", "resolve"]

IPAddress = addresses.IPAddress
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``: :func:`resolve`'s DNS lookup, replaceable in tests."""


class UrlRefused(ValueError):
    """A URL that may not receive webhooks; ``code`` says which rule it broke."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Resolved:
    """Where one delivery attempt connects."""

    url: str
    """The URL to request: the original one, with the host replaced by the checked address."""
    host_header: str | None
    """The original ``Host`` (``None`` when the URL already named an address)."""
    server_name: str | None
    """The TLS server name to send and verify (``https`` to a hostname), else ``None``."""
    address: str


def _address(host: str) -> IPAddress | None:
    return addresses.parse_address(host)


def check_address(address: str | IPAddress, *, allow_loopback: bool = False) -> None:
    """Raise :class:`UrlRefused` unless ``address`` is public (or allowed loopback)."""
    ip = addresses.parse_address(address) if isinstance(address, str) else address
    if ip is None:
        raise UrlRefused("invalid_url", f"{address!r} is not an address")
    refused = addresses.refusal(ip, allow_loopback=allow_loopback)
    if refused is not None:
        raise UrlRefused(refused.code, f"{ip} is {refused.reason}")


def check_url(url: str, *, live: bool, allow_loopback: bool = False) -> tuple[str, str, int]:
    """The static rules (no DNS): returns ``(scheme, host, port)`` or raises :class:`UrlRefused`.

    A host given as an address literal is checked here; a hostname at :func:`resolve`.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("invalid_url", f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("invalid_scheme", f"{url!r}: use https:// (or http:// in test mode)")
    if live and scheme != "https":
        raise UrlRefused("https_required", "live endpoints must use https://")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials_in_url", "the URL must not contain a user name or password")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlRefused("invalid_url", f"{url!r} has no host")
    if addresses.is_local_name(host) and not allow_loopback:
        raise UrlRefused("loopback_address", f"{host} is a loopback address")
    literal = _address(host)
    if literal is not None:
        check_address(literal, allow_loopback=allow_loopback)
    return scheme, host, port or (443 if scheme == "https" else 80)


async def _getaddrinfo(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve(
    url: str, *, live: bool, allow_loopback: bool = False, resolver: Resolver | None = None
) -> Resolved:
    """Check ``url``, resolve its host, and pick the address to connect to.

    Every address the name resolves to must pass (a name that also points inside is refused,
    not worked around). Raises :class:`UrlRefused`; DNS failures raise ``OSError``.
    """
    scheme, host, port = check_url(url, live=live, allow_loopback=allow_loopback)
    literal = _address(host)
    if literal is not None:
        return Resolved(url=url, host_header=None, server_name=None, address=str(literal))
    found = await (resolver or _getaddrinfo)(host, port)
    if not found:
        raise OSError(f"{host} has no address")
    for address in found:
        check_address(address, allow_loopback=allow_loopback)
    chosen = ipaddress.ip_address(found[0].split("%")[0])
    parts = urlsplit(url.strip())
    literal_host = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = literal_host if parts.port is None else f"{literal_host}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return Resolved(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host_header=host_header,
        server_name=host if scheme == "https" else None,
        address=str(chosen),
    )
