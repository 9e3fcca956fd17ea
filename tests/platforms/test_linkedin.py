"""The LinkedIn adapter against the fake LinkedIn: what it sends, and every outcome class."""

from __future__ import annotations

import asyncio
import time

import pytest

from socialpub.platforms.base import (
    OutcomeUnknown,
    PermanentError,
    PublishRequest,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.linkedin import LinkedInAdapter, escape_little_text, little_text_to_plain
from socialpub.platforms.media import MediaFetcher
from socialpub.platforms.registry import PlatformAdapters
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes
from tests.fakes.linkedin import visible_text
from tests.platforms.support import Saved, again, ambiguous_then_published_once, answer_lost, request, resolve

ORG = "5515715"
AUTHOR = f"urn:li:organization:{ORG}"
TRICKY = "Launch day (beta) is here! Use code SAVE_20 & <b> @team [v2] {x} a*b ~c | d \\ e #launch #big_day"


def li(fakes: Fakes, text: str, **kwargs):  # type: ignore[no-untyped-def]
    token = fakes.linkedin.grant("li-token")
    return request("linkedin", ORG, text, token=token, **kwargs)


# Escaping.


@pytest.mark.parametrize(
    "text",
    [TRICKY, "plain", "#start and end#", "a\\b", "(((", "https://example.com/a_b?x=(1)#frag", "naïve #café"],
)
def test_escaped_text_is_shown_exactly_as_written(text: str) -> None:
    escaped = escape_little_text(text)
    assert visible_text(escaped) == text  # the fake's emulation of LinkedIn's little-text parser
    assert little_text_to_plain(escaped) == text


def test_unescaped_reserved_characters_would_truncate() -> None:
    assert visible_text("Launch day (beta) is here") == "Launch day "


def test_hashtags_become_the_hashtag_template() -> None:
    assert escape_little_text("Hiring #jobs now") == "Hiring {hashtag|#|jobs} now"
    assert escape_little_text("x#notatag") == "x\\#notatag"


# Success.


async def test_text_post(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = li(fakes, TRICKY)
    published = await adapters.linkedin.publish(req)

    [post] = fakes.linkedin.posts
    assert published.external_id == post["id"]
    assert published.external_id.startswith("urn:li:share:")
    assert published.url == f"https://www.linkedin.com/feed/update/{post['id']}/"
    assert post["visible"] == TRICKY, "nothing may be silently truncated"
    [sent] = fakes.linkedin.seen("POST", "^/rest/posts$")
    assert sent.headers["Authorization"] == "Bearer li-token"
    assert sent.headers["LinkedIn-Version"] == "202601"
    assert sent.headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == {
        "author": AUTHOR,
        "commentary": escape_little_text(TRICKY),
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }


async def test_one_image(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = li(fakes, "With a picture", media=[(fakes.media.jpeg("one"), "Our team")])
    published = await adapters.linkedin.publish(req)

    [init] = fakes.linkedin.seen("POST", "^/rest/images$")
    assert init.query == {"action": "initializeUpload"}
    assert init.json == {"initializeUploadRequest": {"owner": AUTHOR}}
    assert init.headers["LinkedIn-Version"] == "202601"
    [put] = fakes.linkedin.seen("PUT", "^/dms-uploads/")
    assert put.headers["Authorization"] == "Bearer li-token"
    assert put.headers["Content-Type"] == "image/jpeg"
    [image_urn] = fakes.linkedin.images
    assert fakes.linkedin.images[image_urn]["bytes"] == put.body
    assert put.body.startswith(b"\xff\xd8")
    [post] = fakes.linkedin.posts
    assert post["id"] == published.external_id
    assert post["content"] == {"media": {"id": image_urn, "altText": "Our team"}}


async def test_several_images(fakes: Fakes, adapters: PlatformAdapters) -> None:
    media = [(fakes.media.jpeg(f"p{i}"), f"alt {i}") for i in range(3)]
    req, _ = li(fakes, "Three pictures", media=media)
    await adapters.linkedin.publish(req)

    assert len(fakes.linkedin.seen("PUT", "^/dms-uploads/")) == 3
    [post] = fakes.linkedin.posts
    images = post["content"]["multiImage"]["images"]
    assert [i["altText"] for i in images] == ["alt 0", "alt 1", "alt 2"]
    assert {i["id"] for i in images} == set(fakes.linkedin.images)


async def test_author_can_be_a_member_urn(fakes: Fakes, adapters: PlatformAdapters) -> None:
    token = fakes.linkedin.grant("member")
    req, _ = request("linkedin", "urn:li:person:abc123", "As myself", token=token)
    await adapters.linkedin.publish(req)
    assert fakes.linkedin.posts[0]["author"] == "urn:li:person:abc123"


# Reconnect.


@pytest.mark.parametrize(("state", "code", "revoked"), [
    ("expired", "linkedin_token_expired", False),
    ("revoked", "linkedin_token_revoked", True),
    ("unknown", "linkedin_token_invalid", False),
])  # fmt: skip
async def test_token_problems_need_a_reconnect(
    fakes: Fakes, adapters: PlatformAdapters, state: str, code: str, revoked: bool
) -> None:
    req, _ = li(fakes, "hello")
    if state == "expired":
        fakes.linkedin.expire("li-token")
    elif state == "revoked":
        fakes.linkedin.revoke("li-token")
    else:
        fakes.linkedin.tokens.clear()
    with pytest.raises(ReconnectError) as caught:
        await adapters.linkedin.publish(req)
    assert caught.value.code == code
    assert caught.value.revoked is revoked
    assert fakes.linkedin.posts == []


async def test_missing_permission_needs_a_reconnect(fakes: Fakes, adapters: PlatformAdapters) -> None:
    body = {
        "status": 403,
        "serviceErrorCode": 100,
        "code": "ACCESS_DENIED",
        "message": "Not enough permissions to access: partnerApiPostsExternal.CREATE.20240501",
    }
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(status=403, body=body))
    req, _ = li(fakes, "hello")
    with pytest.raises(ReconnectError) as caught:
        await adapters.linkedin.publish(req)
    assert caught.value.code == "linkedin_access_denied"
    assert "partnerApiPostsExternal.CREATE" in caught.value.message


# Transient.


async def test_throttled_with_retry_after(fakes: Fakes, adapters: PlatformAdapters) -> None:
    body = {
        "serviceErrorCode": 101,
        "message": "Resource level throttle limit for calls to this resource is reached.",
        "status": 429,
    }
    fakes.linkedin.inject(
        "POST", "^/rest/posts$", Fault(status=429, body=body, headers={"Retry-After": "120"})
    )
    req, saved = li(fakes, "hello")
    with pytest.raises(TransientError) as caught:
        await adapters.linkedin.publish(req)
    assert caught.value.code == "linkedin_throttled"
    assert caught.value.retry_after == 120
    assert saved.state == {}, "a 429 is a refusal, not an unknown outcome"


async def test_server_error_is_transient_and_checked_before_the_retry(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(status=503, body={"message": "down", "status": 503}))
    req, saved = li(fakes, "hello again")
    await answer_lost(adapters.linkedin, req)
    assert "unconfirmedSince" in saved.state
    published = await adapters.linkedin.publish(again(req, saved))
    assert len(fakes.linkedin.posts) == 1
    assert published.external_id == fakes.linkedin.posts[0]["id"]
    assert len(fakes.linkedin.seen("GET", "^/rest/posts$")) == 1, "looked before re-sending"


@pytest.mark.parametrize("kind", ["commit_drop", "timeout"])
async def test_a_post_committed_before_the_connection_failed_is_found_not_repeated(
    fakes: Fakes, kind: str
) -> None:
    registry = PlatformAdapters(fakes.settings(timeout_seconds=0.5))
    try:
        fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind=kind, commit=True, delay=1.0))
        req, saved = li(fakes, "Committed, then the answer was lost")
        with pytest.raises(TransientError) as caught:
            await registry.linkedin.publish(req)
        assert caught.value.code in ("linkedin_timeout", "linkedin_connection_error")
        assert len(fakes.linkedin.posts) == 1

        found = await registry.linkedin.find_published(again(req, saved))
        assert found is not None
        assert found.external_id == fakes.linkedin.posts[0]["id"]
        published = await registry.linkedin.publish(again(req, saved))
        assert published.external_id == fakes.linkedin.posts[0]["id"]
        assert len(fakes.linkedin.posts) == 1
    finally:
        await registry.aclose()


async def test_a_connection_refused_is_not_an_unknown_outcome(fakes: Fakes) -> None:
    settings = fakes.settings(linkedin_base_url="http://127.0.0.1:9")
    media = MediaFetcher(settings)
    adapter = LinkedInAdapter(settings, media)
    try:
        req, saved = li(fakes, "hello")
        with pytest.raises(TransientError) as caught:
            await adapter.publish(req)
        assert caught.value.code == "linkedin_connection_error"
        assert saved.state == {}
    finally:
        await adapter.aclose()
        await media.aclose()


async def test_find_published_is_none_when_nothing_landed(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = li(fakes, "never sent")
    assert await adapters.linkedin.find_published(req) is None


# Permanent.


async def test_a_real_duplicate_is_permanent(fakes: Fakes, adapters: PlatformAdapters) -> None:
    first, _ = li(fakes, "Same words")
    await adapters.linkedin.publish(first)
    fakes.linkedin.posts[0]["createdAt"] -= 3_600_000  # an hour ago: not this attempt's
    second, _ = li(fakes, "Same words")
    with pytest.raises(PermanentError) as caught:
        await adapters.linkedin.publish(second)
    assert caught.value.code == "linkedin_duplicate_post"
    assert "duplicate" in caught.value.message.lower()


async def test_validation_errors_are_permanent(fakes: Fakes, adapters: PlatformAdapters) -> None:
    body = {
        "errorDetailType": "com.linkedin.common.error.BadRequest",
        "message": "Invalid field",
        "errorDetails": {"inputErrors": [{"code": "FIELD_VALUE_INVALID", "description": "bad", "input": {}}]},
        "status": 422,
    }
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(status=422, body=body))
    req, _ = li(fakes, "hello")
    with pytest.raises(PermanentError) as caught:
        await adapters.linkedin.publish(req)
    assert caught.value.code == "linkedin_invalid_request"


async def test_a_retired_version_is_permanent(fakes: Fakes) -> None:
    registry = PlatformAdapters(fakes.settings(linkedin_version="202001"))
    try:
        req, _ = li(fakes, "hello")
        with pytest.raises(PermanentError) as caught:
            await registry.linkedin.publish(req)
        assert caught.value.code == "linkedin_version_not_active"
    finally:
        await registry.aclose()


async def test_text_over_3000_characters_is_refused_before_sending(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    req, _ = li(fakes, "x" * 3001)
    with pytest.raises(PermanentError):
        await adapters.linkedin.publish(req)
    assert fakes.linkedin.requests == []


async def test_unfetchable_media_is_permanent(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = li(fakes, "bad picture", media=[("http://example.com/a.jpg", "")])
    with pytest.raises(PermanentError) as caught:
        await adapters.linkedin.publish(req)
    assert caught.value.code == "media_not_https"
    assert fakes.linkedin.seen("POST", "^/rest/posts$") == []


# "Did it land?" with more posts than one page, and the member accounts that cannot be listed.


@pytest.mark.parametrize("refuses_duplicates", [True, False], ids=["refuses-duplicates", "accepts-them"])
async def test_a_dropped_create_is_found_behind_more_than_a_page_of_newer_posts(
    fakes: Fakes, adapters: PlatformAdapters, refuses_duplicates: bool
) -> None:
    fakes.linkedin.refuse_duplicates = refuses_duplicates
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_drop"))
    req, saved = li(fakes, "Ours, answer lost")
    await answer_lost(adapters.linkedin, req)
    fakes.linkedin.seed(AUTHOR, 150)  # a burst landed after ours: ours is on the second page

    published = await resolve(adapters.linkedin, req, saved)

    ours = [p for p in fakes.linkedin.posts if p["visible"] == "Ours, answer lost"]
    assert len(ours) == 1, "published exactly once"
    assert published.external_id == ours[0]["id"]
    assert len(fakes.linkedin.seen("POST", "^/rest/posts$")) == 1, "never re-sent"
    pages = fakes.linkedin.seen("GET", "^/rest/posts$")
    assert [(p.query["start"], p.query["count"], p.query["sortBy"]) for p in pages] == [
        ("0", "100", "CREATED"),
        ("100", "100", "CREATED"),
    ]


async def test_the_retry_after_a_dropped_answer_pages_too(fakes: Fakes, adapters: PlatformAdapters) -> None:
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_drop"))
    req, saved = li(fakes, "Retried after a timeout")
    await answer_lost(adapters.linkedin, req)
    fakes.linkedin.seed(AUTHOR, 250)
    published = await adapters.linkedin.publish(again(req, saved))
    [ours] = [p for p in fakes.linkedin.posts if p["visible"] == "Retried after a timeout"]
    assert published.external_id == ours["id"]
    assert len(fakes.linkedin.seen("GET", "^/rest/posts$")) == 3


async def test_the_lookup_stops_at_the_attempt_start(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = li(fakes, "never sent")
    fakes.linkedin.seed(AUTHOR, 500, at=req.started_at - 3600)  # an hour of older posts
    assert await adapters.linkedin.find_published(req) is None
    assert len(fakes.linkedin.seen("GET", "^/rest/posts$")) == 1, "the first page is already too old"


async def test_a_lookup_that_hits_its_page_limit_cannot_tell(fakes: Fakes) -> None:
    registry = PlatformAdapters(fakes.settings(lookup_max_pages=2))
    try:
        req, _ = li(fakes, "Somewhere far down")
        fakes.linkedin.seed(AUTHOR, 250)
        with pytest.raises(OutcomeUnknown) as caught:
            await registry.linkedin.find_published(req)
        assert caught.value.code == "linkedin_lookup_too_deep"
        assert len(fakes.linkedin.seen("GET", "^/rest/posts$")) == 2
    finally:
        await registry.aclose()


async def test_a_duplicate_answer_naming_our_unlisted_post_is_confirmed_and_published(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """The listing lags behind the create (the post is not listed yet); the re-send is refused as a
    DUPLICATE_POST of our own post: read back, it is ours, so it is published, not dead-lettered."""
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_drop"))
    req, saved = li(fakes, "Listed late")
    await answer_lost(adapters.linkedin, req)
    empty = {"elements": [], "paging": {"start": 0, "count": 100, "links": []}}
    fakes.linkedin.inject("GET", "^/rest/posts$", Fault(status=200, body=empty, times=2))

    published = await adapters.linkedin.publish(again(req, saved))

    [post] = fakes.linkedin.posts
    assert published.external_id == post["id"]
    [read] = fakes.linkedin.seen("GET", "^/rest/posts/")
    assert read.path == f"/rest/posts/{post['id']}"


async def test_a_duplicate_of_an_older_post_after_an_unknown_outcome_is_still_permanent(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    first, _ = li(fakes, "Said before")
    await adapters.linkedin.publish(first)
    fakes.linkedin.posts[0]["createdAt"] -= 3_600_000
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(status=503, body={"status": 503, "message": "x"}))
    req, saved = li(fakes, "Said before")
    await answer_lost(adapters.linkedin, req)
    with pytest.raises(PermanentError) as caught:
        await adapters.linkedin.publish(again(req, saved))
    assert caught.value.code == "linkedin_duplicate_post"
    assert len(fakes.linkedin.posts) == 1


MEMBER = "urn:li:person:abc123"


def member(fakes: Fakes, text: str) -> tuple[PublishRequest, Saved]:
    return request("linkedin", MEMBER, text, token=fakes.linkedin.grant("member-token"))


@pytest.mark.parametrize("refuses_duplicates", [True, False], ids=["refuses-duplicates", "accepts-them"])
async def test_member_create_with_a_lost_answer_is_unknown_never_resent(
    fakes: Fakes, adapters: PlatformAdapters, refuses_duplicates: bool
) -> None:
    fakes.linkedin.refuse_duplicates = refuses_duplicates
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_drop"))
    req, saved = member(fakes, "Members cannot be listed")
    await answer_lost(adapters.linkedin, req)

    with pytest.raises(OutcomeUnknown) as caught:
        await resolve(adapters.linkedin, req, saved)
    assert caught.value.code == "linkedin_member_outcome_unknown"
    with pytest.raises(OutcomeUnknown):
        await adapters.linkedin.publish(again(req, saved))
    assert len(fakes.linkedin.posts) == 1, "never posted twice"
    assert len(fakes.linkedin.seen("POST", "^/rest/posts$")) == 1, "never re-sent"
    assert fakes.linkedin.seen("GET", "^/rest/posts") == [], "members' posts cannot be read"


async def test_member_attempt_killed_after_sending_its_create_is_unknown(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """The operator dies while the create is in flight: no ``unconfirmedSince`` was written, but
    the create had been announced (``createSentAttempt``), so the outcome is unknown."""
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_hang", delay=10))
    req, saved = member(fakes, "Killed mid-call")
    call = asyncio.ensure_future(adapters.linkedin.publish(req))
    for _ in range(200):
        if fakes.linkedin.posts:
            break
        await asyncio.sleep(0.02)
    call.cancel()  # what a SIGKILL leaves behind: the create sent, no answer recorded
    with pytest.raises(asyncio.CancelledError):
        await call
    assert saved.state == {"createSentAttempt": 1}

    with pytest.raises(OutcomeUnknown):
        await resolve(adapters.linkedin, req, saved)
    assert len(fakes.linkedin.posts) == 1


async def test_member_attempt_killed_before_its_create_is_safely_not_found(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """Killed before the create was sent (e.g. while uploading images): certainly not published, so
    the re-send goes ahead and posts once."""
    req, saved = member(fakes, "Killed while uploading")
    published = await resolve(adapters.linkedin, req, saved)
    [post] = fakes.linkedin.posts
    assert published.external_id == post["id"]


async def test_member_create_refused_then_retried_is_not_unknown(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """A create LinkedIn answered with a refusal (429) certainly did not post: the marker is
    removed, and an attempt interrupted later, before its own create, is safely "not found"."""
    body = {"serviceErrorCode": 101, "message": "throttled", "status": 429}
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(status=429, body=body))
    req, saved = member(fakes, "Throttled first")
    await answer_lost(adapters.linkedin, req)
    assert saved.state == {}
    published = await resolve(adapters.linkedin, again(req, saved), saved)
    [post] = fakes.linkedin.posts
    assert published.external_id == post["id"]


async def test_member_duplicate_on_a_first_attempt_is_permanent(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    first, _ = member(fakes, "Posted by hand earlier")
    await adapters.linkedin.publish(first)
    second, _ = member(fakes, "Posted by hand earlier")
    with pytest.raises(PermanentError) as caught:
        await adapters.linkedin.publish(second)
    assert caught.value.code == "linkedin_duplicate_post"


async def test_an_answer_that_trickles_in_is_cut_at_the_request_deadline(fakes: Fakes) -> None:
    """httpx's read timeout restarts with every byte; the adapter's whole-exchange deadline (twice
    the timeout) is what makes ``max_publish_seconds`` a bound. A create cut there may have landed."""
    settings = fakes.settings(timeout_seconds=0.3)
    registry = PlatformAdapters(settings)
    try:
        fakes.linkedin.inject("GET", "^/rest/posts$", Fault(kind="trickle", delay=5.0))
        req, _ = li(fakes, "slow listing")
        started = time.monotonic()
        with pytest.raises(TransientError) as caught:
            await registry.linkedin.find_published(req)
        assert caught.value.code == "linkedin_timeout"
        assert time.monotonic() - started < settings.request_deadline_seconds + 1.0
    finally:
        await registry.aclose()


# A create the platform may still act on (issue 9 review): ambiguous, and never dead-lettered
# while an earlier attempt's outcome is unknown.

DUPLICATE_NAMING_NOTHING = {
    "errorDetailType": "com.linkedin.common.error.BadRequest",
    "message": "Duplicate post is detected",
    "errorDetails": {
        "inputErrors": [{"description": "Duplicate post is detected", "input": {}, "code": "DUPLICATE_POST"}]
    },
    "status": 422,
}


@pytest.mark.parametrize("fault", [
    Fault(kind="commit_later", delay=60),
    Fault(kind="commit_drop"),
    Fault(status=503, body={"message": "down", "status": 503}),
    Fault(status=201, body=None),
], ids=["commit-later", "commit-drop", "503", "201-without-urn"])  # fmt: skip
async def test_a_create_that_may_have_been_acted_on_is_ambiguous(
    fakes: Fakes, adapters: PlatformAdapters, fault: Fault
) -> None:
    """The operator must not look it up (or re-send) before the platform could have committed it:
    LinkedIn may commit a create seconds after the answer was lost."""
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(**vars(fault)))
    req, saved = li(fakes, "Maybe landed")
    await ambiguous_then_published_once(adapters.linkedin, fakes.linkedin, req, saved)


async def test_a_looked_up_too_early_delayed_commit_is_what_ambiguous_prevents(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """Why the operator must wait: looked up right after the lost answer, the delayed create is not
    there yet, and a re-send posts twice where LinkedIn accepts duplicates."""
    fakes.linkedin.refuse_duplicates = False
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_later", delay=60))
    req, saved = li(fakes, "Landed late")
    with pytest.raises(TransientError) as caught:
        await adapters.linkedin.publish(req)
    assert caught.value.ambiguous
    await adapters.linkedin.publish(again(req, saved))  # what a retry without the wait does
    fakes.linkedin.release_later()
    fakes.linkedin.settle()
    assert len(fakes.linkedin.posts) == 2


async def test_refusals_and_connections_never_made_are_not_ambiguous(fakes: Fakes) -> None:
    registry = PlatformAdapters(fakes.settings())
    refused = LinkedInAdapter(
        fakes.settings(linkedin_base_url="http://127.0.0.1:9"), MediaFetcher(fakes.settings())
    )
    try:
        req, saved = li(fakes, "Nothing was created")
        with pytest.raises(TransientError) as caught:
            await refused.publish(req)
        assert (caught.value.code, caught.value.ambiguous) == ("linkedin_connection_error", False)
        body = {"serviceErrorCode": 101, "message": "throttled", "status": 429}
        fakes.linkedin.inject("POST", "^/rest/posts$", Fault(status=429, body=body))
        with pytest.raises(TransientError) as caught:
            await registry.linkedin.publish(req)
        assert (caught.value.code, caught.value.ambiguous) == ("linkedin_throttled", False)
        assert saved.state == {}
    finally:
        await refused.aclose()
        await registry.aclose()


@pytest.mark.parametrize("status", [426, 400, 404])
async def test_a_lookup_refused_for_good_after_an_unknown_outcome_is_unknown_not_dead(
    fakes: Fakes, adapters: PlatformAdapters, status: int
) -> None:
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_drop"))
    req, saved = li(fakes, "Landed, then the listing was refused")
    await answer_lost(adapters.linkedin, req)
    refusal = Fault(status=status, body={"status": status, "message": "refused"}, times=2)
    fakes.linkedin.inject("GET", "^/rest/posts$", refusal)

    with pytest.raises(OutcomeUnknown) as retried:
        await adapters.linkedin.publish(again(req, saved))
    with pytest.raises(OutcomeUnknown) as resolved:
        await adapters.linkedin.find_published(again(req, saved))
    assert f"answered {status}" in retried.value.message
    assert resolved.value.code.endswith("_after_unknown_outcome")
    assert len(fakes.linkedin.posts) == 1
    assert len(fakes.linkedin.seen("POST", "^/rest/posts$")) == 1, "never re-sent"


async def test_a_duplicate_naming_no_post_after_an_unknown_outcome_is_unknown_not_dead(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """The lost create landed late; the listing lags behind it, and the re-send's DUPLICATE_POST
    names no post: it cannot be confirmed or ruled out, so a person decides."""
    fakes.linkedin.listing_lag = 3600
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_later", delay=60))
    req, saved = li(fakes, "Duplicate of ourselves")
    await answer_lost(adapters.linkedin, req)
    fakes.linkedin.release_later()
    fakes.linkedin.settle()
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(status=422, body=DUPLICATE_NAMING_NOTHING))

    with pytest.raises(OutcomeUnknown) as caught:
        await adapters.linkedin.publish(again(req, saved))
    assert caught.value.code == "linkedin_duplicate_unconfirmed"
    assert len(fakes.linkedin.posts) == 1


async def test_a_duplicate_naming_no_post_on_a_first_attempt_is_still_permanent(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(status=422, body=DUPLICATE_NAMING_NOTHING))
    req, _ = li(fakes, "Said elsewhere before")
    with pytest.raises(PermanentError) as caught:
        await adapters.linkedin.publish(req)
    assert caught.value.code == "linkedin_duplicate_post"


async def test_member_connection_never_made_clears_the_sent_marker(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """Nothing left on a refused connection: a later attempt interrupted before its own create is
    "not sent" (re-sent once), not ``unknown``."""
    settings = fakes.settings(linkedin_base_url="http://127.0.0.1:9")
    media = MediaFetcher(settings)
    refused = LinkedInAdapter(settings, media)
    try:
        req, saved = member(fakes, "Never left the machine")
        with pytest.raises(TransientError) as caught:
            await refused.publish(req)
        assert caught.value.ambiguous is False
        assert saved.state == {}
    finally:
        await refused.aclose()
        await media.aclose()
    published = await resolve(adapters.linkedin, again(req, saved), saved)
    [post] = fakes.linkedin.posts
    assert published.external_id == post["id"]


async def test_a_lookup_failing_for_now_after_an_unknown_outcome_is_ambiguous(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """Retried, but never dead-lettered blind after five of them: the earlier create may be live."""
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_drop"))
    req, saved = li(fakes, "Landed, then the listing was down")
    await answer_lost(adapters.linkedin, req)
    fakes.linkedin.inject("GET", "^/rest/posts$", Fault(status=503, body={"status": 503, "message": "down"}))
    with pytest.raises(TransientError) as caught:
        await adapters.linkedin.publish(again(req, saved))
    assert (caught.value.code, caught.value.ambiguous) == ("linkedin_server_error", True)
    assert len(fakes.linkedin.seen("POST", "^/rest/posts$")) == 1, "never re-sent"
