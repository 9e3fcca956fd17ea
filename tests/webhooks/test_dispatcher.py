"""The dispatcher in this process (no kopf): connections pinned to the checked address."""

from __future__ import annotations

import dataclasses

from socialpub._cli_webhooks import add_endpoint
from socialpub.kube.accounts import create_sandbox_account
from socialpub.kube.client import KubeClient
from socialpub.kube.resources import ACCOUNTS, WEBHOOK_DELIVERIES, WEBHOOK_ENDPOINTS
from socialpub.kube.tenants import ensure_tenant
from socialpub.models.keys import Mode
from socialpub.models.platforms import Platform
from socialpub.operator.settings import OperatorSettings
from socialpub.operator.webhooks import WebhookDispatcher
from tests.kube_harness import KubeHarness
from tests.operator.scenarios import until
from tests.webhooks.receiver import Receiver


async def test_a_hostname_is_pinned_to_the_address_that_was_checked(
    kube: KubeHarness, receiver: Receiver
) -> None:
    client = KubeClient.from_config(str(kube.kubeconfig))
    answers = {"hooks.pinned.test": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    settings = dataclasses.replace(
        OperatorSettings(), webhook_allow_loopback=True, webhook_retry_base_seconds=0.01
    )
    dispatcher = WebhookDispatcher(client, settings, resolver=resolver)
    try:
        tenant = await ensure_tenant(client, "pinned")
        ns = tenant.sandbox_namespace
        url = f"http://hooks.pinned.test:{receiver.port}/pinned"
        ep, secret = await add_endpoint(client, tenant, mode=Mode.TEST, url=url, events=[])
        await dispatcher.start()
        account = await create_sandbox_account(
            client, tenant=tenant, platform=Platform.FACEBOOK, display_name="P"
        )
        dispatcher.observe(ACCOUNTS.plural, "ADDED", account)

        async def arrived() -> bool:
            return bool(receiver.received("pinned", ok=True))

        await until(arrived, timeout=10.0)
        (got,) = receiver.received("pinned")
        assert got.headers["host"] == f"hooks.pinned.test:{receiver.port}"
        got.verify(secret)

        # The name now resolves inside the network (rebinding): refused, nothing is sent.
        answers["hooks.pinned.test"] = ["10.0.0.7"]
        second = await create_sandbox_account(
            client, tenant=tenant, platform=Platform.LINKEDIN, display_name="Q"
        )
        dispatcher.observe(ACCOUNTS.plural, "ADDED", second)

        async def refused() -> dict[str, object] | None:
            items, _ = await client.list(WEBHOOK_DELIVERIES, ns)
            failed = [d for d in items if (d.get("status") or {}).get("state") == "failed"]
            return failed[0] if failed else None

        record = await until(refused, timeout=10.0)
        assert "private_address" in record["status"]["lastError"]  # type: ignore[index]
        assert len(receiver.received("pinned")) == 1

        async def condition() -> dict[str, object] | None:
            obj = await client.get(WEBHOOK_ENDPOINTS, ep["metadata"]["name"], ns)
            ready = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
            return ready[0] if ready and ready[0]["reason"] == "URLRefused" else None

        assert "10.0.0.7" in str((await until(condition, timeout=10.0))["message"])
    finally:
        await dispatcher.stop()
        await client.aclose()
