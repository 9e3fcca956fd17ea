"""Tenants: a SocialTenant and its two namespaces, live and sandbox, and who owns a namespace.

Which tenant owns a namespace is decided in one place, :func:`namespace_owner`, for the api (whose
keys reach which namespace) and the operator (what it publishes from there) alike, so the two
can never disagree. A namespace is owned by a tenant (in one mode) when

* exactly one (tenant, field) names it: two tenants naming it, or one tenant naming it as both
  its live and sandbox namespace, make it nobody's (a copied manifest or a typo must not hand
  one tenant another's posts), and
* it is not stamped for another tenant: the label ``social.softsolz.uk/tenant-uid`` holds the uid
  of the SocialTenant it was made or adopted for. A tenant deleted and created again under the
  same name has a new uid, so it does not inherit the namespaces (live accounts, working tokens,
  scheduled posts) of the old one until ``socialpub tenants create NAME --adopt-namespaces``
  re-stamps them.

A namespace without the stamp (made by kubectl, or before stamps existed) belongs to the one
tenant naming it, as before stamps; the operator stamps it for that tenant when it first looks
at the tenant, so from then on a re-created tenant of that name does not inherit it either.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from socialpub.kube.client import AlreadyExists, Conflict, KubeClient, NotFound
from socialpub.kube.keys import ApiKeyRecord, revoke_tenant_keys
from socialpub.kube.resources import ACCOUNTS, GROUP, LABEL_MODE, LABEL_TENANT, NAMESPACES, POSTS, TENANTS
from socialpub.models.keys import Mode

__all__ = [
    "LABEL_TENANT_UID",
    "Inheritance",
    "NamespaceTaken",
    "Tenant",
    "TenantNameError",
    "check_tenant_name",
    "create_tenant",
    "delete_tenant",
    "ensure_tenant",
    "get_tenant",
    "list_tenants",
    "namespace_owner",
    "namespace_stamp",
    "tenant_namespaces",
]

LABEL_TENANT_UID = f"{GROUP}/tenant-uid"
"""On a tenant namespace: the uid of the SocialTenant it was made (or adopted) for."""

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


class TenantNameError(ValueError):
    """A tenant name must be a DNS label of at most 40 characters (it prefixes namespace names)."""


@dataclass(frozen=True)
class Tenant:
    name: str
    display_name: str
    live_namespace: str
    sandbox_namespace: str

    def namespace(self, mode: Mode) -> str:
        """Where objects of ``mode`` live: ``sk_test_`` keys reach only the sandbox namespace."""
        return self.live_namespace if mode is Mode.LIVE else self.sandbox_namespace

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Tenant:
        spec = obj.get("spec") or {}
        name = obj["metadata"]["name"]
        return cls(
            name=name,
            display_name=str(spec.get("displayName") or name),
            live_namespace=str(spec.get("liveNamespace") or f"{name}-live"),
            sandbox_namespace=str(spec.get("sandboxNamespace") or f"{name}-sandbox"),
        )


def tenant_namespaces(tenant: Mapping[str, Any]) -> tuple[str, str]:
    """``(liveNamespace, sandboxNamespace)`` as a SocialTenant's spec names them (``""`` if unset)."""
    spec = tenant.get("spec") or {}
    return str(spec.get("liveNamespace") or ""), str(spec.get("sandboxNamespace") or "")


def namespace_stamp(namespace: Mapping[str, Any] | None) -> str | None:
    """The tenant uid a Namespace object is stamped with (``None``: no stamp, or no namespace)."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    return str(labels.get(LABEL_TENANT_UID) or "") or None


def namespace_owner(
    namespace: str, tenants: Iterable[Mapping[str, Any]], stamp: str | None
) -> tuple[str, Mode] | None:
    """``(tenant, mode)`` owning ``namespace``, or ``None`` if it is nobody's (pure).

    ``tenants`` are SocialTenant objects; ``stamp`` is the namespace's tenant-uid label (see
    :func:`namespace_stamp`). Nobody's: no tenant or more than one claim names it (one tenant
    naming it twice counts twice), or it is stamped for a tenant other than its claimant.
    """
    claims: list[tuple[str, Mode, str]] = []
    for tenant in tenants:
        meta = tenant.get("metadata") or {}
        live, sandbox = tenant_namespaces(tenant)
        for named, mode in ((live, Mode.LIVE), (sandbox, Mode.TEST)):
            if named and named == namespace:
                claims.append((str(meta.get("name") or ""), mode, str(meta.get("uid") or "")))
    if len(claims) != 1:
        return None
    name, mode, uid = claims[0]
    if stamp is not None and stamp != uid:
        return None
    return name, mode


@dataclass(frozen=True)
class Inheritance:
    """A namespace stamped for another tenant (one deleted, usually), and what it holds."""

    namespace: str
    previous_uid: str
    accounts: int
    posts: int

    def describe(self) -> str:
        return (
            f"{self.namespace} (made for an earlier tenant, uid {self.previous_uid}): "
            f"{self.accounts} account(s) with their stored tokens, {self.posts} post(s)"
        )


class NamespaceTaken(Exception):
    """A tenant's namespace is stamped for another tenant; adopting it must be asked for."""

    def __init__(self, tenant: str, inherited: list[Inheritance]) -> None:
        self.tenant = tenant
        self.inherited = inherited
        listed = "; ".join(i.describe() for i in inherited)
        super().__init__(
            f"tenant {tenant}: namespace(s) belong to another tenant: {listed}. Nothing in them is "
            f"served or published for {tenant}. To take them over with everything in them, run "
            f"`socialpub tenants create {tenant} --adopt-namespaces`"
        )


def check_tenant_name(name: str) -> str:
    """``name`` if it can name a tenant; raises :class:`TenantNameError` otherwise."""
    if not _NAME.match(name):
        raise TenantNameError(f"invalid tenant name {name!r}: use 1-40 lowercase letters, digits and '-'")
    return name


async def ensure_tenant(client: KubeClient, name: str, *, display_name: str | None = None) -> Tenant:
    """Create the tenant ``name`` and its namespaces; running it again changes nothing.

    Raises :class:`NamespaceTaken` if a namespace is stamped for another tenant.
    """
    tenant, _ = await create_tenant(client, name, display_name=display_name)
    return tenant


async def create_tenant(
    client: KubeClient, name: str, *, display_name: str | None = None, adopt_namespaces: bool = False
) -> tuple[Tenant, list[Inheritance]]:
    """Create the tenant ``name`` and its namespaces, stamped with the tenant's uid; returns the
    tenant and the namespaces it took over from another tenant (only with ``adopt_namespaces``).

    An existing namespace without a stamp is stamped for this tenant (it is what naming it meant
    before stamps). One stamped for another tenant is refused (:class:`NamespaceTaken`, before
    anything is written) unless ``adopt_namespaces``: it holds someone else's accounts, tokens
    and posts, which only an explicit request hands over.
    """
    check_tenant_name(name)
    wanted = Tenant(name, display_name or name, f"{name}-live", f"{name}-sandbox")
    try:
        existing: dict[str, Any] | None = await client.get(TENANTS, name)
    except NotFound:
        existing = None
    if existing is not None:
        wanted = Tenant.from_object(existing)
    uid = str(existing["metadata"]["uid"]) if existing is not None else None
    foreign = await _foreign(client, wanted, uid)
    if foreign and not adopt_namespaces:
        raise NamespaceTaken(name, foreign)
    if existing is None:
        try:
            existing = await client.create(
                TENANTS,
                {
                    "apiVersion": TENANTS.api_version,
                    "kind": TENANTS.kind,
                    "metadata": {"name": name},
                    "spec": {
                        "displayName": wanted.display_name,
                        "liveNamespace": wanted.live_namespace,
                        "sandboxNamespace": wanted.sandbox_namespace,
                    },
                },
            )
        except AlreadyExists:
            existing = await client.get(TENANTS, name)
    tenant = Tenant.from_object(existing)
    uid = str(existing["metadata"]["uid"])
    adopted = {i.namespace for i in foreign} if adopt_namespaces else set()
    for namespace, mode in ((tenant.live_namespace, Mode.LIVE), (tenant.sandbox_namespace, Mode.TEST)):
        await _stamp(client, namespace, name, mode, uid, adopt=namespace in adopted)
    return tenant, foreign


async def _foreign(client: KubeClient, tenant: Tenant, uid: str | None) -> list[Inheritance]:
    """The tenant's namespaces stamped for a tenant other than ``uid``, with what they hold."""
    found = []
    for namespace in (tenant.live_namespace, tenant.sandbox_namespace):
        try:
            stamp = namespace_stamp(await client.get(NAMESPACES, namespace))
        except NotFound:
            continue
        if stamp is not None and stamp != uid:
            accounts, _ = await client.list(ACCOUNTS, namespace)
            posts, _ = await client.list(POSTS, namespace)
            found.append(Inheritance(namespace, stamp, len(accounts), len(posts)))
    return found


async def _stamp(
    client: KubeClient, namespace: str, tenant: str, mode: Mode, uid: str, *, adopt: bool
) -> None:
    """Create ``namespace`` stamped with ``uid``, or stamp it if it is unstamped (or ``adopt``).

    Conditional on the namespace's ``resourceVersion``, so of two tenants stamping one
    namespace at once only one wins; the other finds it stamped and leaves it alone.
    """
    labels = {LABEL_TENANT: tenant, LABEL_MODE: mode.value, LABEL_TENANT_UID: uid}
    for _ in range(5):
        try:
            current = await client.get(NAMESPACES, namespace)
        except NotFound:
            body = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": labels},
            }
            try:
                await client.create(NAMESPACES, body)
                return
            except AlreadyExists:
                continue
        stamp = namespace_stamp(current)
        if stamp == uid or (stamp is not None and not adopt):
            return
        meta = current["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"], "labels": {LABEL_TENANT_UID: uid}}}
        try:
            await client.patch(NAMESPACES, namespace, patch)
            return
        except (Conflict, NotFound):
            continue
    raise Conflict(409, "Conflict", f"namespace {namespace} kept changing while it was being stamped")


async def get_tenant(client: KubeClient, name: str) -> Tenant:
    """The tenant ``name``; raises :class:`~socialpub.kube.client.NotFound` if there is none."""
    return Tenant.from_object(await client.get(TENANTS, name))


async def list_tenants(client: KubeClient) -> list[Tenant]:
    """Every tenant, by name."""
    items, _ = await client.list(TENANTS)
    return sorted((Tenant.from_object(obj) for obj in items), key=lambda t: t.name)


async def delete_tenant(
    client: KubeClient, name: str, *, delete_namespaces: bool = False
) -> tuple[Tenant, list[ApiKeyRecord]]:
    """Delete the tenant ``name``: revoke its keys, delete its SocialTenant and, only if asked,
    its two namespaces with everything in them. Returns the tenant and the keys revoked.

    Keys are revoked first, so no request is served for a tenant being deleted. Even without
    that, a key stops working once its tenant is gone: records carry the tenant's uid, which a
    tenant created again under the same name does not share.

    The namespaces are kept by default (their accounts, posts and sealed tokens are data someone
    may want back). They stay stamped with this tenant's uid, so they are nobody's: the api
    serves nothing there and the operator publishes nothing from them (posts scheduled there
    wait), and a tenant created again under this name does not take them over unless asked to
    (``socialpub tenants create NAME --adopt-namespaces``). ``delete_namespaces`` removes them.
    Raises :class:`~socialpub.kube.client.NotFound` if there is no such tenant.
    """
    tenant = await get_tenant(client, check_tenant_name(name))
    revoked = await revoke_tenant_keys(client, name)
    with contextlib.suppress(NotFound):  # deleted meanwhile: the outcome asked for
        await client.delete(TENANTS, name)
    if delete_namespaces:
        for namespace in (tenant.live_namespace, tenant.sandbox_namespace):
            with contextlib.suppress(NotFound):
                await client.delete(NAMESPACES, namespace)
    return tenant, revoked
