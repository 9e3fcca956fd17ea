"""Durability: an operator killed with undelivered events delivers every one of them after a restart.

Each test has its own embedded Kubernetes API and operator process, which it SIGKILLs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from socialpub.kube.accounts import create_sandbox_account
from socialpub.kube.client import KubeClient
from socialpub.kube.resources import WEBHOOK_DELIVERIES
from socialpub.models.platforms import Platform
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import World, wait_for
from tests.webhooks.conftest import endpoint
from tests.webhooks.receiver import Receiver


def deliveries(world: World) -> list[dict[str, Any]]:
    items, _ = world.kube.call(world.client.list(WEBHOOK_DELIVERIES, world.namespace))
    return list(items)


def add_account(world: World, name: str) -> None:
    world.kube.call(
        create_sandbox_account(
            world.client, tenant=world.tenant, platform=Platform.LINKEDIN, display_name=name
        )
    )


def test_killed_mid_delivery_and_events_recorded_while_down_are_all_delivered(
    kube: KubeHarness,
    own_client: KubeClient,
    own_operator: Callable[..., OperatorProcess],
    receiver: Receiver,
) -> None:
    world = World.create(kube, own_client, "durable")
    receiver.scripts["hooks"] = [(5.0, 200)]  # the first attempt hangs: the operator dies during it
    _, secret = endpoint(world, receiver.url("hooks"))
    operator = own_operator(SOCIALPUB_WEBHOOK_TIMEOUT_SECONDS="10").start()

    add_account(world, "during")
    wait_for(
        lambda: [d for d in deliveries(world) if (d.get("status") or {}).get("state") == "sending"],
        what="a delivery claimed (sending)",
    )
    operator.kill()
    # Recorded while no operator runs: only the resources remember them.
    add_account(world, "down 1")
    add_account(world, "down 2")
    assert len(deliveries(world)) == 1

    operator.start()
    got = receiver.wait_ok("hooks", 3, timeout=30)
    for r in got:
        r.verify(secret)
    assert sorted(r.payload["data"]["display_name"] for r in got) == ["down 1", "down 2", "during"]

    records = wait_for(
        lambda: (
            (d := deliveries(world))
            and all((x.get("status") or {}).get("state") == "delivered" for x in d)
            and d
        ),
        what="every delivery recorded as delivered",
    )
    assert len(records) == 3, "a restart never queues an event twice"
    interrupted = next(d for d in records if '"during"' in d["spec"]["payload"])
    assert interrupted["status"]["attempts"] == 2, "the interrupted attempt was sent again"
    during = [r for r in receiver.received("hooks", ok=True) if r.payload["data"]["display_name"] == "during"]
    assert {r.id for r in during} == {interrupted["spec"]["eventId"]}


def test_failed_deliveries_are_retried_on_schedule_after_a_restart(
    kube: KubeHarness,
    own_client: KubeClient,
    own_operator: Callable[..., OperatorProcess],
    receiver: Receiver,
) -> None:
    world = World.create(kube, own_client, "retrying")
    receiver.scripts["flaky"] = [500, 500]
    _, secret = endpoint(world, receiver.url("flaky"))
    operator = own_operator().start()
    add_account(world, "flaky")
    wait_for(
        lambda: [d for d in deliveries(world) if (d.get("status") or {}).get("attempts") == 2],
        what="two failed attempts",
    )
    operator.stop()  # a graceful stop (a rollout): the retry lives on in nextAttemptAt
    (record,) = deliveries(world)
    assert record["status"]["state"] == "failed"
    assert record["status"]["nextAttemptAt"]

    operator.start()
    (delivered,) = receiver.wait_ok("flaky", 1, timeout=20)
    delivered.verify(secret)
    assert {r.id for r in receiver.received("flaky")} == {record["spec"]["eventId"]}
    wait_for(
        lambda: deliveries(world)[0]["status"]["state"] == "delivered", what="the delivery to be recorded"
    )
    assert deliveries(world)[0]["status"]["attempts"] == 3
