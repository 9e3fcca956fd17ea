"""The real operator publishing live accounts to the fakes: outcome classes as target status,
accounts that need a reconnect, quota deferral, and crash safety (commit-then-drop, SIGKILL).

Posts are written to the Kubernetes API the way the REST api writes them (tests/operator's
KubeDriver); tests/platforms/test_end_to_end.py goes through the REST api itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from socialpub.kube.client import KubeClient
from socialpub.models.platforms import Platform
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes
from tests.fakes.graph import graph_error_body
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import wait_for
from tests.platforms.live import LiveWorld, driver, operator_env

LI, FB, IG = Platform.LINKEDIN, Platform.FACEBOOK, Platform.INSTAGRAM


@pytest.fixture
def world(
    shared_kube: KubeHarness, shared_client: KubeClient, fakes: Fakes, live_operator: OperatorProcess
) -> Iterator[LiveWorld]:
    offset = live_operator.log_size()
    world = LiveWorld.create_live(shared_kube, shared_client, fakes)
    yield world
    log = live_operator.log(offset)
    problems = [line for line in log.splitlines() if line.startswith(("Traceback", "CRITICAL:", "ERROR:"))]
    assert not problems, f"the operator logged problems:\n{log[-20000:]}"
    for token in world.tokens.values():
        assert token not in log, "a token reached the operator's log"


def jpeg(world: LiveWorld, name: str = "photo") -> dict[str, str]:
    return {"url": world.fakes.media.jpeg(name), "alt": f"alt of {name}"}


def test_published_on_all_three_with_the_platform_ids(world: LiveWorld) -> None:
    name = driver(world).create_post(
        body="Launch (beta) today! #launch", account_ids=world.account_ids, media=[jpeg(world)]
    )
    post = world.wait_settled(name)
    assert post["status"]["phase"] == "published"

    li = world.target_status(name, LI)
    [li_post] = world.fakes.linkedin.posts
    assert li["externalPostId"] == li_post["id"]
    assert li_post["visible"] == "Launch (beta) today! #launch"
    assert li["externalUrl"] == f"https://www.linkedin.com/feed/update/{li_post['id']}/"
    fb = world.target_status(name, FB)
    [fb_post] = world.fakes.facebook.posts
    assert fb["externalPostId"] == fb_post["id"]
    ig = world.target_status(name, IG)
    [ig_media] = world.fakes.instagram.media
    assert ig["externalPostId"] == ig_media["id"]
    assert ig["externalUrl"] == ig_media["permalink"]
    assert ig["platformState"]["containerId"] == ig_media["container"]
    assert all(world.target_status(name, p)["attempts"] == 1 for p in Platform)


def test_transient_failure_is_retried(world: LiveWorld) -> None:
    world.fakes.linkedin.inject(
        "POST", "^/rest/posts$", Fault(status=503, body={"status": 503, "message": "x"})
    )
    name = driver(world).create_post(body="Retry me", account_ids=[world.accounts[LI]])
    world.wait_settled(name)
    status = world.target_status(name, LI)
    assert status["state"] == "published"
    assert status["attempts"] == 2
    assert len(world.fakes.linkedin.posts) == 1
    assert "unconfirmedSince" in status["platformState"]


def test_permanent_failure_is_dead_at_once(world: LiveWorld) -> None:
    body = graph_error_body(100, "(#100) Invalid parameter", subcode=33)
    world.fakes.facebook.inject("POST", "/feed$", Fault(status=400, body=body))
    name = driver(world).create_post(body="Refused", account_ids=[world.accounts[FB]])
    post = world.wait_settled(name)
    assert post["status"]["phase"] == "failed"
    status = world.target_status(name, FB)
    assert status["state"] == "dead"
    assert status["attempts"] == 1
    assert status["lastError"]["class"] == "permanent"
    assert status["lastError"]["code"] == "facebook_invalid_request"
    assert world.fakes.facebook.posts == []


def test_revoked_token_parks_the_targets_until_the_account_is_reconnected(world: LiveWorld) -> None:
    world.fakes.linkedin.revoke(world.tokens[LI])
    first = driver(world).create_post(body="Waits for the account", account_ids=[world.accounts[LI]])

    status = world.wait_target(first, LI, lambda s: (s.get("lastError") or {}).get("class") == "reconnect")
    assert status["state"] == "failed"
    assert status["attempts"] == 0, "waiting for a reconnect spends no attempt"
    assert status.get("nextAttemptAt") is None
    account = world.account(LI)["status"]
    assert account["state"] == "revoked"
    ready = next(c for c in account["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TokenRevoked")
    assert [e["type"] for e in account["lifecycleEvents"]][-1] == "social.account_disconnected"
    # A second post to the revoked account waits too, without calling LinkedIn.
    calls = len(world.fakes.linkedin.requests)
    second = driver(world).create_post(body="Also waits", account_ids=[world.accounts[LI]])
    world.wait_target(second, LI, lambda s: (s.get("lastError") or {}).get("code") == "account_revoked")
    assert len(world.fakes.linkedin.requests) == calls

    world.reconnect(LI, "a-fresh-token")
    for name in (first, second):
        world.wait_settled(name)
        status = world.target_status(name, LI)
        assert (status["state"], status["attempts"]) == ("published", 1)
    assert len(world.fakes.linkedin.posts) == 2
    assert world.account(LI)["status"]["state"] == "active"


def test_expired_token_marks_the_account_expired(world: LiveWorld) -> None:
    world.fakes.instagram.expire(world.tokens[IG])
    name = driver(world).create_post(body="Expired", account_ids=[world.accounts[IG]], media=[jpeg(world)])
    world.wait_target(name, IG, lambda s: (s.get("lastError") or {}).get("class") == "reconnect")
    assert world.account(IG)["status"]["state"] == "expired"


def test_quota_used_up_defers_without_spending_attempts(world: LiveWorld) -> None:
    world.fakes.instagram.quota_total = 0
    name = driver(world).create_post(body="Over quota", account_ids=[world.accounts[IG]], media=[jpeg(world)])
    status = world.wait_target(
        name, IG, lambda s: (s.get("lastError") or {}).get("code") == "instagram_quota_exhausted"
    )
    assert status["state"] == "failed"
    assert status["attempts"] == 0
    wait_for(
        lambda: len(world.fakes.instagram.seen("GET", "/content_publishing_limit$")) >= 3, what="re-checks"
    )
    assert world.target_status(name, IG)["attempts"] == 0, "deferrals never count"
    world.fakes.instagram.quota_total = 100
    world.wait_settled(name)
    status = world.target_status(name, IG)
    assert (status["state"], status["attempts"]) == ("published", 1)
    assert len(world.fakes.instagram.containers) == 1, "the finished container waited for the quota"


CREATE_CALLS = {
    LI: ("linkedin", "POST", "^/rest/posts$"),
    FB: ("facebook", "POST", "/feed$"),
    IG: ("instagram", "POST", "/media_publish$"),
}


def _stored(fakes: Fakes, platform: Platform) -> list[dict]:
    return {LI: fakes.linkedin.posts, FB: fakes.facebook.posts, IG: fakes.instagram.media}[platform]


def test_commit_then_drop_publishes_exactly_once_on_every_platform(world: LiveWorld) -> None:
    for fake, method, path in CREATE_CALLS.values():
        getattr(world.fakes, fake).inject(method, path, Fault(kind="commit_drop"))
    name = driver(world).create_post(
        body="Exactly once", account_ids=world.account_ids, media=[jpeg(world), jpeg(world, "b")]
    )
    post = world.wait_settled(name)
    assert post["status"]["phase"] == "published"
    for platform in Platform:
        [stored] = _stored(world.fakes, platform)
        status = world.target_status(name, platform)
        assert status["externalPostId"] == stored["id"], platform
        assert status["attempts"] == 2, platform


@pytest.mark.parametrize("platform", list(Platform), ids=lambda p: p.value)
def test_operator_killed_right_after_the_platform_committed(
    kube: KubeHarness, fakes: Fakes, tmp_path: Path, platform: Platform
) -> None:
    """SIGKILL the operator the moment the platform stores the post; the restarted operator finds
    the target ``publishing``, asks the platform, and records the post it finds: one post, the
    right id, one attempt."""
    client = KubeClient.from_config(str(kube.kubeconfig))
    operator = OperatorProcess(kube.kubeconfig, tmp_path / "operator.log", **operator_env(fakes))
    try:
        operator.start()
        world = LiveWorld.create_live(kube, client, fakes)
        fake, method, path = CREATE_CALLS[platform]
        if platform is FB:
            path = "/photos$"  # one image: a published photo is the create call
        killed: list[int] = []
        fault = Fault(kind="commit_hang", delay=30, on_commit=lambda: killed.append(operator.kill()))
        getattr(fakes, fake).inject(method, path, fault)
        name = driver(world).create_post(
            body=f"Killed mid-call on {platform.value}",
            account_ids=[world.accounts[platform]],
            media=[jpeg(world)],
        )

        wait_for(lambda: killed, timeout=20, what="the operator to be killed after the commit")
        assert world.target_status(name, platform)["state"] == "publishing"
        operator.start()
        world.wait_settled(name, timeout=20)
        [stored] = _stored(fakes, platform)
        status = world.target_status(name, platform)
        assert status["state"] == "published"
        assert status["externalPostId"] == stored["id"]
        assert status["attempts"] == 1
        assert "resolved after an interruption" in " ".join(e.get("message", "") for e in world.events(name))
    finally:
        operator.stop()
        kube.call(client.aclose())
