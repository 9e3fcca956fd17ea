"""Tenants in the operator: which namespace is whose live or sandbox namespace, and tenant status.

Whether an account publishes for real or to the simulator is decided here, from the namespace
it is in, as the tenant's SocialTenant (cluster-scoped: only a platform engineer writes it) names
it — never from anything inside the namespace (``spec.sandbox``, namespace labels), which whoever
may write there can set. A namespace that is no tenant's, or that two tenants (or both of one
tenant's fields) claim, or that is stamped for another tenant (a deleted one of the same name),
has no mode: nothing in it is published. That rule is :func:`socialpub.kube.tenants.namespace_owner`,
which the api applies too. A tenant namespace without a stamp (made by kubectl, or before stamps)
is stamped here for the one tenant that names it, when that tenant is reconciled.

The same view writes each SocialTenant's ``status``: ``Ready`` (both namespaces exist, are
distinct, and no other tenant claims them) and ``observedGeneration``, so
``kubectl get socialtenants`` shows whether a tenant can be used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from socialpub.kube.client import Conflict, KubeClient, NotFound
from socialpub.kube.resources import NAMESPACES, TENANTS
from socialpub.kube.tenants import LABEL_TENANT_UID, namespace_owner, namespace_stamp, tenant_namespaces
from socialpub.models.keys import Mode
from socialpub.operator import decisions

__all__ = ["Tenancy", "tenant_status"]

logger = logging.getLogger(__name__)

_NOT_READY_RECHECK_SECONDS = 30.0
"""A tenant that is not Ready is looked at again after this long, besides on every event."""


_namespaces = tenant_namespaces


def tenant_status(
    tenant: Mapping[str, Any],
    *,
    existing: Mapping[str, bool],
    claimed_elsewhere: Mapping[str, str],
    now: float,
    stamped_elsewhere: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The status the tenant should have (pure).

    ``existing`` says which of its namespaces exist; ``claimed_elsewhere`` maps a namespace of
    this tenant to another tenant that names it too; ``stamped_elsewhere`` maps one stamped for
    another tenant to that tenant's uid.
    """
    meta = tenant.get("metadata") or {}
    generation = int(meta.get("generation") or 1)
    live, sandbox = _namespaces(tenant)
    missing = [ns for ns in (live, sandbox) if ns and not existing.get(ns)]
    shared = [
        f"{ns} (also named by tenant {claimed_elsewhere[ns]})"
        for ns in (live, sandbox)
        if ns in claimed_elsewhere
    ]
    foreign = [f"{ns} (made for another tenant, uid {uid})" for ns, uid in (stamped_elsewhere or {}).items()]
    if not live or not sandbox or live == sandbox:
        status, reason = "False", "NamespacesNotDistinct"
        message = f"liveNamespace {live!r} and sandboxNamespace {sandbox!r} must be two different namespaces"
    elif shared:
        status, reason = "False", "NamespaceShared"
        message = "nothing publishes from a namespace two tenants name: " + ", ".join(shared)
    elif foreign:
        status, reason = "False", "NamespaceOfAnotherTenant"
        name = meta.get("name")
        message = (
            "nothing publishes from a namespace stamped for another tenant: "
            + ", ".join(foreign)
            + f"; `socialpub tenants create {name} --adopt-namespaces` takes it over"
        )
    elif missing:
        status, reason = "False", "NamespaceMissing"
        message = "waiting for the namespace(s) " + ", ".join(missing) + " to exist"
    else:
        status, reason = "True", "NamespacesReady"
        message = f"live namespace {live} and sandbox namespace {sandbox} exist"
    current = tenant.get("status") or {}
    conditions = decisions.set_condition(
        current.get("conditions") or [],
        type="Ready",
        status=status,
        reason=reason,
        message=message,
        generation=generation,
        now=decisions.format_time(now),
    )
    return {"observedGeneration": generation, "conditions": conditions}


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal but for ``lastTransitionTime`` (which :func:`decisions.set_condition` keeps anyway)."""

    def strip(status: Mapping[str, Any]) -> Any:
        return (
            status.get("observedGeneration"),
            [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in status.get("conditions") or []
            ],
        )

    return bool(strip(a) == strip(b))


class Tenancy:
    """The operator's view of SocialTenants: namespace → (tenant, mode), and tenant status."""

    def __init__(self, client: KubeClient, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock
        self._tenants: dict[str, dict[str, Any]] = {}
        self._stamps: dict[str, str | None] = {}
        """Namespace → the tenant uid it is stamped with, for the namespaces tenants name."""
        self._lookup_lock = asyncio.Lock()
        self._lists = 0
        self._rechecks: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # The view.

    async def prime(self) -> None:
        """Load every tenant (before the engine makes any decision)."""
        items, _ = await self._client.list(TENANTS)
        stamped, _ = await self._client.list(NAMESPACES, label_selector=LABEL_TENANT_UID)
        self._stamps = {str(ns["metadata"]["name"]): namespace_stamp(ns) for ns in stamped}
        self._tenants = {str(t["metadata"]["name"]): t for t in items}
        self._lists += 1

    def observe(self, event_type: str | None, body: dict[str, Any]) -> list[str]:
        """Take in a watch event; returns the tenants whose status may have changed by it (this
        one, and any other naming a namespace it names or named)."""
        name = str((body.get("metadata") or {}).get("name") or "")
        if not name:
            return []
        old = self._tenants.get(name)
        touched = set(_namespaces(body)) | (set(_namespaces(old)) if old else set())
        if event_type == "DELETED":
            self._tenants.pop(name, None)
            handle = self._rechecks.pop(name, None)
            if handle is not None:
                handle.cancel()
        else:
            self._tenants[name] = body
        others = sorted(
            other
            for other, tenant in self._tenants.items()
            if other != name and touched & set(_namespaces(tenant))
        )
        return [name, *others] if event_type != "DELETED" else others

    def _claims(self) -> dict[str, list[tuple[str, Mode]]]:
        claims: dict[str, list[tuple[str, Mode]]] = {}
        for name, tenant in self._tenants.items():
            live, sandbox = _namespaces(tenant)
            if live:
                claims.setdefault(live, []).append((name, Mode.LIVE))
            if sandbox:
                claims.setdefault(sandbox, []).append((name, Mode.TEST))
        return claims

    def known(self, namespace: str) -> tuple[str, Mode] | None:
        """``(tenant, mode)`` of ``namespace`` as last seen; ``None`` if no one or several claim it,
        or it is stamped for another tenant (:func:`~socialpub.kube.tenants.namespace_owner`)."""
        return namespace_owner(namespace, self._tenants.values(), self._stamps.get(namespace))

    async def mode_of(self, namespace: str) -> Mode | None:
        """The mode of ``namespace``: :attr:`Mode.TEST` is simulated, :attr:`Mode.LIVE` is real,
        ``None`` publishes nothing. A namespace not in the view makes the tenants be listed again
        first (a tenant created a moment ago may not have been seen yet)."""
        found = await self.lookup(namespace)
        return found[1] if found else None

    async def lookup(self, namespace: str) -> tuple[str, Mode] | None:
        if namespace in self._claims():
            return self.known(namespace)
        lists = self._lists
        async with self._lookup_lock:
            if self._lists == lists:  # nobody listed while this waited: list now
                await self.prime()
        return self.known(namespace)

    # Status.

    async def reconcile(self, name: str) -> None:
        """Write tenant ``name``'s status if it differs from what it should be."""
        tenant = self._tenants.get(name)
        if tenant is None:
            return
        live, sandbox = _namespaces(tenant)
        existing = {ns: await self._exists(ns) for ns in {live, sandbox} if ns}
        claims = self._claims()
        elsewhere = {ns: other for ns in (live, sandbox) for other, _ in claims.get(ns, []) if other != name}
        uid = str((tenant.get("metadata") or {}).get("uid") or "")
        for ns in (live, sandbox):
            if existing.get(ns) and self._stamps.get(ns) is None and self.known(ns) is not None:
                await self._stamp(ns, uid)
        stamped = {
            ns: str(self._stamps[ns])
            for ns in (live, sandbox)
            if existing.get(ns) and self._stamps.get(ns) not in (None, uid)
        }
        desired = tenant_status(
            tenant,
            existing=existing,
            claimed_elsewhere=elsewhere,
            now=self._clock(),
            stamped_elsewhere=stamped,
        )
        if not _same(tenant.get("status") or {}, desired):
            try:
                updated = await self._client.patch(TENANTS, name, {"status": desired}, subresource="status")
            except NotFound:
                return
            self._tenants[name] = updated
        ready = next(c for c in desired["conditions"] if c["type"] == "Ready")
        self._schedule_recheck(name, ready["status"] != "True")

    async def reconcile_namespace(self, namespace: str) -> None:
        """A namespace appeared or went: look again at the tenants that name it."""
        for name, tenant in list(self._tenants.items()):
            if namespace in _namespaces(tenant):
                await self.reconcile(name)

    async def _exists(self, namespace: str) -> bool:
        """Whether ``namespace`` exists (not being deleted); notes its stamp on the way."""
        try:
            ns = await self._client.get(NAMESPACES, namespace)
        except NotFound:
            self._stamps.pop(namespace, None)
            return False
        self._stamps[namespace] = namespace_stamp(ns)
        return not (ns.get("metadata") or {}).get("deletionTimestamp")

    async def _stamp(self, namespace: str, uid: str) -> None:
        """Stamp an unstamped namespace for the one tenant naming it (a tenant made by kubectl),
        so that a tenant re-created under that name later does not inherit it. Conditional on
        the namespace's ``resourceVersion``: a stamp written meanwhile is kept."""
        try:
            ns = await self._client.get(NAMESPACES, namespace)
            if namespace_stamp(ns) is None:
                meta = ns["metadata"]
                patch = {
                    "metadata": {
                        "resourceVersion": meta["resourceVersion"],
                        "labels": {LABEL_TENANT_UID: uid},
                    }
                }
                ns = await self._client.patch(NAMESPACES, namespace, patch)
        except (Conflict, NotFound):
            await self._exists(namespace)  # look again; the next event settles it
            return
        self._stamps[namespace] = namespace_stamp(ns)

    def _schedule_recheck(self, name: str, needed: bool) -> None:
        handle = self._rechecks.pop(name, None)
        if handle is not None:
            handle.cancel()
        if needed:
            loop = asyncio.get_running_loop()
            self._rechecks[name] = loop.call_later(_NOT_READY_RECHECK_SECONDS, self._start_recheck, name)

    def _start_recheck(self, name: str) -> None:
        task = asyncio.get_running_loop().create_task(self._recheck(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recheck(self, name: str) -> None:
        self._rechecks.pop(name, None)
        try:
            await self.reconcile(name)
        except Exception:  # a periodic look; the next event or recheck tries again
            logger.exception("checking tenant %s failed", name)

    def close(self) -> None:
        for handle in self._rechecks.values():
            handle.cancel()
        self._rechecks.clear()
        for task in self._tasks:
            task.cancel()
