"""Helpers for the api tests: a tenant world (keys, accounts, clients) and polling."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx

from socialpub.api.app import BASE_PATH
from socialpub.kube.client import KubeClient
from socialpub.kube.ids import allocate_id
from socialpub.kube.keys import create_key, revoke_key
from socialpub.kube.resources import ACCOUNTS, LABEL_ID
from socialpub.kube.tenants import Tenant, ensure_tenant
from socialpub.models.keys import Mode, Scope
from tests.kube_harness import KubeHarness

T = TypeVar("T")

ALL_SCOPES = frozenset(Scope)
PNG = "https://cdn.example.com/launch.png"


def wait_for(predicate: Callable[[], Any], *, timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``predicate`` every 10 ms until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def kube_do(kube: KubeHarness, fn: Callable[[KubeClient], Awaitable[T]]) -> T:
    """Run ``fn(client)`` with a fresh client on the embedded server's loop."""

    async def run() -> T:
        client = KubeClient.from_config(str(kube.kubeconfig))
        try:
            return await fn(client)
        finally:
            await client.aclose()

    result: T = kube.call(run())
    return result


class World:
    """One tenant: its namespaces, keys by (mode, scopes), accounts, and HTTP clients."""

    def __init__(self, kube: KubeHarness, url: str, name: str) -> None:
        self.kube = kube
        self.url = url
        self.name = name
        self.tenant: Tenant = kube_do(kube, lambda c: ensure_tenant(c, name))
        self._keys: dict[tuple[Mode, frozenset[Scope]], str] = {}
        self._clients: dict[tuple[Mode, frozenset[Scope]], httpx.Client] = {}
        # One unauthenticated client: building an httpx client costs ~50 ms (its SSL context).
        self._raw = httpx.Client(base_url=url, timeout=30)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._raw.close()

    def namespace(self, mode: Mode = Mode.TEST) -> str:
        return self.tenant.namespace(mode)

    # Keys.

    def new_key(
        self, mode: Mode = Mode.TEST, scopes: Iterable[Scope] = ALL_SCOPES, *, wait: bool = True
    ) -> str:
        scope_set = frozenset(scopes)
        key, _ = kube_do(self.kube, lambda c: create_key(c, tenant=self.name, mode=mode, scopes=scope_set))
        if wait:
            self.wait_key_known(key)
        return key

    def key(self, mode: Mode = Mode.TEST, scopes: Iterable[Scope] = ALL_SCOPES) -> str:
        scope_set = frozenset(scopes)
        if (mode, scope_set) not in self._keys:
            self._keys[(mode, scope_set)] = self.new_key(mode, scope_set)
        return self._keys[(mode, scope_set)]

    def revoke(self, key_id: str) -> None:
        kube_do(self.kube, lambda c: revoke_key(c, tenant=self.name, key_id_=key_id))

    def wait_key_known(self, key: str) -> None:
        wait_for(
            lambda: (
                self._raw.get(f"{BASE_PATH}/accounts", headers={"Authorization": f"Bearer {key}"}).status_code
                != 401
            ),
            what="the api to know the new key",
        )

    # Clients.

    def client(self, mode: Mode = Mode.TEST, scopes: Iterable[Scope] = ALL_SCOPES) -> httpx.Client:
        """A client under the base path, authenticated with a key of ``mode`` and ``scopes``."""
        scope_set = frozenset(scopes)
        if (mode, scope_set) not in self._clients:
            self._clients[(mode, scope_set)] = httpx.Client(
                base_url=self.url + BASE_PATH,
                headers={"Authorization": f"Bearer {self.key(mode, scope_set)}"},
                timeout=30,
            )
        return self._clients[(mode, scope_set)]

    def raw(self) -> httpx.Client:
        """An unauthenticated client at the server root."""
        return self._raw

    # Accounts.

    def add_account(
        self,
        platform: str = "linkedin",
        *,
        mode: Mode = Mode.TEST,
        display_name: str = "Acme Co",
        state: str = "active",
    ) -> int:
        """A SocialAccount made directly in Kubernetes (as the operator would), visible to the api."""
        namespace = self.namespace(mode)

        async def make(client: KubeClient) -> int:
            account_id = await allocate_id(client, namespace, "accounts")
            spec: dict[str, Any] = {
                "platform": platform,
                "displayName": display_name,
                "externalId": f"ext-{account_id}",
                "sandbox": mode is Mode.TEST,
            }
            if mode is Mode.LIVE:
                spec["credentialsSecretRef"] = {"name": f"account-{account_id}-token"}
            name = f"account-{account_id}"
            await client.create(
                ACCOUNTS,
                {
                    "apiVersion": ACCOUNTS.api_version,
                    "kind": ACCOUNTS.kind,
                    "metadata": {"name": name, "labels": {LABEL_ID: str(account_id)}},
                    "spec": spec,
                },
                namespace,
            )
            await client.patch(
                ACCOUNTS, name, {"status": {"state": "active"}}, namespace, subresource="status"
            )
            return account_id

        account_id = kube_do(self.kube, make)
        viewer = self.client(mode)
        wait_for(
            lambda: any(a["id"] == account_id for a in viewer.get("/accounts").json()["data"]["accounts"]),
            what=f"account {account_id} to be visible",
        )
        if state != "active":
            self.set_account_state(account_id, state, mode=mode)
        return account_id

    def set_account_state(self, account_id: int, state: str, *, mode: Mode = Mode.TEST) -> None:
        namespace = self.namespace(mode)
        kube_do(
            self.kube,
            lambda c: c.patch(
                ACCOUNTS,
                f"account-{account_id}",
                {"status": {"state": state}},
                namespace,
                subresource="status",
            ),
        )
        viewer = self.client(mode)
        wait_for(
            lambda: (
                any(a["id"] == account_id for a in viewer.get("/accounts").json()["data"]["accounts"])
                == (state == "active")
            ),
            what=f"account {account_id} to become {state}",
        )

    # Posts.

    def create_post(
        self, client: httpx.Client, account_ids: list[int], body: str = "Hello world", **extra: Any
    ) -> dict[str, Any]:
        payload = {"body": body, "targets": [{"account_id": a} for a in account_ids], **extra}
        response = client.post("/posts", json=payload)
        assert response.status_code == 201, response.text
        post: dict[str, Any] = response.json()["data"]["post"]
        return post
