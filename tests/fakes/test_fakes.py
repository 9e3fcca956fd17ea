"""The fakes check what the real platforms check, and answer in their shapes (raw httpx calls)."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes

LI_HEADERS = {"LinkedIn-Version": "202601", "X-Restli-Protocol-Version": "2.0.0", "Authorization": "Bearer t"}
POST = {
    "author": "urn:li:organization:1",
    "commentary": "hello",
    "visibility": "PUBLIC",
    "distribution": {
        "feedDistribution": "MAIN_FEED",
        "targetEntities": [],
        "thirdPartyDistributionChannels": [],
    },
    "lifecycleState": "PUBLISHED",
}


def test_linkedin_checks_token_version_and_protocol_headers(fakes: Fakes) -> None:
    fakes.linkedin.grant("t")
    url = f"{fakes.linkedin.url}/rest/posts"
    no_token = httpx.post(
        url, json=POST, headers={k: v for k, v in LI_HEADERS.items() if k != "Authorization"}
    )
    assert (no_token.status_code, no_token.json()["serviceErrorCode"]) == (401, 65600)
    no_version = httpx.post(url, json=POST, headers={**LI_HEADERS, "LinkedIn-Version": "202001"})
    assert (no_version.status_code, no_version.json()["code"]) == (426, "NONEXISTENT_VERSION")
    no_protocol = httpx.post(
        url, json=POST, headers={k: v for k, v in LI_HEADERS.items() if "Restli" not in k}
    )
    assert no_protocol.status_code == 400
    missing = httpx.post(url, json={k: v for k, v in POST.items() if k != "distribution"}, headers=LI_HEADERS)
    assert missing.status_code == 422
    bad_image = httpx.post(
        url, json={**POST, "content": {"media": {"id": "urn:li:image:nope"}}}, headers=LI_HEADERS
    )
    assert bad_image.status_code == 422
    assert fakes.linkedin.posts == []


def test_linkedin_answers_201_with_the_urn_in_a_header_and_refuses_duplicates(fakes: Fakes) -> None:
    fakes.linkedin.grant("t")
    url = f"{fakes.linkedin.url}/rest/posts"
    created = httpx.post(url, json=POST, headers=LI_HEADERS)
    assert created.status_code == 201
    assert created.content == b""
    urn = created.headers["x-restli-id"]
    assert urn.startswith("urn:li:share:")
    again = httpx.post(url, json=POST, headers=LI_HEADERS)
    assert again.status_code == 422
    assert urn in again.json()["message"]
    assert again.json()["errorDetails"]["inputErrors"][0]["code"] == "DUPLICATE_POST"
    listed = httpx.get(url, params={"q": "author", "author": POST["author"]}, headers=LI_HEADERS).json()
    assert [e["id"] for e in listed["elements"]] == [urn]


def test_linkedin_emulates_silent_truncation(fakes: Fakes) -> None:
    fakes.linkedin.grant("t")
    created = httpx.post(
        f"{fakes.linkedin.url}/rest/posts",
        json={**POST, "commentary": "Launch (beta) now"},
        headers=LI_HEADERS,
    )
    assert created.status_code == 201
    assert fakes.linkedin.posts[0]["visible"] == "Launch "


def test_graph_checks_the_token_and_answers_with_usage_headers(fakes: Fakes) -> None:
    url = f"{fakes.facebook.base_url}/123/feed"
    refused = httpx.post(url, data={"message": "x"}, params={"access_token": "nope"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 190
    assert "fbtrace_id" in refused.json()["error"]
    fakes.facebook.grant("t")
    empty = httpx.post(url, data={}, params={"access_token": "t"})
    assert empty.json()["error"]["code"] == 100
    created = httpx.post(url, data={"message": "x"}, params={"access_token": "t"})
    assert created.json()["id"].startswith("123_")
    assert "call_count" in created.headers["x-app-usage"]
    bearer = httpx.post(url, data={"message": "y"}, headers={"Authorization": "Bearer t"})
    assert bearer.status_code == 200
    duplicate = httpx.post(url, data={"message": "y"}, params={"access_token": "t"})
    assert duplicate.json()["error"]["code"] == 506


def test_facebook_attached_media_must_be_unpublished_photos_of_the_page(fakes: Fakes) -> None:
    fakes.facebook.grant("t")
    base = fakes.facebook.base_url
    published = httpx.post(
        f"{base}/123/photos", data={"url": "https://x/a.jpg"}, params={"access_token": "t"}
    )
    assert set(published.json()) == {"id", "post_id"}
    refused = httpx.post(
        f"{base}/123/feed",
        data={"message": "m", "attached_media[0]": f'{{"media_fbid": "{published.json()["id"]}"}}'},
        params={"access_token": "t"},
    )
    assert refused.json()["error"]["code"] == 100


def test_instagram_container_lifecycle(fakes: Fakes) -> None:
    fakes.instagram.grant("t")
    fakes.instagram.polls_to_finish = 1
    base, token = fakes.instagram.base_url, {"access_token": "t"}
    container = httpx.post(
        f"{base}/9/media", data={"image_url": fakes.media.jpeg(), "caption": "c"}, params=token
    )
    cid = container.json()["id"]
    early = httpx.post(f"{base}/9/media_publish", params={**token, "creation_id": cid}).json()["error"]
    assert (early["code"], early["error_subcode"]) == (9007, 2207027)
    statuses = [
        httpx.get(f"{base}/{cid}", params={**token, "fields": "status_code"}).json()["status_code"]
        for _ in range(2)
    ]
    assert statuses == ["IN_PROGRESS", "FINISHED"]
    media = httpx.post(f"{base}/9/media_publish", params={**token, "creation_id": cid}).json()
    assert httpx.get(f"{base}/{cid}", params=token).json()["status_code"] == "PUBLISHED"
    assert httpx.get(f"{base}/{media['id']}", params={**token, "fields": "permalink"}).json()["permalink"]
    limit = httpx.get(f"{base}/9/content_publishing_limit", params=token).json()["data"][0]
    assert limit == {"quota_usage": 1, "config": {"quota_total": 100, "quota_duration": 86400}}
    fakes.instagram.quota_total = 1
    other = httpx.post(f"{base}/9/media", data={"image_url": fakes.media.jpeg()}, params=token).json()["id"]
    httpx.get(f"{base}/{other}", params=token)
    httpx.get(f"{base}/{other}", params=token)
    over = httpx.post(f"{base}/9/media_publish", params={**token, "creation_id": other}).json()["error"]
    assert (over["code"], over["error_subcode"]) == (9, 2207042)


def test_instagram_refuses_pngs_and_short_carousels(fakes: Fakes) -> None:
    fakes.instagram.grant("t")
    base, token = fakes.instagram.base_url, {"access_token": "t"}
    png = httpx.post(
        f"{base}/9/media", data={"image_url": f"{fakes.media.url}/img/a.png"}, params=token
    ).json()
    assert png["error"]["error_subcode"] == 2207005
    child = httpx.post(
        f"{base}/9/media", data={"image_url": fakes.media.jpeg(), "is_carousel_item": "true"}, params=token
    ).json()["id"]
    short = httpx.post(
        f"{base}/9/media", data={"media_type": "CAROUSEL", "children": child}, params=token
    ).json()
    assert short["error"]["error_subcode"] == 2207028


@pytest.mark.parametrize("kind", ["drop", "commit_drop"])
def test_dropped_connections(fakes: Fakes, kind: str) -> None:
    fakes.facebook.grant("t")
    fakes.facebook.inject("POST", "/feed$", Fault(kind=kind))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{fakes.facebook.base_url}/123/feed", data={"message": "x"}, params={"access_token": "t"})
    assert len(fakes.facebook.posts) == (1 if kind == "commit_drop" else 0)


def test_status_faults_answer_their_body_once(fakes: Fakes) -> None:
    fakes.linkedin.grant("t")
    fakes.linkedin.inject(
        "POST", "^/rest/posts$", Fault(status=429, body={"status": 429}, headers={"Retry-After": "7"})
    )
    url = f"{fakes.linkedin.url}/rest/posts"
    first = httpx.post(url, json=POST, headers=LI_HEADERS)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert httpx.post(url, json=POST, headers=LI_HEADERS).status_code == 201


def test_commit_later_drops_the_answer_and_lands_the_create_afterwards(fakes: Fakes) -> None:
    fakes.linkedin.grant("t")
    url = f"{fakes.linkedin.url}/rest/posts"
    fakes.linkedin.inject("POST", "^/rest/posts$", Fault(kind="commit_later", delay=60))
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json=POST, headers=LI_HEADERS)
    assert fakes.linkedin.posts == [], "nothing has landed when the answer is lost"
    fakes.linkedin.release_later()
    fakes.linkedin.settle()
    [post] = fakes.linkedin.posts
    assert post["commentary"] == "hello"


def test_listing_lag_hides_new_posts_from_listings_only(fakes: Fakes) -> None:
    fakes.linkedin.grant("t")
    fakes.linkedin.listing_lag = 3600
    url = f"{fakes.linkedin.url}/rest/posts"
    urn = httpx.post(url, json=POST, headers=LI_HEADERS).headers["x-restli-id"]
    listed = httpx.get(url, params={"q": "author", "author": POST["author"]}, headers=LI_HEADERS).json()
    assert listed["elements"] == []
    assert httpx.get(f"{url}/{urn}", headers=LI_HEADERS).status_code == 200
    assert httpx.post(url, json=POST, headers=LI_HEADERS).status_code == 422, "duplicates are seen at once"
    fakes.linkedin.listing_lag = 0
    listed = httpx.get(url, params={"q": "author", "author": POST["author"]}, headers=LI_HEADERS).json()
    assert [e["id"] for e in listed["elements"]] == [urn]
