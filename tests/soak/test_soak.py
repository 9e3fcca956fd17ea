"""The soak: a burst of posts to several live accounts on every platform, answers dropped after
the platform committed, 503s, and the real operator SIGKILLed at random moments and restarted;
at the end every post is on every platform it targets exactly once, under the id its target says.

Marked ``slow``: the default suite deselects it. Run it with
``.venv/bin/pytest tests/soak -m slow`` (see docs/soak.md for the knobs and the timings).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from socialpub.kube.client import KubeClient
from socialpub.kube.resources import EVENTS, TARGETS
from socialpub.kube.tenants import ensure_tenant
from tests.fakes.fixtures import Fakes
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import KubeDriver
from tests.platforms.live import KEY_RING, LiveWorld, operator_env
from tests.soak.audit import RESULTS, TERMINAL, Summary, audit
from tests.soak.chaos import READY_TIMEOUT, Killer
from tests.soak.live_accounts import add_accounts
from tests.soak.plan import (
    FaultPlan,
    PlannedPost,
    SoakConfig,
    kill_points,
    plan_posts,
    seeds_from_env,
    soak_accounts,
)

pytestmark = pytest.mark.slow


def claim_lease_env(config: SoakConfig) -> dict[str, str]:
    """Bounds for the claim an interrupted attempt waits out, sized for the fakes.

    A claim stands for the adapter's worst-case call plus a settle margin before a restarted
    operator may resolve it: tens of minutes with production's timeouts. ``operator_env`` caps
    the call at 8 s (``SOCIALPUB_LIVE_CALL_MAX_SECONDS``); the fakes list a post ``listing_lag``
    seconds after storing it, so that plus 1 s is the margin, and the lookups may read every page
    of the burst.
    """
    return {
        "SOCIALPUB_PLATFORM_TIMEOUT_SECONDS": "2",
        "SOCIALPUB_LOOKUP_MAX_PAGES": str(config.posts // 100 + 2),
        "SOCIALPUB_CLAIM_SETTLE_SECONDS": str(config.listing_lag + 1),
    }


def keep_evidence(
    seed: int,
    world: LiveWorld,
    targets: list[dict[str, Any]],
    fakes: Fakes,
    plan: FaultPlan,
    operator: OperatorProcess,
) -> Path:
    """What a failing seed leaves behind to be read: every target, what each platform stores, every
    create call with its fault, the Events, the kills and the operator's log. Outside pytest's own temporary
    directories, which other pytest runs on the machine rotate away."""
    root = os.environ.get("SOCIALPUB_SOAK_EVIDENCE") or tempfile.gettempdir()
    directory = Path(tempfile.mkdtemp(prefix=f"socialpub-soak-seed{seed}-", dir=root))
    shutil.copy(operator.log_path, directory / "operator.log")
    stored = {
        "linkedin": list(fakes.linkedin.posts),
        "facebook": list(fakes.facebook.posts),
        "instagram": list(fakes.instagram.media),
    }
    for name, data in (
        ("targets", targets),
        ("platforms", stored),
        ("creates", plan.log),
        ("events", world.kube.call(world.client.list(EVENTS, world.namespace), timeout=60)[0]),
    ):
        (directory / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
    return directory


def all_targets(world: LiveWorld) -> list[dict[str, Any]]:
    items, _ = world.kube.call(world.client.list(TARGETS, world.namespace), timeout=60)
    return list(items)


def settled(world: LiveWorld, expected: int) -> bool:
    targets = all_targets(world)
    return len(targets) == expected and all((t.get("status") or {}).get("state") in TERMINAL for t in targets)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("seed", seeds_from_env())
def test_every_post_on_every_platform_exactly_once(
    seed: int, kube: KubeHarness, fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SoakConfig.from_env()
    began = time.monotonic()
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KEY_RING.to_json())
    # Instagram's real limit is 100 publishes a day per account; the soak bursts past it on purpose
    # and tests exactly-once, not the quota deferral (tests/platforms covers that).
    fakes.instagram.quota_total = 1_000_000
    client = KubeClient.from_config(str(kube.kubeconfig))
    tenant = f"soak{seed}"
    world = LiveWorld(kube, client, kube.call(ensure_tenant(client, tenant)))
    accounts = add_accounts(kube, fakes, tenant, soak_accounts(config), tmp_path)
    ids = {account: account_id for account_id, account in accounts.items()}
    planned = plan_posts(seed, config, list(accounts.values()))
    expected_targets = sum(len(p.accounts) for p in planned)
    summary = Summary(seed=seed, posts=len(planned), scheduled=sum(p.scheduled for p in planned))
    plan = FaultPlan(seed, config)
    operator = OperatorProcess(
        kube.kubeconfig,
        tmp_path / "operator.log",
        **operator_env(fakes, **claim_lease_env(config)),
    )
    killer = Killer(
        operator,
        plan.create_count,
        kill_points(seed, config, expected_targets),
        patience=config.settle_seconds,
    )
    posts: dict[str, PlannedPost] = {}
    try:
        with plan.installed(fakes):
            operator.start(timeout=READY_TIMEOUT)
            burst_at = time.time() + config.lead_seconds
            killer.start()
            driver = KubeDriver(world)
            for post in planned:
                media = [{"url": fakes.media.jpeg(post.image), "alt": post.image}] if post.image else []
                name = driver.create_post(
                    body=post.text,
                    account_ids=[ids[a] for a in post.accounts],
                    media=media,
                    scheduled_for=burst_at if post.scheduled else None,
                )
                posts[name] = post
            summary.late = sum(1 for p in planned if p.scheduled) if time.time() > burst_at else 0
            while not killer.done:
                time.sleep(0.5)
            assert killer.error is None, f"the operator did not come back: {killer.error}"
            deadline = time.monotonic() + config.settle_seconds
            while not settled(world, expected_targets) and time.monotonic() < deadline:
                time.sleep(1.0)
            operator.stop(timeout=60)
        targets = all_targets(world)
        summary.kills = killer.kills
        summary.operator_problems = len(operator.problems())
        audit(summary, fakes, plan, posts, accounts, targets)
    finally:
        killer.stop()
        operator.stop(timeout=60)
        kube.call(client.aclose())
        summary.seconds = time.monotonic() - began
        RESULTS.append(summary)
    keep = not summary.clean or os.environ.get("SOCIALPUB_SOAK_KEEP_EVIDENCE", "") not in ("", "0")
    evidence = str(keep_evidence(seed, world, targets, fakes, plan, operator)) if keep else ""
    summary.evidence = evidence
    report = os.environ.get("SOCIALPUB_SOAK_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(summary.to_json() + "\n")
    assert summary.clean, (
        f"{summary.line()}\nevidence in {evidence}\n{len(summary.problems)} problem(s):\n"
        + "\n".join(summary.problems[:40])
        + f"\n----- operator log (tail) -----\n{operator.log()[-5000:]}"
    )
