"""Benchmark: durable webhook delivery against raw signed HTTP POSTs to the same receiver.

Run with ``make bench`` (or ``.venv/bin/python bench/webhooks.py``). Not part of the tests.

The receiver answers every POST after 20 ms (a realistic handler). Both sides sign with
Standard Webhooks and keep the same number of requests in flight to the one endpoint:

* **raw**: ``httpx.AsyncClient.post`` of N pre-built signed bodies — the floor of any sender;
* **socialpub**: the operator's :class:`WebhookDispatcher` delivering N events recorded in N
  SocialAccounts' status: per event it creates the SocialWebhookDelivery, claims it
  (``sending``) before the POST and records the result after — three durable writes to the
  embedded Kubernetes API (SQLite) — plus the endpoint's status.

The ratio is what durability (at-least-once across restarts, an audit record per event) costs in
throughput. The embedded API and the receiver run on their own threads in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiohttp import web

from socialpub._cli_webhooks import add_endpoint
from socialpub.embedded.kubeconfig import write_kubeconfig
from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests
from socialpub.kube.client import KubeClient
from socialpub.kube.resources import ACCOUNTS, LABEL_ID
from socialpub.kube.tenants import ensure_tenant
from socialpub.models.events import EventType, event_id
from socialpub.models.keys import Mode
from socialpub.operator.settings import OperatorSettings
from socialpub.operator.webhooks import WebhookDispatcher
from socialpub.webhooks import signing
from socialpub.webhooks.events import format_time

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class Background:
    """An event loop on its own thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(600)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class SlowReceiver:
    """POST anywhere: 200 after ``latency`` seconds; counts distinct webhook-ids."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.ids: set[str] = set()
        self.requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(self.latency)
        self.requests += 1
        self.ids.add(request.headers.get("webhook-id", ""))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _accounts_with_events(
    client: KubeClient, namespace: str, count: int, start: int
) -> list[dict[str, Any]]:
    """``count`` SocialAccounts, each with one ``social.account_connected`` in its status."""

    async def one(i: int) -> dict[str, Any]:
        created = await client.create(
            ACCOUNTS,
            {
                "apiVersion": ACCOUNTS.api_version,
                "kind": ACCOUNTS.kind,
                "metadata": {"name": f"account-{i}", "labels": {LABEL_ID: str(i)}},
                "spec": {
                    "platform": "linkedin",
                    "displayName": f"Bench {i}",
                    "externalId": f"b-{i}",
                    "sandbox": True,
                },
            },
            namespace,
        )
        event = {
            "id": event_id(created["metadata"]["uid"], EventType.ACCOUNT_CONNECTED, "1"),
            "type": EventType.ACCOUNT_CONNECTED.value,
            "occurredAt": format_time(time.time()),
        }
        status = {"status": {"state": "active", "lifecycleEvents": [event]}}
        return await client.patch(ACCOUNTS, f"account-{i}", status, namespace, subresource="status")

    sem = asyncio.Semaphore(32)

    async def limited(i: int) -> dict[str, Any]:
        async with sem:
            return await one(i)

    return list(await asyncio.gather(*(limited(start + i) for i in range(count))))


async def raw_posts(url: str, count: int, concurrency: int, secret: str) -> float:
    """Seconds for ``count`` signed POSTs, ``concurrency`` at a time, on one pooled client."""
    bodies = [f'{{"type":"social.account_connected","data":{{"n":{i}}}}}'.encode() for i in range(count)]
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=concurrency)) as http:

        async def one(i: int) -> None:
            async with sem:
                headers = signing.headers(f"raw_{i}", int(time.time()), bodies[i], [secret])
                response = await http.post(
                    url, content=bodies[i], headers={"content-type": "application/json", **headers}
                )
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - started


async def dispatcher_run(
    kubeconfig: Path, namespace: str, accounts: list[dict[str, Any]], receiver: SlowReceiver, concurrency: int
) -> float:
    """Seconds from handing the dispatcher ``accounts`` to every event delivered and recorded."""
    client = KubeClient.from_config(str(kubeconfig))
    settings = dataclasses.replace(
        OperatorSettings(), webhook_allow_loopback=True, webhook_endpoint_concurrency=concurrency
    )
    dispatcher = WebhookDispatcher(client, settings)
    before = len(receiver.ids)
    try:
        await dispatcher.start()
        started = time.perf_counter()
        for account in accounts:
            dispatcher.observe(ACCOUNTS.plural, "ADDED", account)
        while len(receiver.ids) - before < len(accounts):
            await asyncio.sleep(0.005)
        await dispatcher.idle()  # and every delivery recorded as delivered
        elapsed = time.perf_counter() - started
        undelivered = [k for k, d in dispatcher.deliveries.items() if k[0] == namespace]
        assert not undelivered, f"{len(undelivered)} deliveries not recorded"
        return elapsed
    finally:
        await dispatcher.stop()
        await client.aclose()


async def main(count: int, latency: float, concurrencies: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kube = Background("embedded-kube")
        recv = Background("receiver")
        server = EmbeddedKubeServer(Path(tmp) / "state", ServerSettings(port=0))

        async def start_kube() -> None:
            await server.start()
            for doc in load_manifests(REPO / "crds"):
                await apply_manifest(server.cluster, server.registry, doc)

        kube.call(start_kube())
        kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", server.url)
        receiver = SlowReceiver(latency)
        recv.call(receiver.start())
        client = KubeClient.from_config(str(kubeconfig))
        try:
            print(f"webhook delivery: {count} events per run, receiver latency {latency * 1000:.0f} ms")
            print(f"{'in flight':>10} {'raw POST/s':>12} {'socialpub/s':>12} {'ratio':>7}")
            for n, concurrency in enumerate(concurrencies):
                tenant = await ensure_tenant(client, f"bench-{n}")  # one endpoint per namespace and run
                _, secret = await add_endpoint(
                    client, tenant, mode=Mode.TEST, url=f"{receiver.url}/ep{n}", events=[]
                )
                accounts = await _accounts_with_events(client, tenant.sandbox_namespace, count, 1)
                raw = await raw_posts(f"{receiver.url}/raw", count, concurrency, secret)
                ours = await dispatcher_run(
                    kubeconfig, tenant.sandbox_namespace, accounts, receiver, concurrency
                )
                print(f"{concurrency:>10} {count / raw:>12.0f} {count / ours:>12.0f} {raw / ours:>7.2f}")
        finally:
            await client.aclose()
            recv.call(receiver.stop())
            kube.call(server.stop())
            recv.close()
            kube.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="events per run (default 500)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="receiver latency (default 20 ms)")
    parser.add_argument(
        "--in-flight",
        type=int,
        nargs="+",
        default=[8, 32],
        help="requests in flight to the endpoint (default 8 32)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.count, args.latency_ms / 1000, args.in_flight))
