"""The Facebook Pages adapter against the fake Graph API: what it sends, and every outcome class."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from socialpub.platforms._graph import Usage
from socialpub.platforms.base import (
    Deferred,
    OutcomeUnknown,
    PermanentError,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.facebook import first_link
from socialpub.platforms.registry import PlatformAdapters
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes
from tests.fakes.graph import graph_error_body
from tests.platforms.support import again, ambiguous_then_published_once, answer_lost, request, resolve

PAGE = "104857600123"


def fb(fakes: Fakes, text: str, **kwargs):  # type: ignore[no-untyped-def]
    token = fakes.facebook.grant("page-token")
    return request("facebook", PAGE, text, token=token, **kwargs)


# Success.


async def test_text_post_with_a_link(fakes: Fakes, adapters: PlatformAdapters) -> None:
    text = "Read the launch notes: https://example.com/notes?id=1. Thanks!"
    req, _ = fb(fakes, text)
    published = await adapters.facebook.publish(req)

    [post] = fakes.facebook.posts
    assert published.external_id == post["id"]
    assert post["id"].startswith(f"{PAGE}_")
    assert published.url == f"https://www.facebook.com/{post['id']}"
    [sent] = fakes.facebook.seen("POST", f"/{PAGE}/feed$")
    assert sent.path == f"/v25.0/{PAGE}/feed"
    assert sent.query["access_token"] == "page-token"
    assert sent.form == {"message": text, "link": "https://example.com/notes?id=1"}
    assert "Authorization" not in sent.headers


async def test_text_without_a_link_sends_only_the_message(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = fb(fakes, "Just words")
    await adapters.facebook.publish(req)
    [sent] = fakes.facebook.seen("POST", "/feed$")
    assert sent.form == {"message": "Just words"}


def test_first_link() -> None:
    assert first_link("see (https://a.example/x).") == "https://a.example/x"
    assert first_link("no links here") is None


async def test_one_photo(fakes: Fakes, adapters: PlatformAdapters) -> None:
    url = fakes.media.jpeg("one")
    req, _ = fb(fakes, "A photo", media=[(url, "Two people at a desk")])
    published = await adapters.facebook.publish(req)

    [sent] = fakes.facebook.seen("POST", "/photos$")
    assert sent.form == {
        "url": url,
        "caption": "A photo",
        "published": "true",
        "alt_text_custom": "Two people at a desk",
    }
    [photo] = fakes.facebook.photos.values()
    assert photo["published"] is True
    assert published.external_id == photo["post_id"] == fakes.facebook.posts[0]["id"]
    assert fakes.facebook.seen("POST", "/feed$") == []


async def test_several_photos(fakes: Fakes, adapters: PlatformAdapters) -> None:
    media = [(fakes.media.jpeg(f"p{i}"), f"alt {i}") for i in range(3)]
    req, _ = fb(fakes, "Three photos", media=media)
    published = await adapters.facebook.publish(req)

    uploads = fakes.facebook.seen("POST", "/photos$")
    assert sorted(u.form["url"] for u in uploads) == sorted(url for url, _ in media)
    assert all(u.form["published"] == "false" for u in uploads)
    [feed] = fakes.facebook.seen("POST", "/feed$")
    attached = [json.loads(feed.form[f"attached_media[{i}]"])["media_fbid"] for i in range(3)]
    assert set(attached) == set(fakes.facebook.photos)
    [post] = fakes.facebook.posts
    assert post["id"] == published.external_id
    assert post["message"] == "Three photos"
    assert sorted(post["attached_media"]) == sorted(attached)


# Reconnect.


@pytest.mark.parametrize(("state", "revoked"), [("expired", False), ("revoked", True)])
async def test_token_problems_need_a_reconnect(
    fakes: Fakes, adapters: PlatformAdapters, state: str, revoked: bool
) -> None:
    req, _ = fb(fakes, "hello")
    getattr(fakes.facebook, "expire" if state == "expired" else "revoke")("page-token")
    with pytest.raises(ReconnectError) as caught:
        await adapters.facebook.publish(req)
    assert caught.value.code == "facebook_token_invalid"
    assert caught.value.revoked is revoked
    assert fakes.facebook.posts == []


@pytest.mark.parametrize(("code", "subcode"), [(10, None), (200, None), (368, 1404078)])
async def test_lost_permissions_need_a_reconnect(
    fakes: Fakes, adapters: PlatformAdapters, code: int, subcode: int | None
) -> None:
    fakes.facebook.inject(
        "POST", "/feed$", Fault(status=403, body=graph_error_body(code, "permission", subcode=subcode))
    )
    req, _ = fb(fakes, "hello")
    with pytest.raises(ReconnectError):
        await adapters.facebook.publish(req)


# Transient and deferred.


@pytest.mark.parametrize("code", [4, 17, 32, 613, 80001])
async def test_throttling_is_transient_with_a_wait(
    fakes: Fakes, adapters: PlatformAdapters, code: int
) -> None:
    body = graph_error_body(code, f"(#{code}) request limit reached", transient=True)
    fakes.facebook.inject("POST", "/feed$", Fault(status=400, body=body))
    req, saved = fb(fakes, "hello")
    with pytest.raises(TransientError) as caught:
        await adapters.facebook.publish(req)
    assert caught.value.code == "facebook_throttled"
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= 60
    assert not isinstance(caught.value, Deferred)
    assert saved.state == {}


async def test_usage_near_the_limit_defers_before_being_throttled(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.facebook.page_usage[PAGE] = {"call_count": 95, "estimated_time_to_regain_access": 3}
    first, _ = fb(fakes, "first")
    await adapters.facebook.publish(first)  # the answer carries the usage
    before = len(fakes.facebook.requests)

    second, _ = fb(fakes, "second")
    with pytest.raises(Deferred) as caught:
        await adapters.facebook.publish(second)
    assert 170 <= (caught.value.retry_after or 0) <= 180
    assert len(fakes.facebook.requests) == before, "no call is made while usage is at the limit"
    # Another Page of the same app is not held back by this Page's usage.
    other, _ = request("facebook", "999", "other page", token="page-token")
    await adapters.facebook.publish(other)


async def test_high_app_usage_slows_calls_down() -> None:
    usage = Usage(slowdown=75, stop=90, max_pause=0.2)
    usage.observe(httpx.Headers({"X-App-Usage": json.dumps({"call_count": 85, "total_time": 10})}))
    started = time.monotonic()
    await usage.pace("1")
    assert 0.1 <= time.monotonic() - started < 0.5
    assert usage.deferral("1") is None
    usage.observe(httpx.Headers({"X-App-Usage": json.dumps({"call_count": 10, "total_cputime": 91})}))
    assert usage.deferral("1") is not None


@pytest.mark.parametrize("fault", [
    Fault(status=500, body=graph_error_body(2, "Service temporarily unavailable", transient=True)),
    Fault(kind="commit_drop"),
])  # fmt: skip
async def test_unknown_outcomes_are_checked_before_the_retry(
    fakes: Fakes, adapters: PlatformAdapters, fault: Fault
) -> None:
    fakes.facebook.inject("POST", "/feed$", Fault(**vars(fault)))
    req, saved = fb(fakes, "Possibly posted")
    await answer_lost(adapters.facebook, req)
    assert "unconfirmedSince" in saved.state
    published = await adapters.facebook.publish(again(req, saved))
    assert len(fakes.facebook.posts) == 1
    assert published.external_id == fakes.facebook.posts[0]["id"]
    assert fakes.facebook.seen("GET", f"/{PAGE}/posts$")[0].query["fields"] == "id,message,created_time"


async def test_a_photo_committed_before_the_connection_dropped_is_found(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.facebook.inject("POST", "/photos$", Fault(kind="commit_drop"))
    req, saved = fb(fakes, "A photo, possibly posted", media=[(fakes.media.jpeg(), "")])
    await answer_lost(adapters.facebook, req)
    found = await adapters.facebook.find_published(again(req, saved))
    assert found is not None
    assert found.external_id == fakes.facebook.posts[0]["id"]


# Permanent.


async def test_a_real_duplicate_is_permanent(fakes: Fakes, adapters: PlatformAdapters) -> None:
    first, _ = fb(fakes, "Same again")
    await adapters.facebook.publish(first)
    fakes.facebook.posts[0]["created_time"] -= 3600
    second, _ = fb(fakes, "Same again")
    with pytest.raises(PermanentError) as caught:
        await adapters.facebook.publish(second)
    assert caught.value.code == "facebook_duplicate"
    assert len(fakes.facebook.posts) == 1


@pytest.mark.parametrize(
    ("code", "subcode"), [(100, 33), (368, None), (1609005, None), (324, None), (3, None)]
)
async def test_request_problems_are_permanent(
    fakes: Fakes, adapters: PlatformAdapters, code: int, subcode: int | None
) -> None:
    fakes.facebook.inject(
        "POST", "/feed$", Fault(status=400, body=graph_error_body(code, "bad", subcode=subcode))
    )
    req, _ = fb(fakes, "hello")
    with pytest.raises(PermanentError):
        await adapters.facebook.publish(req)


# "Did it land?" with more posts than one page.


async def test_a_dropped_create_is_found_behind_more_than_a_page_of_newer_posts(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.facebook.inject("POST", "/feed$", Fault(kind="commit_drop"))
    req, saved = fb(fakes, "Ours, answer lost")
    await answer_lost(adapters.facebook, req)
    fakes.facebook.seed(PAGE, 150)  # a burst landed after ours: ours is on the second page

    published = await resolve(adapters.facebook, req, saved)

    ours = [p for p in fakes.facebook.posts if p["message"] == "Ours, answer lost"]
    assert len(ours) == 1, "published exactly once"
    assert published.external_id == ours[0]["id"]
    assert len(fakes.facebook.seen("POST", "/feed$")) == 1, "never re-sent"
    first, second = fakes.facebook.seen("GET", f"/{PAGE}/posts$")
    assert first.query["limit"] == "100"
    assert int(first.query["since"]) <= int(req.started_at) - 120, "the clock-skew margin"
    assert "after" in second.query, "followed paging.next"
    assert second.query["since"] == first.query["since"]
    assert second.query["access_token"] == "page-token"


async def test_the_retry_after_a_dropped_answer_pages_too(fakes: Fakes, adapters: PlatformAdapters) -> None:
    fakes.facebook.inject("POST", "/feed$", Fault(kind="commit_drop"))
    req, saved = fb(fakes, "Retried after a timeout")
    await answer_lost(adapters.facebook, req)
    fakes.facebook.seed(PAGE, 250)
    published = await adapters.facebook.publish(again(req, saved))
    [ours] = [p for p in fakes.facebook.posts if p["message"] == "Retried after a timeout"]
    assert published.external_id == ours["id"]
    assert len(fakes.facebook.seen("GET", f"/{PAGE}/posts$")) == 3


async def test_the_lookup_reads_only_the_attempt_window(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = fb(fakes, "never sent")
    fakes.facebook.seed(PAGE, 500, at=req.started_at - 3600)
    assert await adapters.facebook.find_published(req) is None
    [listing] = fakes.facebook.seen("GET", f"/{PAGE}/posts$")
    assert listing.query["since"] == str(int(req.started_at - 120))


async def test_a_lookup_that_hits_its_page_limit_cannot_tell(fakes: Fakes) -> None:
    registry = PlatformAdapters(fakes.settings(lookup_max_pages=2))
    try:
        req, _ = fb(fakes, "Somewhere far down")
        fakes.facebook.seed(PAGE, 250)
        with pytest.raises(OutcomeUnknown) as caught:
            await registry.facebook.find_published(req)
        assert caught.value.code == "facebook_lookup_too_deep"
        assert len(fakes.facebook.seen("GET", f"/{PAGE}/posts$")) == 2
    finally:
        await registry.aclose()


async def test_a_next_link_to_another_host_is_not_followed(fakes: Fakes, adapters: PlatformAdapters) -> None:
    body = {"data": [{"id": f"{PAGE}_1", "message": "x"}], "paging": {"next": "https://evil.example/v25.0/x"}}
    fakes.facebook.inject("GET", f"/{PAGE}/posts$", Fault(status=200, body=body))
    req, _ = fb(fakes, "never sent")
    with pytest.raises(TransientError) as caught:
        await adapters.facebook.find_published(req)
    assert caught.value.code == "facebook_bad_paging"


# A create the platform may still act on (issue 9 review): ambiguous, and never dead-lettered
# while an earlier attempt's outcome is unknown.


@pytest.mark.parametrize("fault", [
    Fault(kind="commit_later", delay=60),
    Fault(kind="commit_drop"),
    Fault(status=500, body=graph_error_body(2, "Service temporarily unavailable", transient=True)),
    Fault(status=200, body={}),
], ids=["commit-later", "commit-drop", "500", "200-without-id"])  # fmt: skip
async def test_a_create_that_may_have_been_acted_on_is_ambiguous(
    fakes: Fakes, adapters: PlatformAdapters, fault: Fault
) -> None:
    """The operator must not look it up (or re-send) before Facebook could have committed it."""
    fakes.facebook.inject("POST", "/feed$", Fault(**vars(fault)))
    req, saved = fb(fakes, "Maybe posted")
    await ambiguous_then_published_once(adapters.facebook, fakes.facebook, req, saved)


async def test_a_photo_answered_without_any_id_is_unconfirmed_never_page_none(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.facebook.inject("POST", "/photos$", Fault(status=200, body={"success": True}))
    req, saved = fb(fakes, "A photo, no id", media=[(fakes.media.jpeg(), "")])
    with pytest.raises(TransientError) as caught:
        await adapters.facebook.publish(req)
    assert (caught.value.code, caught.value.ambiguous) == ("facebook_no_id", True)
    assert "unconfirmedSince" in saved.state
    published = await adapters.facebook.publish(again(req, saved))
    assert "None" not in published.external_id
    assert [p["id"] for p in fakes.facebook.posts] == [published.external_id]


async def test_refusals_and_connections_never_made_are_not_ambiguous(fakes: Fakes) -> None:
    refused = PlatformAdapters(fakes.settings(facebook_base_url="http://127.0.0.1:9/v25.0"))
    try:
        req, saved = fb(fakes, "Nothing was created")
        with pytest.raises(TransientError) as caught:
            await refused.facebook.publish(req)
        assert (caught.value.code, caught.value.ambiguous) == ("facebook_connection_error", False)
        assert saved.state == {}
    finally:
        await refused.aclose()


@pytest.mark.parametrize("code", [100, 4])
async def test_refused_creates_are_not_ambiguous(fakes: Fakes, adapters: PlatformAdapters, code: int) -> None:
    fakes.facebook.inject("POST", "/feed$", Fault(status=400, body=graph_error_body(code, "no")))
    req, saved = fb(fakes, "Refused")
    with pytest.raises((TransientError, PermanentError)) as caught:
        await adapters.facebook.publish(req)
    assert getattr(caught.value, "ambiguous", False) is False
    assert saved.state == {}


async def test_a_lookup_refused_for_good_after_an_unknown_outcome_is_unknown_not_dead(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.facebook.inject("POST", "/feed$", Fault(kind="commit_drop"))
    req, saved = fb(fakes, "Landed, then the listing was refused")
    await answer_lost(adapters.facebook, req)
    refusal = Fault(status=400, body=graph_error_body(100, "(#100) Invalid parameter"), times=2)
    fakes.facebook.inject("GET", f"/{PAGE}/posts$", refusal)

    with pytest.raises(OutcomeUnknown):
        await adapters.facebook.publish(again(req, saved))
    with pytest.raises(OutcomeUnknown) as resolved:
        await adapters.facebook.find_published(again(req, saved))
    assert resolved.value.code == "facebook_invalid_request_after_unknown_outcome"
    assert len(fakes.facebook.posts) == 1
    assert len(fakes.facebook.seen("POST", "/feed$")) == 1, "never re-sent"


async def test_a_duplicate_refusal_of_an_unlisted_late_commit_is_unknown_not_dead(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """The lost create landed seconds later, and the Page's listing lags behind it: the re-send is
    refused as a duplicate (506) of a post nobody can see yet. Not dead: a person decides."""
    fakes.facebook.listing_lag = 3600
    fakes.facebook.inject("POST", "/feed$", Fault(kind="commit_later", delay=60))
    req, saved = fb(fakes, "Listed late")
    await answer_lost(adapters.facebook, req)
    fakes.facebook.release_later()
    fakes.facebook.settle()

    with pytest.raises(OutcomeUnknown) as caught:
        await adapters.facebook.publish(again(req, saved))
    assert caught.value.code == "facebook_duplicate_unconfirmed"
    assert len(fakes.facebook.posts) == 1


async def test_a_lookup_failing_for_now_after_an_unknown_outcome_is_ambiguous(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """Retried, but never dead-lettered blind after five of them: the earlier create may be live."""
    fakes.facebook.inject("POST", "/feed$", Fault(kind="commit_drop"))
    req, saved = fb(fakes, "Landed, then the listing was down")
    await answer_lost(adapters.facebook, req)
    down = Fault(status=500, body=graph_error_body(2, "Service temporarily unavailable", transient=True))
    fakes.facebook.inject("GET", f"/{PAGE}/posts$", down)
    with pytest.raises(TransientError) as caught:
        await adapters.facebook.publish(again(req, saved))
    assert (caught.value.code, caught.value.ambiguous) == ("facebook_server_error", True)
    assert len(fakes.facebook.seen("POST", "/feed$")) == 1, "never re-sent"
