"""When a webhook delivery is retried, and what its record is called — pure.

The schedule is the one the Standard Webhooks specification suggests (and Svix uses): the first
attempt at once, then retries 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h after each
failure — ten attempts over about 75 h 35 min — each delay stretched by up to 10 % of random
jitter so that deliveries failed together do not retry in lock-step. The whole schedule scales
with ``base`` (the first retry delay, 5 s): ``SOCIALPUB_WEBHOOK_RETRY_BASE_SECONDS=0.05`` makes
every delay a hundredth, which is how the tests run it in seconds.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = [
    "DEFAULT_BASE_SECONDS",
    "MAX_ATTEMPTS",
    "RETRY_SCHEDULE",
    "delivery_name",
    "parse_retry_after",
    "retry_delay",
]

RETRY_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
"""Seconds before attempt ``i + 1`` (index ``i``): at once, then after each failure."""
MAX_ATTEMPTS = len(RETRY_SCHEDULE)
DEFAULT_BASE_SECONDS = RETRY_SCHEDULE[1]
JITTER = 0.1
MAX_RETRY_AFTER = 86400.0


def retry_delay(
    failed_attempts: int,
    *,
    base: float = DEFAULT_BASE_SECONDS,
    rng: random.Random | None = None,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait after ``failed_attempts`` failures; ``None``: the schedule is exhausted.

    A receiver's ``Retry-After`` (on 429/503) is honoured when it asks for longer than the
    schedule (at most 24 h), never to retry sooner.
    """
    if failed_attempts < 1:
        return 0.0
    if failed_attempts >= MAX_ATTEMPTS:
        return None
    delay = RETRY_SCHEDULE[failed_attempts] * base / DEFAULT_BASE_SECONDS
    delay *= 1 + (rng or random).uniform(0, JITTER)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP date); ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def delivery_name(endpoint_name: str, endpoint_uid: str, event_id: str) -> str:
    """The SocialWebhookDelivery of one event to one endpoint: the same inputs, the same name.

    So creating it is idempotent across operator restarts, and an endpoint deleted and created
    again under the same name (a new uid) never meets its predecessor's records.
    """
    digest = hashlib.sha256(f"{endpoint_uid}|{event_id}".encode()).hexdigest()[:20]
    prefix = endpoint_name[:200].rstrip(".-")
    return f"{prefix}-{digest}"
