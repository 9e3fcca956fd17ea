"""The adapter interface every platform implements, and the three ways a publish can fail.

The operator never talks to a network directly: it hands an adapter a :class:`PublishRequest`
(everything needed to publish one target, frozen at release) and gets a :class:`Published` or
one of the errors below. Each adapter maps its platform's errors onto these classes, so retry
and dead-letter decisions are made once, in the operator, for every platform alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Adapter",
    "Checkpoint",
    "Deferred",
    "MediaItem",
    "OutcomeUnknown",
    "PermanentError",
    "PublishError",
    "PublishRequest",
    "Published",
    "ReconnectError",
    "TransientError",
]


@dataclass(frozen=True)
class MediaItem:
    url: str
    alt: str = ""


Checkpoint = Callable[[Mapping[str, Any]], Awaitable[None]]
"""Durably merge keys into the target's ``status.platformState`` (``None`` removes a key); returns
once the write is stored, so what was saved survives a crash of the operator right after."""


async def _no_checkpoint(state: Mapping[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class PublishRequest:
    """One target's publish, as the adapter needs it."""

    nonce: str
    """Stable per target (its uid): lets the "did this land?" check recognise our own post."""
    attempt: int
    """1 for the first attempt; the attempt this request is (or was, when resolving)."""
    platform: str
    account_external_id: str
    text: str
    media: tuple[MediaItem, ...] = ()
    access_token: str | None = None
    """The decrypted token for live accounts; ``None`` in the sandbox."""
    started_at: float = 0.0
    """Wall-clock time the attempt was claimed, to bound "recent posts" searches."""
    platform_state: Mapping[str, Any] = field(default_factory=dict)
    """What the adapter saved for this target in earlier attempts (``status.platformState``): an
    Instagram container id, the start of a create whose outcome was unknown."""
    checkpoint: Checkpoint = field(default=_no_checkpoint, compare=False, repr=False)
    """Save into ``platform_state`` durably, before a step whose outcome must be recoverable."""


@dataclass(frozen=True)
class Published:
    external_id: str
    url: str


class PublishError(Exception):
    """A publish that did not happen (or whose outcome must be treated as not having happened)."""

    classification = "transient"

    def __init__(self, message: str, *, code: str = "publish_failed") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class TransientError(PublishError):
    """Try again later (5xx, timeouts, throttling); ``retry_after`` if the platform said when.

    ``ambiguous`` says the failed call may still have been acted on (a timeout or dropped
    connection after the request was sent, a 5xx to a create): the platform may yet commit it, so
    the operator must not retry — not even look it up — before the attempt's claim lease
    (``leaseUntil``: call budget + settle margin) has passed."""

    classification = "transient"

    def __init__(
        self,
        message: str,
        *,
        code: str = "transient_error",
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class Deferred(TransientError):
    """Not now, and not the content's fault: a quota is used up (Instagram's 24-hour publishing
    limit) or we hold back before a throttle. The operator tries again after ``retry_after`` seconds
    *without counting an attempt*, so waiting out a quota never dead-letters a target."""

    def __init__(self, message: str, *, code: str = "deferred", retry_after: float) -> None:
        super().__init__(message, code=code, retry_after=retry_after)


class PermanentError(PublishError):
    """Retrying cannot help (invalid media, content rejected): dead-letter at once."""

    classification = "permanent"


class ReconnectError(PublishError):
    """The account's authorization is gone (expired or revoked token): a person must reconnect it."""

    classification = "reconnect"

    def __init__(self, message: str, *, code: str = "reconnect_required", revoked: bool = False) -> None:
        super().__init__(message, code=code)
        self.revoked = revoked


class OutcomeUnknown(PublishError):
    """The platform cannot tell us whether an earlier attempt landed, and guessing either way is
    wrong: re-sending may post twice, giving up may dead-letter a live post. Raised only by
    ``find_published`` (or by ``publish`` when resending an interrupted attempt); the operator
    records the target as ``unknown`` (needs attention) and never re-sends it on its own."""

    classification = "unknown"

    def __init__(self, message: str, *, code: str = "outcome_unknown") -> None:
        super().__init__(message, code=code)


class Adapter(Protocol):
    """What the operator needs from a platform."""

    async def publish(self, request: PublishRequest) -> Published:
        """Publish, or raise a :class:`PublishError` subclass."""
        ...

    async def find_published(self, request: PublishRequest) -> Published | None:
        """Did an earlier attempt of ``request`` land? Asked before retrying an attempt whose outcome is
        unknown (the operator stopped mid-call, a timeout, a dropped connection)."""
        ...
