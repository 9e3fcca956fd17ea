"""May socialpub connect to this address? One answer for media downloads and webhook deliveries.

Both fetch URLs that someone outside the cluster chose (an integrator's media URL, a tenant's
webhook endpoint), so both must refuse anything that is not a public Internet host: otherwise the
operator becomes a proxy into its own network (SSRF) — the cloud metadata service, the Kubernetes
API, a database on a private address. This module is the only place that decides it; the callers
resolve names, call :func:`refusal` for *every* address, and connect to an address that passed.

The rule is an allow-list by structure, built from the IANA special-purpose registries
(RFC 6890 and its updates):

* IPv4: everything except the special-purpose blocks in :data:`_V4_BLOCKS`;
* IPv6: only global unicast (``2000::/3``) minus the special blocks in :data:`_V6_BLOCKS`;
* addresses that *carry* an IPv4 address (IPv4-mapped ``::ffff:0:0/96``, NAT64 ``64:ff9b::/96``,
  6to4 ``2002::/16``, Teredo ``2001::/32``) are judged by the IPv4 address they lead to (both of
  Teredo's), so ``2002:a9fe:a9fe::`` is refused like ``169.254.169.254``.

``allow_loopback`` is the one development allowance (``socialpub dev``'s local webhook receivers,
tests serving images from 127.0.0.1): it admits loopback — ``127.0.0.0/8``, ``::1`` and the
IPv4-mapped form of 127/8 — and nothing else; loopback reached through a translation prefix
(6to4, NAT64, Teredo) stays refused, because no local receiver is reached that way.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

__all__ = ["IPAddress", "Refusal", "is_local_name", "parse_address", "refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Code = Literal["loopback_address", "link_local_address", "private_address", "non_public_address"]


@dataclass(frozen=True)
class Refusal:
    """Why an address may not be connected to: a stable ``code`` and the block it falls in."""

    code: Code
    reason: str
    """``"a private address (10.0.0.0/8)"``, …: reads after "<address> is"."""


_Block = tuple[str, Code, str]

_V4_BLOCKS: tuple[_Block, ...] = (
    ("0.0.0.0/8", "non_public_address", "a 'this network' address"),
    ("10.0.0.0/8", "private_address", "a private address"),
    ("100.64.0.0/10", "non_public_address", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "loopback_address", "a loopback address"),
    ("169.254.0.0/16", "link_local_address", "a link-local address (cloud metadata)"),
    ("172.16.0.0/12", "private_address", "a private address"),
    ("192.0.0.0/24", "non_public_address", "an IETF protocol assignment"),
    ("192.0.2.0/24", "non_public_address", "a documentation address"),
    ("192.88.99.0/24", "non_public_address", "the deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private_address", "a private address"),
    ("198.18.0.0/15", "non_public_address", "a benchmarking address"),
    ("198.51.100.0/24", "non_public_address", "a documentation address"),
    ("203.0.113.0/24", "non_public_address", "a documentation address"),
    ("224.0.0.0/4", "non_public_address", "a multicast address"),
    ("240.0.0.0/4", "non_public_address", "a reserved (or broadcast) address"),
)

_V6_BLOCKS: tuple[_Block, ...] = (
    ("::/128", "non_public_address", "the unspecified address"),
    ("::1/128", "loopback_address", "a loopback address"),
    ("::/96", "non_public_address", "a deprecated IPv4-compatible address"),
    ("64:ff9b:1::/48", "non_public_address", "a local-use NAT64 address"),
    ("100::/64", "non_public_address", "a discard-only address"),
    ("2001::/23", "non_public_address", "an IETF protocol assignment"),
    ("2001:db8::/32", "non_public_address", "a documentation address"),
    ("3fff::/20", "non_public_address", "a documentation address"),
    ("5f00::/16", "non_public_address", "a segment-routing (SRv6) SID"),
    ("fc00::/7", "private_address", "a unique local (private) address"),
    ("fe80::/10", "link_local_address", "a link-local address"),
    ("fec0::/10", "private_address", "a deprecated site-local (private) address"),
    ("ff00::/8", "non_public_address", "a multicast address"),
)

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")

_V4 = tuple((ipaddress.IPv4Network(net), code, what) for net, code, what in _V4_BLOCKS)
_V6 = tuple((ipaddress.IPv6Network(net), code, what) for net, code, what in _V6_BLOCKS)

_LOCAL_NAMES = ("localhost", "localhost.localdomain")


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an address (brackets and an IPv6 zone id dropped), or ``None`` for a name."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def is_local_name(host: str) -> bool:
    """``localhost`` and ``*.localhost`` (RFC 6761): names that always mean this machine."""
    host = host.lower().rstrip(".")
    return host in _LOCAL_NAMES or host.endswith(".localhost")


def _block(ip: IPAddress) -> tuple[Code, str, str] | None:
    if isinstance(ip, ipaddress.IPv4Address):
        for net4, code, what in _V4:
            if ip in net4:
                return code, what, str(net4)
        return None
    for net6, code, what in _V6:
        if ip in net6:
            return code, what, str(net6)
    if ip not in _GLOBAL_UNICAST_V6:
        return "non_public_address", "not an IPv6 global unicast address", "outside 2000::/3"
    return None


def _carried_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """The IPv4 address(es) an IPv6 address leads to, and the translation's name."""
    if ip in _MAPPED:
        return "IPv4-mapped", [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip in _NAT64:
        return "NAT64", [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip in _SIX_TO_FOUR:
        return "6to4", [ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)]
    if ip in _TEREDO and ip.teredo is not None:
        server, client = ip.teredo
        return "Teredo", [server, client]
    return None


def refusal(ip: IPAddress, *, allow_loopback: bool = False) -> Refusal | None:
    """Why ``ip`` must not be connected to, or ``None`` if it is a public address.

    ``allow_loopback`` admits loopback only (plain or IPv4-mapped), for development.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        carried = _carried_ipv4(ip)
        if carried is not None:
            kind, inner = carried
            for v4 in inner:
                found = refusal(v4, allow_loopback=allow_loopback and kind == "IPv4-mapped")
                if found is not None:
                    return Refusal(found.code, f"{found.reason}, reached through {kind}")
            return None
    block = _block(ip)
    if block is None:
        return None
    code, what, net = block
    if code == "loopback_address" and allow_loopback:
        return None
    return Refusal(code, f"{what} ({net})")
