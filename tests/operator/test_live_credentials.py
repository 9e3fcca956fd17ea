"""Reading a live account's credentials can fail like any API call (the API server slow, down,
refusing): that is a transient error before any platform call — so the claimed attempt is
recorded as failed and retried at once — never an exception that leaves the target
``publishing`` until its lease runs out."""

from __future__ import annotations

import asyncio
import socket

import pytest

from socialpub.kube.client import KubeClient
from socialpub.models.keys import Mode
from socialpub.operator.live import KeyRingSource, LiveAdapters
from socialpub.platforms.base import TransientError
from socialpub.platforms.registry import PlatformAdapters


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


ACCOUNT = {
    "metadata": {"name": "account-1", "namespace": "acme-live", "uid": "u-1"},
    "spec": {"platform": "linkedin", "credentialsSecretRef": {"name": "account-1-credentials"}},
}


def test_an_unreachable_api_server_is_a_transient_error_not_ambiguous() -> None:
    """The token's Secret (and, behind it, the key ring's) cannot be read: TransientError, not
    ambiguous (nothing was sent), instead of the transport error escaping the attempt."""

    async def run() -> TransientError:
        client = KubeClient(f"http://127.0.0.1:{_closed_port()}")

        async def live(namespace: str) -> Mode:
            return Mode.LIVE

        platforms = PlatformAdapters()
        adapters = LiveAdapters(client, platforms, KeyRingSource(client), mode_of=live)
        try:
            with pytest.raises(TransientError) as caught:
                await adapters.token(ACCOUNT)
            return caught.value
        finally:
            await platforms.aclose()
            await client.aclose()

    error = asyncio.run(run())
    assert error.code == "credentials_unavailable"
    assert not error.ambiguous
