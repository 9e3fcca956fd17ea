"""Two replicas behind a (simulated) load balancer behave as one."""

from __future__ import annotations

import asyncio

import httpx

from socialpub.api.app import BASE_PATH
from tests.api.conftest import ApiServer
from tests.api.support import World, wait_for


def _clients(world: World, servers: list[ApiServer]) -> list[httpx.AsyncClient]:
    key = world.key()
    return [
        httpx.AsyncClient(base_url=s.url + BASE_PATH, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        for s in servers
    ]


def test_a_write_on_one_replica_is_read_on_the_other(
    world: World, api_server: ApiServer, second_api_server: ApiServer
) -> None:
    account = world.add_account()
    post = world.create_post(world.client(), [account])
    with httpx.Client(base_url=second_api_server.url + BASE_PATH, headers=world.client().headers) as other:
        seen = wait_for(
            lambda: other.get(f"/posts/{post['id']}").status_code == 200, what="the other replica"
        )
        assert seen
        assert other.get(f"/posts/{post['id']}").json()["data"]["post"] == post
        assert other.get("/posts").json()["meta"]["total"] == 1


def test_retries_spread_over_replicas_create_one_post(
    world: World, api_server: ApiServer, second_api_server: ApiServer
) -> None:
    account = world.add_account()
    payload = {"body": "once, across replicas", "targets": [{"account_id": account}]}
    wait_for(
        lambda: httpx.get(
            f"{second_api_server.url}{BASE_PATH}/accounts", headers=world.client().headers
        ).json()["data"]["accounts"],
        what="the account on the second replica",
    )

    async def storm() -> list[httpx.Response]:
        a, b = _clients(world, [api_server, second_api_server])
        async with a, b:
            return await asyncio.gather(
                *(
                    (a if i % 2 else b).post("/posts", json=payload, headers={"Idempotency-Key": "lb"})
                    for i in range(10)
                )
            )

    responses = asyncio.run(storm())
    assert {r.status_code for r in responses} <= {201, 409}
    created = [r for r in responses if r.status_code == 201]
    assert len({r.content for r in created}) == 1
    assert world.client().get("/posts").json()["meta"]["total"] == 1


def test_concurrent_patches_on_two_replicas_one_wins(
    world: World, api_server: ApiServer, second_api_server: ApiServer
) -> None:
    account = world.add_account()
    post = world.create_post(world.client(), [account])
    with httpx.Client(base_url=second_api_server.url + BASE_PATH, headers=world.client().headers) as other:
        wait_for(lambda: other.get(f"/posts/{post['id']}").status_code == 200, what="the other replica")

    async def race() -> list[httpx.Response]:
        a, b = _clients(world, [api_server, second_api_server])
        async with a, b:
            return await asyncio.gather(
                a.patch(
                    f"/posts/{post['id']}", json={"body": "A", "expected_updated_at": post["updated_at"]}
                ),
                b.patch(
                    f"/posts/{post['id']}", json={"body": "B", "expected_updated_at": post["updated_at"]}
                ),
            )

    responses = asyncio.run(race())
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert next(r for r in responses if r.status_code == 409).json()["error"]["code"] == "stale_object"
