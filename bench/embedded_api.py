"""Benchmark: the embedded Kubernetes API against a bare HTTP server doing the same round trips.

Run with ``make bench`` (or ``.venv/bin/python bench/embedded_api.py``). Not part of the tests.

Both servers run in this process on 127.0.0.1 and are driven by the same aiohttp client with
the same concurrency, so the ratio shows what the Kubernetes semantics (validation, CEL,
resourceVersions, durable SQLite commits, watch fan-out) cost over plain JSON-over-HTTP with a
dict behind it. The embedded server holds 10,000 SocialPosts before anything is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests

REPO = Path(__file__).resolve().parent.parent
GROUP_PATH = "/apis/social.softsolz.uk/v1alpha1/namespaces/bench/socialposts"


def _post(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "social.softsolz.uk/v1alpha1",
        "kind": "SocialPost",
        "metadata": {"name": name, "labels": {"social.softsolz.uk/id": name.rsplit("-", 1)[-1]}},
        "spec": {
            "body": "We just shipped a big update. " * 4,
            "media": [{"url": "https://cdn.example/launch.png", "alt": "Launch"}],
            "targets": [{"accountId": 12}, {"accountId": 13, "overrideBody": "Launch day!"}],
            "draft": True,
        },
    }


class BareServer:
    """The baseline: the same URLs and bodies, a dict behind them, a queue per watcher."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.watchers: list[asyncio.Queue[bytes]] = []
        self.rv = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(GROUP_PATH, self._create)
        app.router.add_patch(GROUP_PATH + "/{name}", self._patch)
        app.router.add_get(GROUP_PATH, self._watch)
        # Its watch handlers never return on their own (aiohttp does not cancel a handler when the
        # client goes away): without a short shutdown timeout, stop() waits aiohttp's default 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _emit(self, kind: str, obj: dict[str, Any]) -> None:
        line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
        for queue in self.watchers:
            queue.put_nowait(line)

    async def _create(self, request: web.Request) -> web.Response:
        obj = await request.json()
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[obj["metadata"]["name"]] = obj
        self._emit("ADDED", obj)
        return web.json_response(obj, status=201)

    async def _patch(self, request: web.Request) -> web.Response:
        obj = self.objects[request.match_info["name"]]
        patch = await request.json()
        obj["spec"].update(patch.get("spec", {}))
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit("MODIFIED", obj)
        return web.json_response(obj)

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") != "true":
            return web.json_response({"metadata": {"resourceVersion": str(self.rv)}, "items": []})
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.watchers.append(queue)
        try:
            while True:
                await response.write(await queue.get())
        finally:
            self.watchers.remove(queue)


async def _run_concurrently(count: int, concurrency: int, op: Callable[[int], Awaitable[None]]) -> float:
    """Run ``op(i)`` for i < count with ``concurrency`` workers; return operations per second."""
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            await op(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def _measure(
    url: str,
    session: aiohttp.ClientSession,
    *,
    prefix: str,
    count: int,
    concurrency: int,
    latency_samples: int,
) -> dict[str, float]:
    async def create(i: int) -> None:
        async with session.post(url + GROUP_PATH, json=_post(f"{prefix}-{i}")) as resp:
            assert resp.status == 201, await resp.text()
            await resp.read()

    async def patch(i: int) -> None:
        body = {"spec": {"body": f"edit {i}"}}
        async with session.patch(
            url + GROUP_PATH + f"/{prefix}-{i}",
            data=json.dumps(body),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()

    creates = await _run_concurrently(count, concurrency, create)
    patches = await _run_concurrently(count, concurrency, patch)

    latencies: list[float] = []
    async with session.get(url + GROUP_PATH, params={"limit": "1"}) as resp:
        list_rv = (await resp.json())["metadata"]["resourceVersion"]
    async with session.get(
        url + GROUP_PATH,
        params={"watch": "true", "resourceVersion": list_rv},
        timeout=aiohttp.ClientTimeout(total=None),
    ) as stream:
        for i in range(latency_samples):
            body = {"spec": {"body": f"latency {i}"}}
            sent = time.perf_counter()
            async with session.patch(
                url + GROUP_PATH + f"/{prefix}-{i % count}",
                data=json.dumps(body),
                headers={"Content-Type": "application/merge-patch+json"},
            ) as resp:
                await resp.read()
            while True:
                line = await stream.content.readline()
                event = json.loads(line)
                if event["object"]["spec"]["body"] == f"latency {i}":
                    latencies.append(time.perf_counter() - sent)
                    break
    latencies.sort()
    return {
        "creates_per_s": creates,
        "patches_per_s": patches,
        "watch_p50_ms": statistics.median(latencies) * 1000,
        "watch_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def main(count: int, concurrency: int, stored: int, latency_samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kube = EmbeddedKubeServer(Path(tmp), ServerSettings(history=stored + 4 * count + latency_samples))
        await kube.start()
        bare = BareServer()
        await bare.start()
        try:
            for doc in load_manifests(REPO / "crds"):
                await apply_manifest(kube.cluster, kube.registry, doc)
            await apply_manifest(
                kube.cluster,
                kube.registry,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
            )
            # The embedded server speaks TLS with its own CA; the bare one plain HTTP.
            connector = aiohttp.TCPConnector(limit=concurrency, ssl=kube.tls.client_context())
            auth = {"Authorization": f"Bearer {kube.token}"}  # the bare server ignores it
            async with aiohttp.ClientSession(connector=connector, headers=auth) as session:
                # Fill the embedded server with `stored` objects first (not timed).
                await _run_concurrently(stored, concurrency, lambda i: _fill(session, kube.url, i))
                kube_result = await _measure(
                    kube.url,
                    session,
                    prefix="k",
                    count=count,
                    concurrency=concurrency,
                    latency_samples=latency_samples,
                )
                bare_result = await _measure(
                    bare.url,
                    session,
                    prefix="b",
                    count=count,
                    concurrency=concurrency,
                    latency_samples=latency_samples,
                )
        finally:
            await bare.stop()
            await kube.stop()

    print(
        f"embedded Kubernetes API vs bare aiohttp server: {count} ops, concurrency {concurrency}, "
        f"{stored} SocialPosts stored, {latency_samples} watch samples"
    )
    print(f"{'metric':<16}{'embedded':>12}{'bare':>12}{'ratio':>10}")
    for key, better in (
        ("creates_per_s", "higher"),
        ("patches_per_s", "higher"),
        ("watch_p50_ms", "lower"),
        ("watch_p99_ms", "lower"),
    ):
        k, b = kube_result[key], bare_result[key]
        print(f"{key:<16}{k:>12.1f}{b:>12.1f}{k / b:>10.2f}   ({better} is better)")


async def _fill(session: aiohttp.ClientSession, url: str, i: int) -> None:
    async with session.post(url + GROUP_PATH, json=_post(f"stored-{i}")) as resp:
        assert resp.status == 201, await resp.text()
        await resp.read()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--latency-samples", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.concurrency, args.stored, args.latency_samples))
