"""Concurrent requests over real HTTP: optimistic concurrency on PATCH, exactly-once creates."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from socialpub.api.app import BASE_PATH
from socialpub.models.keys import Mode, Scope
from tests.api.support import ALL_SCOPES, World


def _async_client(world: World) -> httpx.AsyncClient:
    key = world.key(Mode.TEST, ALL_SCOPES)
    return httpx.AsyncClient(
        base_url=world.url + BASE_PATH,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        limits=httpx.Limits(max_connections=32),
    )


async def _gather(
    world: World, requests: list[tuple[str, str, dict[str, Any], dict[str, str]]]
) -> list[httpx.Response]:
    async with _async_client(world) as client:
        return await asyncio.gather(
            *(
                client.request(method, path, json=body, headers=headers)
                for method, path, body, headers in requests
            )
        )


def test_concurrent_patches_with_the_same_expectation_one_wins(world: World) -> None:
    account = world.add_account()
    client = world.client()
    post = world.create_post(client, [account])
    expected = post["updated_at"]
    for round_ in range(5):
        responses = asyncio.run(
            _gather(
                world,
                [
                    (
                        "PATCH",
                        f"/posts/{post['id']}",
                        {"body": f"A{round_}", "expected_updated_at": expected},
                        {},
                    ),
                    (
                        "PATCH",
                        f"/posts/{post['id']}",
                        {"body": f"B{round_}", "expected_updated_at": expected},
                        {},
                    ),
                ],
            )
        )
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200).json()["data"]["post"]
        loser = next(r for r in responses if r.status_code == 409).json()["error"]
        assert loser["code"] == "stale_object"
        stored = client.get(f"/posts/{post['id']}").json()["data"]["post"]
        assert stored["body"] == winner["body"]
        assert stored["updated_at"] == winner["updated_at"]
        expected = winner["updated_at"]


def test_parallel_retries_of_one_create_make_exactly_one_post(world: World) -> None:
    account = world.add_account()
    payload = {"body": "Only once", "targets": [{"account_id": account}]}
    responses = asyncio.run(
        _gather(world, [("POST", "/posts", payload, {"Idempotency-Key": "retry-storm"})] * 10)
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    created = [r for r in responses if r.status_code == 201]
    assert created, statuses
    assert len({r.content for r in created}) == 1  # the original and byte-identical replays
    assert sum(1 for r in created if "idempotent-replayed" not in r.headers) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "idempotency_key_in_use"
            assert r.headers["retry-after"] == "1"
    listed = world.client(scopes={Scope.VIEW}).get("/posts").json()
    assert listed["meta"]["total"] == 1
    assert listed["data"]["posts"][0]["id"] == created[0].json()["data"]["post"]["id"]
    # A later retry replays it too.
    again = world.client().post("/posts", json=payload, headers={"Idempotency-Key": "retry-storm"})
    assert again.status_code == 201
    assert again.content == created[0].content


def test_parallel_creates_get_distinct_ids(world: World) -> None:
    account = world.add_account()
    responses = asyncio.run(
        _gather(
            world,
            [
                ("POST", "/posts", {"body": f"post {i}", "targets": [{"account_id": account}]}, {})
                for i in range(16)
            ],
        )
    )
    assert [r.status_code for r in responses] == [201] * 16
    ids = sorted(r.json()["data"]["post"]["id"] for r in responses)
    assert ids == list(range(1, 17))
    assert world.client().get("/posts", params={"limit": 100}).json()["meta"]["total"] == 16


def test_publish_racing_an_edit_never_edits_a_publishing_post(world: World) -> None:
    account = world.add_account()
    client = world.client()
    for round_ in range(3):
        post = world.create_post(client, [account], body=f"round {round_}")
        responses = asyncio.run(
            _gather(
                world,
                [
                    ("POST", f"/posts/{post['id']}/publish", {}, {}),
                    ("PATCH", f"/posts/{post['id']}", {"body": "late edit"}, {}),
                ],
            )
        )
        publish, patch = responses
        assert publish.status_code == 202
        final = client.get(f"/posts/{post['id']}").json()["data"]["post"]
        assert final["status"] == "publishing"
        if patch.status_code == 200:
            # The edit landed first, while the post was still a draft.
            assert final["body"] == "late edit"
            assert patch.json()["data"]["post"]["status"] == "draft"
        else:
            assert patch.status_code == 409
            assert patch.json()["error"]["code"] == "post_not_editable"
            assert final["body"] == f"round {round_}"
