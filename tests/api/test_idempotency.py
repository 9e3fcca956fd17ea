"""``Idempotency-Key`` on POST: replay, reuse, in flight, takeover, expiry, scoping, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from socialpub.api.app import BASE_PATH
from socialpub.api.idempotency import IdempotencyStore, fingerprint, record_name
from socialpub.api.schemas import format_time
from socialpub.kube.client import KubeClient, NotFound
from socialpub.kube.resources import CONFIGMAPS, LABEL_COMPONENT
from socialpub.models.keys import Mode
from tests.api.support import World, kube_do


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def _record(world: World, key: str, mode: Mode = Mode.TEST) -> dict[str, Any] | None:
    name = record_name(world.name, mode.value, key)

    async def get(client: KubeClient) -> dict[str, Any] | None:
        try:
            return await client.get(CONFIGMAPS, name, world.namespace(mode))
        except NotFound:
            return None

    return kube_do(world.kube, get)


def _plant(world: World, key: str, data: dict[str, str]) -> None:
    """Put a record in place as another replica would have left it."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": record_name(world.name, "test", key),
            "labels": {LABEL_COMPONENT: "idempotency"},
        },
        "data": data,
    }
    kube_do(world.kube, lambda c: c.create(CONFIGMAPS, manifest, world.namespace()))


@pytest.fixture
def account(world: World) -> int:
    return world.add_account("linkedin")


def _payload(account: int, body: str = "Hello") -> dict[str, Any]:
    return {"body": body, "targets": [{"account_id": account}]}


def _post(client: httpx.Client, payload: dict[str, Any], key: str) -> httpx.Response:
    return client.post("/posts", json=payload, headers={"Idempotency-Key": key})


class TestReplay:
    def test_retry_returns_the_first_response(self, world: World, account: int) -> None:
        client = world.client()
        first = _post(client, _payload(account), "key-1")
        assert first.status_code == 201
        assert "idempotent-replayed" not in first.headers
        # The post changes afterwards; the replay still answers what the first request got.
        client.patch(f"/posts/{first.json()['data']['post']['id']}", json={"body": "edited"})
        again = _post(client, _payload(account), "key-1")
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert client.get("/posts").json()["meta"]["total"] == 1

    def test_the_record_is_a_configmap_in_the_tenants_namespace(self, world: World, account: int) -> None:
        client = world.client()
        response = _post(client, _payload(account), "key-record")
        record = _record(world, "key-record")
        assert record is not None
        assert record["metadata"]["labels"] == {LABEL_COMPONENT: "idempotency"}
        assert record["metadata"]["name"].startswith("idem-")
        assert len(record["metadata"]["name"]) == 45
        data = record["data"]
        assert data["state"] == "completed"
        assert data["status"] == "201"
        assert data["body"].encode() == response.content
        path = f"{BASE_PATH}/posts"
        assert data["fingerprint"] == fingerprint("POST", path, json.dumps(_payload(account)).encode())

    def test_same_json_in_another_key_order_is_the_same_request(self, world: World, account: int) -> None:
        client = world.client()
        first = client.post(
            "/posts",
            content=json.dumps({"targets": [{"account_id": account}], "body": "Hi"}),
            headers={"Idempotency-Key": "order", "Content-Type": "application/json"},
        )
        second = client.post(
            "/posts",
            content=json.dumps({"body": "Hi", "targets": [{"account_id": account}]}, indent=2),
            headers={"Idempotency-Key": "order", "Content-Type": "application/json"},
        )
        assert second.headers["idempotent-replayed"] == "true"
        assert second.content == first.content

    def test_publish_is_idempotent(self, world: World, account: int) -> None:
        client = world.client()
        post = world.create_post(client, [account])
        path = f"/posts/{post['id']}/publish"
        first = client.post(path, json={}, headers={"Idempotency-Key": "pub"})
        assert first.status_code == 202
        again = client.post(path, json={}, headers={"Idempotency-Key": "pub"})
        assert again.status_code == 202  # not 409: the retry gets the first answer
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
        assert client.post(path, json={}).status_code == 409  # without the key it is a new request


class TestMisuse:
    def test_same_key_different_body_is_422(self, world: World, account: int) -> None:
        client = world.client()
        assert _post(client, _payload(account, "one"), "k").status_code == 201
        response = _post(client, _payload(account, "two"), "k")
        assert response.status_code == 422
        assert _error(response)["code"] == "idempotency_key_reused"
        assert client.get("/posts").json()["meta"]["total"] == 1

    def test_same_key_other_endpoint_is_422(self, world: World, account: int) -> None:
        client = world.client()
        post = _post(client, _payload(account), "shared").json()["data"]["post"]
        response = client.post(f"/posts/{post['id']}/publish", json={}, headers={"Idempotency-Key": "shared"})
        assert response.status_code == 422
        assert _error(response)["code"] == "idempotency_key_reused"

    @pytest.mark.parametrize("key", ["", "k" * 256])
    def test_bad_key_is_400(self, world: World, account: int, key: str) -> None:
        client = world.client()
        response = _post(client, _payload(account), key)
        assert response.status_code == 400
        assert _error(response) == {
            "code": "invalid_idempotency_key",
            "message": "Idempotency-Key must be 1 to 255 characters",
            "details": {"max_length": 255},
        }
        assert client.get("/posts").json()["meta"]["total"] == 0

    def test_a_255_character_key_is_fine(self, world: World, account: int) -> None:
        assert _post(world.client(), _payload(account), "k" * 255).status_code == 201

    def test_failed_requests_are_not_saved(self, world: World, account: int) -> None:
        client = world.client()
        invalid = _post(client, {"body": "", "targets": [{"account_id": account}]}, "fixme")
        assert invalid.status_code == 422
        unknown_account = _post(client, _payload(account + 100), "fixme")
        assert _error(unknown_account)["code"] == "account_not_found"
        assert _record(world, "fixme") is None
        fixed = _post(client, _payload(account), "fixme")
        assert fixed.status_code == 201
        assert "idempotent-replayed" not in fixed.headers


class TestInFlight:
    def test_in_flight_is_409_with_retry_after(self, world: World, account: int) -> None:
        body = json.dumps(_payload(account)).encode()
        _plant(
            world,
            "busy",
            {
                "state": "in-flight",
                "fingerprint": fingerprint("POST", f"{BASE_PATH}/posts", body),
                "claimedAt": format_time(datetime.now(UTC)),
            },
        )
        response = _post(world.client(), _payload(account), "busy")
        assert response.status_code == 409
        assert response.headers["retry-after"] == "1"
        assert _error(response)["code"] == "idempotency_key_in_use"

    def test_an_abandoned_claim_is_taken_over(self, world: World, account: int) -> None:
        body = json.dumps(_payload(account)).encode()
        _plant(
            world,
            "abandoned",
            {
                "state": "in-flight",
                "fingerprint": fingerprint("POST", f"{BASE_PATH}/posts", body),
                "claimedAt": format_time(datetime.now(UTC) - timedelta(minutes=5)),
            },
        )
        response = _post(world.client(), _payload(account), "abandoned")
        assert response.status_code == 201
        record = _record(world, "abandoned")
        assert record is not None
        assert record["data"]["state"] == "completed"

    def test_an_expired_record_is_a_new_request(self, world: World, account: int) -> None:
        _plant(
            world,
            "old",
            {
                "state": "completed",
                "fingerprint": "something else entirely",
                "claimedAt": format_time(datetime.now(UTC) - timedelta(hours=25)),
                "completedAt": format_time(datetime.now(UTC) - timedelta(hours=25)),
                "status": "201",
                "body": "{}",
            },
        )
        response = _post(world.client(), _payload(account), "old")
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers


class TestScope:
    def test_keys_are_scoped_to_tenant_and_mode(self, world: World, other_world: World, account: int) -> None:
        live_account = world.add_account("linkedin", mode=Mode.LIVE)
        theirs = other_world.add_account("linkedin")
        assert account == live_account == theirs  # the same request body in all three
        responses = [
            _post(world.client(Mode.TEST), _payload(account), "same-key"),
            _post(world.client(Mode.LIVE), _payload(account), "same-key"),
            _post(other_world.client(), _payload(account), "same-key"),
        ]
        assert [r.status_code for r in responses] == [201, 201, 201]
        assert not [r for r in responses if "idempotent-replayed" in r.headers]
        assert world.client(Mode.TEST).get("/posts").json()["meta"]["total"] == 1
        assert world.client(Mode.LIVE).get("/posts").json()["meta"]["total"] == 1
        assert other_world.client().get("/posts").json()["meta"]["total"] == 1


class TestRetention:
    def test_sweep_removes_only_expired_records(self, world: World, account: int) -> None:
        client = world.client()
        _post(client, _payload(account), "fresh")
        _plant(
            world,
            "stale",
            {
                "state": "completed",
                "fingerprint": "f",
                "claimedAt": format_time(datetime.now(UTC) - timedelta(hours=30)),
                "completedAt": format_time(datetime.now(UTC) - timedelta(hours=30)),
                "status": "201",
                "body": "{}",
            },
        )

        async def sweep(kube_client: KubeClient) -> int:
            return await IdempotencyStore(kube_client, ttl_seconds=24 * 3600, lease_seconds=60).sweep()

        assert kube_do(world.kube, sweep) >= 1
        assert _record(world, "stale") is None
        assert _record(world, "fresh") is not None
