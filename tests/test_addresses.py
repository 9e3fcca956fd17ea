"""The one address policy of media downloads and webhook deliveries, block by block.

Each row is an address someone could put in a media URL or a webhook endpoint (or make a DNS
name resolve to); the policy must refuse every non-public one, including those wrapped in an
IPv6 translation form, and the media fetcher and the webhook URL check must agree on each.
"""

from __future__ import annotations

import ipaddress

import pytest

from socialpub import addresses
from socialpub.platforms.media import check_address as media_check
from socialpub.webhooks import urls

REFUSED = [
    # IPv4 special-purpose registry
    ("0.0.0.0", "non_public_address"),
    ("0.1.2.3", "non_public_address"),
    ("10.0.0.1", "private_address"),
    ("10.255.255.255", "private_address"),
    ("100.64.0.1", "non_public_address"),  # CGNAT
    ("100.127.255.254", "non_public_address"),
    ("127.0.0.1", "loopback_address"),
    ("127.8.9.10", "loopback_address"),
    ("169.254.169.254", "link_local_address"),  # cloud metadata
    ("172.16.0.1", "private_address"),
    ("172.31.255.255", "private_address"),
    ("192.0.0.1", "non_public_address"),  # IETF protocol assignments
    ("192.0.0.9", "non_public_address"),
    ("192.0.0.170", "non_public_address"),  # NAT64 discovery
    ("192.0.2.10", "non_public_address"),  # TEST-NET-1
    ("192.88.99.1", "non_public_address"),  # 6to4 relay anycast
    ("192.168.1.1", "private_address"),
    ("198.18.0.1", "non_public_address"),  # benchmarking
    ("198.19.255.255", "non_public_address"),
    ("198.51.100.7", "non_public_address"),  # TEST-NET-2
    ("203.0.113.9", "non_public_address"),  # TEST-NET-3
    ("224.0.0.1", "non_public_address"),  # multicast
    ("239.255.255.250", "non_public_address"),
    ("240.0.0.1", "non_public_address"),  # reserved
    ("255.255.255.255", "non_public_address"),  # broadcast
    # IPv6 special-purpose registry
    ("::", "non_public_address"),
    ("::1", "loopback_address"),
    ("::a00:1", "non_public_address"),  # IPv4-compatible (deprecated)
    ("::808:808", "non_public_address"),  # IPv4-compatible, even of a public address
    ("100::1", "non_public_address"),  # discard-only
    ("2001:db8::1", "non_public_address"),  # documentation
    ("3fff::1", "non_public_address"),  # documentation (RFC 9637)
    ("2001:10::1", "non_public_address"),  # ORCHID, inside 2001::/23
    ("2001:2::1", "non_public_address"),  # benchmarking, inside 2001::/23
    ("5f00::1", "non_public_address"),  # SRv6 SIDs
    ("fc00::1", "private_address"),  # unique local
    ("fd12:3456::1", "private_address"),
    ("fe80::1", "link_local_address"),
    ("febf::1", "link_local_address"),
    ("fec0::1", "private_address"),  # site-local (deprecated)
    ("feff::1", "private_address"),
    ("ff02::1", "non_public_address"),  # multicast
    ("ff0e::1", "non_public_address"),
    ("64:ff9b:1::a00:1", "non_public_address"),  # local-use NAT64, whatever it embeds
    ("64:ff9b:1::808:808", "non_public_address"),
    ("4000::1", "non_public_address"),  # outside global unicast 2000::/3
    ("e000::1", "non_public_address"),
    # IPv4 wrapped in IPv6: judged by what it leads to
    ("::ffff:127.0.0.1", "loopback_address"),  # IPv4-mapped
    ("::ffff:10.0.0.1", "private_address"),
    ("::ffff:169.254.169.254", "link_local_address"),
    ("::ffff:192.0.0.1", "non_public_address"),
    ("64:ff9b::a9fe:a9fe", "link_local_address"),  # NAT64 of 169.254.169.254
    ("64:ff9b::7f00:1", "loopback_address"),  # NAT64 of 127.0.0.1
    ("64:ff9b::c0a8:101", "private_address"),
    ("2002:a00:1::1", "private_address"),  # 6to4 of 10.0.0.1
    ("2002:7f00:1::1", "loopback_address"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "link_local_address"),  # 6to4 of 169.254.169.254
    ("2002:c000:1::", "non_public_address"),  # 6to4 of 192.0.0.1
    ("2002:6440:1::", "non_public_address"),  # 6to4 of 100.64.0.1
    # Teredo: server 65.54.227.120, client 10.0.0.1 (stored inverted: f5ff:fffe)
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private_address"),
    # Teredo: server 10.0.0.1 (private), client 8.8.8.8 (inverted: f7f7:f7f7)
    ("2001:0:a00:1:8000:63bf:f7f7:f7f7", "private_address"),
    # Teredo: server 65.54.227.120, client 127.0.0.1 (inverted: 80ff:fffe)
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback_address"),
]

ALLOWED = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "192.0.1.1",  # just outside 192.0.0.0/24
    "192.31.196.1",  # AS112, globally reachable
    "198.17.255.255",  # just below the benchmarking block
    "100.128.0.1",  # just above CGNAT
    "172.32.0.1",  # just above 172.16/12
    "2606:2800:220:1:248:1893:25c8:1946",
    "2a00:1450:4001:80b::200e",
    "::ffff:93.184.216.34",  # IPv4-mapped public
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo: server 65.54.227.120, client 8.8.8.8
]


@pytest.mark.parametrize(("address", "code"), REFUSED)
def test_non_public_addresses_are_refused_everywhere(address: str, code: str) -> None:
    ip = ipaddress.ip_address(address)
    refused = addresses.refusal(ip)
    assert refused is not None, f"{address} was allowed"
    assert refused.code == code
    assert media_check(ip) == refused.reason
    host = f"[{address}]" if ip.version == 6 else address
    with pytest.raises(urls.UrlRefused) as caught:
        urls.check_url(f"https://{host}/hook", live=True)
    assert caught.value.code == code


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed_everywhere(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert addresses.refusal(ip) is None
    assert media_check(ip) is None
    host = f"[{address}]" if ip.version == 6 else address
    urls.check_url(f"https://{host}/hook", live=True)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_the_development_allowance_admits_loopback(address: str) -> None:
    assert addresses.refusal(ipaddress.ip_address(address), allow_loopback=True) is None


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "169.254.169.254",
        "::ffff:10.0.0.1",
        "fe80::1",
        "fd00::1",
        "0.0.0.0",
        "::",
        "2002:7f00:1::1",  # loopback through 6to4 reaches no local receiver: still refused
        "64:ff9b::7f00:1",  # nor through NAT64
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # nor through Teredo
    ],
)
def test_the_development_allowance_admits_nothing_else(address: str) -> None:
    assert addresses.refusal(ipaddress.ip_address(address), allow_loopback=True) is not None


def test_the_reason_names_the_block_and_the_wrapping() -> None:
    refused = addresses.refusal(ipaddress.ip_address("2002:a9fe:a9fe::1"))
    assert refused is not None
    assert refused.reason == "a link-local address (cloud metadata) (169.254.0.0/16), reached through 6to4"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[::1]", "::1"), ("fe80::1%eth0", "fe80::1"), ("10.0.0.1", "10.0.0.1"), ("example.com", None)],
)
def test_parse_address(text: str, expected: str | None) -> None:
    parsed = addresses.parse_address(text)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    ("host", "local"),
    [("localhost", True), ("LOCALHOST.", True), ("app.localhost", True), ("localhost.example.com", False)],
)
def test_local_names(host: str, local: bool) -> None:
    assert addresses.is_local_name(host) is local
