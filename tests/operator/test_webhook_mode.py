"""Live or sandbox rules for a webhook endpoint come from the tenants (the same decision as for
publishing), never from a namespace label the namespace's writers may set: a live namespace
labelled ``mode: test`` still refuses an ``http://`` endpoint."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from socialpub._cli_webhooks import add_endpoint
from socialpub.kube.accounts import create_sandbox_account
from socialpub.kube.client import KubeClient
from socialpub.kube.resources import ACCOUNTS, LABEL_MODE, NAMESPACES, WEBHOOK_DELIVERIES
from socialpub.kube.tenants import ensure_tenant
from socialpub.models.keys import Mode
from socialpub.models.platforms import Platform
from socialpub.operator.settings import OperatorSettings
from socialpub.operator.webhooks import WebhookDispatcher
from tests.kube_harness import KubeHarness
from tests.operator.scenarios import until
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.close()


def test_a_live_namespace_labelled_test_still_gets_the_live_url_rules(
    kube: KubeHarness, receiver: Receiver
) -> None:
    async def run() -> dict[str, Any]:
        client = KubeClient.from_config(str(kube.kubeconfig))
        settings = dataclasses.replace(
            OperatorSettings(), webhook_allow_loopback=True, webhook_retry_base_seconds=0.01
        )
        dispatcher = WebhookDispatcher(client, settings)
        try:
            tenant = await ensure_tenant(client, "labelled")
            live = tenant.live_namespace
            # Whoever may write the namespace relabels it as a sandbox.
            await client.patch(NAMESPACES, live, {"metadata": {"labels": {LABEL_MODE: "test"}}})
            url = f"http://127.0.0.1:{receiver.port}/labelled"
            await add_endpoint(client, tenant, mode=Mode.LIVE, url=url, events=[])
            await dispatcher.start()
            # An account event in the live namespace (its body as the watch would deliver it).
            account = await create_sandbox_account(
                client, tenant=tenant, platform=Platform.FACEBOOK, display_name="L"
            )
            moved = {**account, "metadata": {**account["metadata"], "namespace": live}}
            dispatcher.observe(ACCOUNTS.plural, "ADDED", moved)

            async def settled() -> dict[str, Any] | None:
                items, _ = await client.list(WEBHOOK_DELIVERIES, live)
                done = [d for d in items if (d.get("status") or {}).get("state") in ("failed", "delivered")]
                return done[0] if done else None

            record: dict[str, Any] = await until(settled, timeout=10.0)
            return record
        finally:
            await dispatcher.stop()
            await client.aclose()

    record = kube.call(run())
    assert record["status"]["state"] == "failed"
    assert "https_required" in str(record["status"].get("lastError"))
    assert receiver.received("labelled") == []
