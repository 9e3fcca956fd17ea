"""Benchmark: the platform adapters' publishing throughput against raw httpx calls to the same fakes.

Run with ``.venv/bin/python bench/platforms.py`` (``--targets``, ``--latency``, ``--concurrency``).
Not part of the tests.

The three fake platforms of ``tests/fakes`` run in three processes of their own, with ``--latency``
(default 50 ms) added to every answer. Two runs, side by side:

* **raw**: one ``httpx`` POST per target to the platform's create endpoint (LinkedIn
  ``/rest/posts``, Facebook ``/{page}/feed``, Instagram ``/{user}/media``) — the floor: one round
  trip per target, no checks, no error mapping — twice: on a plain ``httpx.AsyncClient`` with a
  pool as large as the concurrency, and on the adapters' own pooled transport (small httpcore
  pools; see ``socialpub/platforms/_http.py``);
* **adapters**: ``publish()`` of the real adapters for the same number of targets, a third per
  platform (text posts on LinkedIn and Facebook, one image on Instagram, which takes five calls:
  container, status, quota, ``media_publish``, permalink).

Both at the same concurrency (the operator's default, 64). Printed: targets/s of each and their
ratio; calls per target of the adapters.

``--lookups`` measures the "did it land?" lookup instead: per platform, a create whose answer is
dropped after the fake stored it, then 1, 60 and 500 other posts (``--newer``) landing on the same
account, then ``find_published`` for the lost one (fakes in this process, ``--latency`` per answer).
Printed: requests and wall time of each lookup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import time
import uuid
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from socialpub.platforms._http import new_client
from socialpub.platforms.base import MediaItem, PublishError, PublishRequest
from socialpub.platforms.registry import PlatformAdapters
from socialpub.platforms.settings import PlatformSettings
from tests.fakes.base import Fault
from tests.fakes.facebook import FakeFacebook
from tests.fakes.instagram import FakeInstagram
from tests.fakes.linkedin import FakeLinkedIn

TOKEN = "bench-token"
PLATFORMS = ("linkedin", "facebook", "instagram")


def _requests(n: int, run: str) -> list[PublishRequest]:
    out = []
    for i in range(n):
        platform = PLATFORMS[i % 3]
        media = (MediaItem("https://cdn.example.com/bench.jpg", "bench"),) if platform == "instagram" else ()
        out.append(
            PublishRequest(
                nonce=str(uuid.uuid4()),
                attempt=1,
                platform=platform,
                account_external_id={"linkedin": "1", "facebook": "2", "instagram": "3"}[platform],
                text=f"{run} post {i}",
                media=media,
                access_token=TOKEN,
                started_at=time.time(),
            )
        )
    return out


async def _bounded(n: int, concurrency: int, work: object) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            await work(i)  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - started


def _serve(kind: str, latency: float, quota: int, conn: Connection) -> None:
    """One fake in its own process (so the fakes and the client never share a GIL)."""
    fake: Any = {"linkedin": FakeLinkedIn, "facebook": FakeFacebook, "instagram": FakeInstagram}[kind]()
    fake.start()

    def prepare() -> None:
        fake.reset()
        fake.grant(TOKEN)
        fake.latency = latency
        if kind == "instagram":
            fake.fetch_media = False
            fake.quota_total = quota

    prepare()
    conn.send(getattr(fake, "base_url", fake.url))
    while (command := conn.recv()) != "stop":
        stored = {"linkedin": "posts", "facebook": "posts", "instagram": "media"}[kind]
        conn.send((len(fake.requests), len(getattr(fake, stored))))
        if command == "reset":
            prepare()
    fake.stop()


async def main(targets: int, latency: float, concurrency: int) -> None:
    context = multiprocessing.get_context("spawn")
    pipes: dict[str, Connection] = {}
    processes = []
    for kind in PLATFORMS:
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(kind, latency, 10 * targets, child), daemon=True)
        process.start()
        pipes[kind], _ = parent, processes.append(process)
    urls = {kind: pipe.recv() for kind, pipe in pipes.items()}
    try:
        settings = PlatformSettings(
            linkedin_base_url=urls["linkedin"],
            facebook_base_url=urls["facebook"],
            instagram_base_url=urls["instagram"],
            instagram_poll_interval_seconds=0.01,
            max_connections=concurrency,
        )

        # Raw: one create call per target, on a plain httpx client and on the adapters' transport.
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        raw_seconds: dict[str, float] = {}
        plain = httpx.AsyncClient(limits=limits, timeout=30)
        pooled = new_client(timeout=30, max_connections=concurrency)
        li_headers = {
            "Authorization": f"Bearer {TOKEN}",
            "LinkedIn-Version": settings.linkedin_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        for label, raw in (("plain", plain), ("pooled", pooled)):

            async def raw_call(i: int, raw: httpx.AsyncClient = raw) -> None:
                platform = PLATFORMS[i % 3]
                if platform == "linkedin":
                    body = {
                        "author": "urn:li:organization:1",
                        "commentary": f"raw post {i}",
                        "visibility": "PUBLIC",
                        "distribution": {"feedDistribution": "MAIN_FEED"},
                        "lifecycleState": "PUBLISHED",
                    }
                    response = await raw.post(f"{urls['linkedin']}/rest/posts", json=body, headers=li_headers)
                elif platform == "facebook":
                    response = await raw.post(
                        f"{urls['facebook']}/2/feed",
                        params={"access_token": TOKEN},
                        data={"message": f"raw {i}"},
                    )
                else:
                    response = await raw.post(
                        f"{urls['instagram']}/3/media",
                        params={"access_token": TOKEN},
                        data={"image_url": "https://cdn.example.com/bench.jpg", "caption": f"raw {i}"},
                    )
                response.raise_for_status()

            raw_seconds[label] = await _bounded(targets, concurrency, raw_call)
            await raw.aclose()
            for pipe in pipes.values():
                pipe.send("reset")
                pipe.recv()

        # Adapters: publish() per target.
        adapters = PlatformAdapters(settings)
        requests = _requests(targets, "adapter")

        async def adapter_call(i: int) -> None:
            request = requests[i]
            await adapters.for_platform(request.platform).publish(request)

        try:
            adapter_seconds = await _bounded(targets, concurrency, adapter_call)
        finally:
            await adapters.aclose()
        calls = published = 0
        for pipe in pipes.values():
            pipe.send("count")
            seen, stored = pipe.recv()
            calls, published = calls + seen, published + stored
        assert published == targets, f"published {published} of {targets}"
    finally:
        for pipe in pipes.values():
            pipe.send("stop")
        for process in processes:
            process.join(10)

    adapter_rate = targets / adapter_seconds
    print(f"{targets} targets, {latency * 1000:.0f} ms latency per answer, concurrency {concurrency}")
    for label, seconds in raw_seconds.items():
        print(
            f"  raw httpx create calls ({label:6}): {seconds:6.2f} s  {targets / seconds:7.1f} targets/s  "
            "(1 call each)"
        )
    print(
        f"  adapters publish()             : {adapter_seconds:6.2f} s  {adapter_rate:7.1f} targets/s  "
        f"({calls / targets:.2f} calls each on average)"
    )
    for label, seconds in raw_seconds.items():
        print(f"  ratio adapters / raw ({label:6}) : {adapter_rate / (targets / seconds):.2f}")


ACCOUNTS = {"linkedin": "1", "facebook": "2", "instagram": "3"}
CREATES = {"linkedin": "^/rest/posts$", "facebook": "/feed$", "instagram": "/media_publish$"}
LISTED_AS = {"linkedin": "urn:li:organization:1", "facebook": "2", "instagram": "3"}


async def lookups(latency: float, newer: list[int]) -> None:
    """Requests and time of one ``find_published`` with ``n`` newer posts on the account."""
    fakes: dict[str, Any] = {
        "linkedin": FakeLinkedIn(),
        "facebook": FakeFacebook(),
        "instagram": FakeInstagram(),
    }
    for fake in fakes.values():
        fake.start()
    settings = PlatformSettings(
        linkedin_base_url=fakes["linkedin"].url,
        facebook_base_url=fakes["facebook"].base_url,
        instagram_base_url=fakes["instagram"].base_url,
        instagram_poll_interval_seconds=0.01,
    )
    adapters = PlatformAdapters(settings)
    print(
        f"did-it-land lookups, {latency * 1000:.0f} ms latency per answer, "
        f"page limit {settings.lookup_max_pages}"
    )
    try:
        for platform in PLATFORMS:
            for n in newer:
                fake = fakes[platform]
                fake.reset()
                fake.grant(TOKEN)
                if platform == "instagram":
                    fake.fetch_media = False
                fake.inject("POST", CREATES[platform], Fault(kind="commit_drop"))
                saved: dict[str, Any] = {}

                async def checkpoint(update: Any, saved: dict[str, Any] = saved) -> None:
                    saved.update({k: v for k, v in update.items() if v is not None})

                media = (MediaItem("https://cdn.example.com/b.jpg", "b"),) if platform == "instagram" else ()
                request = PublishRequest(
                    nonce=str(uuid.uuid4()),
                    attempt=1,
                    platform=platform,
                    account_external_id=ACCOUNTS[platform],
                    text=f"the lost one ({n})",
                    media=media,
                    access_token=TOKEN,
                    started_at=time.time(),
                    checkpoint=checkpoint,
                )
                adapter = adapters.for_platform(platform)
                with contextlib.suppress(PublishError):  # the dropped answer, as intended
                    await adapter.publish(request)
                fake.seed(LISTED_AS[platform], n)
                fake.latency = latency
                before = len(fake.requests)
                started = time.perf_counter()
                found = await adapter.find_published(replace(request, platform_state=dict(saved)))
                seconds = time.perf_counter() - started
                assert found is not None, f"{platform}: the lost post was not found behind {n} newer ones"
                print(
                    f"  {platform:9} {n:4} newer posts: {len(fake.requests) - before:2} requests "
                    f"{seconds * 1000:7.1f} ms"
                )
    finally:
        await adapters.aclose()
        for fake in fakes.values():
            fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every answer")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--lookups", action="store_true", help="measure did-it-land lookups instead")
    parser.add_argument("--newer", type=int, nargs="*", default=[1, 60, 500])
    args = parser.parse_args()
    if args.lookups:
        asyncio.run(lookups(args.latency, args.newer))
    else:
        asyncio.run(main(args.targets, args.latency, args.concurrency))
