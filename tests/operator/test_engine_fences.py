"""The engine's delivery rules against a platform whose answers we control, on the real embedded
Kubernetes API: an ambiguous failure whose create the platform commits a moment later, a lookup
that fails for good, a namespace without a tenant while an attempt was interrupted, a lost Lease.

The engine runs in-process (the real :class:`Engine`, its work queue and timer) on the embedded
API's loop; only the platform is faked, by :class:`LaggingPlatform` below, which follows the
adapter contract (``socialpub.platforms.base``) the way the platforms behave: a create may be
committed after its answer was lost, and a lookup shows a post only once it is committed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from socialpub.kube.client import KubeClient, load_connection
from socialpub.kube.resources import POSTS, TARGETS
from socialpub.models.keys import Mode
from socialpub.models.platforms import Platform
from socialpub.operator import decisions
from socialpub.operator.engine import Engine
from socialpub.operator.settings import OperatorSettings
from socialpub.platforms.base import (
    OutcomeUnknown,
    PermanentError,
    Published,
    PublishRequest,
    TransientError,
)
from tests.kube_harness import KubeHarness
from tests.operator.scenarios import KubeDriver, World


@dataclass
class LaggingPlatform:
    """A platform where a create whose answer is lost is committed ``commit_delay`` seconds later
    (and only then shows in lookups). Adapters look up before re-sending an unconfirmed attempt."""

    commit_delay: float = 0.5
    lost_answers: int = 0
    """How many creates answer with a dropped connection (ambiguous) before one answers."""
    lookup_error: Exception | None = None
    posts: list[tuple[str, float]] = field(default_factory=list)
    """(nonce, visible from) of every post stored."""
    creates: int = 0

    def _visible(self, nonce: str) -> Published | None:
        now = time.monotonic()
        for i, (stored, since) in enumerate(self.posts):
            if stored == nonce and since <= now:
                return Published(f"post-{i}", f"https://platform.example/post-{i}")
        return None

    async def publish(self, request: PublishRequest) -> Published:
        if request.platform_state.get("unconfirmedSince"):
            found = self._visible(request.nonce)
            if found is not None:
                return found
        self.creates += 1
        if self.lost_answers > 0:
            self.lost_answers -= 1
            self.posts.append((request.nonce, time.monotonic() + self.commit_delay))
            await request.checkpoint({"unconfirmedSince": decisions.format_time(request.started_at)})
            raise TransientError("connection reset after the create was sent", code="reset", ambiguous=True)
        self.posts.append((request.nonce, time.monotonic()))
        return Published(
            f"post-{len(self.posts) - 1}", f"https://platform.example/post-{len(self.posts) - 1}"
        )

    async def find_published(self, request: PublishRequest) -> Published | None:
        if self.lookup_error is not None:
            raise self.lookup_error
        found = self._visible(request.nonce)
        if found is None:  # as the adapters do: the re-send looks again from the interrupted start
            await request.checkpoint({"unconfirmedSince": decisions.format_time(request.started_at)})
        return found


def _settings(**overrides: Any) -> OperatorSettings:
    base = {"retry_base_seconds": 0.05, "claim_settle_seconds": 1.0, "sandbox_delay_seconds": 0.05}
    return OperatorSettings(**{**base, **overrides})


async def _until(probe: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def _target(client: KubeClient, world: World, name: str) -> dict[str, Any]:
    items, _ = await client.list(TARGETS, world.namespace)
    return next(t for t in items if t["spec"]["postName"] == name)


def _engine(
    client: KubeClient,
    platform: LaggingPlatform,
    *,
    mode: Mode | None = Mode.LIVE,
    lease_valid: Callable[[], bool] | None = None,
    **settings: Any,
) -> Engine:
    async def namespace_mode(namespace: str) -> Mode | None:
        return mode

    kwargs: dict[str, Any] = {"lease_valid": lease_valid} if lease_valid is not None else {}
    return Engine(
        client,
        _settings(**settings),
        live_adapter=lambda account: platform,
        namespace_mode=namespace_mode,
        identity="engine-under-test",
        call_seconds=lambda platform: 1.0,
        **kwargs,
    )


def test_a_lost_answer_is_not_retried_before_the_platform_could_have_committed_it(
    kube: KubeHarness, own_client: KubeClient
) -> None:
    """Attempt 1's create is answered with a reset but committed 0.5 s later. A retry after the
    usual backoff (here up to 0.05 s) would look, find nothing yet, and send again: two posts.
    The retry waits for the attempt's leaseUntil (call budget + settle), then finds the post."""
    world = World.create(kube, own_client, "lag")
    name = KubeDriver(world).create_post(body="Once", account_ids=[world.accounts[Platform.LINKEDIN]])
    platform = LaggingPlatform(commit_delay=0.5, lost_answers=1)

    async def run() -> dict[str, Any]:
        engine = _engine(own_client, platform)
        await engine.start()
        try:
            return dict(
                await _until(
                    lambda: _settled(own_client, world, name, ("published", "dead", "unknown")), timeout=20
                )
            )
        finally:
            await engine.stop(grace=0)

    status = kube.call(run(), timeout=40)
    assert len(platform.posts) == 1, f"the platform holds {len(platform.posts)} posts"
    assert platform.creates == 1
    assert (status["state"], status["attempts"], status["externalPostId"]) == ("published", 2, "post-0")


def test_the_fifth_ambiguous_failure_is_looked_up_before_anything_is_concluded(
    kube: KubeHarness, own_client: KubeClient
) -> None:
    """Every attempt's answer is lost but the last one commits: it is found, not dead-lettered."""
    world = World.create(kube, own_client, "last")
    name = KubeDriver(world).create_post(body="Fifth", account_ids=[world.accounts[Platform.FACEBOOK]])
    platform = LaggingPlatform(commit_delay=10_000, lost_answers=5)

    async def run() -> dict[str, Any]:
        engine = _engine(own_client, platform, claim_settle_seconds=0.2)
        await engine.start()
        try:
            await _until(lambda: _creates(platform, 5), timeout=30)
            platform.posts[-1] = (platform.posts[-1][0], time.monotonic())  # the fifth one landed
            return dict(
                await _until(
                    lambda: _settled(own_client, world, name, ("published", "dead", "unknown")), timeout=20
                )
            )
        finally:
            await engine.stop(grace=0)

    status = kube.call(run(), timeout=60)
    assert (status["state"], status["attempts"]) == ("published", 5)
    assert status["externalPostId"] == "post-4"


def test_a_lookup_that_fails_for_good_after_an_interruption_is_unknown_not_dead(
    kube: KubeHarness, own_client: KubeClient
) -> None:
    world = World.create(kube, own_client, "nolook")
    name = KubeDriver(world).create_post(body="Maybe out", account_ids=[world.accounts[Platform.LINKEDIN]])
    platform = LaggingPlatform(lookup_error=PermanentError("listing refused", code="listing_refused"))

    async def run() -> dict[str, Any]:
        await _interrupted_claim(own_client, world, name)
        engine = _engine(own_client, platform)
        await engine.start()
        try:
            return dict(
                await _until(lambda: _settled(own_client, world, name, ("dead", "unknown", "failed")))
            )
        finally:
            await engine.stop(grace=0)

    status = kube.call(run(), timeout=40)
    assert status["state"] == "unknown"
    assert status["lastError"]["class"] == "unknown"
    assert platform.creates == 0


def test_another_operators_interrupted_attempt_that_did_not_land_is_sent_again_once(
    kube: KubeHarness, own_client: KubeClient
) -> None:
    """The lookup of a claim this operator did not make saves its progress (a checkpoint) like any
    lookup: that write is allowed while the target still shows that claim, so the resolve
    concludes "not landed" and the post is sent once."""
    world = World.create(kube, own_client, "notlanded")
    name = KubeDriver(world).create_post(body="Never sent", account_ids=[world.accounts[Platform.LINKEDIN]])
    platform = LaggingPlatform()

    async def run() -> dict[str, Any]:
        await _interrupted_claim(own_client, world, name)
        engine = _engine(own_client, platform)
        await engine.start()
        try:
            settled = ("published", "dead", "unknown")
            return dict(await _until(lambda: _settled(own_client, world, name, settled)))
        finally:
            await engine.stop(grace=0)

    status = kube.call(run(), timeout=40)
    assert (status["state"], status["attempts"]) == ("published", 2)
    assert platform.creates == 1
    assert status["platformState"]["unconfirmedSince"]


def test_an_interrupted_attempt_in_a_namespace_without_a_tenant_is_never_ended_unasked(
    kube: KubeHarness, own_client: KubeClient
) -> None:
    world = World.create(kube, own_client, "nomode")
    name = KubeDriver(world).create_post(body="Maybe out", account_ids=[world.accounts[Platform.LINKEDIN]])
    platform = LaggingPlatform()

    async def run() -> dict[str, Any]:
        await _interrupted_claim(own_client, world, name)
        engine = _engine(own_client, platform, mode=None)
        await engine.start()
        try:
            # Long past the claim's lease (and its duration on our clock): it would have been resolved.
            await _until(lambda: _never(), timeout=2.0)
            return (await _target(own_client, world, name)).get("status") or {}
        finally:
            await engine.stop(grace=0)

    status = kube.call(run(), timeout=40)
    assert status["state"] == "publishing"
    assert status["claimedBy"] == "crashed-operator"
    assert platform.creates == 0


def test_no_claim_is_made_once_the_lease_deadline_has_passed(
    kube: KubeHarness, own_client: KubeClient
) -> None:
    world = World.create(kube, own_client, "nolease")
    name = KubeDriver(world).create_post(body="Not mine", account_ids=[world.accounts[Platform.LINKEDIN]])
    platform = LaggingPlatform()

    async def run() -> dict[str, Any]:
        engine = _engine(own_client, platform, lease_valid=lambda: False)
        await engine.start()
        try:
            await _until(lambda: _never(), timeout=1.5)  # long enough to have claimed and published
            return (await _target(own_client, world, name)).get("status") or {}
        finally:
            await engine.stop(grace=0)

    status = kube.call(run(), timeout=30)
    assert status.get("state") in (None, "pending"), "nothing is written without the Lease"
    assert not status.get("claimedBy")
    assert platform.creates == 0


def test_a_published_result_is_kept_when_recording_it_fails_for_a_moment(
    kube: KubeHarness, own_client: KubeClient
) -> None:
    """The platform published (the id is in hand) but the API server answers the record with 503
    twice. The result is written again until it is stored — not dropped for a lookup after
    leaseUntil, which for some accounts (LinkedIn members) can only answer "unknown"."""
    world = World.create(kube, own_client, "keep")
    name = KubeDriver(world).create_post(body="Keep me", account_ids=[world.accounts[Platform.LINKEDIN]])
    platform = LaggingPlatform(lookup_error=OutcomeUnknown("member posts cannot be listed"))

    async def run() -> tuple[dict[str, Any], int]:
        conn = load_connection(str(kube.kubeconfig))
        trust = ssl.create_default_context(cafile=conn.ca_path) if conn.ca_path else None
        async with FlakyApiServer(conn.server, failures=2, ssl_context=trust) as flaky:
            headers = {"Authorization": f"Bearer {conn.token}"} if conn.token else {}
            client = KubeClient(flaky.url, headers=headers)
            engine = _engine(client, platform)
            await engine.start()
            try:
                states = ("published", "dead", "unknown")
                status = dict(await _until(lambda: _settled(own_client, world, name, states), timeout=20))
                return status, flaky.failed
            finally:
                await engine.stop(grace=0)
                await client.aclose()

    status, failed = kube.call(run(), timeout=40)
    assert (status["state"], status.get("externalPostId")) == ("published", "post-0")
    assert (status["attempts"], platform.creates, failed) == (1, 1, 2)


class FlakyApiServer:
    """A pass-through to the API server that answers 503 to the first ``failures`` writes of a
    ``published`` target status (the network or the API server failing for a moment)."""

    def __init__(self, upstream: str, *, failures: int, ssl_context: ssl.SSLContext | None) -> None:
        self.upstream = upstream.rstrip("/")
        self._ssl = ssl_context
        self.failures = failures
        self.failed = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FlakyApiServer:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl or True))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        assert self._runner is not None
        await self._session.close()
        await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        recording = request.method == "PATCH" and "/socialtargets/" in request.path
        if recording and b'"state": "published"' in body and self.failed < self.failures:
            self.failed += 1
            return web.json_response(
                {"kind": "Status", "code": 503, "reason": "ServiceUnavailable"}, status=503
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body or None, headers=headers
        ) as answer:
            payload = await answer.read()
            content_type = answer.headers.get("Content-Type", "application/json")
            return web.Response(body=payload, status=answer.status, headers={"Content-Type": content_type})


# Helpers.


async def _never() -> bool:
    return False


async def _creates(platform: LaggingPlatform, count: int) -> bool:
    return platform.creates >= count


async def _settled(
    client: KubeClient, world: World, name: str, states: tuple[str, ...]
) -> dict[str, Any] | None:
    status = (await _target(client, world, name)).get("status") or {}
    return status if status.get("state") in states else None


async def _interrupted_claim(client: KubeClient, world: World, name: str) -> None:
    """The post released and its target claimed by an operator that died mid-call (lease passed)."""
    post = await client.get(POSTS, name, world.namespace)
    target = await _target(client, world, name)
    record = {"name": target["metadata"]["name"], "uid": target["metadata"]["uid"]}
    record["accountId"] = target["spec"]["accountId"]
    now = time.time()
    release = {"publishStartedAt": decisions.format_time(now - 5), "releasedGeneration": 1}
    release["releasedTargets"] = [record]
    await client.patch(POSTS, name, {"status": release}, world.namespace, subresource="status")
    claim = {
        "state": "publishing",
        "attempts": 0,
        "content": {"text": post["spec"]["body"], "media": []},
        "lastAttemptAt": decisions.format_time(now - 1.3),
        "leaseUntil": decisions.format_time(now - 1.0),
        "claimedBy": "crashed-operator",
    }
    await client.patch(
        TARGETS, target["metadata"]["name"], {"status": claim}, world.namespace, subresource="status"
    )
