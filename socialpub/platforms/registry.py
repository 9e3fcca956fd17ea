"""The live adapters of one process: one pooled HTTP client per platform (and one for media)."""

from __future__ import annotations

from socialpub.platforms.base import Adapter
from socialpub.platforms.facebook import FacebookAdapter
from socialpub.platforms.instagram import InstagramAdapter
from socialpub.platforms.linkedin import LinkedInAdapter
from socialpub.platforms.media import MediaFetcher
from socialpub.platforms.settings import PlatformSettings

__all__ = ["PlatformAdapters", "UnknownPlatform"]


class UnknownPlatform(ValueError):
    """No adapter publishes to this platform."""


class PlatformAdapters:
    """LinkedIn, Facebook and Instagram adapters sharing one settings object; close them once."""

    def __init__(self, settings: PlatformSettings | None = None) -> None:
        self.settings = settings or PlatformSettings.from_env()
        self.media = MediaFetcher(self.settings)
        self.linkedin = LinkedInAdapter(self.settings, self.media)
        self.facebook = FacebookAdapter(self.settings)
        self.instagram = InstagramAdapter(self.settings)

    def for_platform(self, platform: str) -> Adapter:
        adapters: dict[str, Adapter] = {
            "linkedin": self.linkedin,
            "facebook": self.facebook,
            "instagram": self.instagram,
        }
        try:
            return adapters[platform]
        except KeyError:
            raise UnknownPlatform(f"no adapter for platform {platform!r}") from None

    async def aclose(self) -> None:
        for closer in (self.linkedin, self.facebook, self.instagram, self.media):
            await closer.aclose()
