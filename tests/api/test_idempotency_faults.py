"""``Idempotency-Key`` under real faults: whatever step fails, retries converge on one post.

The api here reaches the embedded Kubernetes API through :class:`~tests.api.kube_proxy.FaultProxy`,
which makes chosen requests fail at the HTTP level — committed by the API server and then the
connection dropped, refused with 503, or held longer than the idempotency lease — while the
client retries with the same key as a well-behaved integrator would. The ground truth is read
from the Kubernetes API itself: exactly one SocialPost (and its target) must exist.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from socialpub.api.idempotency import record_name
from socialpub.api.services.mapping import parse_time
from socialpub.kube.client import KubeClient
from socialpub.kube.resources import CONFIGMAPS, GROUP, POSTS, TARGETS, VERSION
from tests.api.conftest import PROXIED_LEASE_SECONDS
from tests.api.kube_proxy import Action, FaultProxy, Seen
from tests.api.support import World, kube_do, wait_for


@pytest.fixture
def world(proxied_world: World) -> World:
    return proxied_world


def _payload(account: int) -> dict[str, Any]:
    return {"body": "Launch day", "targets": [{"account_id": account}]}


def _objects(world: World, resource: Any) -> list[dict[str, Any]]:
    async def list_(client: KubeClient) -> list[dict[str, Any]]:
        items, _ = await client.list(resource, world.namespace())
        return items

    return kube_do(world.kube, list_)


def _retry_until_created(
    client: httpx.Client, payload: dict[str, Any], key: str, *, timeout: float = 20
) -> list[httpx.Response]:
    """POST with ``key`` until it answers 201, as a client honouring ``Retry-After`` would."""
    answers: list[httpx.Response] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = client.post("/posts", json=payload, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            continue
        answers.append(response)
        if response.status_code == 201:
            return answers
        assert response.status_code in (409, 503), response.text
        time.sleep(0.1)
    raise AssertionError(f"no 201 within {timeout}s: {[(a.status_code, a.text) for a in answers]}")


def _in(namespace: str, method: str, fragment: str, body: bytes = b"") -> Callable[[Seen], bool]:
    """Requests of ``method`` in ``namespace`` whose path has ``fragment`` and body has ``body``."""
    prefixes = (f"/api/v1/namespaces/{namespace}/", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/")
    return lambda seen: (
        seen.method == method
        and seen.path.startswith(prefixes)
        and fragment in seen.path
        and body in seen.body
    )


STEPS: dict[str, tuple[str, str, bytes]] = {
    "claim the key": ("POST", "/configmaps", b"idempotency"),
    "allocate the id": ("PATCH", "/configmaps/socialpub-ids", b""),
    "record the post's name": ("PUT", "/configmaps/idem-", b'"resource"'),
    "create the post": ("POST", "/socialposts", b""),
    "create its target": ("POST", "/socialtargets", b""),
    "complete the record": ("PUT", "/configmaps/idem-", b'"completed"'),
}


@pytest.mark.parametrize(
    ("step", "action", "times"),
    [
        *[(step, "drop", 1) for step in STEPS],
        ("create the post", "refuse", 1),
        ("create its target", "refuse", 1),
        ("complete the record", "refuse", 3),
    ],
)
def test_any_failed_step_converges_on_one_post(
    world: World, kube_proxy: FaultProxy, step: str, action: Action, times: int
) -> None:
    account = world.add_account("linkedin")
    client = world.client()
    method, fragment, body = STEPS[step]
    rule = kube_proxy.add(_in(world.namespace(), method, fragment, body), action, times=times)
    answers = _retry_until_created(client, _payload(account), "one-post")
    assert rule.hits == times, f"the fault at {step!r} was not injected"
    kube_proxy.clear()
    created = [a.json()["data"]["post"]["id"] for a in answers if a.status_code == 201]
    # A retry after the 201 (its record may still need completing: then it is resumed) and
    # one more (now certainly a replay) all answer the same post.
    again = _retry_until_created(client, _payload(account), "one-post")[-1]
    replay = client.post("/posts", json=_payload(account), headers={"Idempotency-Key": "one-post"})
    assert replay.status_code == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    assert {again.json()["data"]["post"]["id"], replay.json()["data"]["post"]["id"]} == {created[0]}
    posts = _objects(world, POSTS)
    assert [p["metadata"]["name"] for p in posts] == [f"post-{created[0]}"]
    assert [t["spec"]["accountId"] for t in _objects(world, TARGETS)] == [account]


def test_a_request_slower_than_the_lease_keeps_its_claim(world: World, kube_proxy: FaultProxy) -> None:
    account = world.add_account("linkedin")
    client = world.client()
    held = kube_proxy.add(_in(world.namespace(), "POST", "/socialposts"), "hold")
    first: list[httpx.Response] = []
    runner = threading.Thread(
        target=lambda: first.append(
            client.post("/posts", json=_payload(account), headers={"Idempotency-Key": "slow"})
        )
    )
    runner.start()
    try:
        wait_for(lambda: held.hits == 1, what="the create to reach the API server")
        record = record_name(world.name, "test", "slow")

        def lease_until() -> datetime | None:
            obj = kube_do(world.kube, lambda c: c.get(CONFIGMAPS, record, world.namespace()))
            return parse_time(obj["data"].get("leaseUntil"))

        first_lease = lease_until()
        assert first_lease is not None
        # Let the first lease run out in real time: the request is still running, so it renews.
        wait_for(
            lambda: datetime.now(UTC) > first_lease,
            timeout=PROXIED_LEASE_SECONDS * 3,
            what="the first lease to pass",
        )
        renewed = lease_until()
        assert renewed is not None
        assert renewed > datetime.now(UTC)
        retry = client.post("/posts", json=_payload(account), headers={"Idempotency-Key": "slow"})
        assert retry.status_code == 409
        assert retry.json()["error"]["code"] == "idempotency_key_in_use"
    finally:
        held.release.set()
        runner.join(30)
    assert first, "the first request did not finish"
    assert first[0].status_code == 201, first[0].text
    post_id = first[0].json()["data"]["post"]["id"]
    replay = client.post("/posts", json=_payload(account), headers={"Idempotency-Key": "slow"})
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["data"]["post"]["id"] == post_id
    assert [p["metadata"]["name"] for p in _objects(world, POSTS)] == [f"post-{post_id}"]


def test_a_retry_while_the_kubernetes_api_is_down_then_back(world: World, kube_proxy: FaultProxy) -> None:
    """Everything refused for a while (the API server is down), the post create among it."""
    account = world.add_account("linkedin")
    client = world.client()
    kube_proxy.add(_in(world.namespace(), "POST", "/socialposts"), "drop")
    everything = kube_proxy.add(lambda seen: "watch=" not in seen.target, "refuse", times=10)
    answers = _retry_until_created(client, _payload(account), "outage")
    assert everything.hits == 10
    created = {a.json()["data"]["post"]["id"] for a in answers if a.status_code == 201}
    assert len(created) == 1
    assert len(_objects(world, POSTS)) == 1


def test_a_holder_that_cannot_renew_stops_before_its_lease_ends(world: World, kube_proxy: FaultProxy) -> None:
    """The create hangs at the API server and every renewal is refused: the request gives up
    (409) while its lease still holds; the create lands later anyway, and the retry that takes
    the claim over finds that very post instead of making another."""
    account = world.add_account("linkedin")
    client = world.client()
    held = kube_proxy.add(_in(world.namespace(), "POST", "/socialposts"), "hold")
    first: list[tuple[httpx.Response, datetime]] = []

    def send() -> None:
        response = client.post("/posts", json=_payload(account), headers={"Idempotency-Key": "stuck"})
        first.append((response, datetime.now(UTC)))

    runner = threading.Thread(target=send)
    runner.start()
    try:
        wait_for(lambda: held.hits == 1, what="the create to reach the API server")
        kube_proxy.add(_in(world.namespace(), "PUT", "/configmaps/idem-"), "refuse", times=1000)
        runner.join(PROXIED_LEASE_SECONDS * 3)
        assert first, "the request kept running without its lease"
        response, finished = first[0]
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_in_use"
        record = kube_do(
            world.kube,
            lambda c: c.get(CONFIGMAPS, record_name(world.name, "test", "stuck"), world.namespace()),
        )
        lease_until = parse_time(record["data"]["leaseUntil"])
        assert lease_until is not None
        assert finished < lease_until  # it stopped while its lease still held
        reserved = record["data"]["resource"]
    finally:
        held.release.set()
        runner.join(30)
    wait_for(lambda: len(_objects(world, POSTS)) == 1, what="the held create to land")
    kube_proxy.clear()
    answers = _retry_until_created(client, _payload(account), "stuck")
    assert answers[-1].json()["data"]["post"]["id"] == int(reserved.removeprefix("post-"))
    assert [p["metadata"]["name"] for p in _objects(world, POSTS)] == [reserved]


def test_a_retry_never_brings_back_a_post_the_client_deleted(world: World, kube_proxy: FaultProxy) -> None:
    """Issue 9 review, item 12: the record could not be completed (the client still got its
    201); the client deleted the post; a retry with the same key resumed the creation and made
    the post again. The claim now records that the post was created, so the retry answers 410
    ``post_deleted`` and nothing comes back."""
    account = world.add_account("linkedin")
    client = world.client()
    method, fragment, body = STEPS["complete the record"]
    rule = kube_proxy.add(_in(world.namespace(), method, fragment, body), "refuse", times=3)
    first = client.post("/posts", json=_payload(account), headers={"Idempotency-Key": "deleted-later"})
    assert first.status_code == 201, first.text
    assert rule.hits == 3, "the record was completed after all"
    kube_proxy.clear()
    post_id = first.json()["data"]["post"]["id"]
    assert client.delete(f"/posts/{post_id}").status_code == 204
    wait_for(lambda: not _objects(world, POSTS), what="the post to be gone")

    for _ in range(2):  # and again: the answer does not change
        retry = client.post("/posts", json=_payload(account), headers={"Idempotency-Key": "deleted-later"})
        assert retry.status_code == 410, retry.text
        error = retry.json()["error"]
        assert error["code"] == "post_deleted"
        assert error["details"] == {"post_id": post_id}
        assert "new Idempotency-Key" in error["message"]
    assert _objects(world, POSTS) == []
    assert _objects(world, TARGETS) == []
    # A new key creates a new post, as the message says.
    fresh = client.post("/posts", json=_payload(account), headers={"Idempotency-Key": "a-new-one"})
    assert fresh.status_code == 201
    assert fresh.json()["data"]["post"]["id"] != post_id
