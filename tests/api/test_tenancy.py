"""Whose namespace a key reaches: the tenant's, and only if no one else's (issue 9 review, 2 and 3).

* A namespace two tenants name is nobody's: if tenant B's spec names tenant A's live namespace
  (a typo, a copied manifest) — as its live or as its sandbox namespace — neither B's keys nor
  A's reach it (503 ``tenant_not_ready``), instead of B reading and writing A's posts.
* A namespace is stamped with the uid of the tenant it was made for. A tenant deleted (its
  namespaces kept) and made again under the same name does not inherit the old live accounts,
  tokens and posts: its keys are refused there until it adopts the namespaces explicitly.
* :func:`~socialpub.kube.tenants.namespace_owner` is the one rule, for the api and the operator.
"""

from __future__ import annotations

from typing import Any

import pytest

from socialpub.api.app import BASE_PATH
from socialpub.api.services.indexes import TenantIndex
from socialpub.kube.client import KubeClient
from socialpub.kube.resources import NAMESPACES, TENANTS
from socialpub.kube.tenants import (
    LABEL_TENANT_UID,
    NamespaceTaken,
    create_tenant,
    delete_tenant,
    ensure_tenant,
    namespace_owner,
)
from socialpub.models.keys import Mode, Scope
from tests.api.support import World, kube_do, wait_for


def _get(world: World, key: str, path: str) -> tuple[int, dict[str, Any]]:
    response = world.raw().get(f"{BASE_PATH}{path}", headers={"Authorization": f"Bearer {key}"})
    return response.status_code, response.json()


def _point(world: World, field: str, namespace: str) -> None:
    """Make ``world``'s SocialTenant name ``namespace`` in ``field`` (as a copied manifest would)."""
    kube_do(world.kube, lambda c: c.patch(TENANTS, world.name, {"spec": {field: namespace}}))


@pytest.mark.parametrize("field", ["liveNamespace", "sandboxNamespace"])
def test_a_namespace_two_tenants_name_is_nobodys(world: World, other_world: World, field: str) -> None:
    victim_key = world.new_key(Mode.LIVE)
    account = world.add_account(mode=Mode.LIVE)
    post = world.create_post(world.client(Mode.LIVE), [account])
    mode = Mode.LIVE if field == "liveNamespace" else Mode.TEST
    intruder_key = other_world.new_key(mode)

    _point(other_world, field, world.namespace(Mode.LIVE))

    def refused(key: str) -> bool:
        status, body = _get(world, key, "/posts")
        return status == 503 and body["error"]["code"] == "tenant_not_ready"

    wait_for(lambda: refused(intruder_key), what="the intruding tenant's key to be refused")
    for path in ("/posts", f"/posts/{post['id']}", "/accounts"):
        status, body = _get(world, intruder_key, path)
        assert status == 503, (path, body)
        assert "another tenant names it" in body["error"]["message"]
    # Nobody's means nobody's: the rightful tenant waits too, until the manifest is fixed.
    assert refused(victim_key)

    _point(other_world, field, other_world.namespace(mode))
    wait_for(lambda: _get(world, victim_key, "/posts")[0] == 200, what="the victim's key to work again")
    status, body = _get(world, intruder_key, "/posts")
    assert status == 200
    assert post["id"] not in [p["id"] for p in body["data"]["posts"]]


def _delete_and_recreate_by_kubectl(world: World) -> str:
    """Delete the tenant (namespaces kept) and create a SocialTenant of the same name directly."""

    async def run(client: KubeClient) -> str:
        await delete_tenant(client, world.name)
        obj = await client.create(
            TENANTS,
            {
                "apiVersion": TENANTS.api_version,
                "kind": TENANTS.kind,
                "metadata": {"name": world.name},
                "spec": {
                    "displayName": world.name,
                    "liveNamespace": world.namespace(Mode.LIVE),
                    "sandboxNamespace": world.namespace(Mode.TEST),
                },
            },
        )
        return str(obj["metadata"]["uid"])

    return kube_do(world.kube, run)


def test_a_tenant_made_again_does_not_inherit_the_old_namespaces(world: World) -> None:
    world.new_key(Mode.LIVE)
    account = world.add_account(mode=Mode.LIVE, display_name="Old Co")
    world.create_post(world.client(Mode.LIVE), [account])
    new_uid = _delete_and_recreate_by_kubectl(world)

    key = world.new_key(Mode.LIVE, {Scope.VIEW, Scope.MANAGE}, wait=False)
    wait_for(lambda: _get(world, key, "/accounts")[0] == 503, what="the new tenant's key to be known")
    _, body = _get(world, key, "/accounts")
    assert body["error"]["code"] == "tenant_not_ready"
    assert "made for another tenant" in body["error"]["message"]
    assert _get(world, key, "/posts")[0] == 503
    stamp = kube_do(world.kube, lambda c: c.get(NAMESPACES, world.namespace(Mode.LIVE)))["metadata"]["labels"]
    assert stamp[LABEL_TENANT_UID] != new_uid  # still the old tenant's

    # The CLI's way refuses too, and says what adopting would hand over.
    with pytest.raises(NamespaceTaken) as taken:
        kube_do(world.kube, lambda c: ensure_tenant(c, world.name))
    assert "1 account(s)" in str(taken.value)
    assert "--adopt-namespaces" in str(taken.value)

    # Adopting is explicit, and reports what was inherited.
    tenant, inherited = kube_do(world.kube, lambda c: create_tenant(c, world.name, adopt_namespaces=True))
    assert tenant.name == world.name
    assert [(i.namespace, i.accounts, i.posts) for i in inherited] == [
        (world.namespace(Mode.LIVE), 1, 1),
        (world.namespace(Mode.TEST), 0, 0),
    ]
    wait_for(lambda: _get(world, key, "/accounts")[0] == 200, what="the adopted namespace to be served")
    assert [a["id"] for a in _get(world, key, "/accounts")[1]["data"]["accounts"]] == [account]


def test_namespace_owner_rule() -> None:
    def tenant(name: str, uid: str, live: str, sandbox: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "uid": uid},
            "spec": {"liveNamespace": live, "sandboxNamespace": sandbox},
        }

    a = tenant("a", "uid-a", "a-live", "a-sandbox")
    b = tenant("b", "uid-b", "b-live", "a-live")
    assert namespace_owner("a-sandbox", [a, b], None) == ("a", Mode.TEST)
    assert namespace_owner("a-sandbox", [a, b], "uid-a") == ("a", Mode.TEST)
    assert namespace_owner("a-sandbox", [a, b], "uid-old") is None  # made for an earlier "a"
    assert namespace_owner("a-live", [a, b], "uid-a") is None  # two tenants name it
    assert namespace_owner("b-live", [a, b], None) == ("b", Mode.LIVE)
    assert namespace_owner("elsewhere", [a, b], None) is None
    both = tenant("c", "uid-c", "c-ns", "c-ns")
    assert namespace_owner("c-ns", [both], "uid-c") is None  # one tenant naming it twice


def test_the_api_decides_on_the_tenants_naming_the_namespace_with_the_same_rule() -> None:
    """The api's index hands :func:`namespace_owner` only the tenants naming a namespace (so a
    request costs the same at 10,000 tenants); the answer equals the rule over all tenants, as
    tenants are added, re-pointed and deleted."""
    index = TenantIndex()
    tenants: dict[str, dict[str, Any]] = {}

    def put(name: str, live: str, sandbox: str, kind: str = "ADDED") -> None:
        obj = {
            "metadata": {"name": name, "uid": f"uid-{name}"},
            "spec": {"liveNamespace": live, "sandboxNamespace": sandbox},
        }
        tenants[name] = obj
        index.apply(kind, obj)

    def agree() -> None:
        for namespace in ("a-live", "a-sandbox", "b-live", "b-sandbox", "c-ns"):
            for stamp in (None, "uid-a", "uid-b"):
                assert namespace_owner(namespace, index.naming(namespace), stamp) == namespace_owner(
                    namespace, tenants.values(), stamp
                )

    put("a", "a-live", "a-sandbox")
    put("b", "b-live", "b-sandbox")
    agree()
    put("b", "b-live", "a-live", "MODIFIED")  # b's sandbox now names a's live namespace
    assert index.naming("b-sandbox") == []
    agree()
    put("c", "c-ns", "c-ns")
    agree()
    index.apply("DELETED", tenants.pop("b"))
    assert [t["metadata"]["name"] for t in index.naming("a-live")] == ["a"]
    agree()
