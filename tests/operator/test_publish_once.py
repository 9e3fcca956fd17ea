"""No account ever receives the same post twice: whatever is done to a released post's spec and
targets (kubectl, a GitOps revert), with two operators on one cluster, and when the platform
cannot tell whether an attempt landed.

The real operator process(es) on the embedded Kubernetes API; posts written as the api writes
them, changed with kubectl (or the same HTTP calls); outcomes read from the resources and Events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from socialpub.kube.client import KubeClient
from socialpub.kube.targets import target_manifest
from socialpub.models.platforms import Platform
from socialpub.operator.leadership import LEASES
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import KubeDriver, World, parse, wait_for


def condition(post: dict, type_: str) -> dict:
    return next((c for c in (post.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def published_events(world: World, name: str) -> list[dict]:
    return [e for e in world.events(name) if e["reason"] == "PublishedTarget"]


def refused(world: World, name: str, *words: str) -> dict:
    """Wait until the post's SpecApplied condition reports every one of ``words``."""

    def probe() -> dict | None:
        post = world.post(name) or {}
        spec_applied = condition(post, "SpecApplied")
        message = spec_applied.get("message", "")
        return post if spec_applied.get("status") == "False" and all(w in message for w in words) else None

    try:
        return wait_for(probe, timeout=15, what=f"SpecApplied=False naming {words}")
    except AssertionError as exc:
        seen = condition(world.post(name) or {}, "SpecApplied")
        raise AssertionError(f"{exc}\nSpecApplied: {seen}") from None


def kubectl_patch(world: World, kind: str, name: str, patch: dict) -> None:
    world.kube.kubectl("patch", kind, name, "-n", world.namespace, "--type=merge", "-p", json.dumps(patch))


# Item 2: a released post never goes back, its targets are never recreated or re-sent.


@pytest.mark.usefixtures("needs_kubectl")
def test_draft_true_after_release_changes_nothing_and_is_reported(world: World, driver: KubeDriver) -> None:
    account = world.accounts[Platform.LINKEDIN]
    name = driver.create_post(body="Out already", account_ids=[account])
    world.wait_settled(name)

    kubectl_patch(world, "socialpost", name, {"spec": {"draft": True}})

    post = refused(world, name, "draft: true")
    assert post["status"]["phase"] == "published"
    assert condition(post, "SpecApplied")["reason"] == "PublishingStarted"
    wait_for(lambda: "ChangeRefused" in world.reasons(name), what="the ChangeRefused event")
    [event] = [e for e in world.events(name) if e["reason"] == "ChangeRefused"]
    assert event["type"] == "Warning"
    assert "draft: true" in event["message"]
    assert len(published_events(world, name)) == 1


@pytest.mark.usefixtures("needs_kubectl")
def test_targets_removed_readded_and_recreated_are_never_published_again(
    world: World, driver: KubeDriver
) -> None:
    linkedin, facebook = world.accounts[Platform.LINKEDIN], world.accounts[Platform.FACEBOOK]
    name = driver.create_post(body="Once per account", account_ids=[linkedin])
    world.wait_settled(name)
    released = world.targets(name)[linkedin]

    # A GitOps revert: draft again, the account removed, then re-added with another text, and a
    # new account added; the released target deleted and applied again by hand.
    kubectl_patch(world, "socialpost", name, {"spec": {"draft": True, "targets": [{"accountId": facebook}]}})
    refused(
        world,
        name,
        "removed",
        f"[{linkedin}]",
        f"added after publishing began are not published: [{facebook}]",
    )
    kubectl_patch(
        world,
        "socialpost",
        name,
        {"spec": {"targets": [{"accountId": linkedin, "overrideBody": "Again!"}, {"accountId": facebook}]}},
    )
    world.kube.kubectl("delete", "socialtarget", released["metadata"]["name"], "-n", world.namespace)
    refused(world, name, "deleted and are never recreated", released["metadata"]["name"])
    assert linkedin not in world.targets(name)  # the operator did not recreate it
    post = world.post(name)
    assert post is not None
    manifest = target_manifest(post, linkedin, "Again!")
    world.kube.kubectl("apply", "-n", world.namespace, "-f", "-", input=json.dumps(manifest))

    refused(world, name, "created after publishing began are never published", released["metadata"]["name"])
    time.sleep(1.0)  # what would have been enough for a publish (the sandbox takes 0.05 s)
    recreated = world.targets(name)[linkedin]
    assert recreated["metadata"]["uid"] != released["metadata"]["uid"]
    assert not (recreated.get("status") or {}).get("state")
    assert facebook not in world.targets(name)
    assert len(published_events(world, name)) == 1  # linkedin received it once; facebook never
    post = world.post(name)
    assert post is not None
    assert post["status"]["phase"] == "published"
    assert [r["uid"] for r in post["status"]["releasedTargets"]] == [released["metadata"]["uid"]]
    changes = [e for e in world.events(name) if e["reason"] == "ChangeRefused"]
    assert changes
    assert all(e["type"] == "Warning" for e in changes)
    assert any("never published" in e["message"] for e in changes)


# Item 4: the platform cannot tell whether an attempt landed.


def test_an_outcome_the_platform_cannot_tell_is_unknown_and_never_resent(
    world: World, driver: KubeDriver
) -> None:
    linkedin, facebook = world.accounts[Platform.LINKEDIN], world.accounts[Platform.FACEBOOK]
    name = driver.create_post(
        body="One certain, one not",
        account_ids=[linkedin, facebook],
        overrides={facebook: "Lost answer #sandbox-outcome-unknown"},
    )

    wait_for(lambda: world.target_states(name).get(facebook) == "unknown", what="the target to be unknown")
    wait_for(lambda: world.target_states(name).get(linkedin) == "published", what="the other to publish")
    wait_for(lambda: "OutcomeUnknown" in world.reasons(name), what="the OutcomeUnknown event")
    time.sleep(0.5)  # ten retry bases: a retry would have happened by now

    status = world.targets(name)[facebook]["status"]
    assert status["state"] == "unknown"
    assert status["attempts"] == 1
    assert status["lastError"]["class"] == "unknown"
    assert status.get("nextAttemptAt") is None
    post = wait_for(
        lambda: (p := world.post(name)) and condition(p, "NeedsAttention").get("status") == "True" and p,
        what="NeedsAttention=True",
    )
    assert post["status"]["phase"] == "publishing"  # neither published nor failed: a person decides
    assert post["status"]["targetCounts"]["unknown"] == 1
    assert post["status"]["targetCounts"]["published"] == 1
    assert condition(post, "Ready")["reason"] == "NeedsAttention"
    [event] = [e for e in world.events(name) if e["reason"] == "OutcomeUnknown"]
    assert event["type"] == "Warning"
    assert "not re-sent" in event["message"]
    assert "Retrying" not in world.reasons(name)
    assert "DeadLettered" not in world.reasons(name)


# Item 3: two operators on one cluster.


def claim_of(world: World, name: str, account: int) -> dict:
    """The target's status once it is claimed (``publishing``)."""

    def probe() -> dict | None:
        status = (world.targets(name).get(account) or {}).get("status") or {}
        return status if status.get("state") == "publishing" else None

    return wait_for(probe, what="the claim")


def lease_of(kube: KubeHarness, client: KubeClient) -> dict:
    return dict(kube.call(client.get(LEASES, "socialpub-operator", "socialpub-system")))


def test_a_second_operator_waits_for_the_lease_and_takes_over_only_after_it_expires(
    kube: KubeHarness, own_client: KubeClient, own_operator: Callable[..., OperatorProcess]
) -> None:
    first = own_operator(SOCIALPUB_SANDBOX_DELAY_SECONDS="3", SOCIALPUB_OPERATOR_IDENTITY="op-first").start()
    second = own_operator(SOCIALPUB_SANDBOX_DELAY_SECONDS="3", SOCIALPUB_OPERATOR_IDENTITY="op-second")
    offset = second.launch()
    world = World.create(kube, own_client, "twoops")
    account = world.accounts[Platform.FACEBOOK]
    name = KubeDriver(world).create_post(body="Only once, whoever publishes", account_ids=[account])
    claimed = claim_of(world, name, account)
    assert claimed["claimedBy"] == "op-first"
    lease_until = parse(claimed["leaseUntil"])
    assert lease_until >= parse(claimed["lastAttemptAt"]) + 3  # covers the (simulated) platform call

    # The second one waits, doing nothing: kopf never started, so no watch, no write.
    wait_for(lambda: "is held by op-first" in second.log(offset), what="the second operator to wait")
    assert second.running
    assert "start_engine" not in second.log(offset)
    lease = lease_of(kube, own_client)
    assert lease["spec"]["holderIdentity"] == "op-first"
    last_renewal = parse(lease["spec"]["renewTime"])
    duration = lease["spec"]["leaseDurationSeconds"]

    first.kill()  # mid-call: the sandbox takes 3 s
    second.wait_ready(offset, timeout=30)

    lease = lease_of(kube, own_client)
    assert lease["spec"]["holderIdentity"] == "op-second"
    assert parse(lease["spec"]["acquireTime"]) >= last_renewal + duration  # only after it expired
    assert lease["spec"]["leaseTransitions"] == 1
    post = world.wait_settled(name, timeout=30)
    assert post["status"]["phase"] == "published"
    status = world.targets(name)[account]["status"]
    assert status["state"] == "published"
    assert status["attempts"] == 1
    assert parse(status["publishedAt"]) >= lease_until  # the claim was not resolved early
    assert "claimedBy" not in status
    assert "leaseUntil" not in status
    [published] = published_events(world, name)
    assert "resolved after an interruption" in published["message"]
    assert "Retrying" not in world.reasons(name)


def test_a_killed_operators_claim_is_not_resolved_before_its_lease_ends(
    kube: KubeHarness, own_client: KubeClient, own_operator: Callable[..., OperatorProcess]
) -> None:
    operator = own_operator(SOCIALPUB_SANDBOX_DELAY_SECONDS="2", SOCIALPUB_CLAIM_SETTLE_SECONDS="12").start()
    world = World.create(kube, own_client, "inflight")
    account = world.accounts[Platform.LINKEDIN]
    name = KubeDriver(world).create_post(body="Maybe still on its way", account_ids=[account])
    claimed = claim_of(world, name, account)
    lease_until = parse(claimed["leaseUntil"])
    assert lease_until >= parse(claimed["lastAttemptAt"]) + 2 + 12

    operator.kill()
    operator.start()  # after the operator Lease expired (5 s): the claim's (18 s) has not

    assert world.target_states(name)[account] == "publishing"
    assert time.time() < lease_until
    post = world.wait_settled(name, timeout=30)
    status = world.targets(name)[account]["status"]
    assert parse(status["publishedAt"]) >= lease_until
    assert status["attempts"] == 1
    assert len(published_events(world, name)) == 1
    assert post["status"]["phase"] == "published"
