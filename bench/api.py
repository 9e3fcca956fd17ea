"""Benchmark: the REST api's create-post and list-posts latency against one Kubernetes API read.

Run with ``make bench-api`` (or ``.venv/bin/python bench/api.py``). Not part of the tests.

Three processes on 127.0.0.1: the embedded Kubernetes API, the api under uvicorn, and this
load generator. The api process also serves a bare ``GET /_bench/kube-read`` (mounted here, not
in the product) that does exactly one Kubernetes API read and nothing else: no auth, no
validation, no cache. Each measured endpoint is printed as p50/p99 and as a ratio to that
baseline measured in the same run, at the same concurrency, with the same stored data.

* ``list-posts``: ``GET /posts`` (first page of 20, newest first) with 10,000 posts stored in the
  tenant's namespace; served from the watch-fed cache, so it can beat the baseline.
* ``create-post``: ``POST /posts`` with one target: an id allocation (a compare-and-swap on a
  shared counter, contended at concurrency 16), the SocialPost and its SocialTarget — three or
  more durable writes, each fsynced by the embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
BASE = "/api/v1/services/social"
TENANT = "bench"


# The embedded Kubernetes API, in its own process.


def _serve_kube(state_dir: str, history: int, conn: Connection) -> None:
    from socialpub.embedded.kubeconfig import write_kubeconfig
    from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests

    async def main() -> None:
        server = EmbeddedKubeServer(Path(state_dir), ServerSettings(history=history))
        await server.start()
        for doc in load_manifests(REPO / "crds"):
            await apply_manifest(server.cluster, server.registry, doc)
        kubeconfig = write_kubeconfig(
            Path(state_dir) / "kubeconfig", server.url, token=server.token, ca_pem=server.tls.ca_pem
        )
        conn.send((server.url, str(kubeconfig)))
        await asyncio.Event().wait()

    asyncio.run(main())


# The api, in its own process, plus the baseline endpoint.


def _serve_api(kubeconfig: str, conn: Connection) -> None:
    import uvicorn
    from fastapi import FastAPI

    from socialpub.api.app import create_app
    from socialpub.api.settings import ApiSettings
    from socialpub.kube.resources import TENANTS

    app: FastAPI = create_app(ApiSettings(kubeconfig=kubeconfig, startup_sync_seconds=120))

    @app.get("/_bench/kube-read", include_in_schema=False)
    async def kube_read() -> dict[str, Any]:
        """The baseline: one Kubernetes API read through the app's own client, nothing else."""
        obj = await app.state.runtime.client.get(TENANTS, TENANT)
        return {"name": obj["metadata"]["name"]}

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        conn.send(server.servers[0].sockets[0].getsockname()[1])
        await task

    asyncio.run(main())


# Seeding (through the Kubernetes API directly: fast, and not what is measured).


async def _seed(kubeconfig: str, stored: int, concurrency: int) -> tuple[str, int]:
    from socialpub.kube.client import KubeClient, load_connection
    from socialpub.kube.ids import IDS_CONFIGMAP, allocate_id
    from socialpub.kube.keys import create_key
    from socialpub.kube.resources import (
        ACCOUNTS,
        ANNOTATION_CREATED_AT,
        ANNOTATION_UPDATED_AT,
        CONFIGMAPS,
        LABEL_ID,
        POSTS,
    )
    from socialpub.kube.tenants import ensure_tenant
    from socialpub.models.keys import Mode, Scope

    conn = load_connection(kubeconfig)  # the token and CA the embedded server made
    client = KubeClient(
        conn.server,
        headers={"Authorization": f"Bearer {conn.token}"},
        verify=conn.ca_path or True,
        max_connections=concurrency,
    )
    try:
        tenant = await ensure_tenant(client, TENANT)
        namespace = tenant.namespace(Mode.TEST)
        key, _ = await create_key(client, tenant=TENANT, mode=Mode.TEST, scopes=set(Scope))
        account_id = await allocate_id(client, namespace, "accounts")
        await client.create(
            ACCOUNTS,
            {
                "apiVersion": ACCOUNTS.api_version,
                "kind": ACCOUNTS.kind,
                "metadata": {"name": f"account-{account_id}", "labels": {LABEL_ID: str(account_id)}},
                "spec": {"platform": "linkedin", "displayName": "Acme Co", "sandbox": True},
            },
            namespace,
        )
        await client.patch(
            ACCOUNTS,
            f"account-{account_id}",
            {"status": {"state": "active"}},
            namespace,
            subresource="status",
        )
        start = time.time() - stored

        async def one(i: int) -> None:
            post_id = i + 1
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i)) + ".000000Z"
            await client.create(
                POSTS,
                {
                    "apiVersion": POSTS.api_version,
                    "kind": POSTS.kind,
                    "metadata": {
                        "name": f"post-{post_id}",
                        "labels": {LABEL_ID: str(post_id)},
                        "annotations": {ANNOTATION_CREATED_AT: stamp, ANNOTATION_UPDATED_AT: stamp},
                    },
                    "spec": {
                        "body": f"Stored post {post_id}: we just shipped a big update. #launch",
                        "targets": [{"accountId": account_id}],
                        "draft": True,
                    },
                },
                namespace,
            )

        await _run(stored, concurrency, one)
        # Later ids continue after the seeded ones.
        current = await client.get(CONFIGMAPS, "socialpub-ids", namespace)
        await client.patch(
            CONFIGMAPS,
            IDS_CONFIGMAP,
            {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "data": {"posts": str(stored)},
            },
            namespace,
        )
        return key, account_id
    finally:
        await client.aclose()


async def _run(count: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> None:
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            await job(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# Measuring.


async def _latencies(
    client: httpx.AsyncClient,
    count: int,
    concurrency: int,
    request: Callable[[int], Awaitable[httpx.Response]],
) -> list[float]:
    samples: list[float] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        response = await request(i)
        samples.append(time.perf_counter() - started)
        if response.status_code >= 300:
            raise RuntimeError(
                f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
            )

    await _run(count, concurrency, one)
    return samples


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _measure(
    api_url: str, key: str, account_id: int, stored: int, count: int, concurrency: int
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=api_url, headers=headers, limits=limits, timeout=60) as client:
        deadline = time.monotonic() + 300
        while True:  # the api's cache must hold every stored post
            response = await client.get(f"{BASE}/posts", params={"limit": 1})
            if response.status_code == 200 and response.json()["meta"]["total"] >= stored:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the api never saw {stored} posts: {response.text}")
            await asyncio.sleep(0.2)

        payload = {"body": "Benchmark post #bench", "targets": [{"account_id": account_id}]}
        scenarios: list[tuple[str, Callable[[int], Awaitable[httpx.Response]]]] = [
            ("kube-read (baseline)", lambda i: client.get("/_bench/kube-read")),
            ("list-posts", lambda i: client.get(f"{BASE}/posts")),
            ("create-post", lambda i: client.post(f"{BASE}/posts", json=payload)),
        ]
        for _, request in scenarios:  # warm up connections and code paths
            await _latencies(client, concurrency * 2, concurrency, request)
        results: dict[str, list[float]] = {}
        # Interleave rounds so that drift (disk, caches) affects every endpoint alike.
        rounds = 4
        for _ in range(rounds):
            for name, request in scenarios:
                results.setdefault(name, []).extend(
                    await _latencies(client, count // rounds, concurrency, request)
                )
        total = (await client.get(f"{BASE}/posts", params={"limit": 1})).json()["meta"]["total"]

    base50, base99 = _pct(results["kube-read (baseline)"], 0.50), _pct(results["kube-read (baseline)"], 0.99)
    print(
        f"socialpub api: concurrency {concurrency}, {count} requests per endpoint, "
        f"{stored} posts stored before the run ({total} after)"
    )
    header = f"{'endpoint':<22}{'p50 ms':>9}{'p99 ms':>9}{'p50 ratio':>11}{'p99 ratio':>11}"
    print(f"{header}   (ratio = endpoint / kube-read)")
    for name, samples in results.items():
        p50, p99 = _pct(samples, 0.50), _pct(samples, 0.99)
        print(f"{name:<22}{p50:>9.2f}{p99:>9.2f}{p50 / base50:>11.2f}{p99 / base99:>11.2f}")
    print(f"mean kube-read {statistics.fmean(results['kube-read (baseline)']) * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stored", type=int, default=10_000, help="posts stored before measuring")
    parser.add_argument("--count", type=int, default=2000, help="requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        kube_end, kube_child = ctx.Pipe()
        kube = ctx.Process(target=_serve_kube, args=(tmp, args.stored + 5 * args.count + 1000, kube_child))
        kube.start()
        api: multiprocessing.process.BaseProcess | None = None
        try:
            _, kubeconfig = kube_end.recv()
            key, account_id = asyncio.run(_seed(kubeconfig, args.stored, args.concurrency))
            api_end, api_child = ctx.Pipe()
            api = ctx.Process(target=_serve_api, args=(kubeconfig, api_child))
            api.start()
            port = api_end.recv()
            asyncio.run(
                _measure(
                    f"http://127.0.0.1:{port}", key, account_id, args.stored, args.count, args.concurrency
                )
            )
        finally:
            for process in (api, kube):
                if process is not None and process.pid is not None:
                    process.terminate()
                    process.join(10)


if __name__ == "__main__":
    main()
