"""Follow-ups of issue 9 ("never publish twice"), on the real operator and the embedded API:
a post re-created under the same name, a namespace no single tenant owns, a released target's
account changed with kubectl, an account deleted while an attempt was in flight, and a late
write from an operator that no longer holds the claim.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from socialpub.kube.client import KubeClient
from socialpub.kube.resources import POSTS, TARGETS, TENANTS
from socialpub.models.platforms import Platform
from socialpub.operator.engine import Engine
from socialpub.operator.settings import OperatorSettings
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import KubeDriver, World, wait_for


def _create_post(world: World, name: str, body: str, account_ids: list[int]) -> dict[str, Any]:
    """A post applied by hand (kubectl-style): the operator creates its targets and publishes it."""
    manifest = {
        "apiVersion": POSTS.api_version,
        "kind": POSTS.kind,
        "metadata": {"name": name},
        "spec": {"body": body, "targets": [{"accountId": a} for a in account_ids]},
    }
    created: dict[str, Any] = world.kube.call(world.client.create(POSTS, manifest, world.namespace))
    return created


def test_a_post_recreated_under_the_same_name_publishes_with_its_own_targets(world: World) -> None:
    """The old post's target outlives it (deleted with ``propagationPolicy: Orphan``; likewise
    while garbage collection has not reached it): the new post of the same name must not take
    it for its own — released with the old uid, its content, its outcome — but publish its own."""
    account = world.accounts[Platform.LINKEDIN]
    _create_post(world, "again", "First edition", [account])
    assert world.wait_settled("again")["status"]["phase"] == "published"
    old = world.targets("again")[account]
    world.kube.call(world.client.delete(POSTS, "again", world.namespace, propagation="Orphan"))

    _create_post(world, "again", "Second edition", [account])

    post = world.wait_settled("again", timeout=20)
    assert post["status"]["phase"] == "published"
    target = world.targets("again")[account]
    assert target["metadata"]["uid"] != old["metadata"]["uid"]
    assert target["metadata"]["ownerReferences"][0]["uid"] == post["metadata"]["uid"]
    assert target["status"]["content"]["text"] == "Second edition"
    assert target["status"]["externalPostId"] != old["status"]["externalPostId"]
    assert [r["uid"] for r in post["status"]["releasedTargets"]] == [target["metadata"]["uid"]]


def test_a_namespace_two_tenants_name_waits_instead_of_dead_lettering(world: World) -> None:
    """No single tenant owns the namespace: nothing publishes, nothing is dead-lettered, no attempt
    is spent; once the second claim goes, the post publishes."""
    intruder = f"{world.tenant.name}-x"
    body = {
        "apiVersion": TENANTS.api_version,
        "kind": TENANTS.kind,
        "metadata": {"name": intruder},
        "spec": {"liveNamespace": f"{intruder}-live", "sandboxNamespace": world.namespace},
    }
    world.kube.call(world.client.create(TENANTS, body))

    def shared() -> bool:
        tenant = world.kube.call(world.client.get(TENANTS, world.tenant.name))
        ready = [c for c in (tenant.get("status") or {}).get("conditions", []) if c["type"] == "Ready"]
        return bool(ready) and ready[0]["reason"] == "NamespaceShared"

    wait_for(shared, what="the operator to see the namespace shared")
    account = world.accounts[Platform.FACEBOOK]
    name = KubeDriver(world).create_post(body="Whose namespace?", account_ids=[account])

    status = wait_for(
        lambda: (s := world.targets(name)[account].get("status") or {}).get("lastError") and s,
        what="the target to say why it waits",
    )
    assert status["lastError"]["code"] == "namespace_not_owned"
    assert status["state"] == "pending"
    assert status.get("attempts", 0) == 0
    assert "WaitingForTenant" in world.reasons(name)
    assert world.status(name)["phase"] == "publishing"

    world.kube.call(world.client.delete(TENANTS, intruder))
    post = world.wait_settled(name)
    assert post["status"]["phase"] == "published"
    target = world.targets(name)[account]["status"]
    assert (target["state"], target["attempts"]) == ("published", 1)


@pytest.mark.usefixtures("needs_kubectl")
def test_a_released_targets_account_cannot_be_changed(world: World) -> None:
    linkedin, facebook = world.accounts[Platform.LINKEDIN], world.accounts[Platform.FACEBOOK]
    name = KubeDriver(world).create_post(body="Once per account", account_ids=[linkedin, facebook])
    world.wait_settled(name)
    target = world.targets(name)[linkedin]["metadata"]["name"]

    for field, value in (("accountId", facebook), ("postName", "another-post")):
        patch = json.dumps({"spec": {field: value}})
        proc = world.kube.kubectl(
            "patch", "socialtarget", target, "-n", world.namespace, "--type=merge", "-p", patch, check=False
        )
        assert proc.returncode != 0, proc.stdout
        assert f"{field} is immutable" in proc.stderr
    stored = world.targets(name)
    assert stored[linkedin]["spec"]["accountId"] == linkedin
    assert stored[facebook]["status"]["attempts"] == 1


def test_an_account_deleted_while_an_attempt_was_in_flight_is_unknown_not_dead(
    kube: KubeHarness, own_client: KubeClient, own_operator: Callable[..., OperatorProcess]
) -> None:
    """The post may be live on the account: after the crash nobody can ask the platform, so the
    target needs a person (``unknown``), never ``dead`` (which says it did not go out)."""
    operator = own_operator(SOCIALPUB_SANDBOX_DELAY_SECONDS="1").start()
    world = World.create(kube, own_client, "gone")
    account = world.accounts[Platform.LINKEDIN]
    name = KubeDriver(world).create_post(body="In flight", account_ids=[account])
    wait_for(lambda: world.target_states(name).get(account) == "publishing", what="the claim")
    operator.kill()
    kube.kubectl("delete", "socialaccounts", "-n", world.namespace, "-l", f"social.softsolz.uk/id={account}")
    operator.start()

    status = wait_for(
        lambda: (s := world.targets(name)[account]["status"])["state"] != "publishing" and s,
        timeout=20,
        what="the interrupted attempt to be resolved",
    )
    assert status["state"] == "unknown"
    assert status["lastError"]["code"] == "account_not_found"
    # The Event is queued after the status write (low-priority work): wait for it, do not race it.
    wait_for(lambda: "OutcomeUnknown" in world.reasons(name), timeout=10, what="the OutcomeUnknown Event")


def test_a_late_release_write_never_turns_a_published_target_back_to_pending(
    kube: KubeHarness, own_client: KubeClient
) -> None:
    """An operator acting on an old copy of a target (one that had not yet been released when it
    read it) must not overwrite what happened since: its release write is conditional."""
    world = World.create(kube, own_client, "late")
    account = world.accounts[Platform.INSTAGRAM]
    name = KubeDriver(world).create_post(body="Already out", account_ids=[account], draft=True)
    post = kube.call(own_client.get(POSTS, name, world.namespace))
    stale = world.targets(name)[account]
    released = {"publishStartedAt": "2026-01-01T00:00:00Z", "releasedGeneration": 1}
    released["releasedTargets"] = [{"name": stale["metadata"]["name"], "uid": stale["metadata"]["uid"]}]
    released["releasedTargets"][0]["accountId"] = account
    post = kube.call(
        own_client.patch(POSTS, name, {"status": released}, world.namespace, subresource="status")
    )
    published = {
        "state": "published",
        "attempts": 1,
        "externalPostId": "x-1",
        "content": {"text": "Already out"},
    }
    kube.call(
        own_client.patch(
            TARGETS, stale["metadata"]["name"], {"status": published}, world.namespace, subresource="status"
        )
    )

    async def act_on_the_stale_copy() -> None:
        engine = Engine(own_client, OperatorSettings(), identity="late-operator")
        engine.observe(POSTS.plural, None, post)
        engine.observe(TARGETS.plural, None, stale)
        await engine.advance_target((world.namespace, stale["metadata"]["name"]))
        await engine.stop(grace=0)

    kube.call(act_on_the_stale_copy())
    status = world.targets(name)[account]["status"]
    assert (status["state"], status["attempts"], status["externalPostId"]) == ("published", 1, "x-1")
