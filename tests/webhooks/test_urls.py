"""Which URLs may receive webhooks: https in live mode, never an internal address."""

from __future__ import annotations

import pytest

from socialpub.webhooks import urls


@pytest.mark.parametrize(
    ("url", "live", "code"),
    [
        ("http://hooks.example.com/x", True, "https_required"),
        ("ftp://hooks.example.com/x", False, "invalid_scheme"),
        ("https://user:pw@hooks.example.com/x", True, "credentials_in_url"),
        ("https:///x", True, "invalid_url"),
        ("https://hooks.example.com:99999/x", True, "invalid_url"),
        ("https://127.0.0.1/x", True, "loopback_address"),
        ("https://localhost:8443/x", True, "loopback_address"),
        ("https://[::1]/x", True, "loopback_address"),
        ("https://10.1.2.3/x", True, "private_address"),
        ("https://172.16.0.1/x", True, "private_address"),
        ("https://192.168.1.1/x", True, "private_address"),
        ("https://[fd00::1]/x", True, "private_address"),
        ("https://169.254.169.254/latest/meta-data", True, "link_local_address"),
        ("https://[fe80::1]/x", True, "link_local_address"),
        ("https://[::ffff:10.0.0.1]/x", True, "private_address"),
        ("https://[::ffff:127.0.0.1]/x", True, "loopback_address"),
        ("https://0.0.0.0/x", True, "non_public_address"),
        ("https://100.64.0.1/x", True, "non_public_address"),
        ("https://224.0.0.1/x", True, "non_public_address"),
        # Issue 9 item 10b: these passed before the one address policy.
        ("https://[2002:a00:1::1]/x", True, "private_address"),  # 6to4 of 10.0.0.1
        ("https://[2002:a9fe:a9fe::]/x", True, "link_local_address"),  # 6to4 of the metadata service
        ("https://[fec0::1]/x", True, "private_address"),  # site-local
        ("https://192.0.0.1/x", True, "non_public_address"),  # IETF protocol assignments
        ("https://192.0.0.9/x", True, "non_public_address"),
    ],
)
def test_refused(url: str, live: bool, code: str) -> None:
    with pytest.raises(urls.UrlRefused) as refused:
        urls.check_url(url, live=live)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("url", "live"),
    [
        ("https://hooks.example.com/socialpub", True),
        ("http://hooks.example.com/socialpub", False),
        ("https://93.184.216.34:8443/x", True),
        ("https://[2606:4700::1111]/x", True),
    ],
)
def test_accepted(url: str, live: bool) -> None:
    urls.check_url(url, live=live)


def test_loopback_only_when_allowed_and_never_private() -> None:
    urls.check_url("http://127.0.0.1:9000/hook", live=False, allow_loopback=True)
    urls.check_url("https://localhost/hook", live=True, allow_loopback=True)
    with pytest.raises(urls.UrlRefused):
        urls.check_url("http://10.0.0.1/hook", live=False, allow_loopback=True)


def _resolver(*addresses: str) -> urls.Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def test_a_name_is_pinned_to_the_checked_address() -> None:
    resolved = await urls.resolve(
        "https://hooks.example.com:8443/in?x=1", live=True, resolver=_resolver("93.184.216.34")
    )
    assert resolved.url == "https://93.184.216.34:8443/in?x=1"
    assert resolved.host_header == "hooks.example.com:8443"
    assert resolved.server_name == "hooks.example.com"
    v6 = await urls.resolve("http://hooks.example.com/", live=False, resolver=_resolver("2606:4700::1111"))
    assert v6.url == "http://[2606:4700::1111]/"
    assert v6.server_name is None


async def test_a_name_resolving_inside_is_refused_even_if_one_address_is_public() -> None:
    with pytest.raises(urls.UrlRefused) as refused:
        await urls.resolve(
            "https://rebind.example.com/", live=True, resolver=_resolver("93.184.216.34", "10.0.0.7")
        )
    assert refused.value.code == "private_address"
    with pytest.raises(urls.UrlRefused):
        await urls.resolve("https://metadata.example.com/", live=True, resolver=_resolver("169.254.169.254"))
    with pytest.raises(urls.UrlRefused) as refused:
        await urls.resolve("https://six.example.com/", live=True, resolver=_resolver("2002:a00:1::1"))
    assert refused.value.code == "private_address"


async def test_an_address_literal_needs_no_dns() -> None:
    async def never(host: str, port: int) -> list[str]:
        raise AssertionError("no lookup")

    resolved = await urls.resolve("http://127.0.0.1:9/x", live=False, allow_loopback=True, resolver=never)
    assert resolved.url == "http://127.0.0.1:9/x"
    assert resolved.host_header is None
