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
    instagram_unlisted_wait_seconds: float = 900.0
    """How long a published container whose media is not yet listed is looked up again (deferred,
    no attempt spent) before the target is ``unknown``: live, with an id a person must find."""
    instagram_unlisted_retry_seconds: float = 30.0
    """How often such a published-but-unlisted container's media is looked for."""
    facebook_usage_slowdown_percent: float = 75.0
    """Above this usage (the X-App-Usage / X-Business-Use-Case-Usage headers), calls are spaced out."""
    facebook_usage_stop_percent: float = 90.0
    """At or above this usage, publishing is deferred until the platform says access is regained."""
    lookup_max_pages: int = 10
    """Most pages of an account's recent posts one "did it land?" lookup reads (100 posts a page on
    every platform). Past it the lookup answers "cannot tell" (``OutcomeUnknown``), never "not found"."""
    lookup_clock_skew_seconds: float = 120.0
    """How far before the attempt began a lookup still reads and matches posts: the platform's clock
    and ours may disagree by this much."""

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
            instagram_unlisted_wait_seconds=float(
                env("SOCIALPUB_INSTAGRAM_UNLISTED_WAIT_SECONDS", cls.instagram_unlisted_wait_seconds)
            ),
            instagram_unlisted_retry_seconds=float(
                env("SOCIALPUB_INSTAGRAM_UNLISTED_RETRY_SECONDS", cls.instagram_unlisted_retry_seconds)
            ),
            facebook_usage_slowdown_percent=float(
                env("SOCIALPUB_FACEBOOK_USAGE_SLOWDOWN_PERCENT", cls.facebook_usage_slowdown_percent)
            ),
            facebook_usage_stop_percent=float(
                env("SOCIALPUB_FACEBOOK_USAGE_STOP_PERCENT", cls.facebook_usage_stop_percent)
            ),
            lookup_max_pages=int(env("SOCIALPUB_LOOKUP_MAX_PAGES", cls.lookup_max_pages)),
            lookup_clock_skew_seconds=float(
                env("SOCIALPUB_LOOKUP_CLOCK_SKEW_SECONDS", cls.lookup_clock_skew_seconds)
            ),
        )

    # Worst-case durations, for the operator's claim lease: an interrupted attempt must not be
    # resolved while its create may still be on its way to the platform.

    @property
    def request_deadline_seconds(self) -> float:
        """Hard deadline of one platform HTTP request, headers and body (``timeout_seconds`` bounds
        each phase and each read, so a slow-dripping answer alone could outlast it)."""
        return 2 * self.timeout_seconds

    def _lookup_seconds(self, *, paced: float = 0.0) -> float:
        return self.lookup_max_pages * (self.request_deadline_seconds + paced)

    def max_publish_seconds_for(self, platform: str) -> float:
        """The longest one ``publish`` (or ``find_published``) call of ``platform``'s adapter can
        take: every request it may make at its deadline, its downloads, pauses and polls."""
        request = self.request_deadline_seconds
        if platform == "linkedin":
            # Look up (unconfirmed), images in parallel (download, initializeUpload, PUT), create,
            # then on DUPLICATE_POST look up again and read the named post.
            return 2 * self._lookup_seconds() + self.media_timeout_seconds + 2 * request + 2 * request
        if platform == "facebook":
            paced = 2.0  # Usage.pace: at most two seconds before each call
            # Look up, unpublished photos in parallel, the create, a duplicate's second look-up.
            return 2 * self._lookup_seconds(paced=paced) + 2 * (request + paced)
        if platform == "instagram":
            poll = self.instagram_poll_timeout_seconds + self.instagram_poll_interval_seconds + request
            # Saved container: status + media lookup. New one: carousel items in parallel and their
            # polls, the parent, its poll, the quota, media_publish, the permalink.
            return request + self._lookup_seconds() + 2 * request + 2 * poll + 4 * request
        return self.request_deadline_seconds

    @property
    def max_publish_seconds(self) -> float:
        """The longest one adapter call can take on any platform (see :meth:`max_publish_seconds_for`);
        a claim's lease must last at least this long plus a settle margin."""
        return max(self.max_publish_seconds_for(p) for p in ("linkedin", "facebook", "instagram"))
