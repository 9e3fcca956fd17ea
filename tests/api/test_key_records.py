"""Where the api finds API keys, and whose they are.

* The api reads Secrets only in the keys namespace, and only namespaced (a namespaced Role can
  grant exactly that): checked on what it actually asks the Kubernetes API for, through the
  recording proxy in front of it, from its start.
* A record anywhere else — beside the key ring in ``socialpub-system``, in a tenant's namespace —
  is not a key.
* A key is bound to its tenant's uid: a tenant deleted and created again under the same name
  does not inherit the old keys, even if their records were never cleaned up; deleting a tenant
  through :func:`~socialpub.kube.tenants.delete_tenant` revokes them outright.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from socialpub._cli_dev import seed_demo
from socialpub.api.app import BASE_PATH
from socialpub.kube.client import KubeClient
from socialpub.kube.keys import KEYS_NAMESPACE, create_key, find_key
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import SECRETS, SYSTEM_NAMESPACE, TENANTS
from socialpub.kube.tenants import create_tenant, delete_tenant, ensure_tenant
from socialpub.models.keys import Mode, Scope, hash_key, key_id
from tests.api.kube_proxy import FaultProxy
from tests.api.support import World, kube_do, wait_for


def _status(world: World, key: str) -> int:
    response = world.raw().get(f"{BASE_PATH}/accounts", headers={"Authorization": f"Bearer {key}"})
    return response.status_code


def _code(world: World, key: str) -> str:
    response = world.raw().get(f"{BASE_PATH}/accounts", headers={"Authorization": f"Bearer {key}"})
    code: str = response.json()["error"]["code"]
    return code


def test_the_api_reads_secrets_only_in_the_keys_namespace(
    proxied_world: World, kube_proxy: FaultProxy
) -> None:
    world = proxied_world
    key = world.new_key(scopes={Scope.VIEW})  # waits until the api's watch has delivered it
    world.revoke(key_id(hash_key(key)))
    wait_for(lambda: _status(world, key) == 401, what="the revocation to reach the api")
    secret_requests = [seen for seen in kube_proxy.requests() if "/secrets" in seen.path]
    assert secret_requests, "the api never asked for its key records"
    allowed = f"/api/v1/namespaces/{KEYS_NAMESPACE}/secrets"
    assert [s for s in secret_requests if not s.path.startswith(allowed)] == []
    assert {s.method for s in secret_requests} == {"GET"}  # list and watch; it never writes one
    assert any(s.query.get("watch") for s in secret_requests)


def _copy_record(world: World, key: str, namespace: str, *, legacy: bool = False) -> None:
    """Move ``key``'s record to ``namespace``, as someone with write access there could (or, with
    ``legacy``, as an older version wrote it: without the tenant's uid)."""
    name = f"apikey-{key_id(hash_key(key))}"

    async def copy(client: KubeClient) -> None:
        record = await client.get(SECRETS, name, KEYS_NAMESPACE)
        await ensure_namespace(client, namespace)
        manifest: dict[str, Any] = {k: record[k] for k in ("apiVersion", "kind", "type", "data")}
        if legacy:
            manifest["data"] = {k: v for k, v in manifest["data"].items() if k != "tenantUid"}
        manifest["metadata"] = {"name": name, "labels": record["metadata"]["labels"]}
        await client.create(SECRETS, manifest, namespace)
        await client.delete(SECRETS, name, KEYS_NAMESPACE)

    kube_do(world.kube, copy)


def test_a_record_outside_the_keys_namespace_is_no_key(world: World) -> None:
    beside_the_ring = world.new_key(scopes={Scope.VIEW})
    in_the_tenant = world.new_key(scopes={Scope.VIEW})
    _copy_record(world, beside_the_ring, SYSTEM_NAMESPACE)
    _copy_record(world, in_the_tenant, world.namespace())
    for key in (beside_the_ring, in_the_tenant):
        wait_for(lambda key=key: _status(world, key) == 401, what="the moved record to stop counting")
        assert _code(world, key) == "invalid_api_key"


def _recreate_tenant(world: World) -> None:
    """Delete the SocialTenant behind the api's back (no key is revoked) and create it again."""

    async def recreate(client: KubeClient) -> str:
        old = await client.get(TENANTS, world.name)
        await client.delete(TENANTS, world.name)
        new, _ = await create_tenant(client, world.name, adopt_namespaces=True)
        assert new.name == world.name
        uid: str = (await client.get(TENANTS, world.name))["metadata"]["uid"]
        assert uid != old["metadata"]["uid"]
        return uid

    kube_do(world.kube, recreate)


def test_a_tenant_made_again_under_the_same_name_does_not_inherit_its_keys(world: World) -> None:
    old_key = world.new_key(scopes={Scope.VIEW})
    _recreate_tenant(world)
    new_key = world.new_key(scopes={Scope.VIEW})  # the api knows the new tenant by now
    wait_for(lambda: _status(world, old_key) == 401, what="the old tenant's key to be refused")
    assert _code(world, old_key) == "api_key_revoked"
    assert _status(world, new_key) == 200
    record = kube_do(world.kube, lambda c: find_key(c, old_key))
    assert record is not None
    assert record.active  # nobody cleaned the record up: the uid alone refuses it


def test_deleting_a_tenant_revokes_its_keys(world: World) -> None:
    live = world.new_key(Mode.LIVE, scopes={Scope.VIEW})
    test = world.new_key(Mode.TEST, scopes={Scope.VIEW})
    tenant, revoked = kube_do(world.kube, lambda c: delete_tenant(c, world.name))
    assert tenant.name == world.name
    assert {r.id for r in revoked} == {key_id(hash_key(live)), key_id(hash_key(test))}
    for key in (live, test):
        wait_for(lambda key=key: _status(world, key) == 401, what="the keys to be refused")
        record = kube_do(world.kube, lambda c, key=key: find_key(c, key))
        assert record is not None
        assert record.revoked_at


def test_the_dev_key_survives_the_move_to_the_keys_namespace(world: World, tmp_path: Path) -> None:
    """``socialpub dev`` after an upgrade: the saved key's record is still in socialpub-system."""

    async def seed(client: KubeClient) -> str:
        await ensure_tenant(client, "demo", display_name="Demo")
        key, _ = await create_key(client, tenant="demo", mode=Mode.TEST, scopes=list(Scope))
        return key

    key = kube_do(world.kube, seed)
    _copy_record(world, key, SYSTEM_NAMESPACE, legacy=True)  # where and how an older version kept it
    key_file = tmp_path / "dev-key"
    key_file.write_text(key + "\n")
    _, _, dev_key = kube_do(world.kube, lambda c: seed_demo(c, key_file))
    assert dev_key == key
    record = kube_do(world.kube, lambda c: find_key(c, key))
    assert record is not None
    assert record.active
    assert record.tenant_uid == kube_do(world.kube, lambda c: c.get(TENANTS, "demo"))["metadata"]["uid"]
    wait_for(lambda: _status(world, key) == 200, what="the dev key to work")
