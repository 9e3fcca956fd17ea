"""The adapters' HTTP plumbing: the pooled transport, Retry-After, and tokens kept out of logs."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from socialpub.platforms._http import PooledTransport, new_client, retry_after_seconds
from tests.fakes.fixtures import Fakes


async def test_pooled_transport_spreads_requests_and_releases_them(fakes: Fakes) -> None:
    fakes.facebook.grant("t")
    fakes.facebook.latency = 0.05
    client = new_client(timeout=5, max_connections=32)
    transport = client._transport
    assert isinstance(transport, PooledTransport)
    assert len(transport._shards) == 4
    try:
        url = f"{fakes.facebook.base_url}/1/posts"
        responses = await asyncio.gather(*(client.get(url, params={"access_token": "t"}) for _ in range(40)))
        assert all(r.status_code == 200 for r in responses)
        assert transport._busy == [0, 0, 0, 0]
        async with client.stream("GET", url, params={"access_token": "t"}) as response:
            assert sum(transport._busy) == 1
            await response.aread()
        assert sum(transport._busy) == 0
    finally:
        await client.aclose()


def test_retry_after() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "120"})) == 120
    assert retry_after_seconds(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    assert retry_after_seconds(httpx.Headers({})) is None


async def test_access_tokens_are_redacted_from_httpx_logs(
    fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    fakes.facebook.grant("super-secret-token")
    client = new_client(timeout=5, max_connections=4)
    try:
        with caplog.at_level(logging.INFO, logger="httpx"):
            await client.get(
                f"{fakes.facebook.base_url}/1/posts", params={"access_token": "super-secret-token"}
            )
    finally:
        await client.aclose()
    assert "access_token=REDACTED" in caplog.text
    assert "super-secret-token" not in caplog.text
