"""Helpers for end-to-end operator scenarios, independent of how posts are written.

A scenario gets a :class:`World` — a tenant's sandbox namespace with active sandbox accounts —
and a *driver* that creates and changes posts. :class:`KubeDriver` writes the resources the way
the REST api does (an id from the namespace's counter, a draft ``post-<id>`` with its targets,
then ``draft: false`` + ``scheduledFor`` to publish); an api driver offering the same methods
can run the same scenarios through the REST facade. Outcomes are always read from the resources
(:class:`World` readers), which is where the operator records them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from socialpub.kube.accounts import create_sandbox_account
from socialpub.kube.client import AlreadyExists, KubeClient, NotFound
from socialpub.kube.ids import allocate_id
from socialpub.kube.resources import (
    ANNOTATION_CREATED_AT,
    ANNOTATION_UPDATED_AT,
    EVENTS,
    LABEL_ID,
    LABEL_POST,
    POSTS,
    TARGETS,
)
from socialpub.kube.targets import target_manifest
from socialpub.kube.tenants import Tenant, ensure_tenant
from socialpub.models.platforms import Platform
from tests.kube_harness import KubeHarness

T = TypeVar("T")

_tenants = itertools.count(1)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 15.0, interval: float = 0.02, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


async def until(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 15.0,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """:func:`wait_for` inside the event loop (an in-process engine or dispatcher keeps running)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


@dataclass
class World:
    """A tenant's sandbox namespace with active sandbox accounts, on an embedded Kubernetes API."""

    kube: KubeHarness
    client: KubeClient
    tenant: Tenant
    accounts: dict[Platform, int] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.tenant.sandbox_namespace

    @classmethod
    def create(cls, kube: KubeHarness, client: KubeClient, name: str | None = None) -> World:
        name = name or f"t{next(_tenants)}-{int(time.time() * 1000) % 100000}"

        async def setup() -> World:
            tenant = await ensure_tenant(client, name)
            world = cls(kube, client, tenant)
            for platform in Platform:
                account = await create_sandbox_account(
                    client, tenant=tenant, platform=platform, display_name=f"{name} {platform.value}"
                )
                world.accounts[platform] = int(account["metadata"]["labels"][LABEL_ID])
            return world

        world: World = kube.call(setup())
        return world

    @property
    def account_ids(self) -> list[int]:
        return list(self.accounts.values())

    # Readers.

    def post(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.kube.call(self.client.get(POSTS, name, self.namespace)))
        except NotFound:
            return None

    def status(self, name: str) -> dict[str, Any]:
        return (self.post(name) or {}).get("status") or {}

    def targets(self, name: str) -> dict[int, dict[str, Any]]:
        """The post's SocialTargets by account id."""
        items, _ = self.kube.call(
            self.client.list(TARGETS, self.namespace, label_selector=f"{LABEL_POST}={name}")
        )
        return {int(t["spec"]["accountId"]): t for t in items}

    def target_states(self, name: str) -> dict[int, str | None]:
        return {a: (t.get("status") or {}).get("state") for a, t in self.targets(name).items()}

    def events(self, name: str) -> list[dict[str, Any]]:
        """Kubernetes Events about the post ``name``, oldest first."""
        items, _ = self.kube.call(self.client.list(EVENTS, self.namespace))
        mine = [e for e in items if (e.get("involvedObject") or {}).get("name") == name]
        return sorted(
            mine, key=lambda e: (e.get("firstTimestamp") or "", int(e["metadata"]["resourceVersion"]))
        )

    def reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.events(name)]

    def wait_phase(self, name: str, *phases: str, timeout: float = 15.0) -> dict[str, Any]:
        seen: list[Any] = [None]

        def probe() -> dict[str, Any] | None:
            post = self.post(name)
            seen[0] = post and post.get("status")
            return post if post and (post.get("status") or {}).get("phase") in phases else None

        try:
            return wait_for(probe, timeout=timeout, what=f"post {name} to reach {' or '.join(phases)}")
        except AssertionError as exc:
            targets = {a: t.get("status") for a, t in self.targets(name).items()}
            raise AssertionError(f"{exc}\npost status: {seen[0]}\ntargets: {targets}") from None

    def wait_settled(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait for a terminal phase whose Events are written too (the final Event follows the status)."""
        post = self.wait_phase(name, "published", "partially_published", "failed", timeout=timeout)
        final = {"published": "Published", "partially_published": "PartiallyPublished", "failed": "Failed"}
        wait_for(
            lambda: final[post["status"]["phase"]] in self.reasons(name),
            timeout=timeout,
            what=f"the {final[post['status']['phase']]} event of {name}",
        )
        return post


class Driver(Protocol):
    """Creates and changes posts; implemented on the resources here, on the REST api elsewhere."""

    def create_post(
        self,
        *,
        body: str,
        account_ids: Sequence[int],
        overrides: dict[int, str] | None = None,
        media: Sequence[dict[str, str]] = (),
        scheduled_for: float | None = None,
        draft: bool = False,
    ) -> str:
        """Create (and unless ``draft``, publish or schedule) a post; returns its resource name."""
        ...

    def reschedule(self, name: str, when: float) -> None: ...

    def edit_body(self, name: str, body: str) -> None: ...

    def set_accounts(self, name: str, account_ids: Sequence[int]) -> None: ...

    def delete(self, name: str) -> None: ...


class KubeDriver:
    """Writes posts straight to the Kubernetes API, exactly as the REST api would."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.client = world.client

    def _call(self, coro: Any) -> Any:
        return self.world.kube.call(coro)

    def create_post(
        self,
        *,
        body: str,
        account_ids: Sequence[int],
        overrides: dict[int, str] | None = None,
        media: Sequence[dict[str, str]] = (),
        scheduled_for: float | None = None,
        draft: bool = False,
    ) -> str:
        namespace = self.world.namespace
        overrides = overrides or {}

        async def create() -> str:
            post_id = await allocate_id(self.client, namespace, "posts")
            stamp = iso(time.time())
            targets = [
                {"accountId": a, **({"overrideBody": overrides[a]} if a in overrides else {})}
                for a in account_ids
            ]
            post = await self.client.create(
                POSTS,
                {
                    "apiVersion": POSTS.api_version,
                    "kind": POSTS.kind,
                    "metadata": {
                        "name": f"post-{post_id}",
                        "labels": {LABEL_ID: str(post_id)},
                        "annotations": {ANNOTATION_CREATED_AT: stamp, ANNOTATION_UPDATED_AT: stamp},
                    },
                    "spec": {"body": body, "media": list(media), "targets": targets, "draft": True},
                },
                namespace,
            )
            meta = post["metadata"]
            for entry in targets:
                # The operator may have created it already, from the post: both paths are idempotent.
                with contextlib.suppress(AlreadyExists):
                    manifest = target_manifest(post, entry["accountId"], entry.get("overrideBody"))
                    await self.client.create(TARGETS, manifest, namespace)
            if not draft:
                # The api's publish: draft false, scheduledFor the requested time (or now).
                when = iso(scheduled_for if scheduled_for is not None else time.time())
                await self.client.patch(
                    POSTS, meta["name"], {"spec": {"draft": False, "scheduledFor": when}}, namespace
                )
            return str(meta["name"])

        name: str = self._call(create())
        return name

    def _patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        patch = {"metadata": {"annotations": {ANNOTATION_UPDATED_AT: iso(time.time())}}, "spec": spec}
        self._call(self.client.patch(POSTS, name, patch, self.world.namespace))

    def reschedule(self, name: str, when: float) -> None:
        self._patch_spec(name, {"scheduledFor": iso(when)})

    def edit_body(self, name: str, body: str) -> None:
        self._patch_spec(name, {"body": body})

    def set_accounts(self, name: str, account_ids: Sequence[int]) -> None:
        self._patch_spec(name, {"targets": [{"accountId": a} for a in account_ids]})

    def delete(self, name: str) -> None:
        self._call(self.client.delete(POSTS, name, self.world.namespace))
