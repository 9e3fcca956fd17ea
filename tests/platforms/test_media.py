"""Media fetching refuses to be a proxy into private networks (SSRF), and caps size and time."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from socialpub.platforms.base import TransientError
from socialpub.platforms.media import MediaFetcher, MediaRefused, check_address
from socialpub.platforms.settings import PlatformSettings
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert check_address(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert check_address(ipaddress.ip_address(address)) is None


def test_the_loopback_setting_admits_loopback_only() -> None:
    assert check_address(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert check_address(ipaddress.ip_address("::1"), allow_loopback=True) is None
    assert check_address(ipaddress.ip_address("10.0.0.1"), allow_loopback=True) is not None
    assert check_address(ipaddress.ip_address("169.254.169.254"), allow_loopback=True) is not None


async def fetch(settings: PlatformSettings, url: str) -> Any:
    fetcher = MediaFetcher(settings)
    try:
        return await fetcher.fetch(url)
    finally:
        await fetcher.aclose()


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://example.com/a.jpg", "media_not_https"),
        ("ftp://example.com/a.jpg", "media_not_https"),
        ("file:///etc/passwd", "media_not_https"),
        ("https://user:pass@example.com/a.jpg", "media_refused"),
        ("https://127.0.0.1/a.jpg", "media_address_refused"),
        ("https://[::1]/a.jpg", "media_address_refused"),
        ("https://169.254.169.254/latest/meta-data/", "media_address_refused"),
        ("https://10.0.0.5:8443/a.jpg", "media_address_refused"),
        ("https://localhost/a.jpg", "media_address_refused"),
    ],
)
async def test_refused_urls(url: str, code: str) -> None:
    with pytest.raises(MediaRefused) as caught:
        await fetch(PlatformSettings(), url)
    assert caught.value.code == code


async def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving to a public *and* a private address is refused (no picking the good one)."""

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    with pytest.raises(MediaRefused) as caught:
        await fetch(PlatformSettings(), "https://cdn.example.com/a.jpg")
    assert "10.0.0.7" in caught.value.message


async def test_loopback_allowed_by_the_setting(fakes: Fakes) -> None:
    fetched = await fetch(fakes.settings(), fakes.media.jpeg("ok"))
    assert fetched.content_type == "image/jpeg"
    [seen] = fakes.media.requests
    assert seen.headers["Host"].startswith("127.0.0.1:")


async def test_a_redirect_to_a_private_address_is_refused(fakes: Fakes) -> None:
    url = f"{fakes.media.url}/redirect?to=https://10.0.0.1/secret.jpg"
    with pytest.raises(MediaRefused) as caught:
        await fetch(fakes.settings(), url)
    assert caught.value.code == "media_address_refused"


async def test_a_redirect_to_a_good_image_is_followed(fakes: Fakes) -> None:
    url = f"{fakes.media.url}/redirect?to={fakes.media.jpeg('target')}"
    fetched = await fetch(fakes.settings(), url)
    assert fetched.content.startswith(b"\xff\xd8")


async def test_size_cap(fakes: Fakes) -> None:
    with pytest.raises(MediaRefused) as caught:
        await fetch(fakes.settings(media_max_bytes=8 * 1024 * 1024), f"{fakes.media.url}/big.jpg")
    assert caught.value.code == "media_too_large"


async def test_not_an_image(fakes: Fakes) -> None:
    with pytest.raises(MediaRefused) as caught:
        await fetch(fakes.settings(), f"{fakes.media.url}/img/notes.txt")
    assert caught.value.code == "media_unsupported_type"


async def test_timeout(fakes: Fakes) -> None:
    fakes.media.inject("GET", "^/img/", Fault(kind="timeout", delay=2.0))
    with pytest.raises(TransientError) as caught:
        await fetch(fakes.settings(media_timeout_seconds=0.3), fakes.media.jpeg())
    assert caught.value.code == "media_timeout"


async def test_tls_is_verified(fakes: Fakes) -> None:
    with pytest.raises(TransientError) as caught:
        await fetch(fakes.settings(media_ca_file=None), fakes.media.jpeg())
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
