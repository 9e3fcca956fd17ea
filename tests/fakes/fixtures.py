"""Pytest fixtures for the fakes (imported by the conftest of each test folder that uses them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from socialpub.platforms.registry import PlatformAdapters
from socialpub.platforms.settings import PlatformSettings
from tests.fakes.facebook import FakeFacebook
from tests.fakes.instagram import FakeInstagram
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.media import MediaServer


@dataclass
class Fakes:
    linkedin: FakeLinkedIn
    facebook: FakeFacebook
    instagram: FakeInstagram
    media: MediaServer

    def settings(self, **overrides: Any) -> PlatformSettings:
        """Adapter settings pointing at the fakes, with timeouts and polls short enough for tests."""
        base = PlatformSettings(
            linkedin_base_url=self.linkedin.url,
            facebook_base_url=self.facebook.base_url,
            instagram_base_url=self.instagram.base_url,
            timeout_seconds=2.0,
            allow_loopback_media=True,
            media_ca_file=str(self.media.ca_file),
            instagram_poll_interval_seconds=0.05,
            instagram_poll_timeout_seconds=2.0,
        )
        return replace(base, **overrides)

    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for an operator process."""
        return {
            "SOCIALPUB_LINKEDIN_BASE_URL": self.linkedin.url,
            "SOCIALPUB_FACEBOOK_BASE_URL": self.facebook.base_url,
            "SOCIALPUB_INSTAGRAM_BASE_URL": self.instagram.base_url,
            "SOCIALPUB_PLATFORM_TIMEOUT_SECONDS": "2",
            "SOCIALPUB_ALLOW_LOOPBACK_MEDIA": "1",
            "SOCIALPUB_MEDIA_CA_FILE": str(self.media.ca_file),
            "SOCIALPUB_INSTAGRAM_POLL_INTERVAL_SECONDS": "0.05",
            "SOCIALPUB_INSTAGRAM_POLL_TIMEOUT_SECONDS": "2",
        }

    def reset(self) -> None:
        for fake in (self.linkedin, self.facebook, self.instagram, self.media):
            fake.reset()


@pytest.fixture(scope="session")
def fakes_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    started: list[Any] = []
    try:
        for cls in (FakeLinkedIn, FakeFacebook, FakeInstagram):
            started.append(cls().start())
        started.append(MediaServer(Path(tmp_path_factory.mktemp("media"))).start())
        yield Fakes(*started)
    finally:
        for fake in started:
            fake.stop()


@pytest.fixture
def fakes(fakes_session: Fakes) -> Fakes:
    """The three platform fakes and the https media server, emptied for this test."""
    fakes_session.reset()
    return fakes_session


@pytest.fixture
async def adapters(fakes: Fakes) -> AsyncIterator[PlatformAdapters]:
    """The real adapters, pointed at the fakes."""
    registry = PlatformAdapters(fakes.settings())
    yield registry
    await registry.aclose()
