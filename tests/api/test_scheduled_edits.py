"""Editing a scheduled post changes what gets published, so it needs the publish scope too.

A key with view and manage (but not publish) may edit drafts; on a scheduled post it gets 403
``insufficient_scope`` naming ``service.social.publish``, and nothing is written — also when
the post becomes scheduled between the api's read and its write.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialpub.kube.resources import POSTS
from socialpub.models.keys import Scope
from tests.api.kube_proxy import FaultProxy
from tests.api.support import World, kube_do

EDITOR = frozenset({Scope.VIEW, Scope.MANAGE})


def _in(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def _kube_post(world: World, post_id: int) -> dict[str, Any]:
    post: dict[str, Any] = kube_do(world.kube, lambda c: c.get(POSTS, f"post-{post_id}", world.namespace()))
    return post


def _assert_refused(response: Any) -> None:
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope"
    assert Scope.PUBLISH.value in error["message"]
    assert error["details"] == {"required_scope": Scope.PUBLISH.value}


@pytest.mark.parametrize("field", ["body", "media", "targets", "nothing"])
def test_a_key_without_publish_cannot_edit_a_scheduled_post(world: World, field: str) -> None:
    account = world.add_account("linkedin")
    publisher = world.client()
    post = world.create_post(publisher, [account], body="What the publisher approved")
    scheduled = publisher.post(f"/posts/{post['id']}/publish", json={"scheduled_for": _in(60)})
    assert scheduled.json()["data"]["post"]["status"] == "scheduled"
    change: dict[str, Any] = {
        "body": {"body": "something else goes out"},
        "media": {"media": [{"url": "https://cdn.example.com/other.png"}]},
        "targets": {"targets": [{"account_id": account, "override_body": "swapped"}]},
        "nothing": {},
    }[field]

    _assert_refused(world.client(scopes=EDITOR).patch(f"/posts/{post['id']}", json=change))
    spec = _kube_post(world, post["id"])["spec"]
    assert spec["body"] == "What the publisher approved"
    assert spec.get("media") in (None, [])
    assert [t.get("overrideBody") for t in spec["targets"]] == [None]
    assert publisher.patch(f"/posts/{post['id']}", json=change).status_code == 200


def test_a_key_without_publish_may_edit_a_draft(world: World) -> None:
    account = world.add_account("linkedin")
    editor = world.client(scopes=EDITOR)
    post = world.create_post(editor, [account])
    response = editor.patch(f"/posts/{post['id']}", json={"body": "edited draft"})
    assert response.status_code == 200
    assert response.json()["data"]["post"]["body"] == "edited draft"


def test_scheduled_between_the_read_and_the_write(proxied_world: World, kube_proxy: FaultProxy) -> None:
    """The api's cache still says draft (its watch is held back) when the post is scheduled
    directly in Kubernetes; the conditional write fails, and on the fresh read the scope check
    refuses the edit."""
    world = proxied_world
    account = world.add_account("linkedin")
    editor = world.client(scopes=EDITOR)
    post = world.create_post(editor, [account], body="approved")
    kube_proxy.pause_watches(lambda seen: "/socialposts" in seen.path)
    try:
        kube_do(
            world.kube,
            lambda c: c.patch(
                POSTS,
                f"post-{post['id']}",
                {"spec": {"draft": False, "scheduledFor": _in(60)}},
                world.namespace(),
            ),
        )
        assert editor.get(f"/posts/{post['id']}").json()["data"]["post"]["status"] == "draft"  # stale
        _assert_refused(editor.patch(f"/posts/{post['id']}", json={"body": "swapped"}))
    finally:
        kube_proxy.resume_watches()
    assert _kube_post(world, post["id"])["spec"]["body"] == "approved"
