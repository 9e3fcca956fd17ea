"""The Instagram adapter against the fake Graph API: containers, polling, publishing, recovery."""

from __future__ import annotations

import pytest

from socialpub.models.platforms import Platform, count_hashtags, count_mentions, length_problems
from socialpub.platforms.base import (
    Deferred,
    OutcomeUnknown,
    PermanentError,
    ReconnectError,
    TransientError,
)
from socialpub.platforms.registry import PlatformAdapters
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes
from tests.fakes.graph import graph_error_body
from tests.platforms.support import Saved, again, answer_lost, request, resolve

USER = "17841400000000001"


def ig(fakes: Fakes, text: str, n: int = 1, **kwargs):  # type: ignore[no-untyped-def]
    token = fakes.instagram.grant("ig-token")
    media = kwargs.pop("media", [(fakes.media.jpeg(f"i{i}"), f"alt {i}") for i in range(n)])
    return request("instagram", USER, text, token=token, media=media, **kwargs)


# Success.


async def test_one_image(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, saved = ig(fakes, "Hello #instagram")
    published = await adapters.instagram.publish(req)

    [create] = fakes.instagram.seen("POST", f"/{USER}/media$")
    assert create.query["access_token"] == "ig-token"
    assert create.form == {"image_url": req.media[0].url, "alt_text": "alt 0", "caption": "Hello #instagram"}
    [container] = fakes.instagram.containers
    assert saved.writes[0]["containerId"] == container, "the container id is saved first"
    [limit] = fakes.instagram.seen("GET", "/content_publishing_limit$")
    assert limit.query["fields"] == "quota_usage,config"
    [publish] = fakes.instagram.seen("POST", "/media_publish$")
    assert publish.query["creation_id"] == container
    [media] = fakes.instagram.media
    assert published.external_id == media["id"]
    assert published.url == media["permalink"]
    assert media["caption"] == "Hello #instagram"
    order = [r.path.rsplit("/", 1)[-1] for r in fakes.instagram.requests]
    assert order.index("content_publishing_limit") < order.index("media_publish")


async def test_carousel(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = ig(fakes, "Three in a row", n=3)
    published = await adapters.instagram.publish(req)

    creates = fakes.instagram.seen("POST", f"/{USER}/media$")
    children = [c for c in creates if c.form.get("is_carousel_item") == "true"]
    assert len(children) == 3
    assert sorted(c.form["alt_text"] for c in children) == ["alt 0", "alt 1", "alt 2"]
    assert all("caption" not in c.form for c in children)
    [parent] = [c for c in creates if c.form.get("media_type") == "CAROUSEL"]
    assert parent.form["caption"] == "Three in a row"
    assert len(parent.form["children"].split(",")) == 3
    [media] = fakes.instagram.media
    assert media["media_type"] == "CAROUSEL_ALBUM"
    assert sorted(media["children"]) == sorted(m.url for m in req.media)
    assert published.external_id == media["id"]


async def test_a_container_that_takes_several_polls(fakes: Fakes, adapters: PlatformAdapters) -> None:
    fakes.instagram.polls_to_finish = 3
    req, _ = ig(fakes, "Slow to process")
    await adapters.instagram.publish(req)
    assert len(fakes.instagram.seen("GET", r"/v25\.0/\d+$")) >= 4
    assert len(fakes.instagram.media) == 1


async def test_polling_is_bounded_and_the_next_attempt_resumes(fakes: Fakes) -> None:
    registry = PlatformAdapters(fakes.settings(instagram_poll_timeout_seconds=0.2))
    try:
        fakes.instagram.polls_to_finish = 1000
        req, saved = ig(fakes, "Very slow")
        with pytest.raises(TransientError) as caught:
            await registry.instagram.publish(req)
        assert caught.value.code == "instagram_container_in_progress"
        [container] = fakes.instagram.containers
        assert saved.state["containerId"] == container
        fakes.instagram.polls_to_finish = 0
        await registry.instagram.publish(again(req, saved))
        assert list(fakes.instagram.containers) == [container], "the saved container is reused"
        assert len(fakes.instagram.media) == 1
    finally:
        await registry.aclose()


# Outcome classes.


async def test_an_errored_container_is_replaced(fakes: Fakes, adapters: PlatformAdapters) -> None:
    fakes.instagram.fates = ["ERROR:2207001"]
    req, saved = ig(fakes, "Try again")
    with pytest.raises(TransientError) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.code == "instagram_container_error"
    assert "containerId" not in saved.state
    await adapters.instagram.publish(again(req, saved))
    assert len(fakes.instagram.containers) == 2
    assert len(fakes.instagram.media) == 1


async def test_a_container_rejected_for_its_media_is_permanent(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.instagram.fates = ["ERROR:2207026"]
    req, _ = ig(fakes, "Bad video format")
    with pytest.raises(PermanentError) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.code == "instagram_media_rejected_2207026"


async def test_an_expired_saved_container_is_replaced_without_failing(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.instagram.polls_to_finish = 1000
    registry = PlatformAdapters(fakes.settings(instagram_poll_timeout_seconds=0.1))
    req, saved = ig(fakes, "Left for a day")
    try:
        await answer_lost(registry.instagram, req)
    finally:
        await registry.aclose()
    [old] = fakes.instagram.containers
    fakes.instagram.containers[old]["status_code"] = "EXPIRED"
    fakes.instagram.polls_to_finish = 0
    published = await adapters.instagram.publish(again(req, saved))
    assert saved.state["containerId"] != old
    assert published.external_id == fakes.instagram.media[0]["id"]


async def test_quota_used_up_defers_without_publishing(fakes: Fakes, adapters: PlatformAdapters) -> None:
    fakes.instagram.quota_total = 0
    req, saved = ig(fakes, "Over quota")
    with pytest.raises(Deferred) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.code == "instagram_quota_exhausted"
    assert caught.value.retry_after == 3600
    assert fakes.instagram.seen("POST", "/media_publish$") == []
    assert "containerId" in saved.state, "the finished container waits for the quota"


async def test_the_quota_error_at_publish_defers(fakes: Fakes, adapters: PlatformAdapters) -> None:
    body = graph_error_body(9, "daily publishing limit", subcode=2207042)
    fakes.instagram.inject("POST", "/media_publish$", Fault(status=400, body=body))
    req, _ = ig(fakes, "Raced the quota")
    with pytest.raises(Deferred):
        await adapters.instagram.publish(req)


async def test_not_ready_at_publish_is_transient(fakes: Fakes, adapters: PlatformAdapters) -> None:
    body = graph_error_body(9007, "The media is not ready for publishing", subcode=2207027)
    fakes.instagram.inject("POST", "/media_publish$", Fault(status=400, body=body))
    req, _ = ig(fakes, "Too early")
    with pytest.raises(TransientError) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.code == "instagram_not_ready"


async def test_png_is_refused_permanently(fakes: Fakes, adapters: PlatformAdapters) -> None:
    req, _ = ig(fakes, "A PNG", media=[(f"{fakes.media.url}/img/shot.png", "")])
    with pytest.raises(PermanentError) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.code == "instagram_media_rejected_2207005"


async def test_text_only_and_too_many_images_are_refused_before_sending(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    req, _ = ig(fakes, "No picture", media=[])
    with pytest.raises(PermanentError):
        await adapters.instagram.publish(req)
    req, _ = ig(fakes, "Eleven", n=11)
    with pytest.raises(PermanentError):
        await adapters.instagram.publish(req)
    assert fakes.instagram.requests == []


@pytest.mark.parametrize("state", ["expired", "revoked"])
async def test_token_problems_need_a_reconnect(fakes: Fakes, adapters: PlatformAdapters, state: str) -> None:
    req, _ = ig(fakes, "hello")
    getattr(fakes.instagram, "expire" if state == "expired" else "revoke")("ig-token")
    with pytest.raises(ReconnectError) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.revoked is (state == "revoked")


async def test_restricted_account_needs_a_reconnect(fakes: Fakes, adapters: PlatformAdapters) -> None:
    body = graph_error_body(25, "Instagram account is restricted", subcode=2207050)
    fakes.instagram.inject("POST", f"/{USER}/media$", Fault(status=400, body=body))
    req, _ = ig(fakes, "hello")
    with pytest.raises(ReconnectError):
        await adapters.instagram.publish(req)


# Recovery.


async def test_publish_committed_then_dropped_is_found_through_the_container(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.instagram.inject("POST", "/media_publish$", Fault(kind="commit_drop"))
    req, saved = ig(fakes, "Published, answer lost")
    await answer_lost(adapters.instagram, req)
    [media] = fakes.instagram.media

    found = await adapters.instagram.find_published(again(req, saved))
    assert found is not None
    assert found.external_id == media["id"]
    assert found.url == media["permalink"]
    published = await adapters.instagram.publish(again(req, saved))
    assert published.external_id == media["id"]
    assert len(fakes.instagram.media) == 1
    assert len(fakes.instagram.seen("POST", "/media_publish$")) == 1


async def test_find_published_without_a_published_container_is_none(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    req, _ = ig(fakes, "nothing yet")
    assert await adapters.instagram.find_published(req) is None
    fakes.instagram.quota_total = 0
    saved = Saved()
    req, saved = ig(fakes, "finished, not published", saved=saved)
    with pytest.raises(Deferred):
        await adapters.instagram.publish(req)
    assert await adapters.instagram.find_published(again(req, saved)) is None


# "Did it land?" with more media than one page.


async def test_a_published_container_is_found_behind_more_than_a_page_of_newer_media(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.instagram.inject("POST", "/media_publish$", Fault(kind="commit_drop"))
    req, saved = ig(fakes, "Ours, answer lost")
    await answer_lost(adapters.instagram, req)
    fakes.instagram.seed(USER, 150)  # a burst landed after ours: ours is on the second page

    published = await resolve(adapters.instagram, req, saved)

    ours = [m for m in fakes.instagram.media if m["caption"] == "Ours, answer lost"]
    assert len(ours) == 1, "published exactly once"
    assert published.external_id == ours[0]["id"]
    assert len(fakes.instagram.seen("POST", "/media_publish$")) == 1
    first, second = fakes.instagram.seen("GET", f"/{USER}/media$")
    assert first.query["limit"] == "100"
    assert "since" in first.query
    assert "after" in second.query, "followed paging.next"


async def test_a_lookup_that_hits_its_page_limit_cannot_tell(fakes: Fakes) -> None:
    registry = PlatformAdapters(fakes.settings(lookup_max_pages=2))
    try:
        fakes.instagram.inject("POST", "/media_publish$", Fault(kind="commit_drop"))
        req, saved = ig(fakes, "Somewhere far down")
        await answer_lost(registry.instagram, req)
        fakes.instagram.seed(USER, 250)
        with pytest.raises(OutcomeUnknown) as caught:
            await registry.instagram.find_published(again(req, saved))
        assert caught.value.code == "instagram_lookup_too_deep"
    finally:
        await registry.aclose()


async def test_the_media_lookup_reads_only_since_the_container(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.instagram.seed(USER, 300, at=0)  # old media only: never read
    fakes.instagram.inject("POST", "/media_publish$", Fault(kind="commit_drop"))
    req, saved = ig(fakes, "Found on the first page")
    await answer_lost(adapters.instagram, req)
    assert await adapters.instagram.find_published(again(req, saved)) is not None
    [listing] = fakes.instagram.seen("GET", f"/{USER}/media$")
    assert float(listing.query["since"]) > 0


# Caption limits, checked before sending (the api checks the same at create time).


@pytest.mark.parametrize(
    ("caption", "what"),
    [
        (" ".join(f"@user{i}" for i in range(21)), "20 @mentions"),
        ("#" + "#".join(f"tag{i}" for i in range(31)), "30 hashtags"),
        ("Glued " + "".join(f"#t{i}" for i in range(31)), "30 hashtags"),
    ],
    ids=["21-mentions", "31-glued-hashtags", "31-hashtags-glued-to-nothing-else"],
)
async def test_too_many_mentions_or_hashtags_are_refused_before_sending(
    fakes: Fakes, adapters: PlatformAdapters, caption: str, what: str
) -> None:
    req, _ = ig(fakes, caption)
    with pytest.raises(PermanentError) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.code == "instagram_caption_rejected"
    assert f"at most {what}" in caught.value.message
    assert fakes.instagram.requests == []


async def test_twenty_mentions_thirty_hashtags_and_emails_are_fine(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    caption = (
        " ".join(f"@user{i}" for i in range(20))
        + " "
        + "".join(f"#t{i}" for i in range(30))
        + " write to team@example.com or sales@example.com"
    )
    req, _ = ig(fakes, caption)
    await adapters.instagram.publish(req)
    [media] = fakes.instagram.media
    assert media["caption"] == caption


@pytest.mark.parametrize(
    ("text", "hashtags", "mentions"),
    [
        ("#a#b#c", 3, 0),
        ("word#tag ##double #2024 #2024goals", 3, 0),
        ("@a @b.c (@d) @e. me@example.com @@f", 0, 4),
    ],
)
def test_hashtags_and_mentions_are_counted_as_instagram_does(text: str, hashtags: int, mentions: int) -> None:
    """One function counts for the api at create time and for the adapter before sending."""
    assert (count_hashtags(text), count_mentions(text)) == (hashtags, mentions)


def test_the_api_and_the_adapter_share_the_caption_rules() -> None:
    glued = "".join(f"#t{i}" for i in range(31))
    assert length_problems(Platform.INSTAGRAM, glued) == [
        "instagram allows at most 30 hashtags; this text has 31"
    ]
    assert length_problems(Platform.FACEBOOK, glued) == []


# media_publish the platform may still act on, and a published container whose media is not
# listed (issue 9 review): never dead while live, never published twice.


@pytest.mark.parametrize("fault", [
    Fault(kind="commit_later", delay=60),
    Fault(kind="commit_drop"),
    Fault(status=500, body=graph_error_body(1, "An unknown error occurred", transient=True)),
], ids=["commit-later", "commit-drop", "500"])  # fmt: skip
async def test_a_media_publish_that_may_have_been_acted_on_is_ambiguous(
    fakes: Fakes, adapters: PlatformAdapters, fault: Fault
) -> None:
    fakes.instagram.inject("POST", "/media_publish$", Fault(**vars(fault)))
    req, saved = ig(fakes, "Maybe published")
    with pytest.raises(TransientError) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.ambiguous is True
    fakes.instagram.release_later()
    fakes.instagram.settle()  # what waiting out the claim's lease gives: the publish has landed
    published = await resolve(adapters.instagram, req, saved)
    assert [m["id"] for m in fakes.instagram.media] == [published.external_id], "published once"


async def test_a_quota_refusal_of_media_publish_is_not_ambiguous(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    body = graph_error_body(9, "The account has reached its daily publishing limit", subcode=2207042)
    fakes.instagram.inject("POST", "/media_publish$", Fault(status=400, body=body))
    req, _ = ig(fakes, "Over the quota")
    with pytest.raises(Deferred) as caught:
        await adapters.instagram.publish(req)
    assert caught.value.ambiguous is False


async def test_a_publish_still_processing_when_the_retry_reads_the_container_is_not_dead(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    """The retry reads the saved container FINISHED (the lost media_publish is still being
    processed), and PUBLISHED on its next read: the post is live, so it is found, not dead-lettered
    and not published again."""
    fakes.instagram.inject("POST", "/media_publish$", Fault(kind="commit_later", delay=60))
    req, saved = ig(fakes, "Published while we looked")
    await answer_lost(adapters.instagram, req)
    container = saved.state["containerId"]
    assert fakes.instagram.media == []
    # The first status read answers FINISHED; the held-back publish lands right after it.
    fakes.instagram.inject(
        "GET", f"/{container}$", Fault(kind="then", on_commit=fakes.instagram.release_later)
    )

    published = await adapters.instagram.publish(again(req, saved))

    [media] = fakes.instagram.media
    assert published.external_id == media["id"]
    assert len(fakes.instagram.seen("POST", "/media_publish$")) == 1, "never published twice"


async def test_a_published_container_not_listed_yet_defers_then_is_unknown_never_dead(fakes: Fakes) -> None:
    registry = PlatformAdapters(fakes.settings(instagram_unlisted_wait_seconds=600))
    try:
        fakes.instagram.listing_lag = 3600  # published, but the media list does not show it
        fakes.instagram.inject("POST", "/media_publish$", Fault(kind="commit_drop"))
        req, saved = ig(fakes, "Live, not listed")
        await answer_lost(registry.instagram, req)

        for _ in range(6):  # more than the five attempts that would dead-letter it
            with pytest.raises(Deferred) as retried:
                await registry.instagram.publish(again(req, saved))
            assert retried.value.code == "instagram_published_unlisted"
            assert 0 < (retried.value.retry_after or 0) <= 30
        with pytest.raises(Deferred):
            await registry.instagram.find_published(again(req, saved))
        assert "publishedUnlistedSince" in saved.state

        # The wait is bounded: past it, the post is live with an id nobody can learn.
        saved.state["publishedUnlistedSince"] = "2000-01-01T00:00:00Z"
        with pytest.raises(OutcomeUnknown) as caught:
            await registry.instagram.publish(again(req, saved))
        assert caught.value.code == "instagram_published_unlisted"
        with pytest.raises(OutcomeUnknown):
            await registry.instagram.find_published(again(req, saved))
        assert len(fakes.instagram.seen("POST", "/media_publish$")) == 1, "never published again"

        fakes.instagram.listing_lag = 0  # once listed, it is found with its id
        published = await registry.instagram.publish(again(req, saved))
        assert published.external_id == fakes.instagram.media[0]["id"]
    finally:
        await registry.aclose()


@pytest.mark.parametrize("read", ["container", "media"])
async def test_a_lookup_refused_for_good_after_a_publish_is_unknown_not_dead(
    fakes: Fakes, adapters: PlatformAdapters, read: str
) -> None:
    fakes.instagram.inject("POST", "/media_publish$", Fault(kind="commit_drop"))
    req, saved = ig(fakes, "Published, then the lookup was refused")
    await answer_lost(adapters.instagram, req)
    path = f"/{saved.state['containerId']}$" if read == "container" else f"/{USER}/media$"
    refusal = Fault(status=400, body=graph_error_body(100, "(#100) Invalid parameter"), times=2)
    fakes.instagram.inject("GET", path, refusal)

    with pytest.raises(OutcomeUnknown):
        await adapters.instagram.publish(again(req, saved))
    with pytest.raises(OutcomeUnknown):
        await adapters.instagram.find_published(again(req, saved))
    assert len(fakes.instagram.seen("POST", "/media_publish$")) == 1


async def test_a_published_container_whose_media_list_fails_for_now_spends_no_attempt(
    fakes: Fakes, adapters: PlatformAdapters
) -> None:
    fakes.instagram.inject("POST", "/media_publish$", Fault(kind="commit_drop"))
    req, saved = ig(fakes, "Live, list down")
    await answer_lost(adapters.instagram, req)
    down = Fault(status=500, body=graph_error_body(2, "Service temporarily unavailable", transient=True))
    fakes.instagram.inject("GET", f"/{USER}/media$", down)
    with pytest.raises(Deferred) as caught:
        await adapters.instagram.publish(again(req, saved))
    assert caught.value.code == "instagram_published_unlisted"
    published = await adapters.instagram.publish(again(req, saved))
    assert published.external_id == fakes.instagram.media[0]["id"]
