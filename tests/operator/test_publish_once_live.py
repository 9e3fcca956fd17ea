"""The same guarantees counted on the platforms themselves: live accounts, the contract fakes,
the real operator process(es). Each account receives each post exactly once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from socialpub.kube.client import KubeClient
from socialpub.kube.targets import target_manifest
from socialpub.models.platforms import Platform
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes, fakes, fakes_session
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import wait_for
from tests.platforms.live import LiveWorld, driver, operator_env

__all__ = ["fakes", "fakes_session"]  # the fixtures, for this module


def stored(fakes: Fakes) -> dict[Platform, list[dict]]:
    """What each platform holds: LinkedIn posts, Facebook posts, Instagram media."""
    return {
        Platform.LINKEDIN: list(fakes.linkedin.posts),
        Platform.FACEBOOK: list(fakes.facebook.posts),
        Platform.INSTAGRAM: list(fakes.instagram.media),
    }


@pytest.fixture
def client(kube: KubeHarness) -> Iterator[KubeClient]:
    client = KubeClient.from_config(str(kube.kubeconfig))
    yield client
    kube.call(client.aclose())


@pytest.mark.usefixtures("needs_kubectl")
def test_a_reverted_released_post_with_recreated_targets_reaches_each_account_once(
    kube: KubeHarness, client: KubeClient, fakes: Fakes, tmp_path: Path
) -> None:
    operator = OperatorProcess(kube.kubeconfig, tmp_path / "operator.log", **operator_env(fakes)).start()
    try:
        world = LiveWorld.create_live(kube, client, fakes)
        media = [{"url": fakes.media.jpeg("photo"), "alt": "a photo"}]
        name = driver(world).create_post(body="Launch day", account_ids=world.account_ids, media=media)
        assert world.wait_settled(name, timeout=30)["status"]["phase"] == "published"
        assert {p: len(posts) for p, posts in stored(fakes).items()} == dict.fromkeys(Platform, 1)

        # GitOps revert to a draft with other texts; every released target deleted and re-applied.
        targets = [{"accountId": a, "overrideBody": "Launch day, again"} for a in world.account_ids]
        patch = json.dumps({"spec": {"draft": True, "targets": targets}})
        kube.kubectl("patch", "socialpost", name, "-n", world.namespace, "--type=merge", "-p", patch)
        post = world.post(name)
        assert post is not None
        for account_id in world.account_ids:
            kube.kubectl("delete", "socialtarget", f"{name}-{account_id}", "-n", world.namespace)
            manifest = target_manifest(post, account_id, "Launch day, again")
            kube.kubectl("apply", "-n", world.namespace, "-f", "-", input=json.dumps(manifest))

        def reported() -> bool:
            conditions = (world.post(name) or {}).get("status", {}).get("conditions", [])
            message = next((c["message"] for c in conditions if c["type"] == "SpecApplied"), "")
            return "created after publishing began are never published" in message

        wait_for(reported, timeout=15, what="the recreated targets to be reported")
        time.sleep(2.0)  # ample for the fakes (milliseconds) had anything been sent
        assert {p: len(posts) for p, posts in stored(fakes).items()} == dict.fromkeys(Platform, 1)
        assert all(not (t.get("status") or {}).get("state") for t in world.targets(name).values())
        assert "ChangeRefused" in world.reasons(name)
    finally:
        operator.stop()


def test_two_operators_one_killed_right_after_the_platform_committed_publish_once(
    kube: KubeHarness, client: KubeClient, fakes: Fakes, tmp_path: Path
) -> None:
    env = operator_env(fakes)
    first = OperatorProcess(
        kube.kubeconfig, tmp_path / "first.log", SOCIALPUB_OPERATOR_IDENTITY="op-1", **env
    )
    second = OperatorProcess(
        kube.kubeconfig, tmp_path / "second.log", SOCIALPUB_OPERATOR_IDENTITY="op-2", **env
    )
    try:
        first.start()
        offset = second.launch()
        wait_for(lambda: "is held by op-1" in second.log(offset), what="the second operator to wait")
        world = LiveWorld.create_live(kube, client, fakes)
        killed: list[int] = []
        fault = Fault(kind="commit_hang", delay=30, on_commit=lambda: killed.append(first.kill()))
        fakes.linkedin.inject("POST", "^/rest/posts$", fault)
        name = driver(world).create_post(
            body="Two operators, one post", account_ids=[world.accounts[Platform.LINKEDIN]]
        )

        wait_for(lambda: killed, timeout=20, what="the first operator to be killed after the commit")
        assert "start_engine" not in second.log(offset)  # it waited meanwhile, doing nothing
        status = world.target_status(name, Platform.LINKEDIN)
        assert (status["state"], status["claimedBy"]) == ("publishing", "op-1")
        second.wait_ready(offset, timeout=30)

        assert world.wait_settled(name, timeout=30)["status"]["phase"] == "published"
        [post] = fakes.linkedin.posts
        status = world.target_status(name, Platform.LINKEDIN)
        assert status["externalPostId"] == post["id"]
        assert status["attempts"] == 1
    finally:
        first.stop()
        second.stop()
