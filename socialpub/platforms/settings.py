"""Settings of the platform adapters, read from the environment (``SOCIALPUB_*``).

Base URLs are settings so every environment (tests, staging, a proxy) can point the adapters at
another host that speaks the same contract; the defaults are the real platforms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["PlatformSettings"]


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class PlatformSettings:
    linkedin_base_url: str = "https://api.linkedin.com"
    """Root of LinkedIn's versioned REST API (``/rest/posts``, ``/rest/images``)."""
    linkedin_version: str = "202601"
    """The ``LinkedIn-Version`` header (YYYYMM). A retired version is answered 426: keep it current."""
    facebook_base_url: str = "https://graph.facebook.com/v25.0"
    """Graph API root, version included, for Facebook Pages."""
    instagram_base_url: str = "https://graph.facebook.com/v25.0"
    """Graph API root for Instagram content publishing (Instagram API with Facebook Login)."""
    timeout_seconds: float = 30.0
    """Per-request timeout (connect, read, write) of platform calls."""
    max_connections: int = 100
    """Connection pool size per platform client (HTTP/1.1 keep-alive)."""
    media_max_bytes: int = 8 * 1024 * 1024
    """Largest image the adapters download (LinkedIn uploads the bytes; Instagram's own cap is 8 MiB)."""
    media_timeout_seconds: float = 20.0
    """Whole-download deadline of one image."""
    allow_loopback_media: bool = False
    """Allow media on loopback addresses (tests only; private and link-local stay refused)."""
    media_ca_file: str | None = None
    """CA bundle to verify media hosts with, instead of the system's (tests with a local https server)."""
    instagram_poll_interval_seconds: float = 2.0
    """How often a media container's status is polled while it is IN_PROGRESS."""
    instagram_poll_timeout_seconds: float = 60.0
    """How long one attempt waits for a container to finish before it tries again later."""
    instagram_quota_retry_seconds: float = 3600.0
    """When the 24-hour publishing quota is used up, look again after this long (no attempt spent)."""
    facebook_usage_slowdown_percent: float = 75.0
    """Above this usage (the X-App-Usage / X-Business-Use-Case-Usage headers), calls are spaced out."""
    facebook_usage_stop_percent: float = 90.0
    """At or above this usage, publishing is deferred until the platform says access is regained."""

    @classmethod
    def from_env(cls) -> PlatformSettings:
        env = os.environ.get
        return cls(
            linkedin_base_url=env("SOCIALPUB_LINKEDIN_BASE_URL", cls.linkedin_base_url).rstrip("/"),
            linkedin_version=env("SOCIALPUB_LINKEDIN_VERSION", cls.linkedin_version),
            facebook_base_url=env("SOCIALPUB_FACEBOOK_BASE_URL", cls.facebook_base_url).rstrip("/"),
            instagram_base_url=env("SOCIALPUB_INSTAGRAM_BASE_URL", cls.instagram_base_url).rstrip("/"),
            timeout_seconds=float(env("SOCIALPUB_PLATFORM_TIMEOUT_SECONDS", cls.timeout_seconds)),
            max_connections=int(env("SOCIALPUB_PLATFORM_MAX_CONNECTIONS", cls.max_connections)),
            media_max_bytes=int(env("SOCIALPUB_MEDIA_MAX_BYTES", cls.media_max_bytes)),
            media_timeout_seconds=float(env("SOCIALPUB_MEDIA_TIMEOUT_SECONDS", cls.media_timeout_seconds)),
            allow_loopback_media=_flag("SOCIALPUB_ALLOW_LOOPBACK_MEDIA"),
            media_ca_file=env("SOCIALPUB_MEDIA_CA_FILE") or None,
            instagram_poll_interval_seconds=float(
                env("SOCIALPUB_INSTAGRAM_POLL_INTERVAL_SECONDS", cls.instagram_poll_interval_seconds)
            ),
            instagram_poll_timeout_seconds=float(
                env("SOCIALPUB_INSTAGRAM_POLL_TIMEOUT_SECONDS", cls.instagram_poll_timeout_seconds)
            ),
            instagram_quota_retry_seconds=float(
                env("SOCIALPUB_INSTAGRAM_QUOTA_RETRY_SECONDS", cls.instagram_quota_retry_seconds)
            ),
            facebook_usage_slowdown_percent=float(
                env("SOCIALPUB_FACEBOOK_USAGE_SLOWDOWN_PERCENT", cls.facebook_usage_slowdown_percent)
            ),
            facebook_usage_stop_percent=float(
                env("SOCIALPUB_FACEBOOK_USAGE_STOP_PERCENT", cls.facebook_usage_stop_percent)
            ),
        )
