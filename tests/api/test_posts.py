"""Every row of the posts contract, checked through HTTP and in Kubernetes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from socialpub.api.app import BASE_PATH
from socialpub.kube.client import KubeClient, NotFound
from socialpub.kube.resources import LABEL_ID, LABEL_POST, POSTS, TARGETS
from socialpub.models.keys import Scope
from tests.api.support import PNG, World, kube_do, wait_for

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def _kube_get(world: World, resource: Any, name: str) -> dict[str, Any] | None:
    async def get(client: KubeClient) -> dict[str, Any] | None:
        try:
            return await client.get(resource, name, world.namespace())
        except NotFound:
            return None

    return kube_do(world.kube, get)


def _set_status(world: World, resource: Any, name: str, status: dict[str, Any]) -> None:
    kube_do(
        world.kube,
        lambda c: c.patch(resource, name, {"status": status}, world.namespace(), subresource="status"),
    )


def _in(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def client(world: World) -> httpx.Client:
    return world.client()


@pytest.fixture
def linkedin(world: World) -> int:
    return world.add_account("linkedin", display_name="Acme Co")


@pytest.fixture
def facebook(world: World) -> int:
    return world.add_account("facebook", display_name="Acme Page")


class TestCreate:
    def test_creates_a_draft_with_its_targets(
        self, world: World, client: httpx.Client, linkedin: int, facebook: int
    ) -> None:
        payload = {
            "body": "We just launched! #launch",
            "media": [{"url": PNG, "alt": "The app"}, {"url": PNG + "?2"}],
            "targets": [{"account_id": linkedin}, {"account_id": facebook, "override_body": "Big news!"}],
        }
        response = client.post("/posts", json=payload)
        assert response.status_code == 201
        post = response.json()["data"]["post"]
        assert STAMP.match(post["created_at"])
        assert post["updated_at"] == post["created_at"]
        assert post == {
            "id": post["id"],
            "status": "draft",
            "body": "We just launched! #launch",
            "media": [{"url": PNG, "alt": "The app"}, {"url": PNG + "?2", "alt": ""}],
            "targets": [
                {"account_id": linkedin, "override_body": None},
                {"account_id": facebook, "override_body": "Big news!"},
            ],
            "scheduled_for": None,
            "published_at": None,
            "created_at": post["created_at"],
            "updated_at": post["updated_at"],
        }
        # In Kubernetes: the SocialPost and one SocialTarget per account, owned by it.
        obj = _kube_get(world, POSTS, f"post-{post['id']}")
        assert obj is not None
        assert obj["metadata"]["labels"][LABEL_ID] == str(post["id"])
        assert obj["spec"] == {
            "body": "We just launched! #launch",
            "media": [{"url": PNG, "alt": "The app"}, {"url": PNG + "?2"}],
            "targets": [{"accountId": linkedin}, {"accountId": facebook, "overrideBody": "Big news!"}],
            "draft": True,
        }
        for account, override in [(linkedin, None), (facebook, "Big news!")]:
            target = _kube_get(world, TARGETS, f"post-{post['id']}-{account}")
            assert target is not None
            assert target["metadata"]["labels"][LABEL_POST] == f"post-{post['id']}"
            assert target["metadata"]["ownerReferences"] == [
                {
                    "apiVersion": POSTS.api_version,
                    "kind": "SocialPost",
                    "name": f"post-{post['id']}",
                    "uid": obj["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
            expected_spec = {"postName": f"post-{post['id']}", "accountId": account}
            if override:
                expected_spec["overrideBody"] = override
            assert target["spec"] == expected_spec
        # Read-your-writes: at once, through the api.
        assert client.get(f"/posts/{post['id']}").json() == {"data": {"post": post}}
        assert [
            t["account_id"] for t in client.get(f"/posts/{post['id']}/targets").json()["data"]["targets"]
        ] == [
            linkedin,
            facebook,
        ]

    def test_ids_increase(self, world: World, client: httpx.Client, linkedin: int) -> None:
        first = world.create_post(client, [linkedin])
        second = world.create_post(client, [linkedin])
        assert second["id"] == first["id"] + 1


class TestList:
    def test_newest_first_with_pagination_and_meta(
        self, world: World, client: httpx.Client, linkedin: int
    ) -> None:
        ids = [world.create_post(client, [linkedin], body=f"post {i}")["id"] for i in range(23)]
        newest_first = list(reversed(ids))
        page = client.get("/posts").json()
        assert page["meta"] == {"total": 23, "limit": 20, "offset": 0}
        assert [p["id"] for p in page["data"]["posts"]] == newest_first[:20]
        page = client.get("/posts", params={"limit": 5, "offset": 20}).json()
        assert page["meta"] == {"total": 23, "limit": 5, "offset": 20}
        assert [p["id"] for p in page["data"]["posts"]] == newest_first[20:]
        page = client.get("/posts", params={"limit": 100, "offset": 50}).json()
        assert page == {"data": {"posts": []}, "meta": {"total": 23, "limit": 100, "offset": 50}}
        assert [p["id"] for p in client.get("/posts", params={"limit": 1}).json()["data"]["posts"]] == [
            ids[-1]
        ]

    def test_filters_by_status(self, world: World, client: httpx.Client, linkedin: int) -> None:
        draft = world.create_post(client, [linkedin], body="a draft")
        scheduled = world.create_post(client, [linkedin], body="later")
        now = world.create_post(client, [linkedin], body="now")
        assert (
            client.post(f"/posts/{scheduled['id']}/publish", json={"scheduled_for": _in(60)}).status_code
            == 202
        )
        assert client.post(f"/posts/{now['id']}/publish", json={}).status_code == 202
        for status, expected in [
            ("draft", [draft["id"]]),
            ("scheduled", [scheduled["id"]]),
            ("publishing", [now["id"]]),
            ("published", []),
            ("failed", []),
            ("partially_published", []),
        ]:
            page = client.get("/posts", params={"status": status}).json()
            assert [p["id"] for p in page["data"]["posts"]] == expected, status
            assert page["meta"]["total"] == len(expected)
            assert all(p["status"] == status for p in page["data"]["posts"])

    def test_search_matches_body_and_overrides_case_insensitively(
        self, world: World, client: httpx.Client, linkedin: int, facebook: int
    ) -> None:
        in_body = world.create_post(client, [linkedin], body="Summer SALE starts now")
        in_override = client.post(
            "/posts",
            json={
                "body": "Something else",
                "targets": [{"account_id": linkedin}, {"account_id": facebook, "override_body": "big sale!"}],
            },
        ).json()["data"]["post"]
        world.create_post(client, [linkedin], body="Nothing to see")
        page = client.get("/posts", params={"search": "Sale"}).json()
        assert [p["id"] for p in page["data"]["posts"]] == [in_override["id"], in_body["id"]]
        assert page["meta"] == {"total": 2, "limit": 20, "offset": 0}
        page = client.get("/posts", params={"search": "sale", "limit": 1, "offset": 1}).json()
        assert [p["id"] for p in page["data"]["posts"]] == [in_body["id"]]
        assert page["meta"]["total"] == 2
        assert (
            client.get("/posts", params={"search": "sale", "status": "scheduled"}).json()["meta"]["total"]
            == 0
        )
        assert client.get("/posts", params={"search": "absent"}).json()["data"]["posts"] == []

    def test_search_sees_edits(self, world: World, client: httpx.Client, linkedin: int) -> None:
        post = world.create_post(client, [linkedin], body="before")
        client.patch(f"/posts/{post['id']}", json={"body": "after"})
        assert client.get("/posts", params={"search": "before"}).json()["meta"]["total"] == 0
        assert client.get("/posts", params={"search": "AFTER"}).json()["meta"]["total"] == 1


class TestGet:
    def test_unknown_post_is_404(self, client: httpx.Client) -> None:
        response = client.get("/posts/4242")
        assert response.status_code == 404
        assert _error(response) == {"code": "post_not_found", "message": "no post 4242"}

    def test_operator_phase_is_shown_when_current(
        self, world: World, client: httpx.Client, linkedin: int
    ) -> None:
        post = world.create_post(client, [linkedin])
        published = client.post(f"/posts/{post['id']}/publish", json={}).json()["data"]["post"]
        obj = _kube_get(world, POSTS, f"post-{post['id']}")
        assert obj is not None
        generation = obj["metadata"]["generation"]
        # A phase computed for an older spec is not trusted...
        _set_status(
            world, POSTS, f"post-{post['id']}", {"phase": "draft", "observedGeneration": generation - 1}
        )
        assert client.get(f"/posts/{post['id']}").json()["data"]["post"]["status"] == "publishing"
        # ...one for the current spec is.
        _set_status(
            world,
            POSTS,
            f"post-{post['id']}",
            {"phase": "published", "observedGeneration": generation, "publishedAt": "2030-01-02T03:04:05Z"},
        )
        shown = wait_for(
            lambda: (
                (p := client.get(f"/posts/{post['id']}").json()["data"]["post"])["status"] == "published"
                and p
            ),
            what="the published phase",
        )
        assert shown["published_at"] == "2030-01-02T03:04:05.000000Z"
        assert shown["updated_at"] == published["updated_at"]


class TestUpdate:
    def test_edits_and_bumps_updated_at(self, world: World, client: httpx.Client, linkedin: int) -> None:
        post = world.create_post(client, [linkedin], body="first")
        response = client.patch(
            f"/posts/{post['id']}",
            json={
                "body": "second",
                "media": [{"url": PNG, "alt": "pic"}],
                "expected_updated_at": post["updated_at"],
            },
        )
        assert response.status_code == 200
        edited = response.json()["data"]["post"]
        assert edited["body"] == "second"
        assert edited["media"] == [{"url": PNG, "alt": "pic"}]
        assert edited["targets"] == post["targets"]
        assert edited["created_at"] == post["created_at"]
        assert edited["updated_at"] > post["updated_at"]
        assert STAMP.match(edited["updated_at"])
        assert client.get(f"/posts/{post['id']}").json()["data"]["post"] == edited

    def test_stale_expected_updated_at_is_409(
        self, world: World, client: httpx.Client, linkedin: int
    ) -> None:
        post = world.create_post(client, [linkedin], body="first")
        edited = client.patch(f"/posts/{post['id']}", json={"body": "second"}).json()["data"]["post"]
        response = client.patch(
            f"/posts/{post['id']}", json={"body": "third", "expected_updated_at": post["updated_at"]}
        )
        assert response.status_code == 409
        assert _error(response) == {
            "code": "stale_object",
            "message": f"post {post['id']} was changed since you read it; read it again and retry",
            "details": {
                "field": "expected_updated_at",
                "expected_updated_at": post["updated_at"],
                "updated_at": edited["updated_at"],
            },
        }
        assert client.get(f"/posts/{post['id']}").json()["data"]["post"]["body"] == "second"

    def test_expected_updated_at_compares_instants_to_the_microsecond(
        self, world: World, client: httpx.Client, linkedin: int
    ) -> None:
        post = world.create_post(client, [linkedin])
        path = f"/posts/{post['id']}"
        stamp = datetime.fromisoformat(post["updated_at"].replace("Z", "+00:00"))
        off_by_one = (stamp + timedelta(microseconds=1)).isoformat()
        assert client.patch(path, json={"body": "x", "expected_updated_at": off_by_one}).status_code == 409
        same_instant = stamp.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
        assert "+05:30" in same_instant
        assert client.patch(path, json={"body": "y", "expected_updated_at": same_instant}).status_code == 200
        assert client.patch(path, json={"body": "z", "expected_updated_at": same_instant}).status_code == 409

    def test_targets_are_reconciled(
        self, world: World, client: httpx.Client, linkedin: int, facebook: int
    ) -> None:
        instagram = world.add_account("instagram")
        post = world.create_post(client, [linkedin, facebook], media=[{"url": PNG}])
        response = client.patch(
            f"/posts/{post['id']}",
            json={
                "targets": [{"account_id": facebook, "override_body": "FB only"}, {"account_id": instagram}]
            },
        )
        assert response.status_code == 200
        rows = client.get(f"/posts/{post['id']}/targets").json()["data"]["targets"]
        assert [(r["account_id"], r["platform"]) for r in rows] == [
            (facebook, "facebook"),
            (instagram, "instagram"),
        ]
        name = f"post-{post['id']}"
        wait_for(
            lambda: _kube_get(world, TARGETS, f"{name}-{linkedin}") is None, what="the removed target to go"
        )
        fb = _kube_get(world, TARGETS, f"{name}-{facebook}")
        assert fb is not None
        assert fb["spec"]["overrideBody"] == "FB only"
        assert _kube_get(world, TARGETS, f"{name}-{instagram}") is not None

    def test_scheduled_posts_can_be_edited(self, world: World, client: httpx.Client, linkedin: int) -> None:
        post = world.create_post(client, [linkedin])
        when = _in(90)
        scheduled = client.post(f"/posts/{post['id']}/publish", json={"scheduled_for": when}).json()["data"][
            "post"
        ]
        response = client.patch(f"/posts/{post['id']}", json={"body": "edited while scheduled"})
        assert response.status_code == 200
        edited = response.json()["data"]["post"]
        assert edited["status"] == "scheduled"
        assert edited["scheduled_for"] == scheduled["scheduled_for"]

    @pytest.mark.parametrize("phase", ["publishing", "published", "partially_published", "failed"])
    def test_posts_past_scheduled_cannot_be_edited(
        self, world: World, client: httpx.Client, linkedin: int, phase: str
    ) -> None:
        post = world.create_post(client, [linkedin])
        client.post(f"/posts/{post['id']}/publish", json={})
        obj = _kube_get(world, POSTS, f"post-{post['id']}")
        assert obj is not None
        _set_status(
            world,
            POSTS,
            obj["metadata"]["name"],
            {"phase": phase, "observedGeneration": obj["metadata"]["generation"]},
        )
        wait_for(
            lambda: client.get(f"/posts/{post['id']}").json()["data"]["post"]["status"] == phase, what=phase
        )
        response = client.patch(f"/posts/{post['id']}", json={"body": "too late"})
        assert response.status_code == 409
        assert _error(response) == {
            "code": "post_not_editable",
            "message": f"post {post['id']} is {phase}; only draft and scheduled posts can be edited",
            "details": {"status": phase},
        }

    def test_empty_patch_changes_nothing(self, world: World, client: httpx.Client, linkedin: int) -> None:
        post = world.create_post(client, [linkedin])
        response = client.patch(f"/posts/{post['id']}", json={})
        assert response.status_code == 200
        assert response.json()["data"]["post"] == post
        response = client.patch(f"/posts/{post['id']}", json={"expected_updated_at": post["updated_at"]})
        assert response.json()["data"]["post"] == post

    def test_unknown_post_is_404(self, client: httpx.Client) -> None:
        response = client.patch("/posts/777", json={"body": "x"})
        assert response.status_code == 404
        assert _error(response)["code"] == "post_not_found"


class TestPublish:
    def test_publish_now(self, world: World, client: httpx.Client, linkedin: int) -> None:
        post = world.create_post(client, [linkedin])
        response = world.client(scopes={Scope.PUBLISH}).post(f"/posts/{post['id']}/publish", json={})
        assert response.status_code == 202
        published = response.json()["data"]["post"]
        assert published["status"] == "publishing"
        assert published["scheduled_for"] is None
        assert published["updated_at"] > post["updated_at"]
        obj = _kube_get(world, POSTS, f"post-{post['id']}")
        assert obj is not None
        assert obj["spec"]["draft"] is False
        assert "scheduledFor" not in obj["spec"]

    def test_publish_without_a_body(self, world: World, client: httpx.Client, linkedin: int) -> None:
        post = world.create_post(client, [linkedin])
        response = client.post(f"/posts/{post['id']}/publish")
        assert response.status_code == 202
        assert response.json()["data"]["post"]["status"] == "publishing"

    def test_schedule_is_stored_in_utc(self, world: World, client: httpx.Client, linkedin: int) -> None:
        post = world.create_post(client, [linkedin])
        local = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        offset = local.astimezone(timezone(timedelta(hours=-7)))
        response = client.post(f"/posts/{post['id']}/publish", json={"scheduled_for": offset.isoformat()})
        assert response.status_code == 202
        scheduled = response.json()["data"]["post"]
        expected = local.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        assert scheduled["status"] == "scheduled"
        assert scheduled["scheduled_for"] == expected
        obj = _kube_get(world, POSTS, f"post-{post['id']}")
        assert obj is not None
        assert obj["spec"]["draft"] is False
        assert obj["spec"]["scheduledFor"] == expected

    def test_reschedule_and_publish_a_scheduled_post_now(
        self, world: World, client: httpx.Client, linkedin: int
    ) -> None:
        post = world.create_post(client, [linkedin])
        first = client.post(f"/posts/{post['id']}/publish", json={"scheduled_for": _in(60)}).json()["data"][
            "post"
        ]
        second_time = _in(120)
        response = client.post(f"/posts/{post['id']}/publish", json={"scheduled_for": second_time})
        assert response.status_code == 202
        second = response.json()["data"]["post"]
        assert second["status"] == "scheduled"
        assert second["scheduled_for"] > first["scheduled_for"]
        now = client.post(f"/posts/{post['id']}/publish", json={}).json()["data"]["post"]
        assert now["status"] == "publishing"
        assert now["scheduled_for"] is None

    @pytest.mark.parametrize(
        "when",
        [
            "2020-01-01T00:00:00Z",
            (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
            "2030-01-01T00:00:00",  # no offset: ambiguous
            "tomorrow",
            None,
        ],
    )
    def test_bad_times_are_422(
        self, world: World, client: httpx.Client, linkedin: int, when: str | None
    ) -> None:
        post = world.create_post(client, [linkedin])
        response = client.post(f"/posts/{post['id']}/publish", json={"scheduled_for": when})
        assert response.status_code == 422
        assert [d["field"] for d in _error(response)["details"]] == ["scheduled_for"]
        assert client.get(f"/posts/{post['id']}").json()["data"]["post"]["status"] == "draft"

    def test_unknown_fields_are_422(self, world: World, client: httpx.Client, linkedin: int) -> None:
        post = world.create_post(client, [linkedin])
        response = client.post(f"/posts/{post['id']}/publish", json={"when": "now"})
        assert response.status_code == 422
        assert [d["field"] for d in _error(response)["details"]] == ["when"]

    @pytest.mark.parametrize("phase", ["publishing", "published", "partially_published", "failed"])
    def test_publishing_or_sent_posts_are_409(
        self, world: World, client: httpx.Client, linkedin: int, phase: str
    ) -> None:
        post = world.create_post(client, [linkedin])
        client.post(f"/posts/{post['id']}/publish", json={})
        if phase != "publishing":
            obj = _kube_get(world, POSTS, f"post-{post['id']}")
            assert obj is not None
            _set_status(
                world,
                POSTS,
                obj["metadata"]["name"],
                {"phase": phase, "observedGeneration": obj["metadata"]["generation"]},
            )
            wait_for(
                lambda: client.get(f"/posts/{post['id']}").json()["data"]["post"]["status"] == phase,
                what=phase,
            )
        for body in ({}, {"scheduled_for": _in(60)}):
            response = client.post(f"/posts/{post['id']}/publish", json=body)
            assert response.status_code == 409
            assert _error(response) == {
                "code": "post_already_published",
                "message": f"post {post['id']} is already {phase}; it cannot be published again",
                "details": {"status": phase},
            }

    def test_unknown_post_is_404(self, client: httpx.Client) -> None:
        assert _error(client.post("/posts/999/publish", json={}))["code"] == "post_not_found"


class TestTargets:
    def test_rows_follow_the_operator(
        self, world: World, client: httpx.Client, linkedin: int, facebook: int
    ) -> None:
        post = world.create_post(client, [linkedin, facebook])
        rows = client.get(f"/posts/{post['id']}/targets").json()["data"]["targets"]
        pending = {
            "status": "pending",
            "attempts": 0,
            "external_post_id": None,
            "last_error": None,
            "next_attempt_at": None,
            "published_at": None,
        }
        assert rows == [
            {"account_id": linkedin, "platform": "linkedin", **pending},
            {"account_id": facebook, "platform": "facebook", **pending},
        ]
        name = f"post-{post['id']}"
        _set_status(
            world,
            TARGETS,
            f"{name}-{linkedin}",
            {
                "state": "published",
                "attempts": 1,
                "externalPostId": "urn:li:share:1",
                "publishedAt": "2030-01-01T00:00:01Z",
            },
        )
        _set_status(
            world,
            TARGETS,
            f"{name}-{facebook}",
            {
                "state": "failed",
                "attempts": 2,
                "nextAttemptAt": "2030-01-01T00:05:00Z",
                "lastError": {"code": "rate_limited", "message": "slow down", "class": "transient"},
            },
        )
        expected = [
            {
                "account_id": linkedin,
                "platform": "linkedin",
                "status": "published",
                "attempts": 1,
                "external_post_id": "urn:li:share:1",
                "last_error": None,
                "next_attempt_at": None,
                "published_at": "2030-01-01T00:00:01.000000Z",
            },
            {
                "account_id": facebook,
                "platform": "facebook",
                "status": "failed",
                "attempts": 2,
                "external_post_id": None,
                "last_error": {"code": "rate_limited", "message": "slow down"},
                "next_attempt_at": "2030-01-01T00:05:00.000000Z",
                "published_at": None,
            },
        ]
        wait_for(
            lambda: client.get(f"/posts/{post['id']}/targets").json()["data"]["targets"] == expected,
            what="target status to show",
        )

    def test_unknown_post_is_404(self, client: httpx.Client) -> None:
        response = client.get("/posts/31337/targets")
        assert response.status_code == 404
        assert _error(response)["code"] == "post_not_found"


class TestDelete:
    def _gone_from_kubernetes(self, world: World, post_id: int, accounts: list[int]) -> None:
        name = f"post-{post_id}"
        wait_for(lambda: _kube_get(world, POSTS, name) is None, what="the SocialPost to go")
        for account in accounts:
            wait_for(
                lambda a=account: _kube_get(world, TARGETS, f"{name}-{a}") is None,
                what="its SocialTargets to go",
            )

    def test_delete_then_404(self, world: World, client: httpx.Client, linkedin: int, facebook: int) -> None:
        post = world.create_post(client, [linkedin, facebook])
        response = client.delete(f"/posts/{post['id']}")
        assert response.status_code == 204
        assert response.content == b""
        assert _error(client.get(f"/posts/{post['id']}"))["code"] == "post_not_found"
        assert client.get(f"/posts/{post['id']}/targets").status_code == 404
        assert client.get("/posts").json()["meta"]["total"] == 0
        assert client.delete(f"/posts/{post['id']}").status_code == 404
        self._gone_from_kubernetes(world, post["id"], [linkedin, facebook])

    def test_deleting_a_scheduled_post_cancels_it(
        self, world: World, client: httpx.Client, linkedin: int
    ) -> None:
        post = world.create_post(client, [linkedin])
        client.post(f"/posts/{post['id']}/publish", json={"scheduled_for": _in(30)})
        assert client.delete(f"/posts/{post['id']}").status_code == 204
        self._gone_from_kubernetes(world, post["id"], [linkedin])
        assert client.get("/posts", params={"status": "scheduled"}).json()["meta"]["total"] == 0

    def test_a_publishing_post_can_be_deleted(
        self, world: World, client: httpx.Client, linkedin: int
    ) -> None:
        post = world.create_post(client, [linkedin])
        client.post(f"/posts/{post['id']}/publish", json={})
        assert client.delete(f"/posts/{post['id']}").status_code == 204
        self._gone_from_kubernetes(world, post["id"], [linkedin])


def test_base_path_is_the_documented_one() -> None:
    assert BASE_PATH == "/api/v1/services/social"
