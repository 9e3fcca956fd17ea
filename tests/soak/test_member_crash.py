"""What the soak found on LinkedIn member accounts, made deterministic: the operator SIGKILLed the
moment LinkedIn stored a member's post. A member's posts cannot be listed, so the restarted
operator cannot know whether the attempt landed; it must record the target ``unknown`` (a person
looks), never re-send it (LinkedIn then answers DUPLICATE_POST and the live post is dead-lettered,
or, where LinkedIn accepts duplicates, it appears twice).

In the default suite (a few seconds of real operator time): the regression test of what the
soak found; see docs/soak.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from socialpub.kube.client import KubeClient
from socialpub.kube.resources import TARGETS
from socialpub.kube.tenants import ensure_tenant
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import KubeDriver, wait_for
from tests.platforms.live import KEY_RING, LiveWorld, operator_env
from tests.soak.audit import TERMINAL
from tests.soak.live_accounts import add_accounts
from tests.soak.plan import MEMBER


def test_member_post_stored_then_operator_killed_is_unknown_never_resent(
    kube: KubeHarness, fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KEY_RING.to_json())
    client = KubeClient.from_config(str(kube.kubeconfig))
    operator = OperatorProcess(
        kube.kubeconfig, tmp_path / "operator.log", **operator_env(fakes, SOCIALPUB_CLAIM_SETTLE_SECONDS="1")
    )
    try:
        world = LiveWorld(kube, client, kube.call(ensure_tenant(client, "member")))
        [account_id] = add_accounts(kube, fakes, "member", [MEMBER], tmp_path)
        operator.start()
        at_commit: list[dict[str, Any]] = []

        def kill_at_commit() -> None:
            items, _ = kube.call(client.list(TARGETS, world.namespace))
            operator.kill()
            at_commit.append(dict(items[0].get("status") or {}))  # after the kill: the test waits on it

        fault = Fault(kind="commit_hang", delay=30, on_commit=kill_at_commit)
        fakes.linkedin.inject("POST", "^/rest/posts$", fault)
        name = KubeDriver(world).create_post(
            body="Posted as myself, then the lights went out", account_ids=[account_id]
        )
        wait_for(
            lambda: at_commit, timeout=30, what="the operator to be killed after LinkedIn stored the post"
        )
        operator.start()

        def terminal() -> dict[str, Any] | None:
            status = world.targets(name)[account_id].get("status") or {}
            return status if status.get("state") in TERMINAL else None

        status = wait_for(terminal, timeout=60, what="the member target to settle")
    finally:
        operator.stop()
        kube.call(client.aclose())
    assert len(fakes.linkedin.posts) == 1, "LinkedIn stored the post once"
    assert len(fakes.linkedin.seen("POST", "^/rest/posts$")) == 1, (
        f"the create was sent again; at the moment LinkedIn stored the post the target's "
        f"platformState was {at_commit[0].get('platformState')!r}"
    )
    assert status["state"] == "unknown", status
