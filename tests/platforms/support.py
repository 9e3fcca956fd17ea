"""Building publish requests for the adapter tests, with a checkpoint that keeps what was saved."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from socialpub.platforms.base import Adapter, MediaItem, Published, PublishRequest, TransientError
from tests.fakes.facebook import FakeFacebook
from tests.fakes.linkedin import FakeLinkedIn


@dataclass
class Saved:
    """Stands in for ``status.platformState``: a merge of every checkpoint (``None`` removes)."""

    state: dict[str, Any] = field(default_factory=dict)
    writes: list[dict[str, Any]] = field(default_factory=list)

    async def checkpoint(self, update: Mapping[str, Any]) -> None:
        self.writes.append(dict(update))
        for key, value in update.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value


def request(
    platform: str,
    external_id: str,
    text: str,
    *,
    token: str,
    media: Sequence[tuple[str, str]] = (),
    saved: Saved | None = None,
    attempt: int = 1,
) -> tuple[PublishRequest, Saved]:
    saved = saved or Saved()
    built = PublishRequest(
        nonce=str(uuid.uuid4()),
        attempt=attempt,
        platform=platform,
        account_external_id=external_id,
        text=text,
        media=tuple(MediaItem(url, alt) for url, alt in media),
        access_token=token,
        started_at=time.time(),
        platform_state=dict(saved.state),
        checkpoint=saved.checkpoint,
    )
    return built, saved


def again(previous: PublishRequest, saved: Saved, **changes: Any) -> PublishRequest:
    """The next attempt of ``previous``: what was saved so far, a new start time."""
    return replace(
        previous,
        attempt=previous.attempt + 1,
        platform_state=dict(saved.state),
        started_at=time.time(),
        **changes,
    )


async def resolve(adapter: Adapter, req: PublishRequest, saved: Saved) -> Published:
    """What the operator does with an attempt interrupted mid-call: ask the platform whether it
    landed (same attempt, what it saved), and only if not, the next attempt."""
    found = await adapter.find_published(replace(req, platform_state=dict(saved.state)))
    return found or await adapter.publish(again(req, saved))


async def answer_lost(adapter: Adapter, req: PublishRequest) -> TransientError:
    """``adapter.publish(req)`` where the test made the create's answer get lost (or refused for
    now): it must fail as retryable, never dead; the error is returned for what else is checked."""
    with pytest.raises(TransientError) as caught:
        await adapter.publish(req)
    return caught.value


async def ambiguous_then_published_once(
    adapter: Adapter, fake: FakeFacebook | FakeLinkedIn, req: PublishRequest, saved: Saved
) -> None:
    """A create the platform may still act on (the fault is injected by the caller) is ambiguous,
    with ``unconfirmedSince`` saved first; once it has landed (what waiting out the claim's lease
    gives), the next attempt finds it instead of sending again: the post is there once."""
    error = await answer_lost(adapter, req)
    assert error.ambiguous is True
    assert "unconfirmedSince" in saved.state
    fake.release_later()
    fake.settle()
    published = await adapter.publish(again(req, saved))
    assert [p["id"] for p in fake.posts] == [published.external_id], "published once"
