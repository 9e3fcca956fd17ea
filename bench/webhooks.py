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
throughput. The embedded API and the receiver each run in their own process, as they would in
production; raw posts and the dispatcher take turns in this one.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import multiprocessing.process
import tempfile
import time
from multiprocessing import Queue
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from socialpub._cli_webhooks import add_endpoint
from socialpub.embedded.kubeconfig import write_kubeconfig
from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests
from socialpub.embedded.statedir import load_or_create_token
from socialpub.embedded.tls import CA_FILE
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


def _serve_receiver(latency: float, ports: Queue[int]) -> None:
    """The receiver process: POST anywhere answers 200 after ``latency``; GET /count says how
    many distinct webhook-ids arrived."""

    async def main() -> None:
        ids: set[str] = set()

        async def receive(request: web.Request) -> web.Response:
            await request.read()
            await asyncio.sleep(latency)
            ids.add(request.headers.get("webhook-id", ""))
            return web.Response(text="ok")

        async def count(request: web.Request) -> web.Response:
            return web.json_response({"ids": len(ids)})

        app = web.Application()
        app.router.add_get("/count", count)
        app.router.add_post("/{path:.*}", receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        ports.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_kube(state_dir: str, ports: Queue[int]) -> None:
    """The embedded Kubernetes API process, with the CRDs applied."""

    async def main() -> None:
        server = EmbeddedKubeServer(Path(state_dir), ServerSettings(port=0))
        await server.start()
        for doc in load_manifests(REPO / "crds"):
            await apply_manifest(server.cluster, server.registry, doc)
        ports.put(server.port)
        await asyncio.Event().wait()

    asyncio.run(main())


def _start(target: Any, *args: Any) -> tuple[multiprocessing.process.BaseProcess, int]:
    context = multiprocessing.get_context("spawn")
    ports: Queue[int] = context.Queue()
    process = context.Process(target=target, args=(*args, ports), daemon=True)
    process.start()
    return process, ports.get(timeout=60)


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
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:

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


async def delivered(receiver: str) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"{receiver}/count")).json()["ids"])


async def dispatcher_run(
    kubeconfig: Path, namespace: str, accounts: list[dict[str, Any]], receiver: str, concurrency: int
) -> float:
    """Seconds from handing the dispatcher ``accounts`` (as the watch would) to every event
    delivered and recorded ``delivered`` in its SocialWebhookDelivery."""
    client = KubeClient.from_config(str(kubeconfig))
    settings = dataclasses.replace(
        OperatorSettings(),
        webhook_allow_loopback=True,
        webhook_endpoint_concurrency=concurrency,
        webhook_retry_base_seconds=0.001,  # a failure (none expected) costs a moment, not minutes
    )
    dispatcher = WebhookDispatcher(client, settings)
    before = await delivered(receiver)
    try:
        await dispatcher.start()
        started = time.perf_counter()
        for account in accounts:
            dispatcher.observe(ACCOUNTS.plural, "ADDED", account)
        await dispatcher.idle()
        while any(k[0] == namespace for k in dispatcher.deliveries):  # retries (none expected)
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"not delivered after 300 s: {len(dispatcher.deliveries)} left")
            await asyncio.sleep(0.01)
            await dispatcher.idle()
        elapsed = time.perf_counter() - started
        failures = sum(ep.failed_total for ep in dispatcher.endpoints.values() if ep.key[0] == namespace)
        if failures:
            errors = {ep.last_error for ep in dispatcher.endpoints.values() if ep.key[0] == namespace}
            print(f"  ({failures} failed attempt(s), retried; last error: {errors})")
    finally:
        await dispatcher.stop()
        await client.aclose()
    got = await delivered(receiver) - before
    assert got == len(accounts), f"{got} of {len(accounts)} events arrived"
    return elapsed


async def main(count: int, latency: float, concurrencies: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kube, kube_port = _start(_serve_kube, str(Path(tmp) / "state"))
        recv, recv_port = _start(_serve_receiver, latency)
        receiver = f"http://127.0.0.1:{recv_port}"
        state = Path(tmp) / "state"  # the server made its token and CA there
        kubeconfig = write_kubeconfig(
            Path(tmp) / "kubeconfig",
            f"https://127.0.0.1:{kube_port}",
            token=load_or_create_token(state),
            ca_pem=(state / CA_FILE).read_text(),
        )
        client = KubeClient.from_config(str(kubeconfig))
        try:
            print(f"webhook delivery: {count} events per run, receiver latency {latency * 1000:.0f} ms")
            print(
                f"{'in flight':>10} {'raw POST/s':>12} {'socialpub/s':>12} {'ratio':>7} {'kube writes/s':>14}"
            )
            for n, concurrency in enumerate(concurrencies):
                tenant = await ensure_tenant(client, f"bench-{n}")  # one endpoint per namespace and run
                _, secret = await add_endpoint(
                    client, tenant, mode=Mode.TEST, url=f"{receiver}/ep{n}", events=[]
                )
                started = time.perf_counter()
                accounts = await _accounts_with_events(client, tenant.sandbox_namespace, count, 1)
                writes = 2 * count / (time.perf_counter() - started)
                raw = await raw_posts(f"{receiver}/raw{n}", count, concurrency, secret)
                ours = await dispatcher_run(
                    kubeconfig, tenant.sandbox_namespace, accounts, receiver, concurrency
                )
                print(
                    f"{concurrency:>10} {count / raw:>12.0f} {count / ours:>12.0f} {raw / ours:>7.2f}"
                    f" {writes:>14.0f}",
                    flush=True,
                )
        finally:
            await client.aclose()
            for process in (kube, recv):
                process.terminate()
                process.join(10)


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
