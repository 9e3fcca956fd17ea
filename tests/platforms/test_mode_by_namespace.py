"""Live or simulated is decided by which of its tenant's namespaces an account is in (issue 9, item 9).

``spec.sandbox`` and namespace labels can be written by whoever may write in the namespace; the
SocialTenant (cluster-scoped) is what names a tenant's live and sandbox namespaces. The real
operator runs against the platform fakes, and each test checks what reaches the platforms.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from socialpub.kube.client import KubeClient
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import ACCOUNTS, LABEL_ID, LABEL_MODE, LABEL_TENANT, SECRETS
from socialpub.models.platforms import Platform
from tests.fakes.fixtures import Fakes
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import KubeDriver, World, wait_for
from tests.platforms.live import LiveWorld

FB, LI = Platform.FACEBOOK, Platform.LINKEDIN


@pytest.fixture
def world(
    shared_kube: KubeHarness, shared_client: KubeClient, fakes: Fakes, live_operator: OperatorProcess
) -> LiveWorld:
    return LiveWorld.create_live(shared_kube, shared_client, fakes)


def _account(world: LiveWorld, namespace: str, name: str, spec: dict[str, Any]) -> int:
    account_id = int(name.rsplit("-", 1)[1])
    world.kube.call(
        world.client.create(
            ACCOUNTS,
            {
                "apiVersion": ACCOUNTS.api_version,
                "kind": ACCOUNTS.kind,
                "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_ID: str(account_id)}},
                "spec": spec,
            },
            namespace,
        )
    )
    return account_id


class _World(World):
    """A World writing posts into any namespace (the tenant's, or one that is no tenant's)."""

    ns: str = ""

    @property
    def namespace(self) -> str:
        return self.ns


def _world_in(world: LiveWorld, namespace: str, account_id: int) -> _World:
    other = _World(world.kube, world.client, world.tenant, accounts={FB: account_id})
    other.ns = namespace
    return other


def test_a_sandbox_account_with_a_copied_token_and_sandbox_false_never_reaches_a_platform(
    world: LiveWorld,
) -> None:
    live = world.account(FB)
    name = live["metadata"]["name"]
    sandbox_ns = world.tenant.sandbox_namespace
    secret = world.kube.call(world.client.get(SECRETS, f"{name}-credentials", world.namespace))
    world.kube.call(
        world.client.create(
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-credentials", "namespace": sandbox_ns},
                "data": secret["data"],
            },
            sandbox_ns,
        )
    )
    account_id = _account(world, sandbox_ns, name, {**live["spec"], "sandbox": False})
    sandbox = _world_in(world, sandbox_ns, account_id)
    post = KubeDriver(sandbox).create_post(body="Published for real?", account_ids=[account_id])
    sandbox.wait_settled(post)
    status = sandbox.targets(post)[account_id]["status"]
    assert status["state"] == "published"
    assert status["externalPostId"].startswith("sandbox-")  # simulated
    assert world.fakes.facebook.posts == []  # nothing reached the platform


def test_a_live_account_with_sandbox_true_is_not_simulated(world: LiveWorld) -> None:
    account_id = _account(
        world,
        world.namespace,
        "account-90",
        {"platform": LI.value, "displayName": "Claims sandbox", "externalId": "5515715", "sandbox": True},
    )
    live = _world_in(world, world.namespace, account_id)
    post = KubeDriver(live).create_post(body="Simulated?", account_ids=[account_id])
    status = wait_for(
        lambda: (s := live.targets(post).get(account_id, {}).get("status") or {}).get("lastError") and s,
        timeout=15,
        what="the target's outcome",
    )
    assert status["state"] != "published"
    assert not str(status.get("externalPostId") or "").startswith("sandbox-")
    assert status["lastError"]["code"] == "credentials_missing"  # it is live: it needs a token
    assert world.fakes.linkedin.posts == []


def test_an_account_outside_every_tenant_namespace_publishes_nothing(world: LiveWorld) -> None:
    stray = f"stray-{int(time.time() * 1000) % 10_000_000}"
    # Labels claiming to be the tenant's sandbox do not make it one.
    world.kube.call(
        ensure_namespace(world.client, stray, {LABEL_TENANT: world.tenant.name, LABEL_MODE: "test"})
    )
    account_id = _account(
        world,
        stray,
        "account-1",
        {"platform": LI.value, "displayName": "Stray", "externalId": "5515715", "sandbox": True},
    )
    other = _world_in(world, stray, account_id)
    post = KubeDriver(other).create_post(body="From nowhere", account_ids=[account_id])
    # Not a failure but a wait (nothing dead-lettered, no attempt spent) until a tenant names it.
    status = wait_for(
        lambda: (s := other.targets(post)[account_id].get("status") or {}).get("lastError") and s,
        what="the target to say why it waits",
    )
    assert status["state"] == "pending"
    assert status["attempts"] == 0
    assert status["lastError"]["code"] == "namespace_not_owned"
    assert f"namespace {stray} is not the live or the sandbox namespace" in status["lastError"]["message"]
    assert "externalPostId" not in status or not status["externalPostId"]
    assert other.status(post)["phase"] == "publishing"
