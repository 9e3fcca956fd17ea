"""What the soak found after the claim leases of issue 9, made deterministic: the operator
SIGKILLed after it claimed a target (``publishing``) but before it sent the create. Once the
claim's lease has passed, the restarted operator must ask the platform, find nothing and publish
the post once.

In the default suite (a few seconds of real operator time): the regression test of what the
soak found; see docs/soak.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from socialpub.kube.client import KubeClient
from socialpub.kube.tenants import ensure_tenant
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import KubeDriver, wait_for
from tests.platforms.live import KEY_RING, LiveWorld, operator_env
from tests.soak.audit import TERMINAL
from tests.soak.live_accounts import add_accounts
from tests.soak.plan import ORGANIZATIONS


def test_target_claimed_then_operator_killed_before_the_create_is_published_once(
    kube: KubeHarness, fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KEY_RING.to_json())
    client = KubeClient.from_config(str(kube.kubeconfig))
    operator = OperatorProcess(
        kube.kubeconfig, tmp_path / "operator.log", **operator_env(fakes, SOCIALPUB_CLAIM_SETTLE_SECONDS="1")
    )
    organization = ORGANIZATIONS[0]
    try:
        world = LiveWorld(kube, client, kube.call(ensure_tenant(client, "claim")))
        [account_id] = add_accounts(kube, fakes, "claim", [organization], tmp_path)
        operator.start()
        killed: list[int] = []
        # The image upload is answered, then the operator dies: claimed, nothing created yet.
        fault = Fault(kind="then", on_commit=lambda: killed.append(operator.kill()))
        fakes.linkedin.inject("POST", "^/rest/images$", fault)
        name = KubeDriver(world).create_post(
            body="Claimed, then the lights went out",
            account_ids=[account_id],
            media=[{"url": fakes.media.jpeg("claim"), "alt": "claim"}],
        )
        wait_for(lambda: killed, timeout=30, what="the operator to be killed after its claim")
        claimed = world.targets(name)[account_id]["status"]
        operator.start()
        restarted = time.monotonic()

        def terminal() -> dict[str, Any] | None:
            status = world.targets(name)[account_id].get("status") or {}
            return status if status.get("state") in TERMINAL else None

        try:
            status = wait_for(terminal, timeout=60, what="the claimed target to settle")
        except AssertionError as exc:
            now = world.targets(name)[account_id].get("status")
            lookups = len(fakes.linkedin.seen("GET", "^/rest/posts$"))
            raise AssertionError(
                f"{exc}\nclaimed: {claimed}\nnow: {now}\n{lookups} lookups, "
                f"{len(fakes.linkedin.seen('POST', '^/rest/posts$'))} creates"
            ) from None
        settled_in = time.monotonic() - restarted
        lookups = len(fakes.linkedin.seen("GET", "^/rest/posts$"))
    finally:
        operator.stop()
        kube.call(client.aclose())
    assert claimed["state"] == "publishing"
    assert fakes.linkedin.seen("POST", "^/rest/posts$") != [], "published in the end"
    [post] = fakes.linkedin.posts
    assert (status["state"], status["externalPostId"]) == ("published", post["id"]), status
    assert lookups <= 5, f"{lookups} lookups to resolve one claim in {settled_in:.1f}s"
