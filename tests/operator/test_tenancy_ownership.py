"""The operator's namespace → tenant view follows the namespaces' tenant-uid stamps (issue 9
review, item 3): a namespace made for a deleted tenant is not a re-created tenant's until it is
adopted, so nothing there publishes for it; an unstamped namespace (a tenant made by kubectl) is
stamped for the one tenant naming it. Run against the real embedded Kubernetes API."""

from __future__ import annotations

from typing import Any

from socialpub.kube.client import KubeClient
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import NAMESPACES, TENANTS
from socialpub.kube.tenants import LABEL_TENANT_UID, create_tenant, delete_tenant, ensure_tenant
from socialpub.models.keys import Mode
from socialpub.operator.tenants import Tenancy
from tests.kube_harness import KubeHarness


def _manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": TENANTS.api_version,
        "kind": TENANTS.kind,
        "metadata": {"name": name},
        "spec": {"displayName": name, "liveNamespace": f"{name}-live", "sandboxNamespace": f"{name}-sandbox"},
    }


def test_a_recreated_tenant_gets_nothing_from_the_old_namespaces_until_it_adopts_them(
    shared_kube: KubeHarness, shared_client: KubeClient
) -> None:
    kube = shared_kube

    async def scenario() -> None:
        await ensure_tenant(shared_client, "umbrella")
        tenancy = Tenancy(shared_client)
        await tenancy.prime()
        assert await tenancy.lookup("umbrella-live") == ("umbrella", Mode.LIVE)

        await delete_tenant(shared_client, "umbrella")  # namespaces kept
        made = await shared_client.create(TENANTS, _manifest("umbrella"))  # kubectl apply of the old manifest
        tenancy.observe("ADDED", made)
        assert await tenancy.lookup("umbrella-live") is None
        assert await tenancy.mode_of("umbrella-sandbox") is None
        await tenancy.reconcile("umbrella")
        obj = await shared_client.get(TENANTS, "umbrella")
        (ready,) = obj["status"]["conditions"]
        assert (ready["status"], ready["reason"]) == ("False", "NamespaceOfAnotherTenant")
        assert "--adopt-namespaces" in ready["message"]
        ns = await shared_client.get(NAMESPACES, "umbrella-live")
        assert ns["metadata"]["labels"][LABEL_TENANT_UID] != made["metadata"]["uid"]  # not re-stamped

        await create_tenant(shared_client, "umbrella", adopt_namespaces=True)
        await tenancy.reconcile_namespace("umbrella-live")
        await tenancy.reconcile_namespace("umbrella-sandbox")
        assert await tenancy.lookup("umbrella-live") == ("umbrella", Mode.LIVE)
        obj = await shared_client.get(TENANTS, "umbrella")
        assert obj["status"]["conditions"][0]["reason"] == "NamespacesReady"
        tenancy.close()

    kube.call(scenario())


def test_an_unstamped_namespace_is_stamped_for_the_one_tenant_naming_it(
    shared_kube: KubeHarness, shared_client: KubeClient
) -> None:
    async def scenario() -> None:
        await ensure_namespace(shared_client, "hooli-live")  # made by kubectl: no stamp
        await ensure_namespace(shared_client, "hooli-sandbox")
        made = await shared_client.create(TENANTS, _manifest("hooli"))
        tenancy = Tenancy(shared_client)
        await tenancy.prime()
        assert await tenancy.lookup("hooli-live") == ("hooli", Mode.LIVE)  # unstamped: as before
        await tenancy.reconcile("hooli")
        for namespace in ("hooli-live", "hooli-sandbox"):
            ns = await shared_client.get(NAMESPACES, namespace)
            assert ns["metadata"]["labels"][LABEL_TENANT_UID] == made["metadata"]["uid"]
        obj = await shared_client.get(TENANTS, "hooli")
        assert obj["status"]["conditions"][0]["reason"] == "NamespacesReady"
        tenancy.close()

    shared_kube.call(scenario())
