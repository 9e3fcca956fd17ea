"""End to end: the real operator delivers to a real receiver; signatures verified by ``standardwebhooks``.

The operator runs as a subprocess on the embedded Kubernetes API, with the retry schedule scaled
to a five-hundredth (``SOCIALPUB_WEBHOOK_RETRY_BASE_SECONDS=0.01``: 0, 0.01 s, 0.6 s, 3.6 s, …)
and a 1 s timeout. Events are caused the way users cause them (accounts added and disconnected
with the CLI's functions, posts written as the api writes them).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from standardwebhooks import WebhookVerificationError

from socialpub._cli_webhooks import rotate_secret
from socialpub.kube.accounts import create_sandbox_account, disconnect_account
from socialpub.kube.client import NotFound
from socialpub.kube.resources import (
    ACCOUNTS,
    EVENTS,
    LABEL_ID,
    SECRETS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_ENDPOINTS,
)
from socialpub.models.platforms import Platform
from socialpub.webhooks.events import EVENT_TYPES
from tests.kube_harness import KubeHarness
from tests.operator.scenarios import KubeDriver, World, parse, wait_for
from tests.webhooks.conftest import endpoint
from tests.webhooks.receiver import Receiver, by_type


def get_endpoint(world: World, name: str, namespace: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = world.kube.call(
        world.client.get(WEBHOOK_ENDPOINTS, name, namespace or world.namespace)
    )
    return obj


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready")


def wait_ready(world: World, name: str, status: str, reason: str, timeout: float = 15.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = get_endpoint(world, name)
        conditions = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
        return (
            obj
            if conditions and (conditions[0]["status"], conditions[0]["reason"]) == (status, reason)
            else None
        )

    return wait_for(probe, timeout=timeout, what=f"endpoint {name} Ready={status} ({reason})")


def deliveries(world: World, endpoint_name: str) -> list[dict[str, Any]]:
    items, _ = world.kube.call(world.client.list(WEBHOOK_DELIVERIES, world.namespace))
    return [d for d in items if d["spec"]["endpointName"] == endpoint_name]


def lifecycle_id(obj: dict[str, Any], type_: str) -> str:
    (entry,) = [e for e in obj["status"]["lifecycleEvents"] if e["type"] == type_]
    return str(entry["id"])


def add_account(world: World, name: str, platform: Platform = Platform.LINKEDIN) -> dict[str, Any]:
    account: dict[str, Any] = world.kube.call(
        create_sandbox_account(world.client, tenant=world.tenant, platform=platform, display_name=name)
    )
    return account


def target_of(world: World, post: str) -> dict[str, Any]:
    (target,) = world.targets(post).values()
    return target


def test_every_event_type_arrives_signed_with_its_data(
    world: World, driver: KubeDriver, receiver: Receiver
) -> None:
    ep, secret = endpoint(world, receiver.url("all"))
    linkedin, facebook = world.accounts[Platform.LINKEDIN], world.accounts[Platform.FACEBOOK]

    account = add_account(world, "Hooks Inc")
    disconnected = world.kube.call(disconnect_account(world.client, account))
    scheduled_for = time.time() + 3600
    scheduled = driver.create_post(body="Later", account_ids=[linkedin], scheduled_for=scheduled_for)
    published = driver.create_post(body="Now", account_ids=[facebook])
    failed = driver.create_post(body="No #sandbox-fail-permanent", account_ids=[facebook])

    got = receiver.wait_ok("all", 5)
    time.sleep(0.5)
    # The world's own three accounts were connected before the endpoint existed: not delivered.
    assert len({r.id for r in receiver.received("all")}) == 5
    types = by_type(got)
    assert sorted(types) == sorted(EVENT_TYPES)
    for r in got:
        assert r.verify(secret) == r.payload
        assert r.headers["content-type"] == "application/json"
        assert r.headers["webhook-id"].startswith("evt_")
        assert abs(int(r.headers["webhook-timestamp"]) - r.at) < 5
        assert set(r.payload) == {"type", "timestamp", "data"}

    account_id = int(account["metadata"]["labels"][LABEL_ID])
    (connected,) = types["social.account_connected"]
    assert connected.id == lifecycle_id(disconnected, "social.account_connected")
    assert connected.payload["data"] == {
        "account_id": account_id,
        "platform": "linkedin",
        "display_name": "Hooks Inc",
        "status": "active",
    }
    (gone,) = types["social.account_disconnected"]
    assert gone.id == lifecycle_id(disconnected, "social.account_disconnected")
    assert gone.payload["data"]["status"] == "disconnected"

    (sched,) = types["social.post_scheduled"]
    assert sched.id == lifecycle_id(world.post(scheduled) or {}, "social.post_scheduled")
    assert sched.payload["data"]["post_id"] == int(scheduled.split("-")[1])
    assert abs(parse(sched.payload["data"]["scheduled_for"]) - scheduled_for) < 0.001

    (pub,) = types["social.post_published"]
    target = target_of(world, published)
    assert pub.id == lifecycle_id(target, "social.post_published")
    assert pub.payload["data"] == {
        "post_id": int(published.split("-")[1]),
        "account_id": facebook,
        "platform": "facebook",
        "external_post_id": target["status"]["externalPostId"],
        "external_url": target["status"]["externalUrl"],
    }
    assert pub.payload["timestamp"] == target["status"]["lifecycleEvents"][0]["occurredAt"]

    (fail,) = types["social.post_failed"]
    target = target_of(world, failed)
    assert fail.id == lifecycle_id(target, "social.post_failed")
    assert fail.payload["data"] == {
        "post_id": int(failed.split("-")[1]),
        "account_id": facebook,
        "platform": "facebook",
        "attempts": 1,
        "last_error": {
            "code": target["status"]["lastError"]["code"],
            "message": target["status"]["lastError"]["message"],
        },
    }
    # The tenant hears of a dead-lettered target both ways: the webhook and a Warning Event.
    dead = [e for e in world.events(failed) if e["reason"] == "DeadLettered"]
    assert len(dead) == 1
    assert dead[0]["type"] == "Warning"

    # The endpoint's status answers "is it healthy?", and each delivery has its record.
    name = ep["metadata"]["name"]
    obj = wait_for(
        lambda: (o := get_endpoint(world, name))["status"].get("deliveredTotal") == 5 and o,
        what="the endpoint's counters",
    )
    assert ready(obj)["status"] == "True"
    assert ready(obj)["reason"] == "Delivering"
    assert obj["status"]["consecutiveFailures"] == 0
    assert obj["status"]["lastDeliveryStatus"] == 200
    assert {r["eventId"] for r in obj["status"]["recentDeliveries"]} == {r.id for r in got}
    records = deliveries(world, name)
    assert len(records) == 5
    assert {d["status"]["state"] for d in records} == {"delivered"}
    assert {d["spec"]["eventId"] for d in records} == {r.id for r in got}
    assert all(d["metadata"]["ownerReferences"][0]["uid"] == ep["metadata"]["uid"] for d in records)


def test_retries_after_500s_and_a_timeout_keep_the_webhook_id(
    world: World, driver: KubeDriver, receiver: Receiver
) -> None:
    receiver.scripts["flaky"] = [500, 503, (1.5, 200)]  # the third answers after the 1 s timeout
    ep, secret = endpoint(world, receiver.url("flaky"), ["social.post_published"])
    driver.create_post(body="Eventually", account_ids=[world.accounts[Platform.FACEBOOK]])

    receiver.wait_ok("flaky", 1, timeout=20)
    wait_for(lambda: len(receiver.received("flaky")) >= 4, what="four attempts")
    attempts = receiver.received("flaky")
    assert len({r.id for r in attempts}) == 1, "every retry carries the same webhook-id"
    assert [r.answered for r in attempts][:2] == [500, 503]
    for r in attempts:
        r.verify(secret)
    assert len({r.body for r in attempts}) == 1, "every retry sends the same bytes"

    name = ep["metadata"]["name"]
    (record,) = deliveries(world, name)
    record = wait_for(
        lambda: (d := deliveries(world, name)[0])["status"]["state"] == "delivered" and d,
        what="the delivery to be recorded",
    )
    assert record["status"]["attempts"] == 4
    assert record["status"]["lastStatus"] == 200
    obj = wait_ready(world, name, "True", "Delivering")
    recent = [(r["attempt"], r["status"], r["result"]) for r in obj["status"]["recentDeliveries"]]
    assert recent == [(4, 200, "delivered"), (3, 0, "failed"), (2, 503, "failed"), (1, 500, "failed")]
    assert "no complete answer within 1s" in obj["status"]["recentDeliveries"][1]["error"]
    assert obj["status"]["failedTotal"] == 3


def test_410_disables_the_endpoint_until_its_spec_changes(
    world: World, driver: KubeDriver, receiver: Receiver
) -> None:
    receiver.scripts["gone"] = [410]
    ep, _ = endpoint(world, receiver.url("gone"), ["social.post_published"])
    name = ep["metadata"]["name"]
    facebook = world.accounts[Platform.FACEBOOK]
    driver.create_post(body="First", account_ids=[facebook])

    obj = wait_ready(world, name, "False", "Gone")
    assert obj["status"]["disabledGeneration"] == obj["metadata"]["generation"]
    assert "410" in obj["status"]["disabledReason"]
    (record,) = deliveries(world, name)
    assert (record["status"]["state"], record["status"]["lastStatus"]) == ("dead", 410)
    items, _ = world.kube.call(world.client.list(EVENTS, world.namespace))
    assert any(e["reason"] == "EndpointGone" and e["type"] == "Warning" for e in items)

    # Disabled: a new event is held, not sent.
    second = driver.create_post(body="Second", account_ids=[facebook])
    world.wait_phase(second, "published")
    wait_for(lambda: get_endpoint(world, name)["status"].get("backlog") == 1, what="the held delivery")
    time.sleep(0.5)
    assert len(receiver.received("gone")) == 1

    # A new URL (a spec change) enables it: the held event goes out, the dead one stays dead.
    world.kube.call(
        world.client.patch(WEBHOOK_ENDPOINTS, name, {"spec": {"url": receiver.url("back")}}, world.namespace)
    )
    (back,) = receiver.wait_ok("back", 1)
    assert back.id == lifecycle_id(target_of(world, second), "social.post_published")
    obj = wait_ready(world, name, "True", "Delivering")
    assert "disabledGeneration" not in obj["status"]


def test_event_filters(world: World, driver: KubeDriver, receiver: Receiver) -> None:
    endpoint(world, receiver.url("published-only"), ["social.post_published"])
    endpoint(world, receiver.url("failures"), ["social.post_failed", "social.account_disconnected"])
    endpoint(world, receiver.url("everything"))
    facebook = world.accounts[Platform.FACEBOOK]
    driver.create_post(body="Fine", account_ids=[facebook])
    driver.create_post(body="Bad #sandbox-fail-permanent", account_ids=[facebook])
    linkedin = world.kube.call(
        world.client.get(ACCOUNTS, f"account-{world.accounts[Platform.LINKEDIN]}", world.namespace)
    )
    world.kube.call(disconnect_account(world.client, linkedin))

    everything = receiver.wait_ok("everything", 3)
    failures = receiver.wait_ok("failures", 2)
    published = receiver.wait_ok("published-only", 1)
    time.sleep(0.5)
    assert sorted(by_type(everything)) == [
        "social.account_disconnected",
        "social.post_failed",
        "social.post_published",
    ]
    assert sorted(by_type(failures)) == ["social.account_disconnected", "social.post_failed"]
    assert [r.payload["type"] for r in receiver.received("published-only")] == ["social.post_published"]
    assert published[0].id in {r.id for r in everything}


def test_secret_rotation_signs_with_both_secrets_during_the_overlap(
    world: World, driver: KubeDriver, receiver: Receiver
) -> None:
    ep, old = endpoint(world, receiver.url("rotated"), ["social.post_published"])
    new, expires = world.kube.call(rotate_secret(world.client, ep))
    assert expires
    facebook = world.accounts[Platform.FACEBOOK]
    driver.create_post(body="Rotating", account_ids=[facebook])
    (first,) = receiver.wait_ok("rotated", 1)
    assert len(first.headers["webhook-signature"].split(" ")) == 2
    first.verify(old)
    first.verify(new)

    # Rotating with no overlap: only the newest secret signs from now on.
    newest, _ = world.kube.call(rotate_secret(world.client, ep, overlap_seconds=0))
    driver.create_post(body="Rotated", account_ids=[facebook])
    second = next(r for r in receiver.wait_ok("rotated", 2) if r.id != first.id)
    second.verify(newest)
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            second.verify(stale)
    secret = world.kube.call(world.client.get(SECRETS, ep["spec"]["secretRef"]["name"], world.namespace))
    assert set(secret["data"]) == {"secret", "secret.previous"}


def test_a_slow_endpoint_does_not_delay_another_tenant(
    shared_kube: KubeHarness, shared_client: Any, world: World, receiver: Receiver
) -> None:
    receiver.scripts["slow"] = [(0.8, 200)] * 40
    endpoint(world, receiver.url("slow"), ["social.account_connected"])
    other = World.create(shared_kube, shared_client)
    endpoint(other, receiver.url("fast"), ["social.account_connected"])

    async def many() -> None:
        await asyncio.gather(
            *(
                create_sandbox_account(
                    world.client, tenant=world.tenant, platform=Platform.LINKEDIN, display_name=f"n{i}"
                )
                for i in range(24)
            )
        )

    shared_kube.call(many())
    time.sleep(0.3)  # the slow endpoint's 24 deliveries are under way (8 at a time, 0.8 s each)
    start = time.time()
    add_account(other, "Quick")
    (fast,) = receiver.wait_ok("fast", 1, timeout=10)
    assert fast.at - start < 1.0, f"the fast endpoint waited {fast.at - start:.2f}s"
    assert len(receiver.received("slow")) < 24, "the slow endpoint's backlog was still being worked on"
    receiver.wait_ok("slow", 24, timeout=30)


def test_receiver_down_for_a_while_gets_everything_once_back(world: World, driver: KubeDriver) -> None:
    down = Receiver()  # not started: connections are refused
    try:
        ep, secret = endpoint(world, down.url("later"))
        name = ep["metadata"]["name"]
        for i in range(3):
            add_account(world, f"while down {i}")
        wait_for(
            lambda: (
                len(d := deliveries(world, name)) == 3
                and all(x.get("status", {}).get("attempts", 0) >= 2 for x in d)
            ),
            what="three deliveries failing",
            timeout=20,
        )
        obj = wait_ready(world, name, "False", "DeliveryFailing")
        assert "ConnectError" in obj["status"]["lastError"]
        down.start()
        got = down.wait_ok("later", 3, timeout=20)
        for r in got:
            r.verify(secret)
        time.sleep(0.3)
        delivered = down.received("later", ok=True)
        assert len(delivered) == len({r.id for r in delivered}) == 3, "each event delivered once"
        wait_ready(world, name, "True", "Delivering")
    finally:
        down.close()


def test_a_live_endpoint_must_use_https(world: World, receiver: Receiver) -> None:
    namespace = world.tenant.live_namespace
    world.kube.call(
        world.client.create(
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "hook-secret"},
                "stringData": {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            },
            namespace,
        )
    )
    world.kube.call(
        world.client.create(
            WEBHOOK_ENDPOINTS,
            {
                "apiVersion": WEBHOOK_ENDPOINTS.api_version,
                "kind": WEBHOOK_ENDPOINTS.kind,
                "metadata": {"name": "plain-http"},
                "spec": {"url": receiver.url("x"), "secretRef": {"name": "hook-secret"}},
            },
            namespace,
        )
    )

    def probe() -> dict[str, Any] | None:
        obj = get_endpoint(world, "plain-http", namespace)
        conditions = (obj.get("status") or {}).get("conditions") or []
        return obj if conditions and conditions[0]["reason"] == "URLRefused" else None

    obj = wait_for(probe, what="the endpoint to be refused")
    assert "https" in ready(obj)["message"]
    assert ready(obj)["status"] == "False"


def test_deleting_an_endpoint_deletes_its_deliveries(
    world: World, driver: KubeDriver, receiver: Receiver
) -> None:
    ep, _ = endpoint(world, receiver.url("brief"))
    add_account(world, "brief")
    receiver.wait_ok("brief", 1)
    name = ep["metadata"]["name"]
    assert len(deliveries(world, name)) == 1
    world.kube.call(world.client.delete(WEBHOOK_ENDPOINTS, name, world.namespace))
    wait_for(lambda: not deliveries(world, name), what="the deliveries to be deleted with the endpoint")
    with pytest.raises(NotFound):
        world.kube.call(world.client.get(WEBHOOK_ENDPOINTS, name, world.namespace))
