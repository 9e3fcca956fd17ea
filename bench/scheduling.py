"""Benchmark: how exactly the operator publishes scheduled posts, and how fast it fans out.

Run with ``.venv/bin/python bench/scheduling.py`` (``--help`` for sizes). Not part of the tests.

Everything runs on this machine, side by side in one run: the embedded Kubernetes API in this
process, the real operator in its own process (as in production), and a plain client in a third
process for the API's write ceiling.

0. **Precision**: ``--staggered`` posts due 250 ms apart (nothing queues): how close to its
   instant a post publishes when the operator is not busy.
1. **Lateness**: ``--posts`` posts (one sandbox target each) are created as drafts, then all
   scheduled for the same instant a few seconds ahead. Once every post shows ``scheduled``,
   nothing is done until they publish. Reported: ``publishStartedAt - scheduledFor`` (release)
   and ``publishedAt - scheduledFor`` (the platform accepted it) for every target, p50/p99/max.
2. **Fan-out**: ``--fanout-posts`` posts with ``--fanout-targets`` targets each, due at one
   instant, sandbox delay 0: targets published per second, from the instant to the last one.
3. **Ceiling**: a client process (httpx, the operator's concurrency) merge-patches the status of
   those targets for a few seconds: the embedded API's own write rate. The fan-out rate is
   printed as a ratio to it — publishing one target costs several writes (claim, result, Event,
   the post's status), so a ratio well below 1 is the expected shape.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from socialpub.embedded.kubeconfig import write_kubeconfig
from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests
from socialpub.kube.accounts import create_sandbox_account
from socialpub.kube.client import AlreadyExists, KubeClient
from socialpub.kube.ids import allocate_id
from socialpub.kube.resources import LABEL_ID, LABEL_POST, POSTS, TARGETS
from socialpub.kube.tenants import ensure_tenant
from socialpub.models.platforms import Platform

REPO = Path(__file__).resolve().parent.parent
OPERATOR_CODE = (
    "import asyncio,logging; logging.basicConfig(level=logging.WARNING); "
    "from socialpub.operator.runner import run_operator; "
    "from socialpub.operator.settings import OperatorSettings; "
    "asyncio.run(run_operator(OperatorSettings.from_env()))"
)


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def gather_limited(items: Iterable[Any], op: Callable[[Any], Awaitable[Any]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(item: Any) -> Any:
        async with gate:
            return await op(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


class Server:
    """The embedded Kubernetes API on its own event loop in a thread of this process."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: EmbeddedKubeServer | None = None
        self.kubeconfig = state_dir / "kubeconfig"

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(60)

    def start(self) -> None:
        async def start() -> EmbeddedKubeServer:
            server = EmbeddedKubeServer(self.state_dir, ServerSettings())
            await server.start()
            for doc in load_manifests(REPO / "crds"):
                await apply_manifest(server.cluster, server.registry, doc)
            return server

        self.server = self._call(start())
        write_kubeconfig(
            self.kubeconfig, self.server.url, token=self.server.token, ca_pem=self.server.tls.ca_pem
        )

    def stop(self) -> None:
        if self.server is not None:
            self._call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


class Operator:
    def __init__(self, kubeconfig: Path, log: Path, **env: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", OPERATOR_CODE],
            env={**os.environ, "KUBECONFIG": str(kubeconfig), **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


async def create_drafts(
    client: KubeClient, namespace: str, count: int, account_ids: list[int], concurrency: int
) -> list[str]:
    """Posts as the api creates them: an id, a draft ``post-<id>``, and its targets."""

    async def create(_: int) -> str:
        post_id = await allocate_id(client, namespace, "posts")
        name = f"post-{post_id}"
        post = await client.create(
            POSTS,
            {
                "apiVersion": POSTS.api_version,
                "kind": POSTS.kind,
                "metadata": {"name": name, "labels": {LABEL_ID: str(post_id)}},
                "spec": {
                    "body": f"Benchmark post {post_id}",
                    "targets": [{"accountId": a} for a in account_ids],
                    "draft": True,
                },
            },
            namespace,
        )
        owner = {
            "apiVersion": POSTS.api_version,
            "kind": POSTS.kind,
            "name": name,
            "uid": post["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        for account_id in account_ids:
            with contextlib.suppress(AlreadyExists):  # the operator may have been quicker
                await client.create(
                    TARGETS,
                    {
                        "apiVersion": TARGETS.api_version,
                        "kind": TARGETS.kind,
                        "metadata": {
                            "name": f"{name}-{account_id}",
                            "labels": {LABEL_POST: name},
                            "ownerReferences": [owner],
                        },
                        "spec": {"postName": name, "accountId": account_id},
                    },
                    namespace,
                )
        return name

    return await gather_limited(range(count), create, concurrency)


async def wait_until(
    probe: Callable[[], Awaitable[bool]], timeout: float, interval: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def phases(client: KubeClient, namespace: str) -> dict[str, int]:
    items, _ = await client.list(POSTS, namespace)
    counts: dict[str, int] = {}
    for post in items:
        phase = (post.get("status") or {}).get("phase") or "-"
        counts[phase] = counts.get(phase, 0) + 1
    return counts


async def scheduled_run(
    client: KubeClient,
    namespace: str,
    names: list[str],
    targets_per_post: int,
    lead: float,
    concurrency: int,
    operator_pid: int,
    spacing: float = 0.0,
) -> tuple[float, list[dict[str, Any]], list[dict[str, Any]], float, str]:
    """Schedule the posts ``lead`` s ahead (one instant, or ``spacing`` s apart); wait until all
    targets are done.

    Returns the instant, the posts, the targets, how long before the instant every post showed
    ``scheduled`` (the operator had armed them all), and the CPU both processes used meanwhile.
    """
    await wait_until(
        lambda: _all_in(client, namespace, len(names), "draft"), 120, 0.5, "the drafts to be seen"
    )
    due = time.time() + lead
    times = {name: iso(due + i * spacing) for i, name in enumerate(names)}

    async def publish(name: str) -> None:
        await client.patch(POSTS, name, {"spec": {"draft": False, "scheduledFor": times[name]}}, namespace)

    await gather_limited(names, publish, concurrency)
    await wait_until(
        lambda: _all_in(client, namespace, len(names), "scheduled"), lead, 0.2, "every post to be scheduled"
    )
    margin = due - time.time()
    total = len(names) * targets_per_post

    async def done() -> bool:
        items, _ = await client.list(TARGETS, namespace)
        settled = [t for t in items if (t.get("status") or {}).get("state") in ("published", "dead")]
        return len(settled) == total

    await asyncio.sleep(max(0.0, due - time.time()))
    cpu_before = cpu_seconds(operator_pid), cpu_seconds(os.getpid())
    await wait_until(done, 600, 0.5, "every target to be published")
    elapsed = time.time() - due
    cpu = (
        f"CPU while publishing ({elapsed:.1f}s): operator {cpu_seconds(operator_pid) - cpu_before[0]:.1f}s, "
        f"API server (+ this driver) {cpu_seconds(os.getpid()) - cpu_before[1]:.1f}s"
    )
    posts, _ = await client.list(POSTS, namespace)
    targets, _ = await client.list(TARGETS, namespace)
    return due, posts, targets, margin, cpu


async def _all_in(client: KubeClient, namespace: str, count: int, phase: str) -> bool:
    return (await phases(client, namespace)).get(phase, 0) == count


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:<34} p50 {statistics.median(values) * 1000:8.1f} ms   "
        f"p99 {percentile(values, 0.99) * 1000:8.1f} ms   max {max(values) * 1000:8.1f} ms"
    )


async def ceiling_worker(kubeconfig: str, namespace: str, concurrency: int, seconds: float) -> None:
    """In its own process: status merge-patches of every target in ``namespace``, for ``seconds``."""
    client = KubeClient.from_config(kubeconfig)
    items, _ = await client.list(TARGETS, namespace)
    names = [t["metadata"]["name"] for t in items]
    done = 0
    stop = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.monotonic() < stop:
            name = names[i % len(names)]
            await client.patch(
                TARGETS, name, {"status": {"observedGeneration": i}}, namespace, subresource="status"
            )
            done += 1
            i += concurrency

    start = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.monotonic() - start
    await client.aclose()
    print(json.dumps({"patches": done, "seconds": elapsed}))


def measure_ceiling(kubeconfig: Path, namespace: str, concurrency: int, seconds: float) -> float:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--ceiling-worker",
            str(kubeconfig),
            namespace,
            str(concurrency),
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["patches"]) / float(result["seconds"])


async def main(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="socialpub-bench-"))
    server = Server(state)
    server.start()
    client = KubeClient.from_config(str(server.kubeconfig))
    operator: Operator | None = None
    try:
        precision_tenant = await ensure_tenant(client, "precision")
        precise = await create_sandbox_account(
            client, tenant=precision_tenant, platform=Platform.FACEBOOK, display_name="Bench"
        )
        lateness_tenant = await ensure_tenant(client, "lateness")
        fanout_tenant = await ensure_tenant(client, "fanout")
        one = await create_sandbox_account(
            client, tenant=lateness_tenant, platform=Platform.LINKEDIN, display_name="Bench"
        )
        fan_accounts = await gather_limited(
            range(args.fanout_targets),
            lambda i: create_sandbox_account(
                client, tenant=fanout_tenant, platform=list(Platform)[i % 3], display_name=f"Bench {i}"
            ),
            8,
        )
        operator = Operator(
            server.kubeconfig,
            state / "operator.log",
            SOCIALPUB_SANDBOX_DELAY_SECONDS=str(args.sandbox_delay),
            SOCIALPUB_OPERATOR_CONCURRENCY=str(args.concurrency),
        )

        # 0. Precision: posts due one by one, so nothing queues.
        namespace = precision_tenant.sandbox_namespace
        account_id = int(precise["metadata"]["labels"][LABEL_ID])
        names = await create_drafts(client, namespace, args.staggered, [account_id], 4)
        _, posts, targets, _, _ = await scheduled_run(
            client, namespace, names, 1, args.lead, 8, operator.proc.pid, spacing=0.25
        )
        scheduled = {p["metadata"]["name"]: parse(p["spec"]["scheduledFor"]) for p in posts}
        released = [parse(p["status"]["publishStartedAt"]) - scheduled[p["metadata"]["name"]] for p in posts]
        published = [parse(t["status"]["publishedAt"]) - scheduled[t["spec"]["postName"]] for t in targets]
        print(f"\n0. {len(names)} posts due 250 ms apart (sandbox delay {args.sandbox_delay}s)")
        print(summary("release lateness (publishStartedAt)", released))
        print(summary("publish lateness (publishedAt)", published))
        print(f"{'published before scheduledFor':<34} {sum(1 for x in released if x < 0)}")

        # 1. Lateness.
        namespace = lateness_tenant.sandbox_namespace
        started = time.monotonic()
        names = await create_drafts(
            client, namespace, args.posts, [int(one["metadata"]["labels"][LABEL_ID])], 4
        )
        print(f"created {len(names)} draft posts in {time.monotonic() - started:.1f}s")
        due, posts, targets, margin, cpu = await scheduled_run(
            client, namespace, names, 1, args.lead, 32, operator.proc.pid
        )
        released = [parse(p["status"]["publishStartedAt"]) - due for p in posts]
        published = [parse(t["status"]["publishedAt"]) - due for t in targets]
        early = [x for x in released if x < 0]
        print(
            f"\n1. {len(names)} posts due at the same instant (all armed {margin:.1f}s before it; "
            f"sandbox delay {args.sandbox_delay}s, operator concurrency {args.concurrency})"
        )
        print(summary("release lateness (publishStartedAt)", released))
        print(summary("publish lateness (publishedAt)", published))
        print(f"{'published before scheduledFor':<34} {len(early)}")
        print(cpu)

        # 2. Fan-out.
        namespace = fanout_tenant.sandbox_namespace
        ids = [int(a["metadata"]["labels"][LABEL_ID]) for a in fan_accounts]
        names = await create_drafts(client, namespace, args.fanout_posts, ids, 4)
        due, posts, targets, _, cpu = await scheduled_run(
            client, namespace, names, len(ids), args.lead, 32, operator.proc.pid
        )
        last = max(parse(t["status"]["publishedAt"]) for t in targets)
        rate = len(targets) / (last - due)
        operator.stop()
        operator = None

        # 3. Ceiling, same concurrency, from its own process like the operator.
        ceiling = measure_ceiling(server.kubeconfig, namespace, args.concurrency, args.ceiling_seconds)
        print(
            f"\n2. fan-out: {args.fanout_posts} posts x {len(ids)} targets, sandbox delay 0 "
            f"(scheduled for one instant, measured to the last publishedAt)"
        )
        print(f"{'targets published per second':<34} {rate:10.1f}")
        print(cpu)
        print(f"{'embedded API status patches/s':<34} {ceiling:10.1f}   (concurrency {args.concurrency})")
        print(f"{'ratio (targets/s / patches/s)':<34} {rate / ceiling:10.3f}")
    finally:
        if operator is not None:
            operator.stop()
        await client.aclose()
        server.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--ceiling-worker":
        _, _, kubeconfig, namespace, concurrency, seconds = sys.argv
        asyncio.run(ceiling_worker(kubeconfig, namespace, int(concurrency), float(seconds)))
        sys.exit(0)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--staggered", type=int, default=40, help="posts due one by one, 250 ms apart")
    parser.add_argument("--posts", type=int, default=1000, help="posts due at the same instant")
    parser.add_argument("--lead", type=float, default=20.0, help="seconds between scheduling and the instant")
    parser.add_argument("--sandbox-delay", type=float, default=0.0, help="simulated platform latency (s)")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="the operator's SOCIALPUB_OPERATOR_CONCURRENCY"
    )
    parser.add_argument("--fanout-posts", type=int, default=20)
    parser.add_argument("--fanout-targets", type=int, default=50, help="targets per post (at most 50)")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
