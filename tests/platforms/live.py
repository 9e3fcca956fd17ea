"""Live accounts on an embedded Kubernetes API, published by the real operator to the fakes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from socialpub.crypto import KeyRing, associated_data
from socialpub.kube.client import KubeClient
from socialpub.kube.credentials import account_connected_status, create_live_account, write_token
from socialpub.kube.resources import ACCOUNTS, LABEL_ID
from socialpub.kube.tenants import ensure_tenant
from socialpub.models.platforms import Platform
from tests.fakes.fixtures import Fakes
from tests.kube_harness import KubeHarness
from tests.operator.scenarios import KubeDriver, World, wait_for

KEY_RING = KeyRing.generate("k1")
EXTERNAL_IDS = {
    Platform.LINKEDIN: "5515715",
    Platform.FACEBOOK: "104857600123",
    Platform.INSTAGRAM: "17841400000000001",
}
_tenants = itertools.count(1)


def binding(account: dict[str, Any]) -> bytes:
    """A live account's token binding (its namespace, uid and mode), as the CLI seals it."""
    meta = account["metadata"]
    return associated_data(namespace=meta["namespace"], uid=meta["uid"], mode="live")


def operator_env(fakes: Fakes, **extra: str) -> dict[str, str]:
    return {
        **fakes.env(),
        "SOCIALPUB_ENCRYPTION_KEY": KEY_RING.to_json(),
        "SOCIALPUB_RETRY_BASE_SECONDS": "0.05",
        "SOCIALPUB_INSTAGRAM_QUOTA_RETRY_SECONDS": "0.5",
        # A claim's lease covers the adapters' worst case (minutes with real timeouts): the fakes
        # answer in milliseconds, so an interrupted attempt is checked after 8 s, not an hour.
        "SOCIALPUB_LIVE_CALL_MAX_SECONDS": "8",
        **extra,
    }


class LiveWorld(World):
    """A tenant's *live* namespace with one live account per platform, tokens granted by the fakes."""

    fakes: Fakes
    tokens: dict[Platform, str]

    @property
    def namespace(self) -> str:
        return self.tenant.live_namespace

    @classmethod
    def create_live(cls, kube: KubeHarness, client: KubeClient, fakes: Fakes) -> LiveWorld:
        name = f"live{next(_tenants)}-{int(time.time() * 1000) % 100000}"

        async def setup() -> LiveWorld:
            tenant = await ensure_tenant(client, name)
            world = cls(kube, client, tenant)
            world.fakes = fakes
            world.tokens = {}
            for platform in Platform:
                token = f"{name}-{platform.value}-token"
                world.tokens[platform] = token
                getattr(fakes, platform.value).grant(token)
                account = await create_live_account(
                    client,
                    tenant=tenant,
                    platform=platform,
                    external_id=EXTERNAL_IDS[platform],
                    display_name=f"{name} {platform.value}",
                    seal=lambda account, t=token: KEY_RING.encrypt(t.encode(), binding(account)),
                )
                world.accounts[platform] = int(account["metadata"]["labels"][LABEL_ID])
            return world

        world: LiveWorld = kube.call(setup())
        return world

    def account(self, platform: Platform) -> dict[str, Any]:
        obj: dict[str, Any] = self.kube.call(
            self.client.get(ACCOUNTS, f"account-{self.accounts[platform]}", self.namespace)
        )
        return obj

    def reconnect(self, platform: Platform, token: str) -> None:
        """What ``socialpub accounts set-token`` does: a new sealed token, the account active again."""
        getattr(self.fakes, platform.value).grant(token)

        async def run() -> None:
            account = await self.client.get(ACCOUNTS, f"account-{self.accounts[platform]}", self.namespace)
            name = account["metadata"]["name"]
            sealed = KEY_RING.encrypt(token.encode(), binding(account))
            await write_token(self.client, account, sealed)
            status = account_connected_status(account, message="reconnected")
            await self.client.patch(ACCOUNTS, name, {"status": status}, self.namespace, subresource="status")

        self.kube.call(run())

    def target(self, name: str, platform: Platform) -> dict[str, Any]:
        return self.targets(name)[self.accounts[platform]]

    def target_status(self, name: str, platform: Platform) -> dict[str, Any]:
        return self.target(name, platform).get("status") or {}

    def wait_target(
        self, name: str, platform: Platform, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15
    ) -> dict[str, Any]:
        status: dict[str, Any] = wait_for(
            lambda: (s := self.target_status(name, platform)) and predicate(s) and s,
            timeout=timeout,
            what=f"the {platform.value} target of {name}",
        )
        return status


def driver(world: LiveWorld) -> KubeDriver:
    return KubeDriver(world)
