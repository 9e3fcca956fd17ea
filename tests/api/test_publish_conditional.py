"""Publishing what was reviewed, not what a manage-only key put there a moment before (issue 9
review, item 5): ``POST /posts/{id}/publish`` takes an optional ``expected_updated_at``; if the
draft changed since that version the answer is 409 ``stale_object`` and the post stays a draft."""

from __future__ import annotations

from typing import Any

import pytest

from socialpub.kube.resources import POSTS
from socialpub.models.keys import Scope
from tests.api.support import World, kube_do

EDITOR = frozenset({Scope.VIEW, Scope.MANAGE})


def _spec(world: World, post_id: int) -> dict[str, Any]:
    post: dict[str, Any] = kube_do(world.kube, lambda c: c.get(POSTS, f"post-{post_id}", world.namespace()))
    return dict(post["spec"])


@pytest.mark.parametrize("when", [{}, {"scheduled_for": "2099-06-01T09:30:00Z"}])
def test_a_draft_edited_after_review_is_not_published(world: World, when: dict[str, str]) -> None:
    account = world.add_account("linkedin")
    publisher = world.client()
    reviewed = world.create_post(publisher, [account], body="What the publisher approved")

    edited = world.client(scopes=EDITOR).patch(f"/posts/{reviewed['id']}", json={"body": "Something else"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["data"]["post"]["updated_at"] != reviewed["updated_at"]

    response = publisher.post(
        f"/posts/{reviewed['id']}/publish", json={**when, "expected_updated_at": reviewed["updated_at"]}
    )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "stale_object"
    assert error["details"]["updated_at"] == edited.json()["data"]["post"]["updated_at"]
    spec = _spec(world, reviewed["id"])
    assert spec["draft"] is True
    assert spec["body"] == "Something else"
    assert publisher.get(f"/posts/{reviewed['id']}").json()["data"]["post"]["status"] == "draft"

    # The version the publisher has now read publishes.
    current = edited.json()["data"]["post"]["updated_at"]
    response = publisher.post(
        f"/posts/{reviewed['id']}/publish", json={**when, "expected_updated_at": current}
    )
    assert response.status_code == 202, response.text
    assert response.json()["data"]["post"]["status"] in ("publishing", "scheduled")


def test_expected_updated_at_must_not_be_null(world: World) -> None:
    account = world.add_account("linkedin")
    publisher = world.client()
    post = world.create_post(publisher, [account])
    response = publisher.post(f"/posts/{post['id']}/publish", json={"expected_updated_at": None})
    assert response.status_code == 422
    assert _spec(world, post["id"])["draft"] is True
